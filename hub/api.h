/*
 * api.h - internals shared by the HTTP server (http.c) and its route
 * handlers (api_*.c). Not for the daemon: it uses http.h only.
 *
 * A handler gets the parsed request (route parameters, query, body, the
 * authenticated identity) and fills a reply (status, content type, body, a
 * few headers); http.c turns that into a libmicrohttpd response with the
 * security headers. Handlers read through a pool of read-only SQLite
 * connections, each with its statements prepared once (api_db_get /
 * api_stmt / api_db_put), and write users, tokens and the audit log through
 * one read-write connection under a mutex (api_rw_lock).
 */
#ifndef FIREWATCH_HUB_API_H
#define FIREWATCH_HUB_API_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "auth.h"
#include "http.h"
#include "stream.h"

#define API_PARAMS_MAX 2
#define API_PARAM_LEN 72
#define API_SESSION_COOKIE "fw_session"
#define HTTP_WORKERS 4 /* threads for slow routes (hashing, daemon hooks) */

struct conn_ctx;

/* Every read query, prepared once per read-only connection. */
enum api_query {
    Q_SITES,
    Q_SITE_GET,
    Q_ZONES,
    Q_ZONE_GET,
    Q_ZONE_IDS_OF_SITE,
    Q_HOUSEHOLDS,
    Q_HOUSEHOLDS_ZONE,
    Q_NODES,
    Q_NODES_ZONE,
    Q_NODE_GET,
    Q_NODE_EXISTS,
    Q_READINGS_RAW,
    Q_READINGS_AGG,
    Q_INC_ACTIVE,
    Q_INC_HISTORY,
    Q_INC_GET,
    Q_TIMELINE,
    Q_TROUBLES,
    Q_RD_HOUSEHOLDS,
    Q_RD_NODES,
    Q_RD_RESPONSE,
    Q_RPT_INCIDENTS,
    Q_RPT_TESTS,
    Q_RPT_TROUBLES,
    Q_USERS,
    Q_USER_GET,
    Q_TOKEN_LOOKUP,
    Q_TOKENS,
    Q_CAP_ZONE,
    Q_CAP_ADDRESS,
    Q_CAP_POINTS,
    Q_CAP_FEED,
    Q_SESSION,
    Q_COUNT
};

struct api_db {
    sqlite3 *db;
    sqlite3_stmt *st[Q_COUNT];
    struct api_db *next_free;
};

/* The server; defined here so the handlers can reach its parts. */
struct http_server {
    struct MHD_Daemon *mhd;
    int listen_fd;
    int port;
    struct http_hooks hooks;
    struct stream *stream;
    struct auth *auth;
    char database[512];
    char web_root[512];
    int web_fd; /* the web root, opened once; files are opened relative to it */
    char lang[8];
    bool secure_cookie;
    char hub_id[40];      /* CAP */
    char public_url[260]; /* CAP web_base: ends in '/', or empty */
    char cap_sender[136];
    char cap_sender_name[136];
    bool regional; /* mode regional: the region routes are the view */
    size_t body_max;
    /* read-only connection pool */
    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv;
    struct api_db *readers;
    size_t n_readers;
    struct api_db *pool_free;
    /* the read-write connection */
    pthread_mutex_t rw_mu;
    sqlite3 *rw;
    /* workers for slow routes (http.c) */
    pthread_mutex_t work_mu;
    pthread_cond_t work_cv, work_idle;
    struct conn_ctx *work_head, *work_tail;
    size_t work_queued, work_inflight;
    bool work_closed, work_stop;
    pthread_t workers[HTTP_WORKERS];
    int n_workers;
    /* counters for /metrics */
    atomic_uint_fast64_t by_status[600];
    atomic_uint_fast64_t login_failures, login_throttled, hook_timeouts;
};

struct api_req {
    struct http_server *srv;
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    char params[API_PARAMS_MAX][API_PARAM_LEN];
    const char *body; /* NUL-terminated; body_len bytes */
    size_t body_len;
    struct auth_identity who; /* role NONE when anonymous */
    char session_token[AUTH_TOKEN_HEX + 1];
    char addr[64]; /* the client's address, for throttling and the audit log */
};

struct api_reply {
    unsigned status;
    const char *ctype;
    char *body; /* malloc'd, owned by the reply */
    size_t len;
    struct MHD_Response *raw; /* a ready response (the stream); ctype and body unused */
    char set_cookie[256];
    char disposition[128];
    int retry_after_s;
};

typedef void (*api_handler)(struct api_req *rq, struct api_reply *rp);

/* --- Replies (http.c) --------------------------------------------------- */

/* Serializes doc (taking ownership) with <, > and & escaped as \u00XX, so a
 * JSON document is inert even if something renders it as HTML. */
void api_reply_json(struct api_reply *rp, unsigned status, cJSON *doc);
/* {"error": msg} with status. */
void api_error(struct api_reply *rp, unsigned status, const char *msg);
/* Takes ownership of body (malloc'd). */
void api_reply_body(struct api_reply *rp, unsigned status, const char *ctype, char *body, size_t len);

