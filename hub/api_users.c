/*
 * api_users.c - logging in and out, who am I, users (admin only) and API
 * tokens. Passwords are checked and hashed through auth.h (Argon2id, a
 * bounded number at a time); user rows are written through the read-write
 * connection with the same columns and rules as firewatchctl (hub/store.c),
 * and every change, and every login attempt, lands in the audit log. The
 * last admin can be neither removed nor demoted, so the hub can never lock
 * its administrators out.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

#define LAST_ADMIN_GUARD "(role != 'admin' OR (SELECT count(*) FROM users WHERE role = 'admin') > 1)"

static void set_cookie(struct api_req *rq, struct api_reply *rp, const char *token, int max_age)
{
    snprintf(rp->set_cookie, sizeof rp->set_cookie, "%s=%s; HttpOnly; SameSite=Strict; Path=/; Max-Age=%d%s",
             API_SESSION_COOKIE, token, max_age, rq->srv->secure_cookie ? "; Secure" : "");
}

static cJSON *identity_json(struct api_req *rq, const struct auth_identity *id)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user", id->user);
    cJSON_AddStringToObject(o, "role", auth_role_name(id->role));
    if (!id->bearer)
        cJSON_AddStringToObject(o, "csrf", id->csrf);
    cJSON_AddBoolToObject(o, "token", id->bearer);
    cJSON_AddStringToObject(o, "lang", rq->srv->lang);
    if (id->expires_ms)
        cJSON_AddNumberToObject(o, "expires_ms", (double)id->expires_ms);
    return o;
}

void api_login(struct api_req *rq, struct api_reply *rp)
{
    struct http_server *srv = rq->srv;
    cJSON *body = api_body_object(rq, rp);
    if (!body)
        return;
    const char *user = api_json_str(body, "user");
    const char *pw = api_json_str(body, "password");
    if (!user || !pw || !*user || strlen(user) > AUTH_USER_MAX || strlen(pw) > AUTH_PASSWORD_MAX) {
        cJSON_Delete(body);
        api_error(rp, 400, "user and password are required");
        return;
    }
    int64_t now = api_now_ms();
    int retry = 0;
    if (auth_throttle_check(srv->auth, user, rq->addr, now, &retry) < 0) {
        atomic_fetch_add(&srv->login_throttled, 1);
        rp->retry_after_s = retry;
        char msg[96];
        snprintf(msg, sizeof msg, "too many failed logins; try again in %d s", retry);
        cJSON_Delete(body);
        api_error(rp, 429, msg);
        return;
    }
    char hash[AUTH_HASH_MAX] = "";
    enum auth_role role = AUTH_ROLE_NONE;
    struct api_db *db = api_db_get(srv);
    sqlite3_stmt *q = api_stmt(db, Q_USER_GET);
    int rc = SQLITE_ERROR;
    if (q) {
        sqlite3_bind_text(q, 1, user, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            const unsigned char *h = sqlite3_column_text(q, 0);
            snprintf(hash, sizeof hash, "%s", h ? (const char *)h : "");
            role = auth_role_parse((const char *)sqlite3_column_text(q, 1));
        }
        sqlite3_reset(q);
    }
    api_db_put(srv, db);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        cJSON_Delete(body);
        api_error(rp, 500, "database error");
        return;
    }
    int v = auth_verify_password(srv->auth, rc == SQLITE_ROW ? hash : NULL, pw);
    if (v == -EBUSY) {
        cJSON_Delete(body);
        rp->retry_after_s = 2;
        api_error(rp, 503, "the hub is busy checking other logins; try again");
        return;
    }
    if (v != 0 || role == AUTH_ROLE_NONE) {
        auth_throttle_fail(srv->auth, user, rq->addr, now);
        atomic_fetch_add(&srv->login_failures, 1);
        char detail[128];
        snprintf(detail, sizeof detail, "from %s", rq->addr);
        api_audit(srv, user, "login.failed", detail);
        cJSON_Delete(body);
        api_error(rp, 401, "wrong user name or password");
        return;
    }
    auth_throttle_success(srv->auth, user, rq->addr);
    char token[AUTH_TOKEN_HEX + 1], csrf[AUTH_TOKEN_HEX + 1];
    auth_session_new(srv->auth, user, role, now, token, csrf);
    /* Kept in the database too, so a restart signs nobody out (http.c). */
    char dig[AUTH_TOKEN_HEX + 1];
    auth_token_digest(token, dig, sizeof dig);
    api_rw_exec(srv, "DELETE FROM sessions WHERE created_ms < ?1", "i", now - auth_session_max_ms(srv->auth));
    if (api_rw_exec(srv, "INSERT INTO sessions(digest, user, csrf, created_ms) VALUES (?1, ?2, ?3, ?4)",
                    "sssi", dig, user, csrf, now) < 0) {
        auth_session_end(srv->auth, token);
        cJSON_Delete(body);
        api_error(rp, 500, "the session could not be stored");
        return;
    }
    struct auth_identity id;
    auth_session_get(srv->auth, token, now, &id);
    set_cookie(rq, rp, token, 7 * 86400);
    char detail[128];
    snprintf(detail, sizeof detail, "from %s", rq->addr);
    api_audit(srv, user, "login", detail);
    cJSON_Delete(body);
    api_reply_json(rp, 200, identity_json(rq, &id));
}

