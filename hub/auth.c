/*
 * auth.c - see auth.h. Sessions and throttle counts are small arrays under
 * one mutex each, searched linearly: a hub has tens of users, and both
 * arrays are bounded (the oldest entry is recycled when one is full). The
 * hashing bound is a counting semaphore built from a mutex and a condition
 * variable on the monotonic clock, so a wait has a deadline.
 */
#include "auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#define THROTTLE_MAX 4096
#define KEY_MAX 72

struct session {
    bool used;
    unsigned char digest[32]; /* BLAKE2b of the cookie token */
    char user[AUTH_USER_MAX + 1];
    enum auth_role role;
    char csrf[AUTH_TOKEN_HEX + 1];
    int64_t created_ms, expires_ms;
};

struct throttle {
    char key[KEY_MAX]; /* "u:<user>" or "a:<address>"; empty when free */
    int failures;
    int64_t locked_until_ms;
    int64_t last_ms;
};

struct auth {
    struct auth_config cfg;
    pthread_mutex_t mu; /* sessions and throttles */
    struct session *sessions;
    struct throttle *thr;
    pthread_mutex_t hash_mu;
    pthread_cond_t hash_cv;
    int hash_busy;
    char dummy_hash[crypto_pwhash_STRBYTES];
};

static void to_hex(const unsigned char *b, size_t n, char *out, size_t size)
{
    sodium_bin2hex(out, size, b, n);
}

/* Takes a hashing slot, waiting at most hash_wait_ms. Returns 0 or -EBUSY. */
static int slot_get(struct auth *a)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += a->cfg.hash_wait_ms / 1000;
    dl.tv_nsec += (long)(a->cfg.hash_wait_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&a->hash_mu);
    int rc = 0;
    while (a->hash_busy >= a->cfg.hash_concurrency && rc == 0)
        rc = pthread_cond_timedwait(&a->hash_cv, &a->hash_mu, &dl);
    if (a->hash_busy < a->cfg.hash_concurrency) {
        a->hash_busy++;
        rc = 0;
    } else {
        rc = -EBUSY;
    }
    pthread_mutex_unlock(&a->hash_mu);
    return rc;
}

static void slot_put(struct auth *a)
{
    pthread_mutex_lock(&a->hash_mu);
    a->hash_busy--;
    pthread_cond_signal(&a->hash_cv);
    pthread_mutex_unlock(&a->hash_mu);
}

struct auth *auth_new(const struct auth_config *cfg)
{
    if (sodium_init() < 0) {
        errno = EIO;
        return NULL;
    }
    struct auth *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->cfg = cfg ? *cfg : (struct auth_config){0};
    struct auth_config *c = &a->cfg;
    if (c->session_idle_s <= 0)
        c->session_idle_s = 12 * 3600;
    if (c->session_max_s <= 0)
        c->session_max_s = 7 * 86400;
    if (c->sessions_max == 0)
        c->sessions_max = 4096;
    if (c->user_fail_limit <= 0)
        c->user_fail_limit = 5;
    if (c->addr_fail_limit <= 0)
        c->addr_fail_limit = 20;
    if (c->lockout_base_s <= 0)
        c->lockout_base_s = 30;
    if (c->lockout_max_s <= 0)
        c->lockout_max_s = 900;
    if (c->hash_concurrency <= 0)
        c->hash_concurrency = 2;
    if (c->hash_wait_ms <= 0)
        c->hash_wait_ms = 10000;
    if (c->opslimit == 0)
        c->opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
    if (c->memlimit == 0)
        c->memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    a->sessions = calloc(c->sessions_max, sizeof *a->sessions);
    a->thr = calloc(THROTTLE_MAX, sizeof *a->thr);
    if (!a->sessions || !a->thr) {
        free(a->sessions);
        free(a->thr);
        free(a);
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->hash_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->hash_cv, &ca);
    pthread_condattr_destroy(&ca);
    /* The dummy that unknown users are verified against: a hash of random
     * bytes with the same cost, so a miss takes as long as a wrong password. */
    unsigned char rnd[16];
    char pw[33];
    randombytes_buf(rnd, sizeof rnd);
    to_hex(rnd, sizeof rnd, pw, sizeof pw);
    if (crypto_pwhash_str(a->dummy_hash, pw, strlen(pw), c->opslimit, c->memlimit) != 0) {
        auth_free(a);
        errno = ENOMEM;
        return NULL;
    }
    return a;
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    sodium_memzero(a->sessions, a->cfg.sessions_max * sizeof *a->sessions);
    free(a->sessions);
    free(a->thr);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->hash_mu);
    pthread_cond_destroy(&a->hash_cv);
    free(a);
}

