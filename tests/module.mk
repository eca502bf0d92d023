# tests/ - the harness, the shared test helpers and the protocol suites.
# Other parts add their own suites from their module.mk.
TEST_LIB_SRCS := tests/lib/harness.c tests/lib/broker.c
TEST_LIB := $(OUT)/lib/libfirewatch-test.a
TEST_CFLAGS := -Itests/lib -Iprotocol

$(TEST_LIB): $(TEST_LIB_SRCS:%.c=$(OUT)/obj/%.o)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

# A test program tests/<dir>/test_x.c links against the test, common and
# protocol libraries. A suite needing more objects lists them as
# prerequisites (or in a target-specific TEST_EXTRA_OBJS; duplicates are
# linked once) and more libraries in a target-specific TEST_EXTRA_LIBS.
$(OUT)/tests/%: $(OUT)/obj/tests/%.o $(TEST_LIB) $(COMMON_LIB) $(PROTOCOL_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $(sort $(filter %.o,$^) $(TEST_EXTRA_OBJS)) $(TEST_LIB) $(COMMON_LIB) $(PROTOCOL_LIBS) \
	  $(TEST_EXTRA_LIBS) $(LIB_SYS) -o $@

$(OUT)/obj/tests/%.o: ALL_CFLAGS += $(TEST_CFLAGS)

# The fuzz targets double as corpus replayers built with the test flavour.
FUZZ_TARGETS += payload topic conf
$(OUT)/tests/fuzz/replay_%: $(OUT)/obj/tests/fuzz/fuzz_%.o $(OUT)/obj/tests/fuzz/replay.o $(COMMON_LIB) $(PROTOCOL_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $(filter %.o,$^) $(COMMON_LIB) $(PROTOCOL_LIBS) $(LIB_SYS) -o $@

TEST_BINS += $(OUT)/tests/unit/test_protocol $(OUT)/tests/unit/test_conf \
             $(OUT)/tests/fuzz/replay_payload $(OUT)/tests/fuzz/replay_topic $(OUT)/tests/fuzz/replay_conf \
             $(OUT)/tests/integration/test_broker

CHECK_SRCS += $(TEST_LIB_SRCS) tests/lib/harness.h tests/lib/broker.h \
              $(wildcard tests/unit/*.c tests/integration/*.c tests/fuzz/*.c)
