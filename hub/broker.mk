# hub/broker.mk - brokercfg: the Mosquitto configuration, passwords, ACL,
# reload and TLS certificates that firewatchctl manages, and their suites
# (tests/broker/, run against a real Mosquitto).
#
# The hub's programs link $(HUB_BROKERCFG_OBJS) and $(HUB_BROKERCFG_LIBS).
# Note for test programs: the generic link rule in tests/module.mk already
# links every .o prerequisite ($(filter %.o,$^)), so extra objects are given
# as prerequisites only - listing them in TEST_EXTRA_OBJS as well would link
# them twice.
HUB_BROKERCFG_SRCS := hub/brokercfg.c hub/brokercfg_passwd.c hub/brokercfg_tls.c
HUB_BROKERCFG_HDRS := hub/brokercfg.h hub/brokercfg_internal.h
HUB_BROKERCFG_OBJS := $(HUB_BROKERCFG_SRCS:%.c=$(OUT)/obj/%.o)
HUB_BROKERCFG_LIBS := $(LIB_SODIUM)

BROKER_TEST_NAMES := test_brokercfg test_acl test_tls
BROKER_TESTS := $(BROKER_TEST_NAMES:%=$(OUT)/tests/broker/%)
BROKER_TEST_CLIENT := $(OUT)/obj/tests/broker/client.o

$(BROKER_TESTS): $(HUB_BROKERCFG_OBJS)
$(OUT)/tests/broker/test_acl $(OUT)/tests/broker/test_tls: $(BROKER_TEST_CLIENT)
$(BROKER_TESTS): TEST_EXTRA_LIBS = $(LIB_PAHO) $(HUB_BROKERCFG_LIBS)
$(OUT)/obj/tests/broker/%.o: ALL_CFLAGS += -Ihub

TEST_BINS += $(BROKER_TESTS)
CHECK_SRCS += $(HUB_BROKERCFG_SRCS) $(HUB_BROKERCFG_HDRS) tests/broker/client.c tests/broker/client.h \
              $(BROKER_TEST_NAMES:%=tests/broker/%.c)
