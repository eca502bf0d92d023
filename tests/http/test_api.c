/*
 * test_api.c - the HTTP API over real HTTP: the server runs in-process on a
 * free loopback port against a database made by the store, with a fake
 * daemon behind the hooks (tests/http/fixture.h); requests go through plain
 * sockets (tests/http/client.h). Covers the refusals (wrong password,
 * throttling, CSRF, forged sessions, oversized bodies, unknown routes, bad
 * methods, path traversal, roles), escaping of hostile names in JSON and in
 * the printable report, the incident actions through the hooks, readings at
 * each resolution, users and API tokens, metrics, the live stream with
 * Last-Event-ID resume, and a regional hub's read-only view of its areas
 * (a second server with regional set, on the fixture's seeded areas).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "api.h"
#include "client.h"
#include "fixture.h"
#include "harness.h"
#include "http.h"
#include "log.h"

static struct fixture fx;
static struct http_server *srv;
static int port;

struct session {
    char cookie[160]; /* "Cookie: fw_session=...\r\n" */
    char csrf[80];
    char both[320]; /* cookie and X-CSRF-Token header lines */
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int req(const char *method, const char *path, const char *headers, const char *body,
               struct hc_response *r)
{
    int rc = hc_request(port, method, path, headers, body, body ? strlen(body) : 0, r);
    if (rc < 0)
        th_fail(__FILE__, __LINE__, "%s %s: transport error %d", method, path, rc);
    return r->status;
}

/* Logs in; fills s when it worked. Returns the status. */
static int login(const char *user, const char *pw, struct session *s)
{
    char body[256];
    snprintf(body, sizeof body, "{\"user\":\"%s\",\"password\":\"%s\"}", user, pw);
    struct hc_response r;
    int st = req("POST", "/api/v1/session", NULL, body, &r);
    if (st == 200 && s) {
        char sc[256];
        cJSON *doc = cJSON_Parse(r.body);
        const cJSON *csrf = cJSON_GetObjectItem(doc, "csrf");
        if (hc_header(&r, "Set-Cookie", sc, sizeof sc) && cJSON_IsString(csrf)) {
            size_t n = strcspn(sc, ";");
            snprintf(s->cookie, sizeof s->cookie, "Cookie: %.*s\r\n", (int)n, sc);
            snprintf(s->csrf, sizeof s->csrf, "%s", csrf->valuestring);
            snprintf(s->both, sizeof s->both, "%sX-CSRF-Token: %s\r\n", s->cookie, s->csrf);
        }
        cJSON_Delete(doc);
    }
    hc_free(&r);
    return st;
}

static cJSON *get_json(const char *path, const struct session *s, int want)
{
    struct hc_response r;
    int st = req("GET", path, s ? s->cookie : NULL, NULL, &r);
    if (st != want)
        th_fail(__FILE__, __LINE__, "GET %s: %d, wanted %d: %.200s", path, st, want, r.body ? r.body : "");
    cJSON *doc = cJSON_Parse(r.body);
    hc_free(&r);
    return doc;
}

static bool is_json_error(const struct hc_response *r)
{
    char ct[64];
    cJSON *doc = cJSON_Parse(r->body);
    bool ok = cJSON_IsString(cJSON_GetObjectItem(doc, "error")) &&
              hc_header(r, "Content-Type", ct, sizeof ct) && strcmp(ct, "application/json") == 0;
    cJSON_Delete(doc);
    return ok;
}

/* --- Tests ---------------------------------------------------------------- */

static void test_health_and_headers(void)
{
    struct hc_response r;
    CHECK_INT(req("GET", "/api/v1/health", NULL, NULL, &r), 200);
    char v[512];
    CHECK(strstr(r.body, "\"status\":\"ok\""));
    CHECK(hc_header(&r, "Content-Security-Policy", v, sizeof v) && strstr(v, "frame-ancestors 'none'") &&
          strstr(v, "script-src 'self'") && !strstr(v, "unsafe-inline"));
    CHECK(hc_header(&r, "X-Content-Type-Options", v, sizeof v) && strcmp(v, "nosniff") == 0);
    CHECK(hc_header(&r, "Referrer-Policy", v, sizeof v) && strcmp(v, "no-referrer") == 0);
    hc_free(&r);
}

static void test_unknown_route_404(void)
{
    const char *paths[] = {"/api/v1/nope", "/api/v1/incidents/1/explode", "/api/v2/health", "/nope.html"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct hc_response r;
        int st = req("GET", paths[i], NULL, NULL, &r);
        th_report(st == 404 && is_json_error(&r), "404 for %s (got %d)", paths[i], st);
        hc_free(&r);
    }
}

static void test_bad_method_405(void)
{
    const char *cases[][2] = {{"DELETE", "/api/v1/health"},
                              {"PUT", "/api/v1/incidents"},
                              {"POST", "/api/v1/nodes"},
                              {"PUT", "/index.html"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct hc_response r;
        int st = req(cases[i][0], cases[i][1], NULL, NULL, &r);
        th_report(st == 405 && is_json_error(&r), "405 for %s %s (got %d)", cases[i][0], cases[i][1], st);
        hc_free(&r);
    }
}

static void test_static_files(void)
{
    const char *cases[][2] = {{"/", "text/html; charset=utf-8"},
                              {"/app.js", "text/javascript; charset=utf-8"},
                              {"/region.js", "text/javascript; charset=utf-8"},
                              {"/app.css", "text/css; charset=utf-8"},
                              {"/i18n/vi.json", "application/json"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct hc_response r;
        char ct[64] = "";
        int st = req("GET", cases[i][0], NULL, NULL, &r);
        hc_header(&r, "Content-Type", ct, sizeof ct);
        th_report(st == 200 && strcmp(ct, cases[i][1]) == 0 && r.body_len > 0, "static %s is %s (got %d %s)",
                  cases[i][0], cases[i][1], st, ct);
        hc_free(&r);
    }
}

static void test_path_traversal_refused(void)
{
    const char *paths[] = {"/../../../../etc/passwd",
                           "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                           "/i18n/../../http.c",
                           "/i18n/%2e%2e/%2e%2e/http.c",
                           "/.hidden",
                           "//etc/passwd",
                           "/app.js%00.png",
                           "/i18n/..%2f..%2fhttp.c"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char raw[256];
        int n =
            snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", paths[i]);
        struct hc_response r;
        hc_raw(port, raw, (size_t)n, &r);
        bool leaked = r.body && (strstr(r.body, "root:") || strstr(r.body, "#include"));
        th_report((r.status == 404 || r.status == 400) && !leaked, "traversal refused: %s (got %d)", paths[i],
                  r.status);
        hc_free(&r);
    }
}

static void test_wrong_password_401(void)
{
    auth_throttle_reset(srv->auth);
    CHECK_INT(login(FX_WATCH, "not the password", NULL), 401);
    CHECK_INT(login("nobody-here", "not the password", NULL), 401);
    struct hc_response r;
    CHECK_INT(req("POST", "/api/v1/session", NULL, "{\"user\":\"x\"}", &r), 400);
    hc_free(&r);
    CHECK_INT(req("POST", "/api/v1/session", NULL, "not json", &r), 400);
    hc_free(&r);
    /* A form post (what a cross-site page can send without asking) is refused. */
    const char form[] = "POST /api/v1/session HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: "
                        "application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\nuser=x&y=";
    hc_raw(port, form, sizeof form - 1, &r);
    CHECK_INT(r.status, 415);
    hc_free(&r);
    CHECK(fx_sql_int(&fx, "SELECT count(*) FROM audit WHERE action = 'login.failed'") >= 2);
    auth_throttle_reset(srv->auth);
}

static void test_login_cookie_and_whoami(void)
{
    struct hc_response r;
    CHECK_INT(req("POST", "/api/v1/session", NULL,
                  "{\"user\":\"" FX_WATCH "\",\"password\":\"" FX_PASSWORD "\"}", &r),
              200);
    char sc[256] = "";
    hc_header(&r, "Set-Cookie", sc, sizeof sc);
    CHECK(strstr(sc, "fw_session=") == sc);
    CHECK(strstr(sc, "HttpOnly"));
    CHECK(strstr(sc, "SameSite=Strict"));
    CHECK(strstr(sc, "Path=/"));
    hc_free(&r);
    struct session s;
    CHECK_INT(login(FX_WATCH, FX_PASSWORD, &s), 200);
    cJSON *me = get_json("/api/v1/session", &s, 200);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(me, "user")), FX_WATCH);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(me, "role")), "watch");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(me, "csrf")), s.csrf);
    cJSON_Delete(me);
    /* Log out: the cookie stops working. */
    CHECK_INT(req("DELETE", "/api/v1/session", s.both, NULL, &r), 200);
    hc_free(&r);
    CHECK_INT(req("GET", "/api/v1/session", s.cookie, NULL, &r), 401);
    hc_free(&r);
}

