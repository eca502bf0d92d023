/*
 * http.c - see http.h. The server half: the listening socket, the
 * libmicrohttpd daemon (epoll, a small pool of polling threads, suspend and
 * resume for the stream), the route table, authentication and CSRF checks
 * before a handler runs, request body limits, static files for the
 * dashboard, security headers on every response, and /metrics.
 *
 * A request's fate is decided on the first call of the access handler, when
 * only its headers are known: unknown route (404), wrong method (405),
 * missing or forged credentials (401), too little role (403), missing CSRF
 * token (403) and a declared body over the limit (413) are answered at once,
 * before any body is read. A body arriving chunked is counted as it comes and
 * refused past the limit.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api.h"
#include "log.h"

#define HEADER_MEMORY (32 * 1024) /* per connection: request line and headers must fit */
#define PATH_MAX_LEN 256
#define WORK_QUEUE_MAX 256 /* slow requests waiting for a worker */

/* One route per row: method, path pattern ("*" matches one segment, captured
 * as a parameter), the least role allowed, the handler, and whether it may
 * block (Argon2id hashing, waiting for the daemon's main loop): those run on
 * the worker threads while their connection is suspended, so a polling
 * thread never stops serving its other connections (stream clients above
 * all) while one of them waits. */
struct route {
    const char *method;
    const char *pattern;
    enum auth_role role;
    api_handler fn;
    bool slow;
};
#define SLOW true
#define FAST false

static const struct route routes[] = {
    {"GET", "/api/v1/health", AUTH_ROLE_NONE, api_health, FAST},
    {"POST", "/api/v1/session", AUTH_ROLE_NONE, api_login, SLOW},
    {"GET", "/api/v1/session", AUTH_ROLE_WATCH, api_whoami, FAST},
    {"DELETE", "/api/v1/session", AUTH_ROLE_WATCH, api_logout, FAST},
    {"GET", "/api/v1/sites", AUTH_ROLE_WATCH, api_sites, FAST},
    {"GET", "/api/v1/zones", AUTH_ROLE_WATCH, api_zones, FAST},
    {"POST", "/api/v1/zones/*/drill", AUTH_ROLE_WATCH, api_zone_drill, SLOW},
    {"GET", "/api/v1/households", AUTH_ROLE_WATCH, api_households, FAST},
    {"GET", "/api/v1/nodes", AUTH_ROLE_WATCH, api_nodes, FAST},
    {"GET", "/api/v1/nodes/*", AUTH_ROLE_WATCH, api_node_get, FAST},
    {"GET", "/api/v1/nodes/*/readings", AUTH_ROLE_WATCH, api_node_readings, FAST},
    {"POST", "/api/v1/nodes/*/test", AUTH_ROLE_TECHNICIAN, api_node_test, FAST},
    {"GET", "/api/v1/nodes/*/tests", AUTH_ROLE_TECHNICIAN, api_node_tests, FAST},
    {"GET", "/api/v1/tech", AUTH_ROLE_TECHNICIAN, api_tech, FAST},
    {"GET", "/api/v1/incidents", AUTH_ROLE_WATCH, api_incidents, FAST},
    {"GET", "/api/v1/incidents/*", AUTH_ROLE_WATCH, api_incident_get, FAST},
    {"GET", "/api/v1/incidents/*/cap", AUTH_ROLE_WATCH, api_incident_cap, FAST},
    {"GET", "/api/v1/cap", AUTH_ROLE_WATCH, api_cap_feed, FAST},
    {"GET", "/api/v1/region", AUTH_ROLE_WATCH, api_region, FAST},
    {"GET", "/api/v1/region/incidents", AUTH_ROLE_WATCH, api_region_incidents, FAST},
    {"GET", "/api/v1/region/areas/*/incidents/*/cap", AUTH_ROLE_WATCH, api_region_cap, FAST},
    {"GET", "/api/v1/region/cap", AUTH_ROLE_WATCH, api_region_cap_feed, FAST},
    {"POST", "/api/v1/incidents/*/acknowledge", AUTH_ROLE_WATCH, api_incident_ack, SLOW},
    {"POST", "/api/v1/incidents/*/clear", AUTH_ROLE_WATCH, api_incident_clear, SLOW},
    {"GET", "/api/v1/troubles", AUTH_ROLE_WATCH, api_troubles, FAST},
    {"GET", "/api/v1/readiness", AUTH_ROLE_WATCH, api_readiness, FAST},
    {"GET", "/api/v1/reports/monthly", AUTH_ROLE_WATCH, api_report_monthly, FAST},
    {"GET", "/api/v1/stream", AUTH_ROLE_WATCH, api_stream, FAST},
    {"GET", "/api/v1/tokens", AUTH_ROLE_WATCH, api_tokens, FAST},
    {"POST", "/api/v1/tokens", AUTH_ROLE_WATCH, api_token_add, FAST},
    {"DELETE", "/api/v1/tokens/*", AUTH_ROLE_WATCH, api_token_remove, FAST},
    {"GET", "/api/v1/users", AUTH_ROLE_ADMIN, api_users, FAST},
    {"POST", "/api/v1/users", AUTH_ROLE_ADMIN, api_user_add, SLOW},
    {"DELETE", "/api/v1/users/*", AUTH_ROLE_ADMIN, api_user_remove, FAST},
    {"PUT", "/api/v1/users/*/role", AUTH_ROLE_ADMIN, api_user_role, FAST},
    {"PUT", "/api/v1/users/*/password", AUTH_ROLE_ADMIN, api_user_password, SLOW},
    {"GET", "/metrics", AUTH_ROLE_NONE, api_metrics, FAST},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

/* Content types of the dashboard's files, by extension. */
static const struct {
    const char *ext;
    const char *type;
} mime_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},
    {".ico", "image/x-icon"},
    {".webmanifest", "application/manifest+json"},
    {".txt", "text/plain; charset=utf-8"},
};

