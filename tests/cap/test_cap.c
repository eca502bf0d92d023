/*
 * test_cap.c - CAP 1.2 export (hub/cap.c): every state and kind of
 * incident, every geometry case and hostile names, each document checked
 * against the OASIS CAP 1.2 schema with xmllint and its key elements
 * compared exactly. The schema is $FW_SHARED/data/cap-v1.2.xsd
 * (scripts/run-tests.sh sets FW_SHARED); without it the schema checks are
 * reported as skipped and every other check still runs.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cap.h"
#include "harness.h"

#define T0 INT64_C(1733400000000) /* 2024-12-05T12:00:00Z */

static const struct cap_hub hub = {
    .hub_id = "ward7",
    .sender = "firewatch@ward7.example.org",
    .sender_name = "Ward 7 Firewatch",
    .web_base = "https://hub.example.org/",
};

/* Four households of alley 12 in Hanoi's old quarter, one inside the others. */
static const struct cap_point alley[] = {
    {21.0336, 105.8522}, {21.0340, 105.8530}, {21.0330, 105.8531}, {21.0335, 105.8527}, {21.0342, 105.8521},
};

/* ---- helpers ---------------------------------------------------------------- */

static const char *schema_path(void)
{
    static char path[512];
    const char *shared = getenv("FW_SHARED");
    if (!shared || !*shared)
        return NULL;
    snprintf(path, sizeof path, "%s/data/cap-v1.2.xsd", shared);
    return access(path, R_OK) == 0 ? path : NULL;
}

/* Runs xmllint on xml (against the CAP schema when schema is true). Returns
 * 1 valid, 0 invalid (xmllint's complaint printed), -1 skipped (no schema). */
static int xmllint_quiet(const char *xml, bool schema, const char *what, bool quiet)
{
    const char *xsd = schema ? schema_path() : NULL;
    if (schema && !xsd)
        return -1;
    const char *dir = th_tmpdir("cap");
    char file[600], log[600], cmd[2048];
    snprintf(file, sizeof file, "%s/doc.xml", dir);
    snprintf(log, sizeof log, "%s/xmllint.log", dir);
    FILE *f = fopen(file, "w");
    if (!f)
        return 0;
    fputs(xml, f);
    fclose(f);
    if (xsd)
        snprintf(cmd, sizeof cmd, "xmllint --noout --schema '%s' '%s' >'%s' 2>&1", xsd, file, log);
    else
        snprintf(cmd, sizeof cmd, "xmllint --noout '%s' >'%s' 2>&1", file, log);
    int rc = system(cmd);
    if (rc != 0 && !quiet) {
        printf("# xmllint refused %s:\n", what);
        FILE *l = fopen(log, "r");
        char line[512];
        while (l && fgets(line, sizeof line, l))
            printf("#   %s", line);
        if (l)
            fclose(l);
        printf("# document:\n%s\n", xml);
    }
    th_rmtree(dir);
    return rc == 0 ? 1 : 0;
}

static int xmllint(const char *xml, bool schema, const char *what)
{
    return xmllint_quiet(xml, schema, what, false);
}

/* Reports the schema check of xml as its own row. */
static void check_schema(const char *xml, const char *what)
{
    int v = xmllint(xml, true, what);
    if (v < 0)
        th_report(true, "%s: CAP schema # SKIP no CAP schema (set FW_SHARED to the shared directory)", what);
    else
        th_report(v == 1, "%s: valid against the CAP 1.2 schema", what);
}

/* The text of the first <tag> element in xml (after from, if given), in a
 * static buffer; "(none)" when absent. */