static void test_throttling_429(void)
{
    auth_throttle_reset(srv->auth);
    for (int i = 0; i < 5; i++)
        CHECK_INT(login(FX_TECH, "wrong wrong wrong", NULL), 401);
    struct hc_response r;
    CHECK_INT(req("POST", "/api/v1/session", NULL,
                  "{\"user\":\"" FX_TECH "\",\"password\":\"" FX_PASSWORD "\"}", &r),
              429);
    char ra[16];
    CHECK(hc_header(&r, "Retry-After", ra, sizeof ra) && strtol(ra, NULL, 10) > 0);
    CHECK(is_json_error(&r));
    hc_free(&r);
    /* Another user from the same address is not locked out by one user's typos. */
    CHECK_INT(login(FX_WATCH, FX_PASSWORD, NULL), 200);
    /* Per address: many users guessed from one place locks the place. */
    auth_throttle_reset(srv->auth);
    char name[32];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "guess-%d", i);
        login(name, "wrong wrong wrong", NULL);
    }
    CHECK_INT(login(FX_WATCH, FX_PASSWORD, NULL), 429);
    auth_throttle_reset(srv->auth);
}

static void test_missing_csrf_403(void)
{
    struct session s;
    CHECK_INT(login(FX_WATCH, FX_PASSWORD, &s), 200);
    uint32_t id = fx_escalate(&fx, FX_ZONE_B, "n-204");
    char path[64], hdr[400];
    snprintf(path, sizeof path, "/api/v1/incidents/%u/acknowledge", id);
    int calls = fx.calls;
    struct hc_response r;
    CHECK_INT(req("POST", path, s.cookie, "{}", &r), 403);
    CHECK(is_json_error(&r));
    hc_free(&r);
    snprintf(hdr, sizeof hdr, "%sX-CSRF-Token: %064d\r\n", s.cookie, 0);
    CHECK_INT(req("POST", path, hdr, "{}", &r), 403);
    hc_free(&r);
    snprintf(hdr, sizeof hdr, "%sX-CSRF-Token: %.63s\r\n", s.cookie, s.csrf);
    CHECK_INT(req("POST", path, hdr, "{}", &r), 403);
    hc_free(&r);
    CHECK_INT(fx.calls, calls); /* nothing reached the daemon */
    CHECK_INT(req("POST", path, s.both, "{}", &r), 200);
    hc_free(&r);
    CHECK_INT(fx.calls, calls + 1);
    CHECK_STR(fx.last_user, FX_WATCH);
    CHECK_INT(fx.last_op, HTTP_INCIDENT_ACK);
    snprintf(path, sizeof path, "/api/v1/incidents/%u/clear", id);
    CHECK_INT(req("POST", path, s.both, NULL, &r), 200);
    hc_free(&r);
}

static void test_forged_session_401(void)
{
    const char *cookies[] = {
        "Cookie: fw_session=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n",
        "Cookie: fw_session=forged\r\n",
        "Cookie: fw_session=\"<script>\"\r\n",
        "Authorization: Bearer fwt_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n",
        "Authorization: Basic YWRtaW46YWRtaW4=\r\n",
    };
    for (size_t i = 0; i < sizeof cookies / sizeof cookies[0]; i++) {
        struct hc_response r;
        int st = req("GET", "/api/v1/zones", cookies[i], NULL, &r);
        th_report(st == 401 && is_json_error(&r), "forged credential %zu refused (got %d)", i, st);
        hc_free(&r);
    }
    struct hc_response r;
    th_report(req("GET", "/api/v1/zones", NULL, NULL, &r) == 401, "no credential: 401");
    hc_free(&r);
}

static void test_oversized_body_413(void)
{
    size_t n = 20 * 1024;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    big[0] = '"';
    big[n - 1] = '"';
    big[n] = '\0';
    struct hc_response r;
    CHECK_INT(req("POST", "/api/v1/session", NULL, big, &r), 413);
    CHECK(is_json_error(&r));
    hc_free(&r);
    /* The same, chunked, with no Content-Length to refuse it early. */
    size_t cap = n + 1024, len = 0;
    char *raw = malloc(cap);
    len += (size_t)snprintf(raw, cap,
                            "POST /api/v1/session HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: "
                            "application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (size_t off = 0; off < n; off += 4096) {
        size_t k = n - off < 4096 ? n - off : 4096;
        len += (size_t)snprintf(raw + len, cap - len, "%zx\r\n", k);
        memcpy(raw + len, big + off, k);
        len += k;
        memcpy(raw + len, "\r\n", 2);
        len += 2;
    }
    len += (size_t)snprintf(raw + len, cap - len, "0\r\n\r\n");
    hc_raw(port, raw, len, &r);
    CHECK_INT(r.status, 413);
    hc_free(&r);
    free(raw);
    free(big);
}

static void test_roles_403(void)
{
    struct session w, t, a;
    CHECK_INT(login(FX_WATCH, FX_PASSWORD, &w), 200);
    CHECK_INT(login(FX_TECH, FX_PASSWORD, &t), 200);
    CHECK_INT(login(FX_ADMIN, FX_PASSWORD, &a), 200);
    struct hc_response r;
    CHECK_INT(req("GET", "/api/v1/users", w.cookie, NULL, &r), 403);
    CHECK(is_json_error(&r));
    hc_free(&r);
    CHECK_INT(req("GET", "/api/v1/users", t.cookie, NULL, &r), 403);
    hc_free(&r);
    CHECK_INT(req("POST", "/api/v1/users", w.both,
                  "{\"name\":\"x\",\"role\":\"admin\",\"password\":\"0123456789\"}", &r),
              403);
    hc_free(&r);
    CHECK_INT(req("DELETE", "/api/v1/users/" FX_ADMIN, t.both, NULL, &r), 403);
    hc_free(&r);
    CHECK_INT(req("GET", "/api/v1/users", a.cookie, NULL, &r), 200);
    CHECK(strstr(r.body, FX_ADMIN) && !strstr(r.body, "argon2"));
    hc_free(&r);
}