/* --- Passwords ---------------------------------------------------------- */

int auth_hash_password(struct auth *a, const char *password, char *out, size_t out_size)
{
    size_t n = password ? strlen(password) : 0;
    if (n < AUTH_PASSWORD_MIN || n > AUTH_PASSWORD_MAX || out_size < crypto_pwhash_STRBYTES)
        return -EINVAL;
    if (slot_get(a) < 0)
        return -EBUSY;
    int rc = crypto_pwhash_str(out, password, n, a->cfg.opslimit, a->cfg.memlimit);
    slot_put(a);
    return rc == 0 ? 0 : -ENOMEM;
}

int auth_verify_password(struct auth *a, const char *hash, const char *password)
{
    size_t n = password ? strlen(password) : 0;
    bool known = hash && *hash;
    if (slot_get(a) < 0)
        return -EBUSY;
    int rc = crypto_pwhash_str_verify(known ? hash : a->dummy_hash, password ? password : "",
                                      n > AUTH_PASSWORD_MAX ? AUTH_PASSWORD_MAX : n);
    slot_put(a);
    return known && rc == 0 && n <= AUTH_PASSWORD_MAX ? 0 : -EACCES;
}

/* --- Throttling --------------------------------------------------------- */

/* Finds the entry for key, or makes one by recycling the least recently
 * used when create is set. Callers hold mu. */
static struct throttle *thr_find(struct auth *a, const char *key, bool create)
{
    struct throttle *free_slot = NULL, *oldest = NULL;
    for (size_t i = 0; i < THROTTLE_MAX; i++) {
        struct throttle *t = &a->thr[i];
        if (t->key[0] == '\0') {
            if (!free_slot)
                free_slot = t;
            continue;
        }
        if (strcmp(t->key, key) == 0)
            return t;
        if (!oldest || t->last_ms < oldest->last_ms)
            oldest = t;
    }
    if (!create)
        return NULL;
    struct throttle *t = free_slot ? free_slot : oldest;
    memset(t, 0, sizeof *t);
    snprintf(t->key, sizeof t->key, "%s", key);
    return t;
}

static void key_of(char *out, size_t size, char kind, const char *v)
{
    snprintf(out, size, "%c:%s", kind, v ? v : "");
}

int auth_throttle_check(struct auth *a, const char *user, const char *addr, int64_t now_ms, int *retry_s)
{
    char ku[KEY_MAX], ka[KEY_MAX];
    key_of(ku, sizeof ku, 'u', user);
    key_of(ka, sizeof ka, 'a', addr);
    int64_t until = 0;
    pthread_mutex_lock(&a->mu);
    const struct throttle *t = thr_find(a, ku, false);
    if (t && t->locked_until_ms > until)
        until = t->locked_until_ms;
    t = thr_find(a, ka, false);
    if (t && t->locked_until_ms > until)
        until = t->locked_until_ms;
    pthread_mutex_unlock(&a->mu);
    if (until > now_ms) {
        if (retry_s)
            *retry_s = (int)((until - now_ms + 999) / 1000);
        return -EAGAIN;
    }
    return 0;
}

static void fail_one(struct auth *a, const char *key, int limit, int64_t now_ms)
{
    struct throttle *t = thr_find(a, key, true);
    t->failures++;
    t->last_ms = now_ms;
    if (t->failures >= limit) {
        int over = t->failures - limit; /* 0 for the failure that reaches the limit */
        int64_t lock = (int64_t)a->cfg.lockout_base_s * 1000;
        for (int i = 0; i < over && lock < (int64_t)a->cfg.lockout_max_s * 1000; i++)
            lock *= 2;
        if (lock > (int64_t)a->cfg.lockout_max_s * 1000)
            lock = (int64_t)a->cfg.lockout_max_s * 1000;
        t->locked_until_ms = now_ms + lock;
    }
}

