/*
 * api_tech.c - the technician's routes: commissioning tests from the
 * dashboard, and the technician's view (hub/techview.h).
 *
 *   POST /api/v1/nodes/<id>/test    body {"timeout_s": N} (optional, 1-600)
 *                                   202 {"test", "node", "state": "running", "timeout_s"}
 *   GET  /api/v1/nodes/<id>/tests   the last 20 tests, newest first:
 *                                   [{"test", "by", "asked_ms", "done_ms", "state", "reason"}]
 *                                   state running, pass or fail
 *   GET  /api/v1/tech[?zone=Z]      what `firewatchctl --json tech` prints
 *
 * A test is queued exactly as `firewatchctl node test` queues it: a
 * "selftest" row in the commands table (the zone column names the node, the
 * incident column carries the timeout). The hub's main loop picks it up
 * within a second, publishes the selftest command and answers the row when
 * the node's test event comes or the time is up. So the route needs no hook
 * into the daemon and answers at once with 202; the dashboard polls .../tests
 * for the outcome. The read queries are prepared per request on a pooled
 * read-only connection rather than in api_db.c's table: technician pages are
 * rare next to the dashboard's own queries.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "techview.h"

#define TEST_TIMEOUT_DEFAULT_S 30
#define TEST_TIMEOUT_MAX_S 600
#define TESTS_LISTED 20

static bool node_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

/* 1: in service, 0: decommissioned, -ENOENT: no such node, -EIO. */
static int node_state(struct http_server *srv, const char *id)
{
    struct api_db *db = api_db_get(srv);
    sqlite3_stmt *q = NULL;
    int rc = -EIO;
    if (sqlite3_prepare_v2(db->db, "SELECT decommissioned_ms = 0 FROM nodes WHERE id = ?1", -1, &q, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
        int s = sqlite3_step(q);
        rc = s == SQLITE_ROW ? sqlite3_column_int(q, 0) : s == SQLITE_DONE ? -ENOENT : -EIO;
    }
    sqlite3_finalize(q);
    api_db_put(srv, db);
    return rc;
}

void api_node_test(struct api_req *rq, struct api_reply *rp)
{
    const char *node = rq->params[0];
    if (!node_id_ok(node)) {
        api_error(rp, 400, "node ids are lower-case letters, digits and '-'");
        return;
    }
    int64_t timeout = TEST_TIMEOUT_DEFAULT_S;
    if (rq->body_len > 0) {
        cJSON *body = api_body_object(rq, rp);
        if (!body)
            return;
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(body, "timeout_s");
        bool bad = t && (!cJSON_IsNumber(t) || t->valuedouble < 1 || t->valuedouble > TEST_TIMEOUT_MAX_S);
        if (t && !bad)
            timeout = (int64_t)t->valuedouble;
        cJSON_Delete(body);
        if (bad) {
            api_error(rp, 400, "timeout_s must be 1 to 600 seconds");
            return;
        }
    }
    int st = node_state(rq->srv, node);
    if (st < 0) {
        api_error(rp, st == -ENOENT ? 404 : 500, st == -ENOENT ? "no such node" : "database error");
        return;
    }
    if (st == 0) {
        api_error(rp, 409, "the node is decommissioned");
        return;
    }
    int64_t id = 0;
    int rc = api_rw_insert(rq->srv, &id,
                           "INSERT INTO commands(action, incident_id, zone_id, who, created_ms) "
                           "VALUES ('selftest', ?1, ?2, ?3, ?4)",
                           "issi", timeout, node, rq->who.user, api_now_ms());
    if (rc <= 0) {
        api_error(rp, 500, "cannot queue the test");
        return;
    }
    api_audit(rq->srv, rq->who.user, "node test", node);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddNumberToObject(doc, "test", (double)id);
    cJSON_AddStringToObject(doc, "node", node);
    cJSON_AddStringToObject(doc, "state", "running");
    cJSON_AddNumberToObject(doc, "timeout_s", (double)timeout);
    api_reply_json(rp, 202, doc);
}

void api_node_tests(struct api_req *rq, struct api_reply *rp)
{
    const char *node = rq->params[0];
    if (!node_id_ok(node)) {
        api_error(rp, 400, "node ids are lower-case letters, digits and '-'");
        return;
    }
    struct api_db *db = api_db_get(rq->srv);
    sqlite3_stmt *q = NULL;
    cJSON *arr = cJSON_CreateArray();
    int rc = sqlite3_prepare_v2(db->db,
                                "SELECT id, who, asked_ms, COALESCE(done_ms, 0), result FROM node_tests "
                                "WHERE node_id = ?1 ORDER BY id DESC LIMIT ?2",
                                -1, &q, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(q, 1, node, -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 2, TESTS_LISTED);
        while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
            cJSON *o = cJSON_CreateObject();
            const unsigned char *res = sqlite3_column_text(q, 4);
            const char *r = res ? (const char *)res : "";
            bool done = sqlite3_column_int64(q, 3) > 0;
            bool pass = strncmp(r, "pass", 4) == 0;
            const char *reason = pass ? r + 4 : strncmp(r, "fail: ", 6) == 0 ? r + 6 : r;
            while (*reason == ' ')
                reason++;
            api_col_int(o, "test", q, 0);
            api_col_str(o, "by", q, 1);
            api_col_int(o, "asked_ms", q, 2);
            api_col_int(o, "done_ms", q, 3);
            cJSON_AddStringToObject(o, "state", !done ? "running" : pass ? "pass" : "fail");
            cJSON_AddStringToObject(o, "reason", done ? reason : "");
            cJSON_AddItemToArray(arr, o);
        }
    }
    sqlite3_finalize(q);
    api_db_put(rq->srv, db);
    if (rc != SQLITE_DONE) {
        cJSON_Delete(arr);
        api_error(rp, 500, "database error");
        return;
    }
    api_reply_json(rp, 200, arr);
}

void api_tech(struct api_req *rq, struct api_reply *rp)
{
    const char *zone = api_arg(rq, "zone");
    if (zone && !node_id_ok(zone)) {
        api_error(rp, 400, "zone ids are lower-case letters, digits and '-'");
        return;
    }
    struct api_db *db = api_db_get(rq->srv);
    int err = 0;
    cJSON *arr = techview_collect(db->db, api_now_ms(), zone, &err);
    api_db_put(rq->srv, db);
    if (!arr) {
        api_error(rp, 500, "database error");
        return;
    }
    api_reply_json(rp, 200, arr);
}
