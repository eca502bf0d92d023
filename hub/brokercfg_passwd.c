/*
 * brokercfg_passwd.c - broker passwords: generation, Mosquitto 2.0 "$7$"
 * hashes, and the password file.
 *
 * Mosquitto 2.0 stores "user:$7$<iterations>$<base64 salt>$<base64 hash>"
 * where hash = PBKDF2-HMAC-SHA512(password, salt, iterations, 64 bytes). We
 * compute it ourselves rather than run mosquitto_passwd: that tool rewrites
 * the file in place (a reloading broker can read half a file), copies it to
 * a world-readable "<file>.tmp" on the way, and takes the password on argv
 * (-b) or twice on stdin. libsodium has HMAC-SHA512 but no PBKDF2, so the
 * PBKDF2 loop (RFC 8018 section 5.2, one block since dkLen = hLen) is
 * written here over libsodium's HMAC; it is checked against openssl's KDF
 * and against hashes made by mosquitto_passwd in tests/broker/test_brokercfg.c.
 * The reasons are in docs/internals/broker-security.md.
 */
#include "brokercfg.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "brokercfg_internal.h"

#define SALT_LEN 12 /* bytes, as mosquitto_passwd */
#define HASH_LEN crypto_auth_hmacsha512_BYTES
#define ITERATIONS_MAX 10000000L
#define PASSWD_FILE_MAX (64L * 1024 * 1024) /* refuse to read a larger password file */
#define LINE_MAX_LEN 1024                   /* longest password file line we keep or parse */

static const char url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int sodium_ready(void)
{
    return sodium_init() < 0 ? -EIO : 0;
}

int brokercfg_password_generate(char *buf, size_t size)
{
    if (!buf || size < BROKERCFG_PASSWORD_SIZE)
        return -ENOSPC;
    if (sodium_ready() != 0)
        return -EIO;
    unsigned char raw[BROKERCFG_PASSWORD_LEN];
    randombytes_buf(raw, sizeof raw);
    /* 64 symbols divide 256 exactly: taking 6 bits of each byte is unbiased. */
    for (size_t i = 0; i < BROKERCFG_PASSWORD_LEN; i++)
        buf[i] = url_alphabet[raw[i] & 63u];
    buf[BROKERCFG_PASSWORD_LEN] = '\0';
    sodium_memzero(raw, sizeof raw);
    return 0;
}

/* PBKDF2-HMAC-SHA512 with a 64-byte output: a single block, T1 = U1 ^ ... ^ Uc. */
static void pbkdf2_sha512(const char *password, size_t plen, const unsigned char *salt, size_t slen,
                          unsigned long iterations, unsigned char out[HASH_LEN])
{
    crypto_auth_hmacsha512_state keyed, st;
    unsigned char u[HASH_LEN];
    static const unsigned char block1[4] = {0, 0, 0, 1};

    crypto_auth_hmacsha512_init(&keyed, (const unsigned char *)password, plen);
    st = keyed;
    crypto_auth_hmacsha512_update(&st, salt, slen);
    crypto_auth_hmacsha512_update(&st, block1, sizeof block1);
    crypto_auth_hmacsha512_final(&st, u);
    memcpy(out, u, HASH_LEN);
    for (unsigned long i = 1; i < iterations; i++) {
        st = keyed; /* the keyed state is reused: no rehashing of the key per round */
        crypto_auth_hmacsha512_update(&st, u, HASH_LEN);
        crypto_auth_hmacsha512_final(&st, u);
        for (size_t j = 0; j < HASH_LEN; j++)
            out[j] ^= u[j];
    }
    sodium_memzero(u, sizeof u);
    sodium_memzero(&keyed, sizeof keyed);
    sodium_memzero(&st, sizeof st);
}

static bool password_ok(const char *password)
{
    if (!password)
        return false;
    size_t len = strlen(password);
    return len > 0 && len <= BROKERCFG_PASSWORD_MAX;
}

