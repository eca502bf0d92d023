# protocol/ - libfirewatch-protocol, the v1 topics and payloads (static library).
PROTOCOL_SRCS := protocol/names.c protocol/topic.c protocol/payload.c
PROTOCOL_HDRS := protocol/include/firewatch/protocol.h protocol/protocol_internal.h
PROTOCOL_LIB := $(OUT)/lib/libfirewatch-protocol.a
PROTOCOL_LIBS := $(PROTOCOL_LIB) $(LIB_CJSON) -lm

$(PROTOCOL_LIB): $(PROTOCOL_SRCS:%.c=$(OUT)/obj/%.o)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

CHECK_SRCS += $(PROTOCOL_SRCS) $(PROTOCOL_HDRS)