static void test_names_escaped_in_json(void)
{
    struct session s;
    CHECK_INT(login(FX_WATCH, FX_PASSWORD, &s), 200);
    struct hc_response r;
    CHECK_INT(req("GET", "/api/v1/zones", s.cookie, NULL, &r), 200);
    CHECK(!strchr(r.body, '<') && !strchr(r.body, '>'));
    cJSON *doc = cJSON_Parse(r.body);
    hc_free(&r);
    const cJSON *z;
    bool found = false;
    cJSON_ArrayForEach(z, cJSON_GetObjectItem(doc, "zones"))
    {
        if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(z, "id")), FX_ZONE_A) == 0)
            found = strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(z, "name")), FX_HOSTILE_ZONE_NAME) == 0;
    }
    CHECK(found);
    cJSON_Delete(doc);
    CHECK_INT(req("GET", "/api/v1/households?zone=" FX_ZONE_A, s.cookie, NULL, &r), 200);
    CHECK(!strchr(r.body, '<'));
    doc = cJSON_Parse(r.body);
    found = false;
    cJSON_ArrayForEach(z, cJSON_GetObjectItem(doc, "households"))
    {
        const char *c = cJSON_GetStringValue(cJSON_GetObjectItem(z, "contact"));
        if (c && strcmp(c, FX_HOSTILE_CONTACT) == 0)
            found = true;
    }
    CHECK(found);
    cJSON_Delete(doc);
    hc_free(&r);
    /* Hostile input echoed in an error is escaped too. */
    CHECK_INT(req("GET", "/api/v1/zones?site=%3Cscript%3E", s.cookie, NULL, &r), 400);
    CHECK(!strchr(r.body, '<'));
    hc_free(&r);
}

/* The month of a time, "YYYY-MM", in local time as the report uses. */
static void month_of(int64_t ms, char *out, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, size, "%Y-%m", &tm);
}

static void test_report_escaped(void)
{
    struct session s;
    CHECK_INT(login(FX_WATCH, FX_PASSWORD, &s), 200);
    char month[16], path[128];
    month_of(wall_ms() - 3LL * 86400000, month, sizeof month);
    snprintf(path, sizeof path, "/api/v1/reports/monthly?site=" FX_SITE "&month=%s", month);
    struct hc_response r;
    char ct[64] = "";
    CHECK_INT(req("GET", path, s.cookie, NULL, &r), 200);
    hc_header(&r, "Content-Type", ct, sizeof ct);
    CHECK_STR(ct, "text/html; charset=utf-8");
    CHECK(strstr(r.body, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    CHECK(!strstr(r.body, "<script"));
    CHECK(strstr(r.body, "&quot;"));
    CHECK(strstr(r.body, "dismissed")); /* the cooking false alarm of 3 days ago */
    hc_free(&r);
    snprintf(path, sizeof path, "/api/v1/reports/monthly?site=" FX_SITE "&month=%s&format=csv", month);
    CHECK_INT(req("GET", path, s.cookie, NULL, &r), 200);
    hc_header(&r, "Content-Type", ct, sizeof ct);
    CHECK_STR(ct, "text/csv; charset=utf-8");
    CHECK(strstr(r.body, "\"Zone \"\"<script>alert(1)</script>\"\" & 'x'\""));
    hc_free(&r);
    const char *bad[] = {"?site=" FX_SITE "&month=2025-13", "?site=" FX_SITE "&month=25-1", "?month=2025-01",
                         "?site=" FX_SITE "&format=pdf"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(path, sizeof path, "/api/v1/reports/monthly%s", bad[i]);
        int st = req("GET", path, s.cookie, NULL, &r);
        th_report(st == 400 && is_json_error(&r), "report refuses %s (got %d)", bad[i], st);
        hc_free(&r);
    }
    CHECK_INT(req("GET", "/api/v1/reports/monthly?site=nowhere", s.cookie, NULL, &r), 404);
    hc_free(&r);
}

static void test_incident_actions_through_hooks(void)
{
    struct session s;
    CHECK_INT(login(FX_WATCH, FX_PASSWORD, &s), 200);
    uint32_t id = fx_escalate(&fx, FX_ZONE_A, "n-103");
    char path[80];
    struct hc_response r;
    /* Clear before acknowledge: the engine refuses, 409 with its reason. */
    snprintf(path, sizeof path, "/api/v1/incidents/%u/clear", id);
    CHECK_INT(req("POST", path, s.both, NULL, &r), 409);
    CHECK(strstr(r.body, "acknowledge it before clearing"));
    hc_free(&r);
    snprintf(path, sizeof path, "/api/v1/incidents/%u/acknowledge", id);
    CHECK_INT(req("POST", path, s.both, NULL, &r), 200);
    hc_free(&r);
    CHECK_INT(req("POST", path, s.both, NULL, &r), 409);
    hc_free(&r);
    fx.force_rc = -EBUSY;
    snprintf(path, sizeof path, "/api/v1/incidents/%u/clear", id);
    CHECK_INT(req("POST", path, s.both, NULL, &r), 409);
    CHECK(strstr(r.body, "still in alarm"));
    hc_free(&r);
    fx.force_rc = -ETIMEDOUT;
    CHECK_INT(req("POST", path, s.both, NULL, &r), 504);
    hc_free(&r);
    fx.force_rc = 0;
    CHECK_INT(req("POST", path, s.both, NULL, &r), 200);
    hc_free(&r);
    CHECK_INT(req("POST", "/api/v1/incidents/999999/acknowledge", s.both, NULL, &r), 404);
    hc_free(&r);
    CHECK_INT(req("POST", "/api/v1/incidents/abc/acknowledge", s.both, NULL, &r), 400);
    hc_free(&r);
    /* A drill: 201 with the new id, then a second one in the same zone is refused. */
    CHECK_INT(req("POST", "/api/v1/zones/" FX_ZONE_B "/drill", s.both, NULL, &r), 201);
    cJSON *doc = cJSON_Parse(r.body);
    uint32_t drill = (uint32_t)cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "incident"));
    CHECK(drill > id);
    CHECK_STR(fx.last_zone, FX_ZONE_B);
    cJSON_Delete(doc);
    hc_free(&r);
    CHECK_INT(req("POST", "/api/v1/zones/" FX_ZONE_B "/drill", s.both, NULL, &r), 409);
    hc_free(&r);
    CHECK_INT(req("POST", "/api/v1/zones/nowhere/drill", s.both, NULL, &r), 404);
    hc_free(&r);
    /* The incident's story is readable, with the acknowledger. */
    snprintf(path, sizeof path, "/api/v1/incidents/%u", id);
    doc = get_json(path, &s, 200);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(doc, "state")), "cleared");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(doc, "acked_by")), FX_WATCH);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "timeline")) >= 4);
    cJSON_Delete(doc);
    doc = get_json("/api/v1/incidents?state=all&limit=2", &s, 200);
    CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "incidents")), 2);
    cJSON_Delete(doc);
    doc = get_json("/api/v1/incidents?timeline=1", &s, 200);
    const cJSON *it;
    bool drill_active = false;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(doc, "incidents")) drill_active |=
        (uint32_t)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "id")) == drill &&
        cJSON_IsArray(cJSON_GetObjectItem(it, "timeline"));
    CHECK(drill_active);
    cJSON_Delete(doc);
    CHECK(fx_sql_int(&fx,
                     "SELECT count(*) FROM audit WHERE action = 'incident.acknowledge' AND who = '" FX_WATCH
                     "'") >= 2);
    /* End the drill so other suites start clean. */
    fx.force_rc = 0;
    snprintf(path, sizeof path, "/api/v1/incidents/%u/acknowledge", drill);
    CHECK_INT(req("POST", path, s.both, NULL, &r), 200);
    hc_free(&r);
    snprintf(path, sizeof path, "/api/v1/incidents/%u/clear", drill);
    CHECK_INT(req("POST", path, s.both, NULL, &r), 200);
    hc_free(&r);
}