/* Every response carries these. The CSP allows no inline script or style. */
static const struct {
    const char *name;
    const char *value;
} security_headers[] = {
    {"Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' "
                                "data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                                "form-action 'self'; frame-ancestors 'none'"},
    {"X-Content-Type-Options", "nosniff"},
    {"Referrer-Policy", "no-referrer"},
    {"X-Frame-Options", "DENY"},
    {"Cross-Origin-Opener-Policy", "same-origin"},
};

enum phase { PHASE_READING, PHASE_QUEUED, PHASE_DONE };

struct conn_ctx {
    const struct route *route;
    struct api_req rq;
    bool early; /* an answer was queued before the body */
    bool too_big;
    char *body;
    size_t body_len;
    enum phase phase;      /* slow routes: queued for a worker, then done */
    struct api_reply rp;   /* a worker's answer, sent when the connection resumes */
    struct conn_ctx *next; /* in the work queue */
};

int64_t api_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- Replies ------------------------------------------------------------ */

void api_reply_body(struct api_reply *rp, unsigned status, const char *ctype, char *body, size_t len)
{
    free(rp->body);
    rp->status = status;
    rp->ctype = ctype;
    rp->body = body;
    rp->len = len;
}

void api_reply_json(struct api_reply *rp, unsigned status, cJSON *doc)
{
    char *text = doc ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    if (!text) {
        rp->status = 500;
        return;
    }
    size_t n = strlen(text), extra = 0;
    for (size_t i = 0; i < n; i++)
        if (text[i] == '<' || text[i] == '>' || text[i] == '&')
            extra += 5;
    char *out = malloc(n + extra + 2);
    if (!out) {
        free(text);
        rp->status = 500;
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        /* Only inside strings can these occur, where \u00XX means the same. */
        if (text[i] == '<' || text[i] == '>' || text[i] == '&') {
            k += (size_t)snprintf(out + k, 7, "\\u%04x", (unsigned)text[i]);
        } else {
            out[k++] = text[i];
        }
    }
    out[k++] = '\n';
    out[k] = '\0';
    free(text);
    api_reply_body(rp, status, "application/json", out, k);
}

void api_error(struct api_reply *rp, unsigned status, const char *msg)
{
    cJSON *doc = cJSON_CreateObject();
    if (!doc || !cJSON_AddStringToObject(doc, "error", msg)) {
        cJSON_Delete(doc);
        rp->status = status;
        return;
    }
    api_reply_json(rp, status, doc);
}

const char *api_arg(struct api_req *rq, const char *key)
{
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, key);
}

int api_arg_i64(struct api_req *rq, const char *key, int64_t lo, int64_t hi, int64_t def, int64_t *out)
{
    const char *v = api_arg(rq, key);
    if (!v || !*v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || x < lo || x > hi)
        return -EINVAL;
    *out = x;
    return 0;
}

