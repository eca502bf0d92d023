/*
 * test_hubconf.c - the hub's option table: hub/hub.conf.example lists every
 * option with its default, and bad files are refused with file, line, key
 * and reason.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "hubconf.h"

static void test_example_in_step(void)
{
    struct conf_error err;
    char msg[512];
    int rc =
        conf_check_example(th_root_path("hub/hub.conf.example"), hubconf_options, hubconf_n_options, &err);
    if (rc != 0)
        th_fail(__FILE__, __LINE__, "%s", conf_error_text(&err, msg, sizeof msg));
}

static void test_example_parses_to_defaults(void)
{
    struct hub_config cfg;
    struct conf_error err;
    CHECK_INT(hubconf_load(th_root_path("hub/hub.conf.example"), &cfg, &err), 0);
    CHECK_STR(cfg.broker, "tcp://127.0.0.1:1883");
    CHECK_INT(cfg.retention_days, 14);
    CHECK_INT(cfg.verify_s, 20);
    CHECK_STR(cfg.http_listen, "127.0.0.1:8080");
    CHECK_STR(cfg.notify_command, "");
}

static void test_required_keys_present(void)
{
    static const char *const keys[] = {"broker",         "username", "password",
                                       "cafile",         "database", "http_listen",
                                       "retention_days", "verify_s", "notify_command"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        th_report(conf_find(hubconf_options, hubconf_n_options, keys[i]) != NULL, "option %s", keys[i]);
}

static void test_bad_files(void)
{
    static const struct {
        const char *text;
        int line;
        const char *key;
        const char *msg_part;
    } rows[] = {
        {"broker tcp://h:1\nverify_s 0\n", 2, "verify_s", "out of range"},
        {"retention_days x\n", 1, "retention_days", "whole number"},
        {"bogus 1\n", 1, "bogus", "unknown option"},
        {"broker ftp://x\n", 0, "broker", "tcp://"},
        {"database \n", 0, "database", "empty"},
        {"password secret\n", 0, "password", "username"},
        {"log_level loud\n", 0, "log_level", "error, warn"},
        {"verify_s 5\nverify_s 6\n", 2, "verify_s", "twice"},
    };
    const char *dir = th_tmpdir("hubconf");
    char path[512];
    snprintf(path, sizeof path, "%s/hub.conf", dir);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        FILE *f = fopen(path, "w");
        fputs(rows[i].text, f);
        fclose(f);
        struct hub_config cfg;
        struct conf_error err;
        char msg[512];
        int rc = hubconf_load(path, &cfg, &err);
        conf_error_text(&err, msg, sizeof msg);
        bool ok = rc == -EINVAL && err.line == rows[i].line && strcmp(err.key, rows[i].key) == 0 &&
                  strstr(msg, rows[i].msg_part) != NULL && strstr(msg, path) == msg;
        th_report(ok, "row %zu: %s", i, msg);
    }
    th_rmtree(dir);
}

static void test_missing_file(void)
{
    struct hub_config cfg;
    struct conf_error err;
    CHECK_INT(hubconf_load("/nonexistent/hub.conf", &cfg, &err), -ENOENT);
}

TH_MAIN(TH_TEST(test_example_in_step), TH_TEST(test_example_parses_to_defaults),
        TH_TEST(test_required_keys_present), TH_TEST(test_bad_files), TH_TEST(test_missing_file))
