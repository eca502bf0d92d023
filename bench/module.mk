# bench/ - the benchmark programs driven by scripts/bench.sh (make bench).
BENCH_PROGS := $(OUT)/bin/bench-sub $(OUT)/bin/bench-probe $(OUT)/bin/bench-http

$(OUT)/bin/bench-%: $(OUT)/obj/bench/bench_%.o $(COMMON_LIB) $(PROTOCOL_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $(filter %.o,$^) $(COMMON_LIB) $(PROTOCOL_LIBS) $(LIB_PAHO) $(LIB_SYS) -o $@

# bench-fed drives the regional receiver in-process (hub/region.c, fed.c,
# cap.c and the store), so it links those objects instead of paho.
$(OUT)/obj/bench/bench_fed.o: ALL_CFLAGS += -Ihub
$(OUT)/bin/bench-fed: $(OUT)/obj/bench/bench_fed.o $(OUT)/obj/hub/region.o $(OUT)/obj/hub/fed.o $(OUT)/obj/hub/cap.o \
                      $(OUT)/obj/hub/store.o $(COMMON_LIB) $(PROTOCOL_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $(filter %.o,$^) $(COMMON_LIB) $(PROTOCOL_LIBS) $(LIB_SQLITE) $(LIB_CJSON) -lm $(LIB_SYS) -o $@
BENCH_PROGS += $(OUT)/bin/bench-fed

CHECK_SRCS += bench/bench_sub.c bench/bench_probe.c bench/bench_http.c bench/bench_fed.c