/* A query-string argument, or NULL. */
const char *api_arg(struct api_req *rq, const char *key);
/* Parses an integer argument; returns 0 (absent: *out = def), or -EINVAL. */
int api_arg_i64(struct api_req *rq, const char *key, int64_t lo, int64_t hi, int64_t def, int64_t *out);
/* Parses the body as a JSON object; on failure replies 400 and returns NULL. */
cJSON *api_body_object(struct api_req *rq, struct api_reply *rp);
/* A string member of obj, or NULL when missing or not a string. */
const char *api_json_str(const cJSON *obj, const char *key);

/* Wall-clock Unix milliseconds. */
int64_t api_now_ms(void);

/* --- Database (api_db.c) ------------------------------------------------ */

/* Opens the read-write connection (creating api_tokens) and n read-only
 * ones. Returns 0 or a negative errno, logged. */
int api_db_open(struct http_server *srv, size_t n_readers);
void api_db_close(struct http_server *srv);
/* Borrows a read-only connection, waiting if all are busy. */
struct api_db *api_db_get(struct http_server *srv);
void api_db_put(struct http_server *srv, struct api_db *db);
/* The statement, reset with bindings cleared, or NULL (logged). */
sqlite3_stmt *api_stmt(struct api_db *db, enum api_query q);
/* Copies text column i into a cJSON string member (empty for NULL). */
void api_col_str(cJSON *obj, const char *key, sqlite3_stmt *q, int i);
void api_col_int(cJSON *obj, const char *key, sqlite3_stmt *q, int i);
/* Runs one write on the read-write connection (binds are "s"=text,
 * "i"=int64 per character of types). Returns changes (>= 0) or -EEXIST
 * (constraint), -EIO. */
int api_rw_exec(struct http_server *srv, const char *sql, const char *types, ...);
/* Like api_rw_exec, and *rowid gets the inserted row's id. */
int api_rw_insert(struct http_server *srv, int64_t *rowid, const char *sql, const char *types, ...);
/* Appends to the audit log; failures are logged, never fatal. */
void api_audit(struct http_server *srv, const char *who, const char *action, const char *detail);

/* --- Handlers ------------------------------------------------------------ */

/* api_read.c */
void api_health(struct api_req *rq, struct api_reply *rp);
void api_sites(struct api_req *rq, struct api_reply *rp);
void api_zones(struct api_req *rq, struct api_reply *rp);
void api_households(struct api_req *rq, struct api_reply *rp);
void api_nodes(struct api_req *rq, struct api_reply *rp);
void api_node_get(struct api_req *rq, struct api_reply *rp);
void api_node_readings(struct api_req *rq, struct api_reply *rp);
void api_incidents(struct api_req *rq, struct api_reply *rp);
void api_incident_get(struct api_req *rq, struct api_reply *rp);
void api_incident_ack(struct api_req *rq, struct api_reply *rp);
void api_incident_clear(struct api_req *rq, struct api_reply *rp);
void api_zone_drill(struct api_req *rq, struct api_reply *rp);
void api_troubles(struct api_req *rq, struct api_reply *rp);
void api_stream(struct api_req *rq, struct api_reply *rp);

/* api_report.c */
void api_readiness(struct api_req *rq, struct api_reply *rp);
void api_report_monthly(struct api_req *rq, struct api_reply *rp);
/* Scores every zone of site (NULL: every site) into a JSON array of site
 * objects with their zones. Returns NULL on a database error. */
cJSON *api_readiness_json(struct api_db *db, const char *site, int64_t now_ms);

/* api_users.c */
void api_login(struct api_req *rq, struct api_reply *rp);
void api_logout(struct api_req *rq, struct api_reply *rp);
void api_whoami(struct api_req *rq, struct api_reply *rp);
void api_users(struct api_req *rq, struct api_reply *rp);
void api_user_add(struct api_req *rq, struct api_reply *rp);
void api_user_remove(struct api_req *rq, struct api_reply *rp);
void api_user_role(struct api_req *rq, struct api_reply *rp);
void api_user_password(struct api_req *rq, struct api_reply *rp);
void api_tokens(struct api_req *rq, struct api_reply *rp);
void api_token_add(struct api_req *rq, struct api_reply *rp);
void api_token_remove(struct api_req *rq, struct api_reply *rp);
/* Looks up an API token (Authorization: Bearer). Returns 0 with id filled,
 * -ENOENT when unknown. */
int api_token_identity(struct http_server *srv, const char *token, struct auth_identity *id);

/* api_cap.c: CAP 1.2 alerts (docs/cap.md) */
void api_incident_cap(struct api_req *rq, struct api_reply *rp);
void api_cap_feed(struct api_req *rq, struct api_reply *rp);

/* api_region.c: a regional hub's view of its areas (docs/federation.md) */
void api_region(struct api_req *rq, struct api_reply *rp);
void api_region_incidents(struct api_req *rq, struct api_reply *rp);
void api_region_cap(struct api_req *rq, struct api_reply *rp);
void api_region_cap_feed(struct api_req *rq, struct api_reply *rp);

/* api_tech.c: commissioning tests and the technician's view */
void api_node_test(struct api_req *rq, struct api_reply *rp);
void api_node_tests(struct api_req *rq, struct api_reply *rp);
void api_tech(struct api_req *rq, struct api_reply *rp);

/* The /metrics text (http.c). */
void api_metrics(struct api_req *rq, struct api_reply *rp);

#endif