static void test_nodes_and_readings(void)
{
    struct session s;
    CHECK_INT(login(FX_WATCH, FX_PASSWORD, &s), 200);
    cJSON *doc = get_json("/api/v1/nodes?zone=" FX_ZONE_B, &s, 200);
    const cJSON *n;
    int seen = 0;
    cJSON_ArrayForEach(n, cJSON_GetObjectItem(doc, "nodes"))
    {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(n, "id"));
        const char *health = cJSON_GetStringValue(cJSON_GetObjectItem(n, "health"));
        if (strcmp(id, "n-205") == 0)
            seen += strcmp(health, "offline") == 0;
        if (strcmp(id, "n-203") == 0)
            seen += strcmp(health, "trouble") == 0;
        if (strcmp(id, "n-206") == 0)
            seen += strcmp(health, "uncommissioned") == 0;
        if (strcmp(id, "n-201") == 0)
            seen += strcmp(health, "ok") == 0 && cJSON_IsObject(cJSON_GetObjectItem(n, "last_reading"));
    }
    CHECK_INT(seen, 4);
    cJSON_Delete(doc);
    int64_t now = wall_ms();
    const struct {
        int64_t span;
        const char *res;
        int min_points;
    } rows[] = {{2 * 3600000LL, "raw", 100}, {2 * 86400000LL, "5m", 500}, {30 * 86400000LL, "1h", 700}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char path[160];
        snprintf(path, sizeof path, "/api/v1/nodes/" FX_NODE "/readings?from=%lld&to=%lld",
                 (long long)(now - rows[i].span), (long long)now);
        doc = get_json(path, &s, 200);
        const char *res = cJSON_GetStringValue(cJSON_GetObjectItem(doc, "resolution"));
        int pts = cJSON_GetArraySize(cJSON_GetObjectItem(doc, "t"));
        th_report(res && strcmp(res, rows[i].res) == 0 && pts >= rows[i].min_points &&
                      pts == cJSON_GetArraySize(cJSON_GetObjectItem(doc, "temp_c")),
                  "span %lld ms is %s with %d points", (long long)rows[i].span, res ? res : "?", pts);
        cJSON_Delete(doc);
    }
    struct hc_response r;
    const char *bad[] = {"/api/v1/nodes/" FX_NODE "/readings?from=10&to=5",
                         "/api/v1/nodes/" FX_NODE "/readings?from=abc",
                         "/api/v1/nodes/" FX_NODE "/readings?resolution=2s", "/api/v1/nodes/BAD_ID/readings"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int st = req("GET", bad[i], s.cookie, NULL, &r);
        th_report(st == 400 && is_json_error(&r), "readings refuses %s (got %d)", bad[i], st);
        hc_free(&r);
    }
    CHECK_INT(req("GET", "/api/v1/nodes/n-999/readings", s.cookie, NULL, &r), 404);
    hc_free(&r);
    CHECK_INT(req("GET", "/api/v1/nodes/n-999", s.cookie, NULL, &r), 404);
    hc_free(&r);
    /* Paging: 13 nodes in pages of 5, each page after the last id of the one before. */
    char path[96] = "/api/v1/nodes?limit=5";
    int total = 0, pages = 0;
    for (;;) {
        doc = get_json(path, &s, 200);
        total += cJSON_GetArraySize(cJSON_GetObjectItem(doc, "nodes"));
        pages++;
        const char *next = cJSON_GetStringValue(cJSON_GetObjectItem(doc, "next"));
        if (!next || pages > 5) {
            cJSON_Delete(doc);
            break;
        }
        snprintf(path, sizeof path, "/api/v1/nodes?limit=5&after=%s", next);
        cJSON_Delete(doc);
    }
    CHECK_INT(total, 13);
    CHECK_INT(pages, 3);
    doc = get_json("/api/v1/nodes?health=problem", &s, 200);
    CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "nodes")), 4); /* n-104, n-203, n-205, n-206 */
    cJSON_Delete(doc);
    doc = get_json("/api/v1/troubles", &s, 200);
    CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "troubles")), 3);
    cJSON_Delete(doc);
    doc = get_json("/api/v1/troubles?state=all", &s, 200);
    CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "troubles")), 4);
    cJSON_Delete(doc);
    doc = get_json("/api/v1/sites", &s, 200);
    CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "sites")), 1);
    cJSON_Delete(doc);
}

static void test_readiness(void)
{
    struct session s;
    CHECK_INT(login(FX_WATCH, FX_PASSWORD, &s), 200);
    cJSON *doc = get_json("/api/v1/readiness?site=" FX_SITE, &s, 200);
    const cJSON *site = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "sites"), 0);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(site, "id")), FX_SITE);
    const cJSON *zones = cJSON_GetObjectItem(site, "zones");
    CHECK_INT(cJSON_GetArraySize(zones), 2);
    const cJSON *z;
    cJSON_ArrayForEach(z, zones)
    {
        double score = cJSON_GetNumberValue(cJSON_GetObjectItem(z, "score"));
        /* Neither zone is perfect: one household without a detector, one
         * node overdue (zone A); offline, low battery, uncommissioned (B). */
        CHECK(score > 0 && score < 100);
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(z, "reasons")) > 0);
        CHECK(cJSON_IsString(cJSON_GetObjectItem(z, "level")));
    }
    cJSON_Delete(doc);
    struct hc_response r;
    CHECK_INT(req("GET", "/api/v1/readiness?site=nowhere", s.cookie, NULL, &r), 404);
    hc_free(&r);
}