static const char *elem(const char *xml, const char *tag)
{
    static char out[4096];
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *a = strstr(xml, open);
    if (!a)
        return "(none)";
    a += strlen(open);
    const char *b = strstr(a, close);
    if (!b || (size_t)(b - a) >= sizeof out)
        return "(none)";
    memcpy(out, a, (size_t)(b - a));
    out[b - a] = '\0';
    return out;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* CAP rules the schema does not express: identifier and sender without
 * spaces, commas, '<' or '&'; a polygon closed with at least 4 pairs. */
static void check_cap_rules(const char *xml)
{
    const char *fields[] = {"identifier", "sender"};
    for (size_t i = 0; i < 2; i++) {
        const char *v = elem(xml, fields[i]);
        CHECK(strpbrk(v, " ,<&") == NULL);
    }
    if (strstr(xml, "<polygon>")) {
        char poly[4096];
        snprintf(poly, sizeof poly, "%s", elem(xml, "polygon"));
        int pairs = 1 + count(poly, " ");
        CHECK(pairs >= 4);
        const char *last = strrchr(poly, ' ');
        size_t first_len = strcspn(poly, " ");
        CHECK(last && strlen(last + 1) == first_len && strncmp(poly, last + 1, first_len) == 0);
    }
}

static struct cap_incident fire(enum incident_state state)
{
    struct cap_incident inc = {
        .id = 12,
        .kind = INCIDENT_FIRE,
        .state = state,
        .zone = "alley12",
        .zone_name = "Alley 12",
        .site_name = "Ward 7",
        .origin = "n-3f2a9c01",
        .address = "12/3 Hang Bac",
        .cause = FW_CAUSE_SMOKE,
        .opened_ms = T0,
        .points = alley,
        .n_points = sizeof alley / sizeof alley[0],
    };
    if (state >= INCIDENT_ALARM && state != INCIDENT_DISMISSED)
        inc.alarm_ms = T0 + 20000;
    if (state >= INCIDENT_ACKNOWLEDGED && state != INCIDENT_DISMISSED) {
        inc.ack_ms = T0 + 95000;
        inc.ack_by = "lan";
    }
    if (state == INCIDENT_CLEARED || state == INCIDENT_DISMISSED) {
        inc.closed_ms = state == INCIDENT_CLEARED ? T0 + 1800000 : T0 + 8000;
        inc.closed_by = state == INCIDENT_CLEARED ? "lan" : "n-3f2a9c01";
    }
    return inc;
}

/* ---- the state table ------------------------------------------------------- */

static const struct row {
    const char *name;
    enum incident_kind kind;
    enum incident_state state;
    bool test;
    bool immediate; /* escalated at once: no verifying message */
    const char *status, *msg_type, *urgency, *severity, *certainty, *response;
    const char *sent;       /* time of this message */
    const char *references; /* "(none)" or the exact list */
} rows[] = {
    {"fire verifying", INCIDENT_FIRE, INCIDENT_VERIFYING, false, false, "Actual", "Alert", "Immediate",
     "Severe", "Likely", "Prepare", "2024-12-05T12:00:00-00:00", "(none)"},
    {"fire alarm after verifying", INCIDENT_FIRE, INCIDENT_ALARM, false, false, "Actual", "Update",
     "Immediate", "Severe", "Observed", "Evacuate", "2024-12-05T12:00:20-00:00",
     "firewatch@ward7.example.org,firewatch-ward7-12-1,2024-12-05T12:00:00-00:00"},
    {"fire alarm at once", INCIDENT_FIRE, INCIDENT_ALARM, false, true, "Actual", "Alert", "Immediate",
     "Severe", "Observed", "Evacuate", "2024-12-05T12:00:00-00:00", "(none)"},
    {"fire acknowledged", INCIDENT_FIRE, INCIDENT_ACKNOWLEDGED, false, false, "Actual", "Update", "Immediate",
     "Severe", "Observed", "Evacuate", "2024-12-05T12:01:35-00:00",
     "firewatch@ward7.example.org,firewatch-ward7-12-1,2024-12-05T12:00:00-00:00 "
     "firewatch@ward7.example.org,firewatch-ward7-12-2,2024-12-05T12:00:20-00:00"},
    {"fire cleared", INCIDENT_FIRE, INCIDENT_CLEARED, false, false, "Actual", "Cancel", "Past", "Minor",
     "Observed", "AllClear", "2024-12-05T12:30:00-00:00",
     "firewatch@ward7.example.org,firewatch-ward7-12-1,2024-12-05T12:00:00-00:00 "
     "firewatch@ward7.example.org,firewatch-ward7-12-2,2024-12-05T12:00:20-00:00 "
     "firewatch@ward7.example.org,firewatch-ward7-12-3,2024-12-05T12:01:35-00:00"},
    {"fire dismissed", INCIDENT_FIRE, INCIDENT_DISMISSED, false, false, "Actual", "Cancel", "Past", "Minor",
     "Unlikely", "AllClear", "2024-12-05T12:00:08-00:00",
     "firewatch@ward7.example.org,firewatch-ward7-12-1,2024-12-05T12:00:00-00:00"},
    {"drill alarm", INCIDENT_DRILL, INCIDENT_ALARM, false, true, "Exercise", "Alert", "Immediate", "Severe",
     "Observed", "Evacuate", "2024-12-05T12:00:00-00:00", "(none)"},
    {"drill acknowledged", INCIDENT_DRILL, INCIDENT_ACKNOWLEDGED, false, true, "Exercise", "Update",
     "Immediate", "Severe", "Observed", "Evacuate", "2024-12-05T12:01:35-00:00",
     "firewatch@ward7.example.org,firewatch-ward7-12-2,2024-12-05T12:00:00-00:00"},
    {"drill cleared", INCIDENT_DRILL, INCIDENT_CLEARED, false, true, "Exercise", "Cancel", "Past", "Minor",
     "Observed", "AllClear", "2024-12-05T12:30:00-00:00",
     "firewatch@ward7.example.org,firewatch-ward7-12-2,2024-12-05T12:00:00-00:00 "
     "firewatch@ward7.example.org,firewatch-ward7-12-3,2024-12-05T12:01:35-00:00"},
    {"test incident verifying", INCIDENT_FIRE, INCIDENT_VERIFYING, true, false, "Test", "Alert", "Immediate",
     "Severe", "Likely", "Prepare", "2024-12-05T12:00:00-00:00", "(none)"},
    {"test drill alarm", INCIDENT_DRILL, INCIDENT_ALARM, true, true, "Test", "Alert", "Immediate", "Severe",
     "Observed", "Evacuate", "2024-12-05T12:00:00-00:00", "(none)"},
};

static void test_states(void)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *r = &rows[i];
        int f0 = th_failures();
        struct cap_incident inc = fire(r->state);
        inc.kind = r->kind;
        inc.test = r->test;
        if (r->kind == INCIDENT_DRILL) {
            inc.origin = "";
            inc.address = "";
            inc.cause = FW_CAUSE_NONE;
            inc.opened_by = "lan";
        }
        if (r->immediate && inc.alarm_ms)
            inc.alarm_ms = inc.opened_ms;
        size_t len = 0;
        char *xml = cap_alert_new(&hub, &inc, &len);
        CHECK(xml != NULL);
        if (!xml) {
            th_report(false, "%s: built", r->name);
            continue;
        }
        CHECK_INT(len, strlen(xml));
        char id[CAP_IDENTIFIER_MAX];
        CHECK(cap_identifier(&hub, &inc, id, sizeof id) > 0);
        CHECK_STR(elem(xml, "identifier"), id);
        CHECK_STR(elem(xml, "sender"), "firewatch@ward7.example.org");
        CHECK_STR(elem(xml, "sent"), r->sent);
        CHECK_STR(elem(xml, "status"), r->status);
        CHECK_STR(elem(xml, "msgType"), r->msg_type);
        CHECK_STR(elem(xml, "scope"), "Public");
        CHECK_STR(elem(xml, "references"), r->references);
        CHECK_STR(elem(xml, "incidents"), "firewatch-ward7-12");
        CHECK_STR(elem(xml, "category"), "Fire");
        CHECK_STR(elem(xml, "event"), "Fire");
        CHECK_STR(elem(xml, "urgency"), r->urgency);
        CHECK_STR(elem(xml, "severity"), r->severity);
        CHECK_STR(elem(xml, "certainty"), r->certainty);
        CHECK_STR(elem(xml, "responseType"), r->response);
        CHECK_STR(elem(xml, "onset"), "2024-12-05T12:00:00-00:00");
        CHECK_STR(elem(xml, "areaDesc"), "Alley 12, Ward 7");
        CHECK_STR(elem(xml, "web"), "https://hub.example.org/#incidents");
        CHECK(strstr(xml, "<valueName>firewatch:state</valueName>") != NULL);
        CHECK_STR(cap_urgency(r->state), r->urgency);
        CHECK_STR(cap_severity(r->state), r->severity);
        CHECK_STR(cap_certainty(r->state), r->certainty);
        CHECK_STR(cap_msg_type(&inc), r->msg_type);
        bool closing = r->state == INCIDENT_CLEARED || r->state == INCIDENT_DISMISSED;
        CHECK_INT(strstr(xml, "<note>") != NULL, closing);
        if (r->kind == INCIDENT_DRILL)
            CHECK(strncmp(elem(xml, "headline"), "Fire drill in Alley 12", 22) == 0);
        check_cap_rules(xml);
        th_report(th_failures() == f0, "%s: elements", r->name);
        check_schema(xml, r->name);
        if (i == 0 && schema_path()) {
            /* The schema check can fail: a status CAP does not know is refused. */
            char *bogus = strstr(xml, "<status>");
            memcpy(bogus + strlen("<status>"), "Bogus!", 6);
            th_report(xmllint_quiet(xml, true, "a bogus status", true) == 0,
                      "the schema check refuses an invalid alert");
        }
        free(xml);
    }
}