void auth_throttle_fail(struct auth *a, const char *user, const char *addr, int64_t now_ms)
{
    char ku[KEY_MAX], ka[KEY_MAX];
    key_of(ku, sizeof ku, 'u', user);
    key_of(ka, sizeof ka, 'a', addr);
    pthread_mutex_lock(&a->mu);
    fail_one(a, ku, a->cfg.user_fail_limit, now_ms);
    fail_one(a, ka, a->cfg.addr_fail_limit, now_ms);
    pthread_mutex_unlock(&a->mu);
}

void auth_throttle_success(struct auth *a, const char *user, const char *addr)
{
    char ku[KEY_MAX], ka[KEY_MAX];
    key_of(ku, sizeof ku, 'u', user);
    key_of(ka, sizeof ka, 'a', addr);
    pthread_mutex_lock(&a->mu);
    struct throttle *t = thr_find(a, ku, false);
    if (t)
        memset(t, 0, sizeof *t);
    t = thr_find(a, ka, false);
    if (t)
        memset(t, 0, sizeof *t);
    pthread_mutex_unlock(&a->mu);
}

void auth_throttle_reset(struct auth *a)
{
    pthread_mutex_lock(&a->mu);
    memset(a->thr, 0, THROTTLE_MAX * sizeof *a->thr);
    pthread_mutex_unlock(&a->mu);
}

/* --- Sessions ----------------------------------------------------------- */

static void digest(const char *token, unsigned char out[32])
{
    crypto_generichash(out, 32, (const unsigned char *)token, strlen(token), NULL, 0);
}

static bool token_shape_ok(const char *token)
{
    if (!token || strlen(token) != AUTH_TOKEN_HEX)
        return false;
    for (size_t i = 0; i < AUTH_TOKEN_HEX; i++)
        if (!((token[i] >= '0' && token[i] <= '9') || (token[i] >= 'a' && token[i] <= 'f')))
            return false;
    return true;
}

/* Puts a session in a free slot (or the oldest one's). Returns 0 or -ENOMEM. */
static int session_put(struct auth *a, const char *token, const char *user, enum auth_role role,
                       const char *csrf, int64_t created_ms, int64_t now_ms)
{
    pthread_mutex_lock(&a->mu);
    struct session *slot = NULL;
    for (size_t i = 0; i < a->cfg.sessions_max; i++) {
        struct session *s = &a->sessions[i];
        if (!s->used || s->expires_ms <= now_ms) {
            slot = s;
            break;
        }
        if (!slot || s->created_ms < slot->created_ms)
            slot = s; /* full: the oldest session gives way */
    }
    if (!slot) {
        pthread_mutex_unlock(&a->mu);
        return -ENOMEM;
    }
    memset(slot, 0, sizeof *slot);
    slot->used = true;
    digest(token, slot->digest);
    snprintf(slot->user, sizeof slot->user, "%s", user);
    slot->role = role;
    snprintf(slot->csrf, sizeof slot->csrf, "%s", csrf);
    slot->created_ms = created_ms;
    int64_t idle = now_ms + (int64_t)a->cfg.session_idle_s * 1000;
    int64_t cap = created_ms + (int64_t)a->cfg.session_max_s * 1000;
    slot->expires_ms = idle < cap ? idle : cap;
    pthread_mutex_unlock(&a->mu);
    return 0;
}

int auth_session_new(struct auth *a, const char *user, enum auth_role role, int64_t now_ms, char *token,
                     char *csrf)
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    to_hex(raw, sizeof raw, token, AUTH_TOKEN_HEX + 1);
    randombytes_buf(raw, sizeof raw);
    to_hex(raw, sizeof raw, csrf, AUTH_TOKEN_HEX + 1);
    sodium_memzero(raw, sizeof raw);
    return session_put(a, token, user, role, csrf, now_ms, now_ms);
}

int auth_session_restore(struct auth *a, const char *token, const char *user, enum auth_role role,
                         const char *csrf, int64_t created_ms, int64_t now_ms)
{
    if (!token_shape_ok(token) || !csrf || strlen(csrf) != AUTH_TOKEN_HEX || role == AUTH_ROLE_NONE)
        return -EINVAL;
    if (created_ms + (int64_t)a->cfg.session_max_s * 1000 <= now_ms)
        return -ETIMEDOUT;
    return session_put(a, token, user, role, csrf, created_ms, now_ms);
}

int64_t auth_session_max_ms(const struct auth *a)
{
    return (int64_t)a->cfg.session_max_s * 1000;
}