cJSON *api_body_object(struct api_req *rq, struct api_reply *rp)
{
    cJSON *doc = rq->body_len ? cJSON_ParseWithLength(rq->body, rq->body_len) : NULL;
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        api_error(rp, 400, "the body must be a JSON object");
        return NULL;
    }
    return doc;
}

const char *api_json_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* --- Routing ------------------------------------------------------------ */

/* Matches path against pattern, capturing "*" segments. */
static bool route_match(const char *pattern, const char *path, struct api_req *rq)
{
    size_t np = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p == '*') {
            size_t n = strcspn(s, "/");
            if (n == 0 || n >= API_PARAM_LEN || np >= API_PARAMS_MAX)
                return false;
            if (rq) {
                memcpy(rq->params[np], s, n);
                rq->params[np][n] = '\0';
            }
            np++;
            p++;
            s += n;
        } else if (*p == *s) {
            p++;
            s++;
        } else {
            return false;
        }
    }
    return *p == '\0' && *s == '\0';
}

/* --- Responses ---------------------------------------------------------- */

static void add_security_headers(struct MHD_Response *r)
{
    for (size_t i = 0; i < sizeof security_headers / sizeof security_headers[0]; i++)
        MHD_add_response_header(r, security_headers[i].name, security_headers[i].value);
}

static enum MHD_Result send_reply(struct http_server *srv, struct MHD_Connection *conn, struct api_reply *rp)
{
    struct MHD_Response *r = rp->raw;
    if (!r) {
        if (!rp->body && rp->status != 204 && rp->status != 304)
            api_error(rp, rp->status ? rp->status : 500, "no content");
        r = rp->body ? MHD_create_response_from_buffer(rp->len, rp->body, MHD_RESPMEM_MUST_FREE)
                     : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        rp->body = NULL; /* MHD frees it now */
        if (rp->ctype)
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, rp->ctype);
        if (!rp->disposition[0])
            MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    }
    if (rp->set_cookie[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE, rp->set_cookie);
    if (rp->disposition[0])
        MHD_add_response_header(r, "Content-Disposition", rp->disposition);
    if (rp->retry_after_s > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", rp->retry_after_s);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, v);
    }
    add_security_headers(r);
    unsigned status = rp->status ? rp->status : 200;
    if (status < 600)
        atomic_fetch_add(&srv->by_status[status], 1);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Serves a file of the web root. path has been checked by static_path_ok. */
static void serve_static(struct http_server *srv, const char *path, struct api_reply *rp,
                         struct MHD_Connection *conn)
{
    char rel[PATH_MAX_LEN];
    if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0)
        snprintf(rel, sizeof rel, "index.html");
    else
        snprintf(rel, sizeof rel, "%s", path + 1);
    int fd = srv->web_fd >= 0 ? openat(srv->web_fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        api_error(rp, 404, "not found");
        return;
    }
    const char *type = "application/octet-stream";
    const char *dot = strrchr(rel, '.');
    for (size_t i = 0; dot && i < sizeof mime_types / sizeof mime_types[0]; i++)
        if (strcmp(dot, mime_types[i].ext) == 0)
            type = mime_types[i].type;
    struct MHD_Response *r = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
    if (!r) {
        close(fd);
        api_error(rp, 500, "out of memory");
        return;
    }
    (void)conn;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    /* Small files, changed by upgrades: revalidate rather than go stale. */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    rp->raw = r;
    rp->status = 200;
}

/* A static path is plain: /[A-Za-z0-9._-/]* with no segment starting with
 * '.', so neither "..", hidden files nor encoded tricks reach the disk. */
static bool static_path_ok(const char *path)
{
    size_t n = strlen(path);
    if (n == 0 || n >= PATH_MAX_LEN || path[0] != '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = path[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '-' || c == '/';
        if (!ok)
            return false;
        if (c == '/' && (path[i + 1] == '.' || path[i + 1] == '/'))
            return false;
    }
    return true;
}

/* Fills rq->who from the session cookie or a bearer token. Returns 0 when
 * anonymous or authenticated, -EACCES when credentials were given but are
 * not valid (forged, expired, revoked). */
/* A session cookie: its row in the database says it still stands (logging
 * out, removing the user or changing their password deletes it, from here
 * or from firewatchctl) and gives the user's role now; the memory keeps its
 * idle expiry and CSRF token, and takes it back from the row after a
 * restart. Returns 0 with who filled, or -EACCES. */
