# hub/http.mk - the HTTP face of firewatch-hub: libmicrohttpd server, JSON
# API, live stream (SSE), auth, the dashboard's static files (hub/web/), and
# their suites (tests/http/ in C over real HTTP, tests/hub/test_hub_http.c
# against the real daemon, tests/browser/ with playwright-core driving
# Debian's Chromium against the fixture server and against the real hub).
# hub/http_hub.c and hub/hubha.c are the daemon's halves of the HTTP face
# and of Home Assistant discovery: firewatch-hub links them
# ($(HUB_HTTP_DAEMON_OBJS)), the HTTP tests do not.
#
# Read before hub/module.mk (name order), so nothing here may depend on
# variables defined there at parse time: store and readiness objects are
# linked by path. The daemon links $(HUB_HTTP_OBJS) and $(HUB_HTTP_LIBS).
HUB_HTTP_SRCS := hub/http.c hub/stream.c hub/auth.c hub/api_db.c hub/api_read.c hub/api_report.c \
                 hub/api_users.c hub/api_cap.c hub/api_tech.c hub/capdb.c \
                 hub/api_region.c
HUB_HTTP_HDRS := hub/http.h hub/stream.h hub/auth.h hub/api.h hub/capdb.h
# The daemon's half (hooks, action queue, metrics text): firewatch-hub only.
HUB_HTTP_DAEMON_SRCS := hub/http_hub.c hub/hubha.c
HUB_HTTP_DAEMON_HDRS := hub/http_hub.h hub/hubha.h
HUB_HTTP_OBJS := $(HUB_HTTP_SRCS:%.c=$(OUT)/obj/%.o) $(OUT)/obj/hub/cap.o
HUB_HTTP_DAEMON_OBJS := $(HUB_HTTP_DAEMON_SRCS:%.c=$(OUT)/obj/%.o) $(OUT)/obj/hub/hadisc.o
# readiness.o comes from hub/logic.mk (HUB_LOGIC_OBJS); listed here for the tests.
HUB_HTTP_LIBS := $(LIB_MHD) $(LIB_SQLITE) $(LIB_SODIUM) $(LIB_CJSON)

# The test programs: the server in-process with fake hooks, against a
# database made by the store's own store_open.
HTTP_TEST_OBJS := $(HUB_HTTP_OBJS) $(OUT)/obj/hub/readiness.o $(OUT)/obj/hub/store.o $(OUT)/obj/hub/fed.o \
                  $(OUT)/obj/tests/http/fixture.o $(OUT)/obj/tests/http/client.o
HTTP_TESTS := $(OUT)/tests/http/test_api $(OUT)/tests/http/serve_fixture

$(HTTP_TESTS): $(HTTP_TEST_OBJS)
$(HTTP_TESTS): TEST_EXTRA_LIBS = $(HUB_HTTP_LIBS)
$(OUT)/obj/tests/http/%.o: ALL_CFLAGS += -Ihub

TEST_BINS += $(OUT)/tests/http/test_api

# The real daemon's HTTP face, end to end (tests/hub/test_hub_http.c).
$(OUT)/tests/hub/test_hub_http: $(OUT)/obj/tests/http/client.o $(OUT)/obj/tests/lib/hubrig.o \
                                $(OUT)/bin/firewatch-hub $(OUT)/bin/firewatchctl
$(OUT)/obj/tests/hub/test_hub_http.o: ALL_CFLAGS += -Itests/http
TEST_BINS += $(OUT)/tests/hub/test_hub_http
# The browser suite starts serve_fixture; it must be built before it runs.
TEST_SCRIPTS += tests/browser/run.sh
test-run: $(OUT)/tests/http/serve_fixture

CHECK_SRCS += $(HUB_HTTP_SRCS) $(HUB_HTTP_HDRS) $(HUB_HTTP_DAEMON_SRCS) $(HUB_HTTP_DAEMON_HDRS) tests/http/test_api.c tests/http/serve_fixture.c \
              tests/http/fixture.c tests/http/fixture.h tests/http/client.c tests/http/client.h \
              tests/hub/test_hub_http.c