static void test_users_admin(void)
{
    struct session a;
    CHECK_INT(login(FX_ADMIN, FX_PASSWORD, &a), 200);
    struct hc_response r;
    CHECK_INT(req("POST", "/api/v1/users", a.both,
                  "{\"name\":\"dung.new\",\"role\":\"watch\",\"password\":\"a new long password\"}", &r),
              201);
    hc_free(&r);
    CHECK_INT(req("POST", "/api/v1/users", a.both,
                  "{\"name\":\"dung.new\",\"role\":\"watch\",\"password\":\"a new long password\"}", &r),
              409);
    hc_free(&r);
    CHECK_INT(req("POST", "/api/v1/users", a.both,
                  "{\"name\":\"<b>\",\"role\":\"watch\",\"password\":\"0123456789\"}", &r),
              400);
    hc_free(&r);
    CHECK_INT(req("POST", "/api/v1/users", a.both,
                  "{\"name\":\"short\",\"role\":\"watch\",\"password\":\"123\"}", &r),
              400);
    hc_free(&r);
    CHECK_INT(req("POST", "/api/v1/users", a.both,
                  "{\"name\":\"r\",\"role\":\"root\",\"password\":\"0123456789\"}", &r),
              400);
    hc_free(&r);
    struct session d;
    CHECK_INT(login("dung.new", "a new long password", &d), 200);
    CHECK_INT(req("PUT", "/api/v1/users/dung.new/role", a.both, "{\"role\":\"technician\"}", &r), 200);
    hc_free(&r);
    cJSON *me = get_json("/api/v1/session", &d, 200);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(me, "role")), "technician");
    cJSON_Delete(me);
    CHECK_INT(
        req("PUT", "/api/v1/users/dung.new/password", a.both, "{\"password\":\"another long one\"}", &r),
        200);
    hc_free(&r);
    CHECK_INT(req("GET", "/api/v1/session", d.cookie, NULL, &r), 401); /* old sessions end */
    hc_free(&r);
    CHECK_INT(login("dung.new", "another long one", &d), 200);
    CHECK_INT(req("DELETE", "/api/v1/users/dung.new", a.both, NULL, &r), 200);
    hc_free(&r);
    CHECK_INT(req("GET", "/api/v1/session", d.cookie, NULL, &r), 401);
    hc_free(&r);
    CHECK_INT(req("DELETE", "/api/v1/users/dung.new", a.both, NULL, &r), 404);
    hc_free(&r);
    /* The last admin stays. */
    CHECK_INT(req("DELETE", "/api/v1/users/" FX_ADMIN, a.both, NULL, &r), 409);
    hc_free(&r);
    CHECK_INT(req("PUT", "/api/v1/users/" FX_ADMIN "/role", a.both, "{\"role\":\"watch\"}", &r), 409);
    hc_free(&r);
    CHECK(fx_sql_int(&fx, "SELECT count(*) FROM audit WHERE who = '" FX_ADMIN
                          "' AND action IN ('user.add', 'user.role', 'user.password', 'user.remove')") == 4);
}

static void test_api_tokens(void)
{
    struct session s;
    CHECK_INT(login(FX_WATCH, FX_PASSWORD, &s), 200);
    struct hc_response r;
    CHECK_INT(req("POST", "/api/v1/tokens", s.both, "{\"name\":\"siren script\"}", &r), 201);
    cJSON *doc = cJSON_Parse(r.body);
    hc_free(&r);
    const char *tok = cJSON_GetStringValue(cJSON_GetObjectItem(doc, "token"));
    int id = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "id"));
    CHECK(tok && strncmp(tok, "fwt_", 4) == 0);
    char hdr[160];
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", tok ? tok : "");
    cJSON_Delete(doc);
    CHECK(fx_sql_int(&fx, "SELECT count(*) FROM api_tokens WHERE hash LIKE 'fwt_%'") ==
          0); /* stored hashed */
    CHECK_INT(req("GET", "/api/v1/zones", hdr, NULL, &r), 200);
    hc_free(&r);
    /* A script needs no CSRF token: it sends no cookie. */
    CHECK_INT(req("POST", "/api/v1/zones/" FX_ZONE_A "/drill", hdr, NULL, &r), 201);
    doc = cJSON_Parse(r.body);
    uint32_t drill = (uint32_t)cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "incident"));
    cJSON_Delete(doc);
    hc_free(&r);
    char path[80];
    snprintf(path, sizeof path, "/api/v1/incidents/%u/acknowledge", drill);
    CHECK_INT(req("POST", path, hdr, NULL, &r), 200);
    hc_free(&r);
    snprintf(path, sizeof path, "/api/v1/incidents/%u/clear", drill);
    CHECK_INT(req("POST", path, hdr, NULL, &r), 200);
    hc_free(&r);
    CHECK_INT(req("GET", "/api/v1/users", hdr, NULL, &r), 403); /* the token has its user's role */
    hc_free(&r);
    snprintf(path, sizeof path, "/api/v1/tokens/%d", id);
    CHECK_INT(req("DELETE", path, s.both, NULL, &r), 200);
    hc_free(&r);
    CHECK_INT(req("GET", "/api/v1/zones", hdr, NULL, &r), 401);
    hc_free(&r);
}

static void test_metrics(void)
{
    struct hc_response r;
    CHECK_INT(req("GET", "/metrics", NULL, NULL, &r), 200);
    CHECK(strstr(r.body, "firewatch_http_requests_total{code=\"200\"}"));
    CHECK(strstr(r.body, "firewatch_http_requests_total{code=\"401\"}"));
    CHECK(strstr(r.body, "# TYPE firewatch_stream_clients gauge"));
    CHECK(strstr(r.body, "firewatch_messages_in_total 42")); /* the daemon's part, through the hook */
    char ct[64] = "";
    hc_header(&r, "Content-Type", ct, sizeof ct);
    CHECK(strncmp(ct, "text/plain; version=0.0.4", 25) == 0);
    hc_free(&r);
}

static bool has_clients(void *arg)
{
    struct stream_stats st;
    stream_stats(srv->stream, &st);
    return st.clients >= (uint64_t)(intptr_t)arg;
}