/* ---- geometry -------------------------------------------------------------- */

static void test_geometry(void)
{
    static const struct cap_point one[] = {{21.0336, 105.8522}};
    static const struct cap_point two[] = {{21.0336, 105.8522}, {21.0346, 105.8522}};
    static const struct cap_point line[] = {{10.0, 106.0}, {10.001, 106.001}, {10.002, 106.002}};
    static const struct cap_point dup[] = {{21.0336, 105.8522}, {21.0336, 105.8522}, {21.03360001, 105.8522}};
    static const struct cap_point square[] = {
        {0.001, 0.001}, {0.0, 0.0}, {0.0005, 0.0005}, {0.001, 0.0}, {0.0, 0.001}};
    static const struct cap_point south[] = {
        {-33.8688, 151.2093}, {-33.8700, 151.2100}, {-33.8690, 151.2110}};
    static const struct cap_point bad[] = {{NAN, 1.0}, {91.0, 1.0}, {1.0, -181.0}, {INFINITY, 0}, {1.0, 2.0}};
    static const struct {
        const char *name;
        const struct cap_point *pts;
        size_t n;
        int kind;
        const char *text;
    } cases[] = {
        {"no positions", NULL, 0, CAP_GEOM_NONE, ""},
        {"one house", one, 1, CAP_GEOM_CIRCLE, "21.033600,105.852200 0.050"},
        /* 0.001 degrees of latitude is 111.2 m: half of it, rounded up. */
        {"two houses", two, 2, CAP_GEOM_CIRCLE, "21.034100,105.852200 0.056"},
        {"three on a line", line, 3, CAP_GEOM_CIRCLE, "10.001000,106.001000 0.157"},
        {"one house three times", dup, 3, CAP_GEOM_CIRCLE, "21.033600,105.852200 0.050"},
        {"square with a house inside", square, 5, CAP_GEOM_POLYGON,
         "0.000000,0.000000 0.000000,0.001000 0.001000,0.001000 0.001000,0.000000 0.000000,0.000000"},
        {"southern hemisphere", south, 3, CAP_GEOM_POLYGON,
         "-33.868800,151.209300 -33.870000,151.210000 -33.869000,151.211000 -33.868800,151.209300"},
        {"impossible positions skipped", bad, 5, CAP_GEOM_CIRCLE, "1.000000,2.000000 0.050"},
        {"zone of five", alley, 5, CAP_GEOM_POLYGON,
         "21.034200,105.852100 21.033600,105.852200 21.033000,105.853100 21.034000,105.853000 "
         "21.034200,105.852100"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[512];
        int kind = cap_area_text(cases[i].pts, cases[i].n, buf, sizeof buf);
        bool ok = kind == cases[i].kind && strcmp(buf, cases[i].text) == 0;
        if (!ok)
            printf("# %s: got %d \"%s\", want %d \"%s\"\n", cases[i].name, kind, buf, cases[i].kind,
                   cases[i].text);
        th_report(ok, "geometry: %s", cases[i].name);
    }
    char small[8];
    CHECK_INT(cap_area_text(alley, 5, small, sizeof small), -ENOSPC);
    CHECK_INT(cap_area_text(alley, CAP_POINTS_MAX + 1, small, sizeof small), -E2BIG);

    /* Each geometry inside a whole alert, through the schema. */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cap_incident inc = fire(INCIDENT_ALARM);
        inc.points = cases[i].pts;
        inc.n_points = cases[i].n;
        char *xml = cap_alert_new(&hub, &inc, NULL);
        CHECK(xml != NULL);
        if (!xml)
            continue;
        CHECK_INT(count(xml, "<polygon>"), cases[i].kind == CAP_GEOM_POLYGON);
        CHECK_INT(count(xml, "<circle>"), cases[i].kind == CAP_GEOM_CIRCLE);
        if (cases[i].kind == CAP_GEOM_POLYGON)
            CHECK_STR(elem(xml, "polygon"), cases[i].text);
        if (cases[i].kind == CAP_GEOM_CIRCLE)
            CHECK_STR(elem(xml, "circle"), cases[i].text);
        check_cap_rules(xml);
        char what[96];
        snprintf(what, sizeof what, "alert with %s", cases[i].name);
        check_schema(xml, what);
        free(xml);
    }
}