static int session_check(struct http_server *srv, const char *cookie, struct auth_identity *who)
{
    char dig[AUTH_TOKEN_HEX + 1], user[AUTH_USER_MAX + 1] = "", csrf[AUTH_TOKEN_HEX + 1] = "";
    auth_token_digest(cookie, dig, sizeof dig);
    enum auth_role role = AUTH_ROLE_NONE;
    int64_t created = 0, now = api_now_ms();
    struct api_db *db = api_db_get(srv);
    sqlite3_stmt *q = api_stmt(db, Q_SESSION);
    int rc = SQLITE_ERROR;
    if (q) {
        sqlite3_bind_text(q, 1, dig, -1, SQLITE_STATIC);
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            snprintf(user, sizeof user, "%s", (const char *)sqlite3_column_text(q, 0));
            role = auth_role_parse((const char *)sqlite3_column_text(q, 1));
            snprintf(csrf, sizeof csrf, "%s", (const char *)sqlite3_column_text(q, 2));
            created = sqlite3_column_int64(q, 3);
        }
        sqlite3_reset(q);
    }
    api_db_put(srv, db);
    if (rc != SQLITE_ROW || role == AUTH_ROLE_NONE) {
        auth_session_end(srv->auth, cookie); /* gone from the database: gone */
        return -EACCES;
    }
    if (auth_session_get(srv->auth, cookie, now, who) != 0) {
        /* Not in memory: the hub restarted (or the session was evicted). */
        int r = auth_session_restore(srv->auth, cookie, user, role, csrf, created, now);
        if (r == -ETIMEDOUT)
            api_rw_exec(srv, "DELETE FROM sessions WHERE digest = ?1", "s", dig);
        if (r != 0 || auth_session_get(srv->auth, cookie, now, who) != 0)
            return -EACCES;
    }
    if (who->role != role) {
        auth_sessions_update_user(srv->auth, user, role); /* firewatchctl user role */
        who->role = role;
    }
    return 0;
}

static int authenticate(struct http_server *srv, struct api_req *rq)
{
    const char *authz = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (authz) {
        if (strncmp(authz, "Bearer ", 7) != 0)
            return -EACCES;
        return api_token_identity(srv, authz + 7, &rq->who) == 0 ? 0 : -EACCES;
    }
    const char *cookie = MHD_lookup_connection_value(rq->conn, MHD_COOKIE_KIND, API_SESSION_COOKIE);
    if (!cookie)
        return 0;
    if (session_check(srv, cookie, &rq->who) != 0) {
        memset(&rq->who, 0, sizeof rq->who);
        return -EACCES;
    }
    snprintf(rq->session_token, sizeof rq->session_token, "%s", cookie);
    return 0;
}

static bool state_changing(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 && strcmp(method, "OPTIONS") != 0;
}

/* Decides what can be decided from the headers alone. Returns true when rp
 * holds the answer already. */
static bool decide(struct http_server *srv, struct conn_ctx *cx, const char *url, const char *method,
                   struct api_reply *rp)
{
    struct api_req *rq = &cx->rq;
    bool is_api = strncmp(url, "/api/", 5) == 0 || strcmp(url, "/metrics") == 0;
    if (!is_api) {
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
            api_error(rp, 405, "method not allowed");
            return true;
        }
        if (!static_path_ok(url)) {
            api_error(rp, 404, "not found");
            return true;
        }
        serve_static(srv, url, rp, rq->conn);
        return true;
    }
    bool path_known = false;
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (!route_match(routes[i].pattern, url, NULL))
            continue;
        path_known = true;
        bool head = strcmp(method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0;
        if (strcmp(routes[i].method, method) == 0 || head) {
            cx->route = &routes[i];
            route_match(routes[i].pattern, url, rq);
            break;
        }
    }
    if (!cx->route) {
        api_error(rp, path_known ? 405 : 404, path_known ? "method not allowed" : "no such route");
        return true;
    }
    if (authenticate(srv, rq) < 0) {
        api_error(rp, 401, "not logged in, or the session has expired");
        return true;
    }
    if (rq->who.role < cx->route->role) {
        if (rq->who.role == AUTH_ROLE_NONE)
            api_error(rp, 401, "log in first");
        else
            api_error(rp, 403, "your role does not allow this");
        return true;
    }
    /* Cookie-authenticated writes need the session's CSRF token; the login
     * itself has no session yet, and SameSite=Strict plus the JSON content
     * type protect it. */
    if (state_changing(method) && rq->who.role != AUTH_ROLE_NONE && !rq->who.bearer) {
        const char *tok = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "X-CSRF-Token");
        if (!auth_csrf_ok(&rq->who, tok)) {
            api_error(rp, 403, "missing or wrong X-CSRF-Token");
            return true;
        }
    }
    const char *clen = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *chunked =
        MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    const char *ctype = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    /* A body must be JSON: a cross-site HTML form cannot send that type
     * without a CORS preflight, which this server never grants. */
    if (((clen && strcmp(clen, "0") != 0) || chunked) &&
        (!ctype || strncmp(ctype, "application/json", 16) != 0)) {
        api_error(rp, 415, "the body must be application/json");
        return true;
    }
    if (clen) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(clen, &end, 10);
        if (errno || *end || n > srv->body_max) {
            api_error(rp, 413, "request body too large");
            return true;
        }
    }
    return false;
}