static void test_stream_and_resume(void)
{
    struct session s;
    CHECK_INT(login(FX_WATCH, FX_PASSWORD, &s), 200);
    char reqtext[512];
    snprintf(reqtext, sizeof reqtext,
             "GET /api/v1/stream HTTP/1.0\r\nHost: x\r\nAccept: text/event-stream\r\n%s\r\n", s.cookie);
    int fd = hc_open(port, reqtext);
    CHECK(fd >= 0);
    size_t cap = 65536, len = 0;
    char *buf = calloc(1, cap);
    CHECK(hc_read_until(fd, buf, cap, &len, 0, "firewatch stream", 5000));
    CHECK(strstr(buf, "Content-Type: text/event-stream"));
    CHECK(th_wait_until(has_clients, (void *)(intptr_t)1, 5000));
    int64_t id1 = stream_publish(srv->stream, "trouble", "{\"node\":\"n-205\",\"kind\":\"offline\",\"n\":1}");
    CHECK(id1 > 0);
    char want[96];
    snprintf(want, sizeof want, "id: %lld\nevent: trouble\ndata: {\"node\":\"n-205\"", (long long)id1);
    CHECK(hc_read_until(fd, buf, cap, &len, 0, want, 5000));
    /* An escalation published by the (fake) daemon reaches the client. */
    size_t mark = len;
    uint32_t inc = fx_escalate(&fx, FX_ZONE_A, "n-106");
    snprintf(want, sizeof want, "\"id\":%u,", inc);
    CHECK(hc_read_until(fd, buf, cap, &len, mark, want, 5000));
    close(fd);
    /* Two more while nobody listens; resume after id1 gets both, in order. */
    int64_t id2 = stream_publish(srv->stream, "node", "{\"id\":\"n-101\",\"n\":2}");
    int64_t id3 = stream_publish(srv->stream, "node", "{\"id\":\"n-102\",\"n\":3}");
    snprintf(reqtext, sizeof reqtext,
             "GET /api/v1/stream HTTP/1.0\r\nHost: x\r\n%sLast-Event-ID: %lld\r\n\r\n", s.cookie,
             (long long)id2 - 1);
    fd = hc_open(port, reqtext);
    len = 0;
    snprintf(want, sizeof want, "id: %lld\n", (long long)id3);
    CHECK(hc_read_until(fd, buf, cap, &len, 0, want, 5000));
    char *p2 = strstr(buf, "\"n\":2"), *p3 = strstr(buf, "\"n\":3");
    CHECK(p2 && p3 && p2 < p3);
    CHECK(!strstr(buf, "\"n\":1}")); /* nothing from before the resume point */
    close(fd);
    /* A Last-Event-ID the ring no longer holds (or from another run): reset. */
    snprintf(reqtext, sizeof reqtext, "GET /api/v1/stream HTTP/1.0\r\nHost: x\r\n%sLast-Event-ID: 5\r\n\r\n",
             s.cookie);
    fd = hc_open(port, reqtext);
    len = 0;
    CHECK(hc_read_until(fd, buf, cap, &len, 0, "event: reset", 5000));
    close(fd);
    /* Without a session there is no stream. */
    struct hc_response r;
    CHECK_INT(req("GET", "/api/v1/stream", NULL, NULL, &r), 401);
    hc_free(&r);
    free(buf);
    /* Acknowledge and clear the escalation so the fixture stays quiet. */
    char path[80];
    snprintf(path, sizeof path, "/api/v1/incidents/%u/acknowledge", inc);
    req("POST", path, s.both, NULL, &r);
    hc_free(&r);
    snprintf(path, sizeof path, "/api/v1/incidents/%u/clear", inc);
    req("POST", path, s.both, NULL, &r);
    hc_free(&r);
}

static void test_slow_stream_client_does_not_block(void)
{
    struct session s;
    CHECK_INT(login(FX_WATCH, FX_PASSWORD, &s), 200);
    char reqtext[512];
    snprintf(reqtext, sizeof reqtext, "GET /api/v1/stream HTTP/1.0\r\nHost: x\r\n%s\r\n", s.cookie);
    struct stream_stats before;
    stream_stats(srv->stream, &before);
    /* A client that never reads, and one that does. */
    int slow = hc_open(port, reqtext);
    int fast = hc_open(port, reqtext);
    CHECK(th_wait_until(has_clients, (void *)(intptr_t)(before.clients + 2), 5000));
    char big[3000];
    memset(big, 'x', sizeof big);
    memcpy(big, "{\"pad\":\"", 8);
    memcpy(big + sizeof big - 3, "\"}", 3);
    int64_t t0 = th_now_ms();
    for (int i = 0; i < 3000; i++) /* ~9 MB: far more than socket buffers and the ring */
        stream_publish(srv->stream, "pad", big);
    int64_t last = stream_publish(srv->stream, "final", "{\"done\":true}");
    CHECK(th_now_ms() - t0 < 5000); /* the publisher never waited for anyone */
    /* A client arriving now gets the newest event at once, though the slow
     * one is still connected and reading nothing. */
    char resume[600], want[64];
    snprintf(resume, sizeof resume, "GET /api/v1/stream HTTP/1.0\r\nHost: x\r\n%sLast-Event-ID: %lld\r\n\r\n",
             s.cookie, (long long)last - 1);
    int late = hc_open(port, resume);
    size_t cap = 1 << 16, len = 0;
    char *buf = calloc(1, cap);
    snprintf(want, sizeof want, "id: %lld\nevent: final", (long long)last);
    CHECK(hc_read_until(late, buf, cap, &len, 0, want, 5000));
    close(late);
    close(fast);
    close(slow);
    free(buf);
}

struct slow_post {
    char path[80];
    char headers[400];
    int status;
    volatile int done;
};

static void *slow_post_main(void *arg)
{
    struct slow_post *sp = arg;
    struct hc_response r;
    hc_request(port, "POST", sp->path, sp->headers, NULL, 0, &r);
    sp->status = r.status;
    hc_free(&r);
    __atomic_store_n(&sp->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static bool hook_entered(void *arg)
{
    return __atomic_load_n(&fx.entered, __ATOMIC_SEQ_CST) > *(int *)arg;
}

/* A daemon slow to answer an acknowledge must not stop the server: with a
 * single polling thread, the stream still delivers while the hook waits. */
static void test_slow_hook_does_not_block(void)
{
    struct session s;
    CHECK_INT(login(FX_WATCH, FX_PASSWORD, &s), 200);
    uint32_t id = fx_escalate(&fx, FX_ZONE_B, "n-202");
    char reqtext[512];
    snprintf(reqtext, sizeof reqtext, "GET /api/v1/stream HTTP/1.0\r\nHost: x\r\n%s\r\n", s.cookie);
    int fd = hc_open(port, reqtext);
    size_t cap = 8192, len = 0;
    char *buf = calloc(1, cap);
    CHECK(hc_read_until(fd, buf, cap, &len, 0, "firewatch stream", 5000));
    struct slow_post sp = {.status = 0};
    snprintf(sp.path, sizeof sp.path, "/api/v1/incidents/%u/acknowledge", id);
    snprintf(sp.headers, sizeof sp.headers, "%s", s.both);
    int before = __atomic_load_n(&fx.entered, __ATOMIC_SEQ_CST);
    fx.hook_delay_ms = 5000;
    pthread_t th;
    pthread_create(&th, NULL, slow_post_main, &sp);
    CHECK(th_wait_until(hook_entered, &before, 5000));
    int64_t ev = stream_publish(srv->stream, "node", "{\"id\":\"n-202\",\"while\":\"waiting\"}");
    char want[64];
    snprintf(want, sizeof want, "id: %lld\n", (long long)ev);
    /* Normally milliseconds; half the hook's wait is a bound only a blocked
     * server misses. */
    CHECK(hc_read_until(fd, buf, cap, &len, 0, want, 2500));
    CHECK(!__atomic_load_n(&sp.done, __ATOMIC_SEQ_CST)); /* delivered while the hook still waited */
    struct hc_response r;
    CHECK_INT(req("GET", "/api/v1/health", NULL, NULL, &r), 200); /* and other requests are served */
    hc_free(&r);
    pthread_join(th, NULL);
    fx.hook_delay_ms = 0;
    CHECK_INT(sp.status, 200);
    close(fd);
    free(buf);
    snprintf(sp.path, sizeof sp.path, "/api/v1/incidents/%u/clear", id);
    CHECK_INT(req("POST", sp.path, s.both, NULL, &r), 200);
    hc_free(&r);
}

/* --- A regional hub (mode regional): the region routes ---------------------- */

static const cJSON *area_by_id(const cJSON *areas, const char *id)
{
    const cJSON *a;
    cJSON_ArrayForEach(a, areas) if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(a, "id")), id) ==
                                     0) return a;
    return NULL;
}