void api_logout(struct api_req *rq, struct api_reply *rp)
{
    if (rq->session_token[0]) {
        char dig[AUTH_TOKEN_HEX + 1];
        auth_token_digest(rq->session_token, dig, sizeof dig);
        api_rw_exec(rq->srv, "DELETE FROM sessions WHERE digest = ?1", "s", dig);
        auth_session_end(rq->srv->auth, rq->session_token);
    }
    set_cookie(rq, rp, "", 0);
    api_audit(rq->srv, rq->who.user, "logout", "");
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddBoolToObject(doc, "ok", true);
    api_reply_json(rp, 200, doc);
}

void api_whoami(struct api_req *rq, struct api_reply *rp)
{
    api_reply_json(rp, 200, identity_json(rq, &rq->who));
}

/* --- Users ---------------------------------------------------------------- */

void api_users(struct api_req *rq, struct api_reply *rp)
{
    struct api_db *db = api_db_get(rq->srv);
    sqlite3_stmt *q = api_stmt(db, Q_USERS);
    cJSON *arr = cJSON_CreateArray();
    int rc = q ? SQLITE_ROW : SQLITE_ERROR;
    while (q && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        api_col_str(o, "name", q, 0);
        api_col_str(o, "role", q, 1);
        api_col_int(o, "created_ms", q, 2);
        cJSON_AddItemToArray(arr, o);
    }
    api_db_put(rq->srv, db);
    if (rc != SQLITE_DONE) {
        cJSON_Delete(arr);
        api_error(rp, 500, "database error");
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToObject(doc, "users", arr);
    api_reply_json(rp, 200, doc);
}

/* Hashes a new password, replying on failure. Returns 0 or -1. */
static int new_hash(struct api_req *rq, struct api_reply *rp, const char *pw, char *hash, size_t size)
{
    size_t n = pw ? strlen(pw) : 0;
    if (n < AUTH_PASSWORD_MIN || n > AUTH_PASSWORD_MAX) {
        char msg[96];
        snprintf(msg, sizeof msg, "a password has %d to %d characters", AUTH_PASSWORD_MIN, AUTH_PASSWORD_MAX);
        api_error(rp, 400, msg);
        return -1;
    }
    int rc = auth_hash_password(rq->srv->auth, pw, hash, size);
    if (rc == -EBUSY) {
        rp->retry_after_s = 2;
        api_error(rp, 503, "the hub is busy hashing passwords; try again");
        return -1;
    }
    if (rc < 0) {
        api_error(rp, 500, "cannot hash the password");
        return -1;
    }
    return 0;
}

static bool user_exists(struct http_server *srv, const char *name)
{
    struct api_db *db = api_db_get(srv);
    sqlite3_stmt *q = api_stmt(db, Q_USER_GET);
    bool found = false;
    if (q) {
        sqlite3_bind_text(q, 1, name, -1, SQLITE_TRANSIENT);
        found = sqlite3_step(q) == SQLITE_ROW;
        sqlite3_reset(q);
    }
    api_db_put(srv, db);
    return found;
}

void api_user_add(struct api_req *rq, struct api_reply *rp)
{
    cJSON *body = api_body_object(rq, rp);
    if (!body)
        return;
    const char *name = api_json_str(body, "name");
    const char *role = api_json_str(body, "role");
    const char *pw = api_json_str(body, "password");
    char hash[AUTH_HASH_MAX];
    if (!auth_user_valid(name)) {
        api_error(rp, 400, "a user name has 1-63 of A-Z a-z 0-9 . _ - @");
    } else if (auth_role_parse(role) == AUTH_ROLE_NONE) {
        api_error(rp, 400, "role is watch, technician or admin");
    } else if (new_hash(rq, rp, pw, hash, sizeof hash) == 0) {
        int rc =
            api_rw_exec(rq->srv, "INSERT INTO users(name, role, pwhash, created_ms) VALUES (?1, ?2, ?3, ?4)",
                        "sssi", name, role, hash, api_now_ms());
        if (rc == -EEXIST) {
            api_error(rp, 409, "a user with this name exists");
        } else if (rc < 0) {
            api_error(rp, 500, "database error");
        } else {
            char detail[96];
            snprintf(detail, sizeof detail, "%s as %s", name, role);
            api_audit(rq->srv, rq->who.user, "user.add", detail);
            cJSON *doc = cJSON_CreateObject();
            cJSON_AddStringToObject(doc, "name", name);
            cJSON_AddStringToObject(doc, "role", role);
            api_reply_json(rp, 201, doc);
        }
    }
    cJSON_Delete(body);
}

void api_user_remove(struct api_req *rq, struct api_reply *rp)
{
    const char *name = rq->params[0];
    if (!auth_user_valid(name)) {
        api_error(rp, 400, "bad user name");
        return;
    }
    int rc = api_rw_exec(rq->srv, "DELETE FROM users WHERE name = ?1 AND " LAST_ADMIN_GUARD, "s", name);
    if (rc < 0) {
        api_error(rp, 500, "database error");
        return;
    }
    if (rc == 0) {
        bool exists = user_exists(rq->srv, name);
        api_error(rp, exists ? 409 : 404, exists ? "the last admin cannot be removed" : "no such user");
        return;
    }
    auth_sessions_update_user(rq->srv->auth, name, AUTH_ROLE_NONE);
    api_audit(rq->srv, rq->who.user, "user.remove", name);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddBoolToObject(doc, "ok", true);
    api_reply_json(rp, 200, doc);
}

void api_user_role(struct api_req *rq, struct api_reply *rp)
{
    const char *name = rq->params[0];
    cJSON *body = api_body_object(rq, rp);
    if (!body)
        return;
    const char *role = api_json_str(body, "role");
    enum auth_role r = auth_role_parse(role);
    if (!auth_user_valid(name) || r == AUTH_ROLE_NONE) {
        cJSON_Delete(body);
        api_error(rp, 400, "role is watch, technician or admin");
        return;
    }
    int rc = api_rw_exec(
        rq->srv, "UPDATE users SET role = ?2 WHERE name = ?1 AND (?2 = 'admin' OR " LAST_ADMIN_GUARD ")",
        "ss", name, role);
    if (rc < 0) {
        api_error(rp, 500, "database error");
    } else if (rc == 0) {
        bool exists = user_exists(rq->srv, name);
        api_error(rp, exists ? 409 : 404, exists ? "the last admin cannot be demoted" : "no such user");
    } else {
        auth_sessions_update_user(rq->srv->auth, name, r);
        char detail[96];
        snprintf(detail, sizeof detail, "%s to %s", name, role);
        api_audit(rq->srv, rq->who.user, "user.role", detail);
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "name", name);
        cJSON_AddStringToObject(doc, "role", role);
        api_reply_json(rp, 200, doc);
    }
    cJSON_Delete(body);
}