static void client_addr(struct MHD_Connection *conn, char *out, size_t size)
{
    snprintf(out, size, "?");
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, (socklen_t)size);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)size);
}

/* --- Workers for slow routes ------------------------------------------- */

/* Queues cx for a worker and suspends its connection. Suspending comes first
 * and the worker resumes only after finishing, so the resume can never come
 * before the suspend. Returns 0, or -EAGAIN when stopping or the queue is
 * full (the caller answers 503). */
static int work_submit(struct http_server *srv, struct conn_ctx *cx)
{
    pthread_mutex_lock(&srv->work_mu);
    if (srv->work_closed || srv->work_queued >= WORK_QUEUE_MAX) {
        pthread_mutex_unlock(&srv->work_mu);
        return -EAGAIN;
    }
    cx->phase = PHASE_QUEUED;
    cx->next = NULL;
    MHD_suspend_connection(cx->rq.conn);
    if (srv->work_tail)
        srv->work_tail->next = cx;
    else
        srv->work_head = cx;
    srv->work_tail = cx;
    srv->work_queued++;
    srv->work_inflight++;
    pthread_cond_signal(&srv->work_cv);
    pthread_mutex_unlock(&srv->work_mu);
    return 0;
}

static void *work_main(void *arg)
{
    struct http_server *srv = arg;
    pthread_mutex_lock(&srv->work_mu);
    for (;;) {
        while (!srv->work_head && !srv->work_stop)
            pthread_cond_wait(&srv->work_cv, &srv->work_mu);
        if (!srv->work_head)
            break;
        struct conn_ctx *cx = srv->work_head;
        srv->work_head = cx->next;
        if (!srv->work_head)
            srv->work_tail = NULL;
        srv->work_queued--;
        pthread_mutex_unlock(&srv->work_mu);

        memset(&cx->rp, 0, sizeof cx->rp);
        cx->route->fn(&cx->rq, &cx->rp);
        cx->phase = PHASE_DONE;
        /* After the resume the connection (and cx) belong to libmicrohttpd
         * again: cx may be freed at any moment, so only conn is kept. */
        struct MHD_Connection *conn = cx->rq.conn;
        MHD_resume_connection(conn);

        pthread_mutex_lock(&srv->work_mu);
        srv->work_inflight--;
        pthread_cond_broadcast(&srv->work_idle);
    }
    pthread_mutex_unlock(&srv->work_mu);
    return NULL;
}

/* Refuses new slow requests and waits for the running ones to be answered
 * (each is bounded: hashing by its slot wait, hooks by the daemon's own
 * timeout), then stops the workers. */
