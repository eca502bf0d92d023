# hub/module.mk - firewatch-hub (the daemon) and firewatchctl, with their
# suites. Read after hub/broker.mk and hub/logic.mk: the daemon links the
# logic modules ($(HUB_LOGIC_SRCS)).
HUB_CORE_SRCS := hub/store.c hub/hubconf.c
HUB_DAEMON_SRCS := hub/hub.c hub/ingest.c hub/spill.c hub/writer.c hub/sdnotify.c hub/readyscan.c \
                   hub/fed.c hub/fedpub.c hub/region.c
HUB_CTL_SRCS := hub/ctl.c hub/readyscan.c
HUB_HDRS := hub/store.h hub/hubconf.h hub/ingest.h hub/spill.h hub/writer.h hub/sdnotify.h hub/readyscan.h \
            hub/fed.h hub/fedpub.h hub/region.h

HUB_CORE_OBJS := $(HUB_CORE_SRCS:%.c=$(OUT)/obj/%.o)
# The store and config as an archive for the test programs: the generic test
# rule links $(filter %.o,$^) and TEST_EXTRA_OBJS, so objects given both ways
# would be linked twice.
HUB_CORE_LIB := $(OUT)/lib/libfirewatch-hubcore.a
$(HUB_CORE_LIB): $(HUB_CORE_OBJS)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^
HUB_LIBS := $(COMMON_LIB) $(PROTOCOL_LIBS) $(LIB_PAHO) $(LIB_SQLITE) $(LIB_SODIUM) $(LIB_SYS)

$(OUT)/obj/hub/%.o: ALL_CFLAGS += -Ihub

$(OUT)/bin/firewatch-hub: $(HUB_DAEMON_SRCS:%.c=$(OUT)/obj/%.o) $(HUB_CORE_OBJS) $(HUB_LOGIC_SRCS:%.c=$(OUT)/obj/%.o) \
                          $(HUB_HTTP_OBJS) $(HUB_HTTP_DAEMON_OBJS) $(COMMON_LIB) $(PROTOCOL_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $(filter %.o,$^) $(HUB_LIBS) $(HUB_HTTP_LIBS) -o $@

$(OUT)/bin/firewatchctl: $(HUB_CTL_SRCS:%.c=$(OUT)/obj/%.o) $(HUB_CORE_OBJS) $(OUT)/obj/hub/readiness.o \
                         $(HUB_BROKERCFG_OBJS) $(COMMON_LIB) $(PROTOCOL_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $(filter %.o,$^) $(HUB_LIBS) -o $@

BINS += $(OUT)/bin/firewatch-hub $(OUT)/bin/firewatchctl

$(OUT)/obj/tests/hub/%.o: ALL_CFLAGS += -Ihub

$(OUT)/tests/hub/test_store: TEST_EXTRA_LIBS = $(HUB_CORE_LIB) $(COMMON_LIB) $(PROTOCOL_LIBS) $(LIB_SQLITE)
$(OUT)/tests/hub/test_store: $(HUB_CORE_LIB) $(OUT)/obj/hub/readyscan.o $(OUT)/obj/hub/readiness.o
$(OUT)/tests/hub/test_hubconf: TEST_EXTRA_LIBS = $(HUB_CORE_LIB) $(COMMON_LIB) $(PROTOCOL_LIBS) $(LIB_SQLITE)
$(OUT)/tests/hub/test_hubconf: $(HUB_CORE_LIB)
$(OUT)/tests/hub/test_hub: TEST_EXTRA_LIBS = $(LIB_PAHO) $(LIB_SQLITE)
$(OUT)/tests/hub/test_hub: $(OUT)/bin/firewatch-hub $(OUT)/bin/firewatchctl
# Provisioning end to end: a real broker on firewatchctl's config, the hub,
# and the fleet simulator as a node (sim/ is read later: its path, not $(FLEET)).
$(OUT)/tests/hub/test_provision: TEST_EXTRA_LIBS = $(LIB_PAHO) $(LIB_SQLITE)
$(OUT)/tests/hub/test_provision: $(OUT)/obj/tests/broker/client.o $(OUT)/obj/tests/http/client.o \
                                 $(OUT)/bin/firewatch-hub \
                                 $(OUT)/bin/firewatchctl $(OUT)/bin/firewatch-fleet

# Federation: the pure documents and the regional receiver against a real
# database (test_fed), and two brokers and two hubs end to end
# (test_federation, on the shared rig tests/lib/hubrig.c).
$(OUT)/tests/hub/test_fed: $(OUT)/obj/hub/fed.o $(OUT)/obj/hub/region.o $(HUB_CORE_LIB)
$(OUT)/tests/hub/test_fed: TEST_EXTRA_LIBS = $(HUB_CORE_LIB) $(COMMON_LIB) $(PROTOCOL_LIBS) $(LIB_SQLITE)
$(OUT)/obj/tests/lib/hubrig.o $(OUT)/obj/tests/hub/test_federation.o: ALL_CFLAGS += -Itests/http
$(OUT)/tests/hub/test_federation: $(OUT)/obj/tests/lib/hubrig.o $(OUT)/obj/tests/http/client.o \
                                  $(OUT)/bin/firewatch-hub $(OUT)/bin/firewatchctl
$(OUT)/tests/hub/test_federation: TEST_EXTRA_LIBS = $(LIB_CJSON)
# What a regional hub believes from the areas, fuzzed (tests/fuzz/fuzz_fed.c):
# a libFuzzer build for `make fuzz`, and a corpus replayer run in make test.
FUZZ_TARGETS += fed
$(FUZZ_OUT)/fuzz_fed: tests/fuzz/fuzz_fed.c hub/fed.c hub/fed.h $(PROTOCOL_SRCS) $(PROTOCOL_HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_FLAGS) -Ihub $< hub/fed.c $(PROTOCOL_SRCS) $(LIB_CJSON) -lm -o $@
$(OUT)/obj/tests/fuzz/fuzz_fed.o: ALL_CFLAGS += -Ihub
$(OUT)/tests/fuzz/replay_fed: $(OUT)/obj/tests/fuzz/fuzz_fed.o $(OUT)/obj/tests/fuzz/replay.o $(OUT)/obj/hub/fed.o \
                              $(PROTOCOL_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $(filter %.o,$^) $(PROTOCOL_LIBS) $(LIB_SYS) -o $@

TEST_BINS += $(OUT)/tests/hub/test_store $(OUT)/tests/hub/test_hubconf \
             $(OUT)/tests/hub/test_hub $(OUT)/tests/hub/test_provision \
             $(OUT)/tests/hub/test_fed $(OUT)/tests/hub/test_federation $(OUT)/tests/fuzz/replay_fed

CHECK_SRCS += $(HUB_CORE_SRCS) $(HUB_DAEMON_SRCS) hub/ctl.c hub/techview.h $(HUB_HDRS) \
              tests/hub/test_store.c tests/hub/test_hubconf.c tests/hub/test_hub.c tests/hub/test_provision.c \
              tests/hub/test_fed.c tests/hub/test_federation.c tests/lib/hubrig.c tests/lib/hubrig.h \
              tests/fuzz/fuzz_fed.c
