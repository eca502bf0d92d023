# common/ - libfirewatch-common: the config parser, logging and clock shared
# by the node, the hub and the tools. Not protocol: it has its own prefixes
# (conf_, log_, clock_).
COMMON_SRCS := common/conf.c common/log.c common/clock.c
COMMON_HDRS := common/conf.h common/log.h common/clock.h
COMMON_LIB := $(OUT)/lib/libfirewatch-common.a

$(COMMON_LIB): $(COMMON_SRCS:%.c=$(OUT)/obj/%.o)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

ALL_CFLAGS += -Icommon
CHECK_SRCS += $(COMMON_SRCS) $(COMMON_HDRS)
