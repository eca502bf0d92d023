# tests/faults/ - the hub under faults and hostile input (issue 8), plus the
# hub-config fuzz target. Included after hub/*.mk and sim/*.mk: the suite
# runs the built firewatch-hub, firewatchctl and firewatch-fleet.
#   make test    runs the short versions (3 kills, a 5 s broker outage, ...)
#   make faults  runs the long ones (FW_FAULTS_LONG=1: 30 kills, a 60 s outage)
#   make valgrind  the hub integration suite with the hub under memcheck
FAULTS_SUITE := $(OUT)/tests/faults/test_faults

$(OUT)/obj/tests/faults/%.o: ALL_CFLAGS += -Ihub
$(FAULTS_SUITE): TEST_EXTRA_LIBS = $(LIB_PAHO) $(LIB_SQLITE)
$(FAULTS_SUITE): $(OUT)/obj/tests/http/client.o $(OUT)/bin/firewatch-hub $(OUT)/bin/firewatchctl $(FLEET)
$(OUT)/obj/tests/faults/test_faults.o: ALL_CFLAGS += -Itests/http

# The hub config fuzz target links the option table (hubconf.c).
FUZZ_TARGETS += hubconf
$(FUZZ_OUT)/fuzz_hubconf: tests/fuzz/fuzz_hubconf.c hub/hubconf.c hub/hubconf.h $(COMMON_SRCS) $(COMMON_HDRS) \
                          $(PROTOCOL_SRCS) $(PROTOCOL_HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_FLAGS) -Icommon -Ihub $< hub/hubconf.c $(PROTOCOL_SRCS) $(COMMON_SRCS) $(LIB_CJSON) -lm -o $@
$(OUT)/tests/fuzz/replay_hubconf: $(OUT)/obj/tests/fuzz/fuzz_hubconf.o $(OUT)/obj/tests/fuzz/replay.o \
                                  $(OUT)/obj/hub/hubconf.o $(COMMON_LIB) $(PROTOCOL_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $(filter %.o,$^) $(COMMON_LIB) $(PROTOCOL_LIBS) $(LIB_SYS) -o $@
$(OUT)/obj/tests/fuzz/fuzz_hubconf.o: ALL_CFLAGS += -Ihub

TEST_BINS += $(OUT)/tests/fuzz/replay_hubconf $(FAULTS_SUITE)
CHECK_SRCS += tests/faults/test_faults.c tests/fuzz/fuzz_hubconf.c hub/spill.c hub/spill.h

.PHONY: faults faults-run valgrind valgrind-run
faults: deps-test
	@$(MAKE) --no-print-directory SAN=1 faults-run
faults-run: $(BINS) $(FAULTS_SUITE)
	@FW_FAULTS_LONG=1 scripts/run-tests.sh --out $(OUT) $(FAULTS_SUITE)

# The hub integration suite with the hub (a plain build) under memcheck.
VALGRIND_HUB := valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
                --errors-for-leak-kinds=definite,indirect --track-fds=no --quiet
valgrind: deps-test
	@$(MAKE) --no-print-directory SAN=0 OUT=build/valgrind valgrind-run
valgrind-run: $(BINS) $(OUT)/tests/hub/test_hub
	@FW_HUB_WRAPPER="$(VALGRIND_HUB)" scripts/run-tests.sh --out $(OUT) $(OUT)/tests/hub/test_hub