/* ---- hostile text -------------------------------------------------------- */

static void test_hostile_names(void)
{
    struct cap_incident inc = fire(INCIDENT_ACKNOWLEDGED);
    inc.zone_name = "Hẻm 12 \"Ngõ\" <b>&amp;</b> 'x'";
    inc.site_name = "Phường Hàng Bạc ]]> <!-- --> <?pi?>";
    inc.address = "12/3 Hàng Bạc & \xC3\x28 \xFF\xFE \x01\x1B bell";
    inc.ack_by = "Nguyễn Văn A </description><script>";
    struct cap_hub h = hub;
    h.sender_name = "Tổ liên gia <5> & \"Hẻm 12\"";
    h.restriction = "Watch group & fire service <only>";
    h.contact = "0901 234 567 & 114";
    h.web_base = "https://hub.example.org/?a=1&b=<2>/";
    char *xml = cap_alert_new(&h, &inc, NULL);
    CHECK(xml != NULL);
    if (!xml)
        return;
    CHECK_INT(xmllint(xml, false, "hostile names"), 1);
    check_schema(xml, "hostile names");
    CHECK_STR(
        elem(xml, "areaDesc"),
        "Hẻm 12 &quot;Ngõ&quot; &lt;b&gt;&amp;amp;&lt;/b&gt; &apos;x&apos;, Phường Hàng Bạc ]]&gt; &lt;!-- "
        "--&gt; &lt;?pi?&gt;");
    CHECK_STR(elem(xml, "scope"), "Restricted");
    CHECK_STR(elem(xml, "restriction"), "Watch group &amp; fire service &lt;only&gt;");
    CHECK_STR(elem(xml, "senderName"), "Tổ liên gia &lt;5&gt; &amp; &quot;Hẻm 12&quot;");
    CHECK_STR(elem(xml, "contact"), "0901 234 567 &amp; 114");
    CHECK_STR(elem(xml, "web"), "https://hub.example.org/?a=1&amp;b=&lt;2&gt;/#incidents");
    /* Invalid UTF-8 and control characters become U+FFFD, one per byte. */
    CHECK(
        strstr(xml,
               "12/3 Hàng Bạc &amp; \xEF\xBF\xBD( \xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD bell") !=
        NULL);
    CHECK(strstr(xml, "(Nguyễn Văn A &lt;/description&gt;&lt;script&gt;)") != NULL);
    CHECK_INT(count(xml, "<script>"), 0);
    CHECK_INT(count(xml, "</description>"), 1);

    /* Overlong, surrogate, beyond U+10FFFF and U+FFFE are refused too. */
    static const char *const bad[] = {"\xC0\xAF",         "\xE0\x80\xAF", "\xED\xA0\x80",
                                      "\xF4\x90\x80\x80", "\xEF\xBF\xBE", "\xF8\x88\x80\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "x%sy", bad[i]);
        inc.zone_name = name;
        char *doc = cap_alert_new(&hub, &inc, NULL);
        CHECK(doc != NULL);
        if (!doc)
            continue;
        char want[64];
        snprintf(want, sizeof want, "<areaDesc>x");
        CHECK(strstr(doc, want) != NULL);
        CHECK(strstr(doc, bad[i]) == NULL);
        CHECK_INT(xmllint(doc, false, "bad UTF-8"), 1);
        free(doc);
    }
    free(xml);
}