static void work_stop(struct http_server *srv)
{
    pthread_mutex_lock(&srv->work_mu);
    srv->work_closed = true;
    while (srv->work_inflight > 0)
        pthread_cond_wait(&srv->work_idle, &srv->work_mu);
    srv->work_stop = true;
    pthread_cond_broadcast(&srv->work_cv);
    pthread_mutex_unlock(&srv->work_mu);
    for (int i = 0; i < srv->n_workers; i++)
        pthread_join(srv->workers[i], NULL);
    srv->n_workers = 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size,
                                  void **con_cls)
{
    (void)version;
    struct http_server *srv = cls;
    struct conn_ctx *cx = *con_cls;
    if (!cx) {
        cx = calloc(1, sizeof *cx);
        if (!cx)
            return MHD_NO;
        *con_cls = cx;
        cx->rq.srv = srv;
        cx->rq.conn = conn;
        cx->rq.method = method;
        cx->rq.path = url;
        client_addr(conn, cx->rq.addr, sizeof cx->rq.addr);
        struct api_reply rp = {0};
        if (decide(srv, cx, url, method, &rp)) {
            cx->early = true;
            enum MHD_Result r = send_reply(srv, conn, &rp);
            free(rp.body);
            return r;
        }
        return MHD_YES;
    }
    if (cx->early) {
        *upload_size = 0; /* an answer is on its way; the body is discarded */
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        if (!cx->too_big && cx->body_len + n <= srv->body_max) {
            char *b = realloc(cx->body, cx->body_len + n + 1);
            if (!b)
                return MHD_NO;
            memcpy(b + cx->body_len, upload, n);
            cx->body = b;
            cx->body_len += n;
            cx->body[cx->body_len] = '\0';
        } else {
            cx->too_big = true;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (cx->phase == PHASE_DONE) {
        enum MHD_Result r = send_reply(srv, conn, &cx->rp);
        free(cx->rp.body);
        cx->rp.body = NULL;
        return r;
    }
    struct api_reply rp = {0};
    cx->rq.body = cx->body ? cx->body : "";
    cx->rq.body_len = cx->body_len;
    if (cx->too_big) {
        api_error(&rp, 413, "request body too large");
    } else if (cx->route->slow) {
        if (work_submit(srv, cx) == 0)
            return MHD_YES; /* suspended; the worker resumes it with the answer */
        rp.retry_after_s = 2;
        api_error(&rp, 503, "the hub is busy; try again");
    } else {
        cx->route->fn(&cx->rq, &rp);
    }
    enum MHD_Result r = send_reply(srv, conn, &rp);
    free(rp.body);
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct conn_ctx *cx = *con_cls;
    if (cx) {
        free(cx->body);
        free(cx);
        *con_cls = NULL;
    }
}

/* Decodes %XX in the URL and its arguments, as libmicrohttpd would, but
 * turns any decoded control byte (NUL above all) into DEL, which no path or
 * id check accepts: "/app.js%00.png" must not quietly become "/app.js". */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    size_t in = 0, out = 0;
    while (s[in]) {
        unsigned char c = (unsigned char)s[in];
        if (c == '%' && s[in + 1] && s[in + 2]) {
            char hex[3] = {s[in + 1], s[in + 2], '\0'};
            char *end;
            unsigned long v = strtoul(hex, &end, 16);
            if (*end == '\0') {
                c = (unsigned char)v;
                in += 2;
            }
        }
        s[out++] = (char)(c < 0x20 || c == 0x7f ? 0x7f : c);
        in++;
    }
    s[out] = '\0';
    return out;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[256];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    /* Mostly clients going away mid-stream: worth a line when debugging. */
    log_info("http: %s", line);
}

/* --- /metrics ----------------------------------------------------------- */

struct textbuf {
    char *p;
    size_t len, cap;
};

static void tb_printf(struct textbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_printf(struct textbuf *b, const char *fmt, ...)
{
    if (!b->p)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        char *np = realloc(b->p, b->cap * 2 + (size_t)n);
        if (!np) {
            free(b->p);
            b->p = NULL;
            return;
        }
        b->p = np;
        b->cap = b->cap * 2 + (size_t)n;
    }
}

void api_metrics(struct api_req *rq, struct api_reply *rp)
{
    struct http_server *srv = rq->srv;
    struct textbuf b = {malloc(8192), 0, 8192};
    tb_printf(&b, "# HELP firewatch_http_requests_total HTTP responses by status code.\n"
                  "# TYPE firewatch_http_requests_total counter\n");
    /* Count this request too, so the page agrees with itself. */
    atomic_fetch_add(&srv->by_status[200], 1);
    for (unsigned s = 100; s < 600; s++) {
        uint64_t v = atomic_load(&srv->by_status[s]);
        if (v)
            tb_printf(&b, "firewatch_http_requests_total{code=\"%u\"} %" PRIu64 "\n", s, v);
    }
    atomic_fetch_sub(&srv->by_status[200], 1);
    struct stream_stats st;
    stream_stats(srv->stream, &st);
    tb_printf(&b,
              "# HELP firewatch_stream_clients Live stream clients connected.\n"
              "# TYPE firewatch_stream_clients gauge\nfirewatch_stream_clients %" PRIu64 "\n"
              "# HELP firewatch_stream_events_total Events published to the live stream.\n"
              "# TYPE firewatch_stream_events_total counter\nfirewatch_stream_events_total %" PRIu64 "\n"
              "# HELP firewatch_stream_dropped_total Stream clients dropped for falling behind.\n"
              "# TYPE firewatch_stream_dropped_total counter\nfirewatch_stream_dropped_total %" PRIu64 "\n"
              "# HELP firewatch_http_sessions Browser sessions alive.\n"
              "# TYPE firewatch_http_sessions gauge\nfirewatch_http_sessions %zu\n"
              "# HELP firewatch_login_failures_total Failed logins (wrong user or password).\n"
              "# TYPE firewatch_login_failures_total counter\nfirewatch_login_failures_total %" PRIu64 "\n"
              "# HELP firewatch_login_throttled_total Logins refused by throttling.\n"
              "# TYPE firewatch_login_throttled_total counter\nfirewatch_login_throttled_total %" PRIu64 "\n",
              st.clients, st.published, st.dropped, auth_session_count(srv->auth),
              (uint64_t)atomic_load(&srv->login_failures), (uint64_t)atomic_load(&srv->login_throttled));
    if (srv->hooks.metrics && b.p) {
        char *extra = malloc(65536);
        if (extra) {
            int n = srv->hooks.metrics(srv->hooks.ctx, extra, 65536);
            if (n > 0 && n < 65536) {
                extra[n] = '\0';
                tb_printf(&b, "%s", extra);
            }
            free(extra);
        }
    }
    if (!b.p) {
        api_error(rp, 500, "out of memory");
        return;
    }
    api_reply_body(rp, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
}

/* --- Start and stop ----------------------------------------------------- */

void http_config_defaults(struct http_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->listen = HTTP_LISTEN_DEFAULT;
    cfg->lang = "en";
    cfg->threads = 4;
    cfg->body_max = HTTP_BODY_MAX_DEFAULT;
    cfg->timeout_s = 30;
    cfg->connections_max = 1024;
}

/* Binds and listens on "host:port" or "[v6]:port". Returns the socket and
 * the bound port, or a negative errno. */
static int listen_on(const char *spec, int *port_out)
{
    char host[64];
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof host)
        return -EINVAL;
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || *end || port < 0 || port > 65535 || colon[1] == '\0')
        return -EINVAL;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
            return -EINVAL;
        len = sizeof *a6;
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        if (hl == 0 || strcmp(host, "*") == 0)
            a4->sin_addr.s_addr = htonl(INADDR_ANY);
        else if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
            return -EINVAL;
        len = sizeof *a4;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 128) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    struct sockaddr_storage got;
    socklen_t gl = sizeof got;
    getsockname(fd, (struct sockaddr *)&got, &gl);
    *port_out = got.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&got)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&got)->sin_port);
    return fd;
}

