# bench/ - the benchmark programs driven by scripts/bench.sh (make bench).
BENCH_PROGS := $(OUT)/bin/bench-sub $(OUT)/bin/bench-probe $(OUT)/bin/bench-http

$(OUT)/bin/bench-%: $(OUT)/obj/bench/bench_%.o $(COMMON_LIB) $(PROTOCOL_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $(filter %.o,$^) $(COMMON_LIB) $(PROTOCOL_LIBS) $(LIB_PAHO) $(LIB_SYS) -o $@

CHECK_SRCS += bench/bench_sub.c bench/bench_probe.c bench/bench_http.c