int brokercfg_password_hash(const char *password, char *out, size_t size)
{
    if (!password_ok(password))
        return -EINVAL;
    if (!out || size < BROKERCFG_HASH_SIZE)
        return -ENOSPC;
    if (sodium_ready() != 0)
        return -EIO;
    unsigned char salt[SALT_LEN], hash[HASH_LEN];
    char salt64[sodium_base64_ENCODED_LEN(SALT_LEN, sodium_base64_VARIANT_ORIGINAL)];
    char hash64[sodium_base64_ENCODED_LEN(HASH_LEN, sodium_base64_VARIANT_ORIGINAL)];
    randombytes_buf(salt, sizeof salt);
    pbkdf2_sha512(password, strlen(password), salt, sizeof salt, BROKERCFG_PBKDF2_ITERATIONS, hash);
    sodium_bin2base64(salt64, sizeof salt64, salt, sizeof salt, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(hash64, sizeof hash64, hash, sizeof hash, sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(hash, sizeof hash);
    int n = snprintf(out, size, "$7$%d$%s$%s", BROKERCFG_PBKDF2_ITERATIONS, salt64, hash64);
    return n > 0 && (size_t)n < size ? 0 : -ENOSPC;
}

int brokercfg_password_verify(const char *hash, const char *password)
{
    if (!hash || !password)
        return -EINVAL;
    if (strncmp(hash, "$7$", 3) != 0)
        return -EINVAL;
    char *end;
    errno = 0;
    long iterations = strtol(hash + 3, &end, 10);
    if (errno != 0 || end == hash + 3 || *end != '$' || iterations < 1 || iterations > ITERATIONS_MAX)
        return -EINVAL;
    const char *salt64 = end + 1;
    const char *dollar = strchr(salt64, '$');
    if (!dollar)
        return -EINVAL;
    const char *hash64 = dollar + 1;
    size_t hash64_len = strcspn(hash64, "\r\n");

    unsigned char salt[64], want[HASH_LEN + 1], got[HASH_LEN];
    size_t salt_len = 0, want_len = 0;
    if (sodium_ready() != 0)
        return -EIO;
    if (sodium_base642bin(salt, sizeof salt, salt64, (size_t)(dollar - salt64), NULL, &salt_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        salt_len == 0)
        return -EINVAL;
    if (sodium_base642bin(want, sizeof want, hash64, hash64_len, NULL, &want_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        want_len != HASH_LEN)
        return -EINVAL;
    pbkdf2_sha512(password, strlen(password), salt, salt_len, (unsigned long)iterations, got);
    int rc = sodium_memcmp(got, want, HASH_LEN) == 0 ? 0 : -EACCES;
    sodium_memzero(got, sizeof got);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The password file                                                        */

/* True when line (without its newline) is user's entry. */
static bool line_is_user(const char *line, const char *user)
{
    size_t ulen = strlen(user);
    return strncmp(line, user, ulen) == 0 && line[ulen] == ':';
}

/* Reads the next line of f into buf without the newline. Returns 1 for a
 * line, 0 at the end, -EFBIG for a line longer than the buffer, -EIO. */
static int next_line(FILE *f, char *buf, size_t size)
{
    if (!fgets(buf, (int)size, f))
        return ferror(f) ? -EIO : 0;
    size_t len = strlen(buf);
    if (len > 0 && buf[len - 1] == '\n')
        buf[len - 1] = '\0';
    else if (!feof(f))
        return -EFBIG;
    return 1;
}

/* Copies the password file at path into a->f, leaving out user's line and
 * writing new_entry in its place (or at the end; none when NULL). Sets
 * *found when user had a line. A missing file reads as empty. */
static int rewrite(struct brokercfg_atomic *a, const char *path, const char *user, const char *new_entry,
                   bool *found)
{
    *found = false;
    FILE *in = fopen(path, "re");
    if (!in && errno != ENOENT)
        return -errno;
    char line[LINE_MAX_LEN];
    int rc = 0;
    long total = 0;
    while (in && (rc = next_line(in, line, sizeof line)) == 1) {
        total += (long)strlen(line) + 1;
        if (total > PASSWD_FILE_MAX) {
            rc = -EFBIG;
            break;
        }
        if (line_is_user(line, user)) {
            if (!*found && new_entry)
                fprintf(a->f, "%s:%s\n", user, new_entry);
            *found = true;
            continue;
        }
        fprintf(a->f, "%s\n", line);
    }
    if (in)
        fclose(in);
    sodium_memzero(line, sizeof line);
    if (rc < 0)
        return rc;
    if (!*found && new_entry)
        fprintf(a->f, "%s:%s\n", user, new_entry);
    return ferror(a->f) ? -EIO : 0;
}

int brokercfg_passwd_set(const char *path, const char *user, const char *password)
{
    if (!path || !brokercfg_user_valid(user) || !password_ok(password))
        return -EINVAL;
    char hash[BROKERCFG_HASH_SIZE];
    int rc = brokercfg_password_hash(password, hash, sizeof hash);
    if (rc != 0)
        return rc;
    int lock = brokercfg_lock(path);
    if (lock < 0)
        return lock;
    struct brokercfg_atomic a;
    rc = brokercfg_atomic_begin(&a, path, 0600);
    if (rc == 0) {
        bool found;
        rc = rewrite(&a, path, user, hash, &found);
        if (rc == 0)
            rc = brokercfg_atomic_commit(&a);
        else
            brokercfg_atomic_abort(&a);
    }
    brokercfg_unlock(lock);
    return rc;
}

int brokercfg_passwd_remove(const char *path, const char *user)
{
    if (!path || !brokercfg_user_valid(user))
        return -EINVAL;
    int lock = brokercfg_lock(path);
    if (lock < 0)
        return lock;
    struct brokercfg_atomic a;
    int rc = brokercfg_atomic_begin(&a, path, 0600);
    if (rc == 0) {
        bool found = false;
        rc = rewrite(&a, path, user, NULL, &found);
        if (rc == 0 && !found)
            rc = -ENOENT;
        if (rc == 0)
            rc = brokercfg_atomic_commit(&a);
        else
            brokercfg_atomic_abort(&a);
    }
    brokercfg_unlock(lock);
    return rc;
}

int brokercfg_passwd_check(const char *path, const char *user, const char *password)
{
    if (!path || !brokercfg_user_valid(user) || !password)
        return -EINVAL;
    FILE *in = fopen(path, "re");
    if (!in)
        return -errno;
    char line[LINE_MAX_LEN];
    int rc, result = -ENOENT;
    while ((rc = next_line(in, line, sizeof line)) == 1) {
        if (line_is_user(line, user)) {
            result = brokercfg_password_verify(line + strlen(user) + 1, password);
            break;
        }
    }
    fclose(in);
    if (rc < 0)
        return rc;
    return result;
}