/* Finds a live session by token. Callers hold mu. */
static struct session *session_find(struct auth *a, const char *token, int64_t now_ms)
{
    if (!token_shape_ok(token))
        return NULL;
    unsigned char d[32];
    digest(token, d);
    for (size_t i = 0; i < a->cfg.sessions_max; i++) {
        struct session *s = &a->sessions[i];
        if (s->used && sodium_memcmp(s->digest, d, sizeof d) == 0) {
            if (s->expires_ms <= now_ms) {
                memset(s, 0, sizeof *s);
                return NULL;
            }
            return s;
        }
    }
    return NULL;
}

int auth_session_get(struct auth *a, const char *token, int64_t now_ms, struct auth_identity *out)
{
    pthread_mutex_lock(&a->mu);
    struct session *s = session_find(a, token, now_ms);
    if (s) {
        int64_t idle = now_ms + (int64_t)a->cfg.session_idle_s * 1000;
        int64_t cap = s->created_ms + (int64_t)a->cfg.session_max_s * 1000;
        s->expires_ms = idle < cap ? idle : cap;
        memset(out, 0, sizeof *out);
        snprintf(out->user, sizeof out->user, "%s", s->user);
        out->role = s->role;
        snprintf(out->csrf, sizeof out->csrf, "%s", s->csrf);
        out->expires_ms = s->expires_ms;
    }
    pthread_mutex_unlock(&a->mu);
    return s ? 0 : -ENOENT;
}

int auth_session_end(struct auth *a, const char *token)
{
    pthread_mutex_lock(&a->mu);
    struct session *s = session_find(a, token, INT64_MIN);
    if (s)
        sodium_memzero(s, sizeof *s);
    pthread_mutex_unlock(&a->mu);
    return s ? 0 : -ENOENT;
}

void auth_sessions_update_user(struct auth *a, const char *user, enum auth_role role)
{
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < a->cfg.sessions_max; i++) {
        struct session *s = &a->sessions[i];
        if (!s->used || strcmp(s->user, user) != 0)
            continue;
        if (role == AUTH_ROLE_NONE)
            sodium_memzero(s, sizeof *s);
        else
            s->role = role;
    }
    pthread_mutex_unlock(&a->mu);
}

size_t auth_session_count(struct auth *a)
{
    size_t n = 0;
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < a->cfg.sessions_max; i++)
        n += a->sessions[i].used;
    pthread_mutex_unlock(&a->mu);
    return n;
}

bool auth_csrf_ok(const struct auth_identity *id, const char *header)
{
    if (id->bearer)
        return true;
    if (!header || strlen(header) != AUTH_TOKEN_HEX || strlen(id->csrf) != AUTH_TOKEN_HEX)
        return false;
    return sodium_memcmp(header, id->csrf, AUTH_TOKEN_HEX) == 0;
}

/* --- API tokens and helpers --------------------------------------------- */

void auth_api_token_new(char *out, size_t size)
{
    unsigned char raw[32];
    char hex[AUTH_TOKEN_HEX + 1];
    randombytes_buf(raw, sizeof raw);
    to_hex(raw, sizeof raw, hex, sizeof hex);
    snprintf(out, size, "%s%s", AUTH_API_TOKEN_PREFIX, hex);
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(hex, sizeof hex);
}

void auth_token_digest(const char *token, char *out, size_t size)
{
    unsigned char d[32];
    digest(token, d);
    to_hex(d, sizeof d, out, size);
}

static const char *const role_names[] = {
    [AUTH_ROLE_NONE] = "none",
    [AUTH_ROLE_WATCH] = "watch",
    [AUTH_ROLE_TECHNICIAN] = "technician",
    [AUTH_ROLE_ADMIN] = "admin",
};

enum auth_role auth_role_parse(const char *s)
{
    for (int r = AUTH_ROLE_WATCH; r <= AUTH_ROLE_ADMIN; r++)
        if (s && strcmp(s, role_names[r]) == 0)
            return (enum auth_role)r;
    return AUTH_ROLE_NONE;
}

const char *auth_role_name(enum auth_role r)
{
    return r >= AUTH_ROLE_NONE && r <= AUTH_ROLE_ADMIN ? role_names[r] : "none";
}

bool auth_user_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > AUTH_USER_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-' || c == '@'))
            return false;
    }
    return true;
}
