/*
 * test_conf.c - the shared config parser: every type, every refusal with
 * its file, line and key, and the example-file check.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "harness.h"

struct cfg {
    char broker[64];
    char password[32];
    int interval_s;
    bool tls;
    double ratio;
};

static const struct conf_option opts[] = {
    CONF_OPT_STR(struct cfg, broker, "broker", "tcp://127.0.0.1:1883", "broker URL"),
    CONF_OPT_STR(struct cfg, password, "password", "", "broker password"),
    CONF_OPT_INT(struct cfg, interval_s, "interval_s", 5, 3600, "60", "reading interval"),
    CONF_OPT_BOOL(struct cfg, tls, "tls", "false", "use TLS"),
    CONF_OPT_DOUBLE(struct cfg, ratio, "ratio", 0, 1, "0.5", "a ratio"),
};
#define NOPTS (sizeof opts / sizeof opts[0])

static int parse(const char *text, struct cfg *c, struct conf_error *err)
{
    CHECK_INT(conf_defaults(opts, NOPTS, c, err), 0);
    return conf_parse(text, strlen(text), "test.conf", opts, NOPTS, c, err);
}

static void test_defaults_and_values(void)
{
    struct cfg c;
    struct conf_error err;
    CHECK_INT(parse("", &c, &err), 0);
    CHECK_STR(c.broker, "tcp://127.0.0.1:1883");
    CHECK_INT(c.interval_s, 60);
    CHECK(!c.tls);
    CHECK(c.ratio == 0.5);

    const char *text = "# a comment\n\n   broker   ssl://hub.local:8883  \r\n"
                       "password  p#ss w0rd\ninterval_s 30\ntls yes\nratio 0.25";
    CHECK_INT(parse(text, &c, &err), 0);
    CHECK_STR(c.broker, "ssl://hub.local:8883");
    CHECK_STR(c.password, "p#ss w0rd"); /* '#' and spaces inside a value are kept */
    CHECK_INT(c.interval_s, 30);
    CHECK(c.tls);
    CHECK(c.ratio == 0.25);
    CHECK_INT(parse("password\n", &c, &err), 0); /* a key alone sets an empty string */
    CHECK_STR(c.password, "");
}

static void test_refusals(void)
{
    static const struct {
        const char *text;
        int line;
        const char *key;
        const char *msg_part;
    } rows[] = {
        {"bogus 1\n", 1, "bogus", "unknown option"},
        {"\n\ninterval_s 4\n", 3, "interval_s", "out of range"},
        {"interval_s 10x\n", 1, "interval_s", "not a whole number"},
        {"interval_s\n", 1, "interval_s", "not a whole number"},
        {"tls maybe\n", 1, "tls", "not true or false"},
        {"ratio 2\n", 1, "ratio", "out of range"},
        {"ratio nan\n", 1, "ratio", "not a number"},
        {"tls on\ntls off\n", 2, "tls", "set twice (first on line 1)"},
        {"password 0123456789012345678901234567890123\n", 1, "password", "longer than 31"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct cfg c;
        struct conf_error err;
        char buf[512];
        int rc = parse(rows[i].text, &c, &err);
        conf_error_text(&err, buf, sizeof buf);
        bool ok = rc == -EINVAL && err.line == rows[i].line && strcmp(err.key, rows[i].key) == 0 &&
                  strstr(err.msg, rows[i].msg_part) && strncmp(buf, "test.conf:", 10) == 0;
        th_report(ok, "refuses %s -> %s", rows[i].key, buf);
    }
}

static void test_long_line_and_nul(void)
{
    struct cfg c;
    struct conf_error err;
    char big[1100];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_INT(parse(big, &c, &err), -EINVAL);
    CHECK(strstr(err.msg, "longer than") != NULL);
    const char withnul[] = "tls on\0junk\n";
    CHECK_INT(conf_defaults(opts, NOPTS, &c, &err), 0);
    CHECK_INT(conf_parse(withnul, sizeof withnul - 1, "x", opts, NOPTS, &c, &err), -EINVAL);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_load_and_example_check(void)
{
    const char *dir = th_tmpdir("conf");
    char path[512], d[256];
    snprintf(d, sizeof d, "%s", dir);
    snprintf(path, sizeof path, "%s/x.conf", d);
    struct cfg c;
    struct conf_error err;

    CHECK_INT(conf_defaults(opts, NOPTS, &c, &err), 0);
    CHECK_INT(conf_load(path, opts, NOPTS, &c, &err), -ENOENT);
    CHECK(strstr(err.msg, "cannot read") != NULL);

    write_file(path, "# Example\n# broker is where nodes connect\n#broker tcp://127.0.0.1:1883\n"
                     "#password\n#interval_s 60\n#tls false\n#ratio 0.5\n");
    CHECK_INT(conf_check_example(path, opts, NOPTS, &err), 0);
    CHECK_INT(conf_load(path, opts, NOPTS, &c, &err), 0); /* all commented out: defaults */

    write_file(path, "#broker tcp://127.0.0.1:1883\n#interval_s 60\n#tls false\n#ratio 0.5\n");
    CHECK_INT(conf_check_example(path, opts, NOPTS, &err), -EINVAL);
    CHECK_STR(err.key, "password");

    write_file(path, "#broker tcp://x:1\n#password\n#interval_s 60\n#tls false\n#ratio 0.5\n");
    CHECK_INT(conf_check_example(path, opts, NOPTS, &err), -EINVAL);
    CHECK_STR(err.key, "broker");

    /* Blank lines count: the error names the file's real line. */
    write_file(path, "# header\n\n\n#password\n\n#broker tcp://x:1\n");
    CHECK_INT(conf_check_example(path, opts, NOPTS, &err), -EINVAL);
    CHECK_INT(err.line, 6);
    th_rmtree(d);
}

TH_MAIN(TH_TEST(test_defaults_and_values), TH_TEST(test_refusals), TH_TEST(test_long_line_and_nul),
        TH_TEST(test_load_and_example_check))