static double num_at(const cJSON *o, const char *key)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItem(o, key));
}

static void check_region_doc(const struct session *s)
{
    cJSON *doc = get_json("/api/v1/region", s, 200);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(doc, "mode")), "regional");
    CHECK(num_at(doc, "now") > 0);
    const cJSON *areas = cJSON_GetObjectItem(doc, "areas");
    CHECK_INT(cJSON_GetArraySize(areas), 3); /* the removed one is not listed */
    CHECK(!area_by_id(areas, FX_AREA_REMOVED));
    const cJSON *alarm = area_by_id(areas, FX_AREA_ALARM), *stale = area_by_id(areas, FX_AREA_STALE),
                *ok = area_by_id(areas, FX_AREA_OK);
    if (!alarm || !stale || !ok) {
        th_fail(__FILE__, __LINE__, "an area is missing");
        cJSON_Delete(doc);
        return;
    }
    /* The area in alarm: one fire in alarm (the acknowledged drill is open
     * but not an alarm), bridge up, heard from just now. */
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(alarm, "name")), "Phường 7 · Quận 3");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(alarm, "bridge")), "up");
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(alarm, "stale")));
    CHECK_INT(num_at(alarm, "open_incidents"), 2);
    CHECK_INT(num_at(alarm, "alarms"), 1);
    const cJSON *hub = cJSON_GetObjectItem(alarm, "hub"), *rd = cJSON_GetObjectItem(alarm, "readiness");
    CHECK(cJSON_IsObject(hub) && !cJSON_GetObjectItem(hub, "v") && !cJSON_GetObjectItem(hub, "hub"));
    CHECK_INT(num_at(hub, "households"), 20);
    CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(hub, "open")), 2);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(rd, "level")), "attention");
    CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(rd, "zones")), 2);
    /* The stale one: 47 min without a word is more than three heartbeats. */
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(stale, "bridge")), "down");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(stale, "stale")));
    CHECK_INT(num_at(stale, "alarms"), 0);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(stale, "readiness"), "level")),
              "not_ready");
    CHECK(num_at(doc, "now") - num_at(stale, "last_seen_ms") >= FX_AREA_STALE_MIN * 60000.0);
    /* The healthy one has no name of its own: its hub document's is used. */
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(ok, "name")), "Phường Hòa Bình · Tổ dân phố 5");
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(ok, "stale")));
    CHECK_INT(num_at(cJSON_GetObjectItem(ok, "readiness"), "score"), 96);
    const cJSON *t = cJSON_GetObjectItem(doc, "totals");
    CHECK_INT(num_at(t, "areas"), 3);
    CHECK_INT(num_at(t, "households"), 20 + 24 + 14);
    CHECK_INT(num_at(t, "nodes"), 21 + 22 + 13);
    CHECK_INT(num_at(t, "open_incidents"), 2);
    CHECK_INT(num_at(t, "alarms"), 1);
    cJSON_Delete(doc);
    /* An area whose bridge was never heard of says so. */
    fx_sql(&fx, "UPDATE areas SET bridge_online = NULL WHERE id = '" FX_AREA_OK "'");
    doc = get_json("/api/v1/region", s, 200);
    CHECK_STR(cJSON_GetStringValue(
                  cJSON_GetObjectItem(area_by_id(cJSON_GetObjectItem(doc, "areas"), FX_AREA_OK), "bridge")),
              "unknown");
    cJSON_Delete(doc);
    fx_sql(&fx, "UPDATE areas SET bridge_online = 1 WHERE id = '" FX_AREA_OK "'");
}

static void check_region_incidents(const struct session *s)
{
    cJSON *doc = get_json("/api/v1/region/incidents", s, 200);
    const cJSON *list = cJSON_GetObjectItem(doc, "incidents"), *it;
    CHECK_INT(cJSON_GetArraySize(list), 5);
    /* Open ones first, each group newest first. */
    bool seen_closed = false, order_ok = true;
    double last_open = 1e300, last_closed = 1e300;
    cJSON_ArrayForEach(it, list)
    {
        bool open = cJSON_IsTrue(cJSON_GetObjectItem(it, "open"));
        double opened = num_at(it, "opened_ms");
        if (open) {
            order_ok &= !seen_closed && opened <= last_open;
            last_open = opened;
        } else {
            seen_closed = true;
            order_ok &= opened <= last_closed && num_at(it, "closed_ms") > 0;
            last_closed = opened;
        }
    }
    CHECK(order_ok);
    const cJSON *first = cJSON_GetArrayItem(list, 0);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(first, "area")), FX_AREA_ALARM);
    CHECK_INT(num_at(first, "id"), FX_AREA_ALARM_INCIDENT);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(first, "state")), "alarm");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(first, "kind")), "fire");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(first, "zone_name")), "Tổ 3 · Hẻm 45 Lý Chính Thắng");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(first, "cap")),
              "/api/v1/region/areas/" FX_AREA_ALARM "/incidents/12/cap");
    int caps = 0;
    cJSON_ArrayForEach(it, list) caps += cJSON_IsString(cJSON_GetObjectItem(it, "cap"));
    CHECK_INT(caps, 2); /* the fire in alarm and the cleared one; null for the rest */
    cJSON_Delete(doc);

    static const struct {
        const char *query;
        int n;
    } filters[] = {
        {"?open=1", 2},
        {"?area=" FX_AREA_OK, 1},
        {"?area=" FX_AREA_ALARM "&open=1", 2},
        {"?area=" FX_AREA_STALE "&open=1", 0},
        {"?area=nowhere", 0},
        {"?limit=1", 1},
    };
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "/api/v1/region/incidents%s", filters[i].query);
        doc = get_json(path, s, 200);
        int n = cJSON_GetArraySize(cJSON_GetObjectItem(doc, "incidents"));
        th_report(n == filters[i].n, "region incidents %s: %d (got %d)", filters[i].query, filters[i].n, n);
        cJSON_Delete(doc);
    }
    const char *bad[] = {"?area=Not_An_Id", "?area=a%20b", "?limit=0", "?limit=501", "?open=2", "?limit=x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[128];
        struct hc_response r;
        snprintf(path, sizeof path, "/api/v1/region/incidents%s", bad[i]);
        int st = req("GET", path, s->cookie, NULL, &r);
        th_report(st == 400 && is_json_error(&r), "region incidents refuses %s (got %d)", bad[i], st);
        hc_free(&r);
    }
}