struct http_server *http_start(const struct http_config *cfg_in, const struct http_hooks *hooks)
{
    struct http_config cfg;
    http_config_defaults(&cfg);
    if (!cfg_in || !cfg_in->database || !*cfg_in->database) {
        log_error("http: no database configured");
        errno = EINVAL;
        return NULL;
    }
    cfg.database = cfg_in->database;
    cfg.web_root = cfg_in->web_root;
    cfg.secure_cookie = cfg_in->secure_cookie;
    if (cfg_in->listen && *cfg_in->listen)
        cfg.listen = cfg_in->listen;
    if (cfg_in->lang && (strcmp(cfg_in->lang, "vi") == 0 || strcmp(cfg_in->lang, "en") == 0))
        cfg.lang = cfg_in->lang;
    if (cfg_in->threads > 0)
        cfg.threads = cfg_in->threads;
    if (cfg_in->body_max > 0)
        cfg.body_max = cfg_in->body_max;
    if (cfg_in->timeout_s > 0)
        cfg.timeout_s = cfg_in->timeout_s;
    if (cfg_in->connections_max > 0)
        cfg.connections_max = cfg_in->connections_max;
    cfg.db_readers = cfg_in->db_readers > 0 ? cfg_in->db_readers : cfg.threads + 1;

    struct http_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return NULL;
    srv->listen_fd = -1;
    srv->web_fd = -1;
    pthread_mutex_init(&srv->pool_mu, NULL);
    pthread_cond_init(&srv->pool_cv, NULL);
    pthread_mutex_init(&srv->rw_mu, NULL);
    pthread_mutex_init(&srv->work_mu, NULL);
    pthread_cond_init(&srv->work_cv, NULL);
    pthread_cond_init(&srv->work_idle, NULL);
    if (hooks)
        srv->hooks = *hooks;
    snprintf(srv->database, sizeof srv->database, "%s", cfg.database);
    snprintf(srv->web_root, sizeof srv->web_root, "%s", cfg.web_root ? cfg.web_root : "");
    snprintf(srv->lang, sizeof srv->lang, "%s", cfg.lang);
    srv->regional = cfg_in->regional;
    snprintf(srv->hub_id, sizeof srv->hub_id, "%s",
             cfg_in->hub_id && *cfg_in->hub_id ? cfg_in->hub_id : "hub");
    if (cfg_in->public_url && *cfg_in->public_url) {
        size_t ul = strlen(cfg_in->public_url);
        snprintf(srv->public_url, sizeof srv->public_url, "%s%s", cfg_in->public_url,
                 cfg_in->public_url[ul - 1] == '/' ? "" : "/");
    }
    snprintf(srv->cap_sender, sizeof srv->cap_sender, "%s", cfg_in->cap_sender ? cfg_in->cap_sender : "");
    snprintf(srv->cap_sender_name, sizeof srv->cap_sender_name, "%s",
             cfg_in->cap_sender_name ? cfg_in->cap_sender_name : "");
    srv->secure_cookie = cfg.secure_cookie;
    srv->body_max = cfg.body_max;
    int err = 0;