void api_user_password(struct api_req *rq, struct api_reply *rp)
{
    const char *name = rq->params[0];
    cJSON *body = api_body_object(rq, rp);
    if (!body)
        return;
    char hash[AUTH_HASH_MAX];
    if (!auth_user_valid(name)) {
        api_error(rp, 400, "bad user name");
    } else if (new_hash(rq, rp, api_json_str(body, "password"), hash, sizeof hash) == 0) {
        int rc = api_rw_exec(rq->srv, "UPDATE users SET pwhash = ?2 WHERE name = ?1", "ss", name, hash);
        if (rc < 0) {
            api_error(rp, 500, "database error");
        } else if (rc == 0) {
            api_error(rp, 404, "no such user");
        } else {
            /* Whoever knew the old password is logged out (the admin doing
             * this to their own account keeps this session). */
            if (strcmp(name, rq->who.user) != 0) {
                auth_sessions_update_user(rq->srv->auth, name, AUTH_ROLE_NONE);
            } else if (rq->session_token[0]) {
                /* The database dropped every session of the user with the
                 * old password (trigger users_pw): keep this one's row. */
                char dig[AUTH_TOKEN_HEX + 1];
                auth_token_digest(rq->session_token, dig, sizeof dig);
                api_rw_exec(
                    rq->srv,
                    "INSERT OR REPLACE INTO sessions(digest, user, csrf, created_ms) VALUES (?1, ?2, ?3, ?4)",
                    "sssi", dig, name, rq->who.csrf, api_now_ms());
            }
            api_audit(rq->srv, rq->who.user, "user.password", name);
            cJSON *doc = cJSON_CreateObject();
            cJSON_AddBoolToObject(doc, "ok", true);
            api_reply_json(rp, 200, doc);
        }
    }
    cJSON_Delete(body);
}

/* --- API tokens ----------------------------------------------------------- */