static void check_region_cap(const struct session *s)
{
    struct hc_response r;
    char ct[80] = "";
    CHECK_INT(req("GET", "/api/v1/region/areas/" FX_AREA_ALARM "/incidents/12/cap", s->cookie, NULL, &r),
              200);
    CHECK(hc_header(&r, "Content-Type", ct, sizeof ct) &&
          strcmp(ct, "application/cap+xml; charset=utf-8") == 0);
    CHECK(r.body && strstr(r.body, "<?xml") == r.body);
    CHECK(r.body && strstr(r.body, "<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\">"));
    CHECK(r.body && strstr(r.body, "<identifier>firewatch-" FX_AREA_ALARM "-12-2</identifier>"));
    hc_free(&r);
    /* The cleared one: its Cancel, as the area sent it. */
    CHECK_INT(req("GET", "/api/v1/region/areas/" FX_AREA_OK "/incidents/7/cap", s->cookie, NULL, &r), 200);
    CHECK(r.body && strstr(r.body, "<msgType>Cancel</msgType>"));
    hc_free(&r);
    static const struct {
        const char *path;
        int status;
    } cases[] = {
        {"/api/v1/region/areas/" FX_AREA_ALARM "/incidents/13/cap", 404}, /* open, but no alert came */
        {"/api/v1/region/areas/" FX_AREA_ALARM "/incidents/999/cap", 404},
        {"/api/v1/region/areas/nowhere/incidents/12/cap", 404},
        {"/api/v1/region/areas/" FX_AREA_REMOVED "/incidents/1/cap", 404},
        {"/api/v1/region/areas/Not_An_Id/incidents/12/cap", 400},
        {"/api/v1/region/areas/" FX_AREA_ALARM "/incidents/0/cap", 400},
        {"/api/v1/region/areas/" FX_AREA_ALARM "/incidents/012/cap", 400},
        {"/api/v1/region/areas/" FX_AREA_ALARM "/incidents/abc/cap", 400},
        {"/api/v1/region/areas/" FX_AREA_ALARM "/incidents/-1/cap", 400},
        {"/api/v1/region/areas/" FX_AREA_ALARM "/incidents/99999999999/cap", 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int st = req("GET", cases[i].path, s->cookie, NULL, &r);
        th_report(st == cases[i].status && is_json_error(&r), "%s: %d (got %d)", cases[i].path,
                  cases[i].status, st);
        hc_free(&r);
    }
}

/* The region routes need a session (401 without one, any role with one),
 * say what they say on the seeded areas, and incident actions on a
 * regional hub are refused with 403. */
static void test_region(void)
{
    if (fx_regional(&fx) < 0) {
        th_fail(__FILE__, __LINE__, "fx_regional");
        return;
    }
    struct http_config cfg;
    http_config_defaults(&cfg);
    cfg.listen = "127.0.0.1:0";
    cfg.database = fx.db_path;
    cfg.web_root = th_root_path("hub/web");
    cfg.regional = true;
    struct http_hooks hooks = fx_hooks(&fx);
    struct http_server *rsrv = http_start(&cfg, &hooks);
    if (!rsrv) {
        th_fail(__FILE__, __LINE__, "http_start (regional): %s", strerror(errno));
        return;
    }
    int area_port = port;
    port = http_port(rsrv);
    fx.regional = true;

    struct hc_response r;
    CHECK_INT(req("GET", "/api/v1/health", NULL, NULL, &r), 200);
    CHECK(r.body && strstr(r.body, "\"mode\":\"regional\""));
    hc_free(&r);
    const char *routes[] = {"/api/v1/region", "/api/v1/region/incidents", "/api/v1/region/incidents?open=1",
                            "/api/v1/region/areas/" FX_AREA_ALARM "/incidents/12/cap"};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        int st = req("GET", routes[i], NULL, NULL, &r);
        th_report(st == 401 && is_json_error(&r), "%s without a session: 401 (got %d)", routes[i], st);
        hc_free(&r);
        st = req("GET", routes[i], "Cookie: fw_session=forged\r\n", NULL, &r);
        th_report(st == 401, "%s with a forged session: 401 (got %d)", routes[i], st);
        hc_free(&r);
    }
    CHECK_INT(req("POST", "/api/v1/region", NULL, "{}", &r), 405);
    hc_free(&r);

    struct session w, t;
    CHECK_INT(login(FX_WATCH, FX_PASSWORD, &w), 200);
    CHECK_INT(login(FX_TECH, FX_PASSWORD, &t), 200);
    check_region_doc(&w);
    check_region_incidents(&w);
    check_region_cap(&w);
    cJSON_Delete(get_json("/api/v1/region", &t, 200)); /* any signed-in role reads it */

    /* A read-only view: acting on an incident is refused, and says where to act. */
    int calls = fx.calls;
    const char *acts[] = {"/api/v1/incidents/1/acknowledge", "/api/v1/incidents/1/clear",
                          "/api/v1/zones/" FX_ZONE_A "/drill"};
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        int st = req("POST", acts[i], w.both, NULL, &r);
        th_report(st == 403 && r.body && strstr(r.body, "read-only view: act on the area's own hub"),
                  "regional hub refuses POST %s with 403 (got %d)", acts[i], st);
        hc_free(&r);
    }
    CHECK_INT(fx.calls, calls); /* refused by the HTTP side: the engine never hears of it */
    CHECK(fx_sql_int(&fx, "SELECT count(*) FROM incidents WHERE state NOT IN ('cleared', 'dismissed')") == 0);

    fx.regional = false;
    port = area_port;
    http_stop(rsrv);
    /* The area server says it is one. */
    CHECK_INT(req("GET", "/api/v1/health", NULL, NULL, &r), 200);
    CHECK(r.body && strstr(r.body, "\"mode\":\"area\""));
    hc_free(&r);
}

int main(int argc, char **argv)
{
    log_init("test_api", LOGL_WARN);
    if (fx_open(&fx, true) < 0) {
        printf("not ok - fixture\n");
        return 1;
    }
    struct http_config cfg;
    http_config_defaults(&cfg);
    cfg.listen = "127.0.0.1:0";
    cfg.database = fx.db_path;
    cfg.web_root = th_root_path("hub/web");
    cfg.stream_ring = 256;
    cfg.threads = 1; /* one polling thread: anything that blocks it shows */
    struct http_hooks hooks = fx_hooks(&fx);
    srv = http_start(&cfg, &hooks);
    if (!srv) {
        printf("not ok - http_start: %s\n", strerror(errno));
        fx_close(&fx);
        return 1;
    }
    fx.stream = http_stream(srv);
    port = http_port(srv);
    static const struct th_test tests[] = {
        TH_TEST(test_health_and_headers),
        TH_TEST(test_unknown_route_404),
        TH_TEST(test_bad_method_405),
        TH_TEST(test_static_files),
        TH_TEST(test_path_traversal_refused),
        TH_TEST(test_wrong_password_401),
        TH_TEST(test_login_cookie_and_whoami),
        TH_TEST(test_throttling_429),
        TH_TEST(test_missing_csrf_403),
        TH_TEST(test_forged_session_401),
        TH_TEST(test_oversized_body_413),
        TH_TEST(test_roles_403),
        TH_TEST(test_names_escaped_in_json),
        TH_TEST(test_report_escaped),
        TH_TEST(test_incident_actions_through_hooks),
        TH_TEST(test_nodes_and_readings),
        TH_TEST(test_readiness),
        TH_TEST(test_users_admin),
        TH_TEST(test_api_tokens),
        TH_TEST(test_metrics),
        TH_TEST(test_stream_and_resume),
        TH_TEST(test_slow_stream_client_does_not_block),
        TH_TEST(test_slow_hook_does_not_block),
        TH_TEST(test_region),
    };
    int rc = th_main(tests, sizeof tests / sizeof tests[0], argc, argv);
    fx.stream = NULL;
    http_stop(srv);
    fx_close(&fx);
    return rc;
}
