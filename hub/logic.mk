# hub/logic.mk - the hub's pure decision modules (incident engine,
# supervision, readiness) and the notifier hook, with their unit suites.
# Read before hub/module.mk, which links HUB_LOGIC_SRCS into the daemon.
HUB_LOGIC_SRCS := hub/incident.c hub/supervise.c hub/readiness.c hub/notify.c
HUB_LOGIC_HDRS := $(HUB_LOGIC_SRCS:.c=.h)
HUB_LOGIC_OBJS := $(HUB_LOGIC_SRCS:%.c=$(OUT)/obj/%.o)

CHECK_SRCS += $(HUB_LOGIC_SRCS) $(HUB_LOGIC_HDRS) \
              tests/hub/test_incident.c tests/hub/test_supervise.c \
              tests/hub/test_readiness.c tests/hub/test_notify.c

$(OUT)/obj/tests/hub/%.o: ALL_CFLAGS += -Ihub

# Each suite links the one module it tests. The generic link rule in
# tests/module.mk already links every .o prerequisite ($(filter %.o,$^)), so
# naming the object as a prerequisite is enough; setting TEST_EXTRA_OBJS to
# it as well would link it twice (multiple definitions).
$(OUT)/tests/hub/test_incident: $(OUT)/obj/hub/incident.o
$(OUT)/tests/hub/test_supervise: $(OUT)/obj/hub/supervise.o
$(OUT)/tests/hub/test_readiness: $(OUT)/obj/hub/readiness.o
$(OUT)/tests/hub/test_notify: $(OUT)/obj/hub/notify.o

TEST_BINS += $(OUT)/tests/hub/test_incident $(OUT)/tests/hub/test_supervise \
             $(OUT)/tests/hub/test_readiness $(OUT)/tests/hub/test_notify
