# firmware/ - firewatch-node, the sensor node daemon, and its test suites.
#
# The node's modules go into one list of objects; the program adds main.o,
# and each test suite links the objects it needs (listed as prerequisites:
# the generic test rule in tests/module.mk links every .o prerequisite).
NODE_SRCS := firmware/detect.c firmware/scenario.c firmware/sysfs.c firmware/hw.c firmware/hw_sim.c \
             firmware/hw_gpiod.c firmware/outq.c firmware/link.c firmware/config.c firmware/state.c \
             firmware/node.c
NODE_OBJS := $(NODE_SRCS:%.c=$(OUT)/obj/%.o)
NODE_BIN := $(OUT)/bin/firewatch-node

# NODE_TLS=0 links paho without TLS (-lpaho-mqtt3a) and refuses ssl://
# brokers: OpenSSL alone maps ~2 MB into every process that links it, so
# a plain-TCP node on a closed network fits well under 4 MB resident.
# Build it in its own OUT (e.g. make NODE_TLS=0 OUT=build/node-tcp).
NODE_TLS ?= 1
ifeq ($(NODE_TLS),0)
NODE_PAHO := -lpaho-mqtt3a
$(OUT)/obj/firmware/config.o: ALL_CFLAGS += -DFW_NODE_NO_TLS
else
NODE_PAHO := $(LIB_PAHO)
endif

$(NODE_BIN): $(OUT)/obj/firmware/main.o $(NODE_OBJS) $(COMMON_LIB) $(PROTOCOL_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $(filter %.o,$^) $(COMMON_LIB) $(PROTOCOL_LIBS) $(NODE_PAHO) $(LIB_GPIOD) $(LIB_SYS) -o $@

BINS += $(NODE_BIN)

# Suites. Unit suites link the pure modules; the integration suite runs the
# built binary against a private Mosquitto.
$(OUT)/obj/tests/node/%.o: ALL_CFLAGS += -Ifirmware
$(OUT)/tests/node/test_detect: $(OUT)/obj/firmware/detect.o $(OUT)/obj/firmware/scenario.o
$(OUT)/tests/node/test_node_unit: $(filter-out $(OUT)/obj/firmware/node.o,$(NODE_OBJS))
$(OUT)/tests/node/test_node_unit: TEST_EXTRA_LIBS = $(LIB_PAHO) $(LIB_GPIOD)
$(OUT)/tests/node/test_node_mqtt: $(NODE_BIN)

TEST_BINS += $(OUT)/tests/node/test_detect $(OUT)/tests/node/test_node_unit $(OUT)/tests/node/test_node_mqtt
CHECK_SRCS += $(NODE_SRCS) firmware/main.c $(wildcard firmware/*.h tests/node/*.c)

# The scenario parser's fuzz target (tests/fuzz/fuzz_scenario.c): a libFuzzer
# build for `make fuzz`, and a corpus replayer run with the other suites.
FUZZ_TARGETS += scenario
# (build/fuzz is the Makefile's FUZZ_OUT, which is set after this file is read)
build/fuzz/fuzz_scenario: tests/fuzz/fuzz_scenario.c firmware/scenario.c firmware/scenario.h firmware/detect.h
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_FLAGS) -Ifirmware $< firmware/scenario.c -o $@
$(OUT)/obj/tests/fuzz/fuzz_scenario.o: ALL_CFLAGS += -Ifirmware
$(OUT)/tests/fuzz/replay_scenario: $(OUT)/obj/firmware/scenario.o
TEST_BINS += $(OUT)/tests/fuzz/replay_scenario
CHECK_SRCS += tests/fuzz/fuzz_scenario.c