/* ---- times, buffers, refusals ------------------------------------------- */

static void test_times(void)
{
    char buf[32];
    CHECK_INT(cap_format_time(0, buf, sizeof buf), 25);
    CHECK_STR(buf, "1970-01-01T00:00:00-00:00");
    CHECK_INT(cap_format_time(T0 + 999, buf, sizeof buf), 25);
    CHECK_STR(buf, "2024-12-05T12:00:00-00:00");
    CHECK_INT(cap_format_time(INT64_C(4102444799000), buf, sizeof buf), 25);
    CHECK_STR(buf, "2099-12-31T23:59:59-00:00");
    CHECK_INT(cap_format_time(-1, buf, sizeof buf), -EINVAL);
    CHECK_INT(cap_format_time(T0, buf, 25), -ENOSPC);
}

static void test_buffer_and_new_agree(void)
{
    struct cap_incident inc = fire(INCIDENT_ACKNOWLEDGED);
    size_t len = 0;
    char *a = cap_alert_new(&hub, &inc, &len);
    char *b = cap_alert_new(&hub, &inc, NULL);
    CHECK(a && b);
    if (!a || !b) {
        free(a);
        free(b);
        return;
    }
    CHECK_STR(a, b); /* same input, same bytes */
    char *buf = malloc(len + 1);
    CHECK_INT(cap_alert_write(&hub, &inc, buf, len + 1), len);
    CHECK_STR(buf, a);
    CHECK_INT(cap_alert_write(&hub, &inc, buf, len), -ENOSPC);
    CHECK_INT(cap_alert_write(&hub, &inc, buf, 10), -ENOSPC);
    static const char head[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<alert xmlns=\"" CAP_NAMESPACE "\">\n";
    CHECK(strncmp(a, head, sizeof head - 1) == 0);
    free(buf);
    free(a);
    free(b);

    /* Defaults: no sender (firewatch-<hub>), no web, no names. */
    struct cap_hub bare = {.hub_id = "hub-1"};
    inc.zone_name = NULL;
    inc.site_name = NULL;
    inc.address = NULL;
    inc.points = NULL;
    inc.n_points = 0;
    char *x = cap_alert_new(&bare, &inc, NULL);
    CHECK(x != NULL);
    if (x) {
        CHECK_STR(elem(x, "sender"), "firewatch-hub-1");
        CHECK_STR(elem(x, "identifier"), "firewatch-hub-1-12-3");
        CHECK_STR(elem(x, "areaDesc"), "alley12");
        CHECK_INT(count(x, "<web>") + count(x, "<senderName>") + count(x, "<polygon>") + count(x, "<circle>"),
                  0);
        CHECK(strstr(elem(x, "references"), "firewatch-hub-1,firewatch-hub-1-12-1,") ==
              elem(x, "references"));
        check_schema(x, "bare hub, no names, no positions");
        free(x);
    }
    inc = fire(INCIDENT_ALARM);
    inc.expires_ms = T0 + 3600000;
    x = cap_alert_new(&hub, &inc, NULL);
    CHECK(x != NULL);
    if (x) {
        CHECK_STR(elem(x, "expires"), "2024-12-05T13:00:00-00:00");
        check_schema(x, "with expires");
        free(x);
    }
}

static void test_refusals(void)
{
    char buf[8192];
    struct cap_incident ok = fire(INCIDENT_ALARM);
    CHECK(cap_alert_write(&hub, &ok, buf, sizeof buf) > 0);
    struct cap_hub h = hub;
    static const char *const bad_senders[] = {"fire watch", "a,b",       "a<b",
                                              "a&b",        "tab\there", "vi\xE1\xBB\x87t"};
    for (size_t i = 0; i < sizeof bad_senders / sizeof bad_senders[0]; i++) {
        h.sender = bad_senders[i];
        CHECK_INT(cap_alert_write(&h, &ok, buf, sizeof buf), -EINVAL);
    }
    h = hub;
    h.hub_id = "Ward 7";
    CHECK_INT(cap_alert_write(&h, &ok, buf, sizeof buf), -EINVAL);
    h.hub_id = NULL;
    CHECK_INT(cap_alert_write(&h, &ok, buf, sizeof buf), -EINVAL);
    CHECK_INT(cap_alert_write(NULL, &ok, buf, sizeof buf), -EINVAL);
    CHECK_INT(cap_alert_write(&hub, NULL, buf, sizeof buf), -EINVAL);

    struct cap_incident inc = ok;
    inc.alarm_ms = 0; /* ALARM without its time */
    CHECK_INT(cap_alert_write(&hub, &inc, buf, sizeof buf), -EINVAL);
    inc = fire(INCIDENT_ACKNOWLEDGED);
    inc.ack_ms = 0;
    CHECK_INT(cap_alert_write(&hub, &inc, buf, sizeof buf), -EINVAL);
    inc = fire(INCIDENT_ACKNOWLEDGED);
    inc.ack_ms = inc.alarm_ms - 1; /* backwards */
    CHECK_INT(cap_alert_write(&hub, &inc, buf, sizeof buf), -EINVAL);
    inc = fire(INCIDENT_CLEARED);
    inc.closed_ms = 0;
    CHECK_INT(cap_alert_write(&hub, &inc, buf, sizeof buf), -EINVAL);
    inc = ok;
    inc.zone = "Alley 12";
    CHECK_INT(cap_alert_write(&hub, &inc, buf, sizeof buf), -EINVAL);
    inc = ok;
    inc.opened_ms = 0;
    CHECK_INT(cap_alert_write(&hub, &inc, buf, sizeof buf), -EINVAL);
    inc = ok;
    inc.state = INCIDENT_STATE_COUNT;
    CHECK_INT(cap_alert_write(&hub, &inc, buf, sizeof buf), -EINVAL);
    CHECK(cap_msg_type(&inc) == NULL);
    CHECK(cap_urgency(INCIDENT_STATE_COUNT) == NULL);
    inc = ok;
    inc.kind = INCIDENT_KIND_COUNT;
    CHECK_INT(cap_alert_write(&hub, &inc, buf, sizeof buf), -EINVAL);
    inc = ok;
    inc.points = NULL;
    CHECK_INT(cap_alert_write(&hub, &inc, buf, sizeof buf), -EINVAL);
    errno = 0;
    CHECK(cap_alert_new(&hub, &inc, NULL) == NULL);
    CHECK_INT(errno, EINVAL);
}

/* ---- the feed -------------------------------------------------------------- */

/* Validates every <alert> embedded in the feed against the schema. */
static int check_embedded(const char *feed)
{
    int n = 0;
    for (const char *a = strstr(feed, "<alert "); a; a = strstr(a + 1, "<alert ")) {
        const char *end = strstr(a, "</alert>");
        CHECK(end != NULL);
        if (!end)
            break;
        size_t len = (size_t)(end - a) + strlen("</alert>");
        char *doc = malloc(len + 1);
        memcpy(doc, a, len);
        doc[len] = '\0';
        char what[64];
        snprintf(what, sizeof what, "feed entry %d", ++n);
        check_schema(doc, what);
        check_cap_rules(doc);
        free(doc);
    }
    return n;
}

static void test_feed(void)
{
    struct cap_incident incs[3] = {fire(INCIDENT_ACKNOWLEDGED), fire(INCIDENT_VERIFYING),
                                   fire(INCIDENT_CLEARED)};
    incs[1].id = 13;
    incs[1].zone = "alley14";
    incs[1].zone_name = "Hẻm 14 <north> & \"south\"";
    incs[1].opened_ms = T0 + 7200000;
    incs[2].id = 9;
    incs[2].kind = INCIDENT_DRILL;
    incs[2].origin = "";
    incs[2].alarm_ms = incs[2].opened_ms;
    size_t len = 0;
    char *feed = cap_feed_new(&hub, incs, 3, T0 + 9000000, &len);
    CHECK(feed != NULL);
    if (!feed)
        return;
    CHECK_INT(len, strlen(feed));
    CHECK_INT(xmllint(feed, false, "the feed"), 1);
    CHECK(strstr(feed, "<feed xmlns=\"http://www.w3.org/2005/Atom\">") != NULL);
    CHECK_STR(elem(feed, "updated"), "2024-12-05T14:00:00Z"); /* the newest message */
    CHECK_STR(elem(feed, "id"), "urn:firewatch:ward7:cap");
    CHECK_INT(count(feed, "<entry>"), 3);
    CHECK_INT(count(feed, "<content type=\"application/cap+xml\">"), 3);
    CHECK(strstr(feed, "<link rel=\"alternate\" type=\"application/cap+xml\" "
                       "href=\"https://hub.example.org/api/v1/incidents/13/cap\"/>") != NULL);
    CHECK(strstr(feed, "<link rel=\"self\" type=\"application/atom+xml\" "
                       "href=\"https://hub.example.org/api/v1/cap\"/>") != NULL);
    CHECK(strstr(feed,
                 "<title>Possible fire in Hẻm 14 &lt;north&gt; &amp; &quot;south&quot;, Ward 7</title>") !=
          NULL);
    CHECK(strstr(feed, "<id>urn:firewatch:ward7:cap:firewatch-ward7-9-4</id>") != NULL);
    CHECK_INT(check_embedded(feed), 3);
    /* Each embedded alert is byte for byte the standalone one. */
    char *one = cap_alert_new(&hub, &incs[1], NULL);
    CHECK(one && strstr(feed, strchr(one, '\n') + 1) != NULL);
    free(one);
    free(feed);

    feed = cap_feed_new(&hub, NULL, 0, T0, NULL);
    CHECK(feed != NULL);
    if (feed) {
        CHECK_INT(xmllint(feed, false, "an empty feed"), 1);
        CHECK_STR(elem(feed, "updated"), "2024-12-05T12:00:00Z");
        CHECK_INT(count(feed, "<entry>"), 0);
        free(feed);
    }
    incs[0].zone = NULL;
    errno = 0;
    CHECK(cap_feed_new(&hub, incs, 3, T0, NULL) == NULL);
    CHECK_INT(errno, EINVAL);
}

/* A feed around alerts written elsewhere (a regional hub's): the alert
 * goes in without its XML declaration, text is escaped, and a document
 * that is not an <alert> is refused. */
static void test_feed_wrap(void)
{
    const char *alert = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<alert xmlns=\"" CAP_NAMESPACE
                        "\"><identifier>firewatch-ward7-1-2</identifier></alert>\n";
    struct cap_feed_entry e[2] = {
        {.id = "urn:firewatch:ward7:cap:firewatch-ward7-1-2",
         .title = "Ward 7, Alley <12> & co: fire alarm",
         .updated_ms = 1700000000000,
         .link = "/api/v1/region/areas/ward7/incidents/1/cap",
         .alert = alert},
        {.id = "urn:x:2", .title = "second", .updated_ms = 1700000005000, .link = NULL, .alert = alert + 39},
    };
    size_t len = 0;
    char *feed = cap_feed_wrap("urn:firewatch:region:cap", "Region", e, 2, 1, &len);
    CHECK(feed != NULL && len == strlen(feed));
    if (feed) {
        CHECK(strstr(feed, "<title>Ward 7, Alley &lt;12&gt; &amp; co: fire alarm</title>") != NULL);
        CHECK(strstr(feed, "<updated>2023-11-14T22:13:25Z</updated>") != NULL); /* the newest entry's */
        CHECK(strstr(feed, "<content type=\"" CAP_MIME_TYPE "\">\n<alert xmlns") != NULL);
        const char *first = strstr(feed, "<?xml");
        CHECK(first == feed && strstr(first + 5, "<?xml") == NULL); /* one declaration only */
    }
    free(feed);
    struct cap_feed_entry bad = e[0];
    bad.alert = "<feed>not an alert</feed>";
    CHECK(cap_feed_wrap("urn:x", "t", &bad, 1, 1, NULL) == NULL);
    bad = e[0];
    bad.id = NULL;
    CHECK(cap_feed_wrap("urn:x", "t", &bad, 1, 1, NULL) == NULL);
    feed = cap_feed_wrap("urn:x", "Empty", NULL, 0, 1700000000000, NULL);
    CHECK(feed && strstr(feed, "<updated>2023-11-14T22:13:20Z</updated>") && !strstr(feed, "<entry>"));
    free(feed);
}

TH_MAIN(TH_TEST(test_states), TH_TEST(test_geometry), TH_TEST(test_hostile_names), TH_TEST(test_times),
        TH_TEST(test_buffer_and_new_agree), TH_TEST(test_refusals), TH_TEST(test_feed),
        TH_TEST(test_feed_wrap))