    if (srv->web_root[0]) {
        srv->web_fd = open(srv->web_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (srv->web_fd < 0)
            log_warn("http: web root %s: %s (the dashboard is not served)", srv->web_root, strerror(errno));
    }
    struct auth_config ac = {.session_idle_s = cfg_in->session_idle_s};
    srv->auth = auth_new(&ac);
    struct stream_config sc = {.keepalive_ms = cfg_in->stream_keepalive_ms, .ring = cfg_in->stream_ring};
    srv->stream = stream_new(&sc);
    if (!srv->auth || !srv->stream) {
        err = errno ? errno : ENOMEM;
        log_error("http: cannot start: %s", strerror(err));
        goto fail;
    }
    int rc = api_db_open(srv, (size_t)cfg.db_readers);
    if (rc < 0) {
        err = -rc;
        goto fail;
    }
    rc = listen_on(cfg.listen, &srv->port);
    if (rc < 0) {
        err = -rc;
        log_error("http: cannot listen on %s: %s", cfg.listen, strerror(err));
        goto fail;
    }
    srv->listen_fd = rc;
    for (int i = 0; i < HTTP_WORKERS; i++) {
        rc = pthread_create(&srv->workers[i], NULL, work_main, srv);
        if (rc != 0) {
            err = rc;
            log_error("http: cannot start a worker: %s", strerror(rc));
            goto fail;
        }
        srv->n_workers++;
    }
    srv->mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0,
        NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv, MHD_OPTION_UNESCAPE_CALLBACK,
        unescape, srv, MHD_OPTION_LISTEN_SOCKET, srv->listen_fd, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)cfg.threads, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HEADER_MEMORY,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg.timeout_s, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg.connections_max, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_END);
    if (!srv->mhd) {
        err = EIO;
        log_error("http: libmicrohttpd did not start on %s", cfg.listen);
        goto fail;
    }
    srv->listen_fd = -1; /* libmicrohttpd closes it in MHD_stop_daemon */
    log_info("http: serving on %s (port %d)", cfg.listen, srv->port);
    return srv;
fail:
    http_stop(srv);
    errno = err ? err : EIO;
    return NULL;
}

struct stream *http_stream(struct http_server *srv)
{
    return srv ? srv->stream : NULL;
}

int http_port(const struct http_server *srv)
{
    return srv ? srv->port : -1;
}

void http_stop(struct http_server *srv)
{
    if (!srv)
        return;
    /* No suspended connection may remain when libmicrohttpd stops: first
     * the slow requests finish, then the streams end. */
    work_stop(srv);
    if (srv->stream)
        stream_shutdown(srv->stream);
    if (srv->mhd)
        MHD_stop_daemon(srv->mhd);
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    stream_free(srv->stream);
    api_db_close(srv);
    auth_free(srv->auth);
    if (srv->web_fd >= 0)
        close(srv->web_fd);
    pthread_mutex_destroy(&srv->pool_mu);
    pthread_cond_destroy(&srv->pool_cv);
    pthread_mutex_destroy(&srv->rw_mu);
    pthread_mutex_destroy(&srv->work_mu);
    pthread_cond_destroy(&srv->work_cv);
    pthread_cond_destroy(&srv->work_idle);
    free(srv);
}
