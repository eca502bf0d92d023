# sim/ - firewatch-fleet, the fleet simulator used by the demo, the
# benchmarks and the soak test. Its MQTT runs on libmosquitto, one epoll loop
# for every node (docs/internals/fleet.md says why not paho).
FLEET := $(OUT)/bin/firewatch-fleet
FLEET_SRCS := sim/fleet.c sim/swarm.c
LIB_MOSQUITTO := $(shell pkg-config --libs libmosquitto)

$(FLEET): $(FLEET_SRCS:%.c=$(OUT)/obj/%.o) $(COMMON_LIB) $(PROTOCOL_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $(filter %.o,$^) $(COMMON_LIB) $(PROTOCOL_LIBS) $(LIB_MOSQUITTO) $(LIB_SYS) -o $@

BINS += $(FLEET)
CHECK_SRCS += $(FLEET_SRCS) sim/swarm.h

$(OUT)/tests/sim/test_fleet: $(FLEET)
TEST_BINS += $(OUT)/tests/sim/test_fleet
CHECK_SRCS += tests/sim/test_fleet.c
