/*
 * auth.h - who is asking: passwords, sessions, CSRF tokens, login
 * throttling and API token hashing for the hub's HTTP face.
 *
 * Passwords are Argon2id strings from libsodium's crypto_pwhash_str; hashing
 * and verifying are bounded to a few at a time (each takes tens of MiB and a
 * good part of a second), and a caller that cannot get a slot in time gets
 * -EBUSY instead of queueing without end. Sessions live in memory: a
 * random 256-bit token (the cookie) of which only a BLAKE2b hash is kept,
 * with an idle and an absolute expiry, the user's role and a per-session
 * CSRF token that must come back in X-CSRF-Token on every state-changing
 * request. (The HTTP side also keeps each session's digest in the database
 * and restores it here after a restart: auth_session_restore.) Failed logins are counted per user name and
 * per client address; past a threshold each further failure doubles a lockout. API tokens are random too, so
 * a fast keyed-free hash is enough to store them (Argon2id protects guessable secrets; a 256-bit random one
 * is not guessable).
 *
 * Everything here is thread-safe; time is passed in (now_ms) so the rules
 * are tested without waiting. Errors: 0 or a negative errno.
 */
#ifndef FIREWATCH_HUB_AUTH_H
#define FIREWATCH_HUB_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_USER_MAX 63     /* longest user name, without the NUL (as the store) */
#define AUTH_TOKEN_HEX 64    /* a 256-bit token as hex, without the NUL */
#define AUTH_HASH_MAX 128    /* crypto_pwhash_STRBYTES */
#define AUTH_PASSWORD_MIN 10 /* shortest password accepted for a new one */
#define AUTH_PASSWORD_MAX 256
#define AUTH_API_TOKEN_PREFIX "fwt_"
#define AUTH_API_TOKEN_LEN (4 + AUTH_TOKEN_HEX) /* prefix + hex, without the NUL */

enum auth_role { AUTH_ROLE_NONE, AUTH_ROLE_WATCH, AUTH_ROLE_TECHNICIAN, AUTH_ROLE_ADMIN };

struct auth_config {
    int session_idle_s;          /* 0: 12 hours */
    int session_max_s;           /* absolute lifetime; 0: 7 days */
    size_t sessions_max;         /* 0: 4096; the oldest is evicted beyond */
    int user_fail_limit;         /* failures per user before lockouts; 0: 5 */
    int addr_fail_limit;         /* failures per address before lockouts; 0: 20 */
    int lockout_base_s;          /* first lockout; 0: 30 s, doubling per further failure */
    int lockout_max_s;           /* 0: 15 minutes */
    int hash_concurrency;        /* Argon2id computations at once; 0: 2 */
    int hash_wait_ms;            /* wait for a slot at most; 0: 10 s */
    unsigned long long opslimit; /* 0: crypto_pwhash_OPSLIMIT_INTERACTIVE */
    size_t memlimit;             /* 0: crypto_pwhash_MEMLIMIT_INTERACTIVE */
};

/* Who a request is from. */
struct auth_identity {
    char user[AUTH_USER_MAX + 1];
    enum auth_role role;
    bool bearer;                   /* API token: no cookie, so no CSRF check */
    char csrf[AUTH_TOKEN_HEX + 1]; /* the session's CSRF token (empty for bearer) */
    int64_t expires_ms;
};

/* Creates the module; cfg may be NULL. Calls sodium_init. NULL with errno
 * ENOMEM or EIO (libsodium unusable). Free with auth_free. */
struct auth *auth_new(const struct auth_config *cfg);
void auth_free(struct auth *a);

/* --- Passwords ---------------------------------------------------------- */

/* Hashes password (AUTH_PASSWORD_MIN..MAX bytes) into out (AUTH_HASH_MAX).
 * Returns 0, -EINVAL (length), -EBUSY (no slot in time), -ENOMEM. */
int auth_hash_password(struct auth *a, const char *password, char *out, size_t out_size);

/* Checks password against hash. hash NULL or "" (unknown user) still costs a
 * full verification against a dummy, so timing does not reveal which users
 * exist. Returns 0 (match), -EACCES (no match), -EBUSY. */
int auth_verify_password(struct auth *a, const char *hash, const char *password);

/* --- Throttling --------------------------------------------------------- */

/* May user log in from addr now? Returns 0, or -EAGAIN with *retry_s set
 * (seconds until the longer of the two lockouts ends). */
int auth_throttle_check(struct auth *a, const char *user, const char *addr, int64_t now_ms, int *retry_s);
/* Records a failed attempt; a success resets the user's count (and the
 * address's, so one typo-prone user cannot lock a shared NAT out). */
void auth_throttle_fail(struct auth *a, const char *user, const char *addr, int64_t now_ms);
void auth_throttle_success(struct auth *a, const char *user, const char *addr);
/* Forgets every count (tests, and an admin's "unlock"). */
void auth_throttle_reset(struct auth *a);

/* --- Sessions ----------------------------------------------------------- */

/* Starts a session. token and csrf receive AUTH_TOKEN_HEX + 1 bytes each.
 * Returns 0 or -ENOMEM. */
int auth_session_new(struct auth *a, const char *user, enum auth_role role, int64_t now_ms, char *token,
                     char *csrf);
/* Brings back a session kept elsewhere (the hub's database, after a
 * restart) under its cookie token, with its CSRF token and creation time;
 * its idle expiry starts again at now_ms. Returns 0, -ETIMEDOUT (past its
 * absolute lifetime), -EINVAL (a malformed token, csrf or role) or
 * -ENOMEM. */
int auth_session_restore(struct auth *a, const char *token, const char *user, enum auth_role role,
                         const char *csrf, int64_t created_ms, int64_t now_ms);
/* The absolute lifetime of a session, ms. */
int64_t auth_session_max_ms(const struct auth *a);
/* Looks a cookie token up (constant-time compare of its hash) and extends
 * its idle expiry. Returns 0 with out filled, or -ENOENT (unknown, forged
 * or expired). */
int auth_session_get(struct auth *a, const char *token, int64_t now_ms, struct auth_identity *out);
/* Ends one session. Returns 0 or -ENOENT. */
int auth_session_end(struct auth *a, const char *token);
/* Ends every session of user (removed) or changes their role (role != NONE). */
void auth_sessions_update_user(struct auth *a, const char *user, enum auth_role role);
/* Sessions alive now. */
size_t auth_session_count(struct auth *a);

/* True when header equals the identity's CSRF token (constant time).
 * Bearer identities always pass: a script's request carries no cookie. */
bool auth_csrf_ok(const struct auth_identity *id, const char *header);

/* --- API tokens and helpers --------------------------------------------- */

/* Makes a new API token "fwt_<64 hex>" into out (AUTH_API_TOKEN_LEN + 1). */
void auth_api_token_new(char *out, size_t size);
/* The stored form of a token: BLAKE2b-256 as hex into out (AUTH_TOKEN_HEX + 1). */
void auth_token_digest(const char *token, char *out, size_t size);

/* "watch", "technician", "admin" and back; NONE for anything else. */
enum auth_role auth_role_parse(const char *s);
const char *auth_role_name(enum auth_role r);

/* A user name the store accepts: 1..63 of [A-Za-z0-9._@-]. */
bool auth_user_valid(const char *name);

#endif