int api_token_identity(struct http_server *srv, const char *token, struct auth_identity *id)
{
    size_t n = strlen(token);
    if (n != AUTH_API_TOKEN_LEN || strncmp(token, AUTH_API_TOKEN_PREFIX, 4) != 0)
        return -ENOENT;
    for (size_t i = 4; i < n; i++)
        if (!((token[i] >= '0' && token[i] <= '9') || (token[i] >= 'a' && token[i] <= 'f')))
            return -ENOENT;
    char digest[AUTH_TOKEN_HEX + 1];
    auth_token_digest(token, digest, sizeof digest);
    struct api_db *db = api_db_get(srv);
    sqlite3_stmt *q = api_stmt(db, Q_TOKEN_LOOKUP);
    int rc = SQLITE_ERROR;
    if (q) {
        /* Looked up by digest through the UNIQUE index: the secret itself is
         * never compared, so there is no timing to learn from. */
        sqlite3_bind_text(q, 1, digest, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            memset(id, 0, sizeof *id);
            snprintf(id->user, sizeof id->user, "%s", (const char *)sqlite3_column_text(q, 0));
            id->role = auth_role_parse((const char *)sqlite3_column_text(q, 1));
            id->bearer = true;
        }
        sqlite3_reset(q);
    }
    api_db_put(srv, db);
    if (rc != SQLITE_ROW || id->role == AUTH_ROLE_NONE)
        return -ENOENT;
    api_rw_exec(srv, "UPDATE api_tokens SET last_used_ms = ?2 WHERE hash = ?1 AND last_used_ms < ?2 - 60000",
                "si", digest, api_now_ms());
    return 0;
}

void api_tokens(struct api_req *rq, struct api_reply *rp)
{
    bool all = rq->who.role == AUTH_ROLE_ADMIN && api_arg(rq, "all");
    struct api_db *db = api_db_get(rq->srv);
    sqlite3_stmt *q = api_stmt(db, Q_TOKENS);
    cJSON *arr = cJSON_CreateArray();
    int rc = q ? SQLITE_ROW : SQLITE_ERROR;
    if (q && !all)
        sqlite3_bind_text(q, 1, rq->who.user, -1, SQLITE_TRANSIENT);
    while (q && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        api_col_int(o, "id", q, 0);
        api_col_str(o, "user", q, 1);
        api_col_str(o, "name", q, 2);
        api_col_int(o, "created_ms", q, 3);
        api_col_int(o, "last_used_ms", q, 4);
        cJSON_AddItemToArray(arr, o);
    }
    api_db_put(rq->srv, db);
    if (rc != SQLITE_DONE) {
        cJSON_Delete(arr);
        api_error(rp, 500, "database error");
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToObject(doc, "tokens", arr);
    api_reply_json(rp, 200, doc);
}

void api_token_add(struct api_req *rq, struct api_reply *rp)
{
    cJSON *body = api_body_object(rq, rp);
    if (!body)
        return;
    const char *name = api_json_str(body, "name");
    if (!name || !*name || strlen(name) > 64) {
        cJSON_Delete(body);
        api_error(rp, 400, "name (1-64 characters) says what the token is for");
        return;
    }
    char token[AUTH_API_TOKEN_LEN + 1], digest[AUTH_TOKEN_HEX + 1];
    auth_api_token_new(token, sizeof token);
    auth_token_digest(token, digest, sizeof digest);
    int64_t id = 0;
    int rc = api_rw_insert(rq->srv, &id,
                           "INSERT INTO api_tokens(user, name, hash, created_ms) VALUES (?1, ?2, ?3, ?4)",
                           "sssi", rq->who.user, name, digest, api_now_ms());
    if (rc <= 0) {
        cJSON_Delete(body);
        api_error(rp, 500, "database error");
        return;
    }
    char detail[128];
    snprintf(detail, sizeof detail, "token %lld: %s", (long long)id, name);
    api_audit(rq->srv, rq->who.user, "token.add", detail);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddNumberToObject(doc, "id", (double)id);
    cJSON_AddStringToObject(doc, "name", name);
    cJSON_AddStringToObject(doc, "token", token);
    cJSON_Delete(body);
    api_reply_json(rp, 201, doc);
}

void api_token_remove(struct api_req *rq, struct api_reply *rp)
{
    char *end;
    errno = 0;
    long long id = strtoll(rq->params[0], &end, 10);
    if (errno || *end || id <= 0) {
        api_error(rp, 400, "token ids are positive integers");
        return;
    }
    int rc = api_rw_exec(rq->srv, "DELETE FROM api_tokens WHERE id = ?1 AND (user = ?2 OR ?3 = 1)", "isi",
                         (int64_t)id, rq->who.user, (int64_t)(rq->who.role == AUTH_ROLE_ADMIN));
    if (rc < 0) {
        api_error(rp, 500, "database error");
        return;
    }
    if (rc == 0) {
        api_error(rp, 404, "no such token of yours");
        return;
    }
    char detail[64];
    snprintf(detail, sizeof detail, "token %lld", id);
    api_audit(rq->srv, rq->who.user, "token.remove", detail);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddBoolToObject(doc, "ok", true);
    api_reply_json(rp, 200, doc);
}
