/*
 * brokercfg_tls.c - the private CA, the broker's certificate and the nodes'
 * client certificates, made with the openssl command-line tool.
 *
 * The tool is run directly (fork + execvp, no shell) with a small
 * configuration file of our own, so the result does not depend on the
 * system's openssl.cnf. Keys are EC P-256: small, fast on a Pi-class board,
 * and supported by every TLS stack a node runs. Each key and certificate is
 * made under a temporary name in a private scratch directory and renamed
 * into place, so a half-made pair never replaces a working one. Private
 * keys are 0600 (the child runs with umask 077), certificates 0644.
 */
#include "brokercfg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "brokercfg_internal.h"
#include "firewatch/protocol.h"

#define NAMES_MAX 32     /* subjectAltName entries for the server */
#define NAME_LEN_MAX 253 /* a DNS name */
#define CN_LEN_MAX 64    /* X.509 upper bound for a common name */
#define ARGV_MAX 40

int brokercfg_tls_path(char *buf, size_t size, const char *dir, const char *name)
{
    int n = snprintf(buf, size, "%s/%s", dir, name);
    return n >= 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

/* Runs argv (argv[0] looked up in PATH) with stdin and stdout on /dev/null
 * and stderr on /dev/null too (openssl is chatty even when it works).
 * Returns 0 when it exits 0, -ENOENT when it cannot be run, -EIO otherwise. */
static int run(char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        umask(077);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -errno;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 127 ? -ENOENT : -EIO;
}

/* A common name or CA name: [A-Za-z0-9 ._-]{1,64}, which -subj takes as is. */
static bool cn_ok(const char *s)
{
    size_t len = s ? strlen(s) : 0;
    if (len == 0 || len > CN_LEN_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ' ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool is_ip(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* A DNS name: labels of [A-Za-z0-9-], dots between, an optional leading "*.". */
static bool dns_ok(const char *s)
{
    size_t len = s ? strlen(s) : 0;
    if (len == 0 || len > NAME_LEN_MAX)
        return false;
    size_t i = 0;
    if (len > 2 && s[0] == '*' && s[1] == '.')
        i = 2;
    size_t label = 0;
    for (; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

/* Makes dir (mode 0700) when it does not exist. */
static int ensure_dir(const char *dir, mode_t mode)
{
    if (mkdir(dir, mode) == 0 || errno == EEXIST)
        return 0;
    return -errno;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A scratch directory inside dir for one issuing run, with our openssl
 * configuration file written into it. */
struct scratch {
    char dir[PATH_MAX];
    char cnf[PATH_MAX];
    char key[PATH_MAX];
    char csr[PATH_MAX];
    char crt[PATH_MAX];
};

static int scratch_open(struct scratch *s, const char *dir, const char *san)
{
    memset(s, 0, sizeof *s);
    int n = snprintf(s->dir, sizeof s->dir, "%s/.issue-XXXXXX", dir);
    if (n < 0 || (size_t)n >= sizeof s->dir) {
        s->dir[0] = '\0';
        return -ENAMETOOLONG;
    }
    if (!mkdtemp(s->dir)) {
        int e = errno;
        s->dir[0] = '\0';
        return -e;
    }
    if (brokercfg_tls_path(s->cnf, sizeof s->cnf, s->dir, "openssl.cnf") != 0 ||
        brokercfg_tls_path(s->key, sizeof s->key, s->dir, "new.key") != 0 ||
        brokercfg_tls_path(s->csr, sizeof s->csr, s->dir, "new.csr") != 0 ||
        brokercfg_tls_path(s->crt, sizeof s->crt, s->dir, "new.crt") != 0)
        return -ENAMETOOLONG;
    FILE *f = fopen(s->cnf, "we");
    if (!f)
        return -errno;
    fprintf(f, "# written by brokercfg_tls.c for one openssl run\n"
               "[req]\n"
               "distinguished_name = dn\n"
               "[dn]\n"
               "[v3_ca]\n"
               "basicConstraints = critical,CA:TRUE,pathlen:0\n"
               "keyUsage = critical,keyCertSign,cRLSign\n"
               "subjectKeyIdentifier = hash\n"
               "[v3_server]\n"
               "basicConstraints = critical,CA:FALSE\n"
               "keyUsage = critical,digitalSignature\n"
               "extendedKeyUsage = serverAuth\n"
               "subjectKeyIdentifier = hash\n"
               "authorityKeyIdentifier = keyid\n");
    if (san)
        fprintf(f, "subjectAltName = %s\n", san);
    fprintf(f, "[v3_client]\n"
               "basicConstraints = critical,CA:FALSE\n"
               "keyUsage = critical,digitalSignature\n"
               "extendedKeyUsage = clientAuth\n"
               "subjectKeyIdentifier = hash\n"
               "authorityKeyIdentifier = keyid\n");
    return fclose(f) == 0 ? 0 : -EIO;
}

static void scratch_close(struct scratch *s)
{
    if (!s->dir[0])
        return;
    const char *files[] = {s->cnf, s->key, s->csr, s->crt};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (files[i][0])
            unlink(files[i]);
    rmdir(s->dir);
    s->dir[0] = '\0';
}

/* Moves the new key and certificate from the scratch directory into place,
 * key first (0600), then certificate (0644). */
static int install(struct scratch *s, const char *key_path, const char *crt_path)
{
    if (chmod(s->key, 0600) != 0 || chmod(s->crt, 0644) != 0)
        return -errno;
    if (rename(s->key, key_path) != 0 || rename(s->crt, crt_path) != 0)
        return -errno;
    return 0;
}

static void days_arg(char *buf, size_t size, int days, int fallback)
{
    snprintf(buf, size, "%d", days > 0 ? days : fallback);
}

int brokercfg_tls_create_ca(const char *dir, const char *cn, int days)
{
    if (!dir || !cn_ok(cn) || days < 0)
        return -EINVAL;
    char key[PATH_MAX], crt[PATH_MAX], subj[CN_LEN_MAX + 8], ndays[16];
    if (brokercfg_tls_path(key, sizeof key, dir, BROKERCFG_TLS_CA_KEY) != 0 ||
        brokercfg_tls_path(crt, sizeof crt, dir, BROKERCFG_TLS_CA_CERT) != 0)
        return -ENAMETOOLONG;
    int rc = ensure_dir(dir, 0700);
    if (rc != 0)
        return rc;
    if (exists(key) || exists(crt))
        return -EEXIST;
    snprintf(subj, sizeof subj, "/CN=%s", cn);
    days_arg(ndays, sizeof ndays, days, BROKERCFG_TLS_CA_DAYS);

    struct scratch s;
    rc = scratch_open(&s, dir, NULL);
    if (rc == 0) {
        char *argv[] = {"openssl",     "req",     "-x509",    "-new",
                        "-newkey",     "ec",      "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes",      "-sha256", "-days",    ndays,
                        "-subj",       subj,      "-config",  s.cnf,
                        "-extensions", "v3_ca",   "-keyout",  s.key,
                        "-out",        s.crt,     NULL};
        rc = run(argv);
    }
    if (rc == 0)
        rc = install(&s, key, crt);
    scratch_close(&s);
    return rc;
}

/* Signs s->csr with dir's CA into s->crt using extension section ext. */
static int sign(struct scratch *s, const char *dir, const char *ext, int days)
{
    char cakey[PATH_MAX], cacrt[PATH_MAX], ndays[16], serial[2 + 32 + 1];
    if (brokercfg_tls_path(cakey, sizeof cakey, dir, BROKERCFG_TLS_CA_KEY) != 0 ||
        brokercfg_tls_path(cacrt, sizeof cacrt, dir, BROKERCFG_TLS_CA_CERT) != 0)
        return -ENAMETOOLONG;
    if (!exists(cakey) || !exists(cacrt))
        return -ENOENT;
    days_arg(ndays, sizeof ndays, days, BROKERCFG_TLS_CERT_DAYS);
    /* A random 127-bit serial (top bit clear so it stays positive): no serial file to keep. */
    unsigned char raw[16];
    if (sodium_init() < 0)
        return -EIO;
    randombytes_buf(raw, sizeof raw);
    raw[0] &= 0x7f;
    raw[0] |= 0x01;
    memcpy(serial, "0x", 2);
    sodium_bin2hex(serial + 2, sizeof serial - 2, raw, sizeof raw);
    char *argv[] = {"openssl",  "x509", "-req",        "-in",       s->csr, "-CA",         cacrt,
                    "-CAkey",   cakey,  "-sha256",     "-days",     ndays,  "-set_serial", serial,
                    "-extfile", s->cnf, "-extensions", (char *)ext, "-out", s->crt,        NULL};
    return run(argv);
}

/* Makes a key and a CSR with common name cn in the scratch directory. */
static int request(struct scratch *s, const char *cn)
{
    char subj[CN_LEN_MAX + 8];
    snprintf(subj, sizeof subj, "/CN=%s", cn);
    char *argv[] = {"openssl", "req",   "-new", "-newkey", "ec",   "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes",  "-subj", subj,   "-config", s->cnf, "-keyout",  s->key,
                    "-out",    s->csr,  NULL};
    return run(argv);
}

int brokercfg_tls_create_server(const char *dir, const char *const *names, size_t n, int days)
{
    if (!dir || !names || n == 0 || n > NAMES_MAX || days < 0)
        return -EINVAL;
    /* subjectAltName = DNS:a,IP:b,... */
    char san[NAMES_MAX * (NAME_LEN_MAX + 5)];
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        bool ip = names[i] && is_ip(names[i]);
        if (!ip && !dns_ok(names[i]))
            return -EINVAL;
        int w = snprintf(san + used, sizeof san - used, "%s%s:%s", i ? "," : "", ip ? "IP" : "DNS", names[i]);
        if (w < 0 || (size_t)w >= sizeof san - used)
            return -EINVAL;
        used += (size_t)w;
    }
    const char *cn = cn_ok(names[0]) ? names[0] : "firewatch-broker";
    char key[PATH_MAX], crt[PATH_MAX];
    if (brokercfg_tls_path(key, sizeof key, dir, BROKERCFG_TLS_SERVER_KEY) != 0 ||
        brokercfg_tls_path(crt, sizeof crt, dir, BROKERCFG_TLS_SERVER_CERT) != 0)
        return -ENAMETOOLONG;

    struct scratch s;
    int rc = scratch_open(&s, dir, san);
    if (rc == 0)
        rc = request(&s, cn);
    if (rc == 0)
        rc = sign(&s, dir, "v3_server", days);
    if (rc == 0)
        rc = install(&s, key, crt);
    scratch_close(&s);
    return rc;
}

int brokercfg_tls_create_client(const char *dir, const char *node_id, int days)
{
    if (!dir || !node_id || !fw_id_valid(node_id) || days < 0)
        return -EINVAL;
    char cdir[PATH_MAX], key[PATH_MAX], crt[PATH_MAX], name[FW_ID_MAX + 8];
    if (brokercfg_tls_path(cdir, sizeof cdir, dir, BROKERCFG_TLS_CLIENT_DIR) != 0)
        return -ENAMETOOLONG;
    snprintf(name, sizeof name, "%s.key", node_id);
    if (brokercfg_tls_path(key, sizeof key, cdir, name) != 0)
        return -ENAMETOOLONG;
    snprintf(name, sizeof name, "%s.crt", node_id);
    if (brokercfg_tls_path(crt, sizeof crt, cdir, name) != 0)
        return -ENAMETOOLONG;
    int rc = ensure_dir(cdir, 0700);
    if (rc != 0)
        return rc;

    struct scratch s;
    rc = scratch_open(&s, dir, NULL);
    if (rc == 0)
        rc = request(&s, node_id);
    if (rc == 0)
        rc = sign(&s, dir, "v3_client", days);
    if (rc == 0)
        rc = install(&s, key, crt);
    scratch_close(&s);
    return rc;
}
