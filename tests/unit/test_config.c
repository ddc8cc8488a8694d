/* Unit tests for the configuration table and loader: built-in defaults, the shipped
 * conf/evbrokerd.conf, one precise report per bad line, and command-line overrides.
 * Files are written to mkstemp temporaries; the shipped file is found from the repo root
 * or from $EVB_SRCDIR. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "unit.h"
#include "util.h"

#define MAX_PROBLEMS 16

/* What config_load reported, one line per problem. */
struct problems {
    int n;
    char *line[MAX_PROBLEMS];
};

/* config_report_fn that keeps each line for inspection. */
static void problems_collect_cb(const char *problem, void *arg)
{
    struct problems *p = arg;

    if (p->n < MAX_PROBLEMS)
        p->line[p->n] = xstrdup(problem);
    p->n++;
}

/* Frees the collected lines. */
static void problems_free(struct problems *p)
{
    for (int i = 0; i < p->n && i < MAX_PROBLEMS; i++)
        free(p->line[i]);
    memset(p, 0, sizeof(*p));
}

/* Writes text to a new temporary file and returns its path (caller unlinks and frees). */
static char *temp_file_write(const char *text)
{
    char *path = xstrdup("/tmp/evb-test-config-XXXXXX");
    int fd = mkstemp(path);
    size_t len = strlen(text);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

/* Loads text as a config file over defaults, collecting problems into p. */
static int load_text(struct config *cfg, const char *text, struct problems *p, char **pathp)
{
    char *path = temp_file_write(text);
    int n;

    config_init(cfg);
    memset(p, 0, sizeof(*p));
    n = config_load(cfg, path, problems_collect_cb, p);
    unlink(path);
    if (pathp != NULL)
        *pathp = path;
    else
        free(path);
    return n;
}

/* Returns the path of the shipped conf/evbrokerd.conf (caller frees). */
static char *shipped_conf_path(void)
{
    const char *dir = getenv("EVB_SRCDIR");
    char buf[4096];

    snprintf(buf, sizeof(buf), "%s/conf/evbrokerd.conf", dir != NULL && *dir ? dir : ".");
    return xstrdup(buf);
}

/* Compares two strings that may be NULL. */
static int str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Asserts that two configurations hold the same values. */
static void assert_config_equal(const struct config *a, const struct config *b)
{
    ck_assert_int_eq(a->nbind, b->nbind);
    for (int i = 0; i < a->nbind; i++)
        ck_assert_str_eq(a->bind[i], b->bind[i]);
    ck_assert_int_eq(a->port, b->port);
    ck_assert(str_eq(a->unixsocket, b->unixsocket));
    ck_assert_int_eq(a->unixsocketperm, b->unixsocketperm);
    ck_assert_int_eq(a->tcp_backlog, b->tcp_backlog);
    ck_assert_int_eq(a->maxclients, b->maxclients);
    ck_assert_int_eq(a->timeout, b->timeout);
    ck_assert_int_eq(a->tcp_keepalive, b->tcp_keepalive);
    ck_assert(str_eq(a->pidfile, b->pidfile));
    ck_assert_int_eq(a->log_level, b->log_level);
    ck_assert(str_eq(a->log_target, b->log_target));
    ck_assert_int_eq(a->proto_max_bulk_len, b->proto_max_bulk_len);
    ck_assert_int_eq(a->client_query_buffer_limit, b->client_query_buffer_limit);
    ck_assert_int_eq(a->pubsub_hard_limit, b->pubsub_hard_limit);
    ck_assert_int_eq(a->pubsub_soft_limit, b->pubsub_soft_limit);
    ck_assert_int_eq(a->pubsub_soft_seconds, b->pubsub_soft_seconds);
    ck_assert(str_eq(a->requirepass, b->requirepass));
    ck_assert_int_eq(a->tls_port, b->tls_port);
    ck_assert(str_eq(a->tls_cert_file, b->tls_cert_file));
    ck_assert(str_eq(a->tls_key_file, b->tls_key_file));
    ck_assert(str_eq(a->tls_ca_cert_file, b->tls_ca_cert_file));
    ck_assert_int_eq(a->tls_auth_clients, b->tls_auth_clients);
    ck_assert(str_eq(a->tls_ciphers, b->tls_ciphers));
    ck_assert(str_eq(a->tls_ciphersuites, b->tls_ciphersuites));
    ck_assert_int_eq(a->tls_handshake_timeout_ms, b->tls_handshake_timeout_ms);
}

START_TEST(test_defaults_are_the_documented_values)
{
    struct config cfg;

    config_init(&cfg);
    ck_assert_int_eq(cfg.nbind, 2);
    ck_assert_str_eq(cfg.bind[0], "127.0.0.1");
    ck_assert_str_eq(cfg.bind[1], "-::1");
    ck_assert_int_eq(cfg.port, 6379);
    ck_assert_ptr_null(cfg.unixsocket);
    ck_assert_int_eq(cfg.unixsocketperm, 0);
    ck_assert_int_eq(cfg.tcp_backlog, 511);
    ck_assert_int_eq(cfg.maxclients, 10000);
    ck_assert_int_eq(cfg.timeout, 0);
    ck_assert_int_eq(cfg.tcp_keepalive, 300);
    ck_assert_ptr_null(cfg.pidfile);
    ck_assert_int_eq(cfg.log_level, LOG_LEVEL_NOTICE);
    ck_assert_str_eq(cfg.log_target, "stderr");
    ck_assert_int_eq(cfg.proto_max_bulk_len, 512LL * 1024 * 1024);
    ck_assert_int_eq(cfg.client_query_buffer_limit, 1024LL * 1024 * 1024);
    ck_assert_int_eq(cfg.pubsub_hard_limit, 32LL * 1024 * 1024);
    ck_assert_int_eq(cfg.pubsub_soft_limit, 8LL * 1024 * 1024);
    ck_assert_int_eq(cfg.pubsub_soft_seconds, 60);
    ck_assert_ptr_null(cfg.requirepass);
    ck_assert_ptr_null(cfg.upstream_host);
    ck_assert_int_eq(cfg.upstream_port, 6379);
    ck_assert_ptr_null(cfg.upstream_unixsocket);
    ck_assert_ptr_null(cfg.upstream_password);
    ck_assert_int_eq(cfg.upstream_reconnect_min_ms, 100);
    ck_assert_int_eq(cfg.upstream_reconnect_max_ms, 1000);
    ck_assert_str_eq(cfg.upstream_channels, "*");
    ck_assert_int_eq(cfg.upstream_direction, CONFIG_DIR_BOTH);
    ck_assert_int_eq(cfg.upstream_queue_limit, 10000);
    ck_assert_int_eq(cfg.upstream_queue_memory, 64LL << 20);
    ck_assert_int_eq(cfg.upstream_reply_timeout_ms, 10000);
    ck_assert_int_eq(cfg.tls_port, 0);
    ck_assert_ptr_null(cfg.tls_cert_file);
    ck_assert_ptr_null(cfg.tls_ca_cert_file);
    ck_assert_int_eq(cfg.tls_auth_clients, CONFIG_TLS_AUTH_YES);
    ck_assert_int_eq(cfg.tls_handshake_timeout_ms, 10000);
    config_free(&cfg);
}
END_TEST

START_TEST(test_key_table_is_complete_and_unique)
{
    ck_assert_uint_eq(config_key_count(), 40);
    ck_assert_ptr_null(config_key(config_key_count()));
    for (size_t i = 0; i < config_key_count(); i++) {
        const struct config_key_info *k = config_key(i);
        ck_assert_ptr_nonnull(k->section);
        ck_assert_ptr_nonnull(k->name);
        ck_assert_ptr_nonnull(k->default_value);
        ck_assert_msg(k->help != NULL && k->help[0] != '\0', "%s has no help", k->name);
        for (size_t j = 0; j < i; j++)
            ck_assert_msg(strcmp(config_key(j)->section, k->section) != 0 ||
                              strcmp(config_key(j)->name, k->name) != 0,
                          "[%s] %s twice", k->section, k->name);
    }
}
END_TEST

START_TEST(test_each_default_is_accepted_by_its_setter)
{
    struct config cfg;
    char err[256];

    config_init(&cfg);
    for (size_t i = 0; i < config_key_count(); i++) {
        const struct config_key_info *k = config_key(i);
        err[0] = '\0';
        ck_assert_msg(config_set(&cfg, k->section, k->name, k->default_value, err, sizeof(err)) ==
                          0,
                      "%s: %s", k->name, err);
    }
    config_free(&cfg);
}
END_TEST

START_TEST(test_shipped_conf_loads_cleanly_and_equals_defaults)
{
    struct config defaults, loaded;
    struct problems p = {0};
    char *path = shipped_conf_path();
    int n;

    config_init(&defaults);
    config_init(&loaded);
    /* Start from other values so that equality proves the file set every field. */
    ck_assert_int_eq(config_set(&loaded, "server", "port", "1", NULL, 0), 0);
    n = config_load(&loaded, path, problems_collect_cb, &p);
    ck_assert_msg(n == 0, "%d problems, first: %s", n, n > 0 ? p.line[0] : "");
    assert_config_equal(&loaded, &defaults);
    problems_free(&p);
    config_free(&defaults);
    config_free(&loaded);
    free(path);
}
END_TEST

/* Strips blanks at both ends of s in place and returns the start. */
static char *trim(char *s)
{
    size_t len = strlen(s);

    while (len > 0 &&
           (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' || s[len - 1] == '\r'))
        s[--len] = '\0';
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

START_TEST(test_shipped_conf_documents_every_key_with_its_default)
{
    char *path = shipped_conf_path();
    FILE *f = fopen(path, "r");
    char line[512], section[64] = "", comment[2048] = "";
    int seen[64] = {0};

    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    ck_assert_uint_le(config_key_count(), 64);
    while (fgets(line, sizeof(line), f) != NULL) {
        char *s = trim(line), *eq, *name, *value;
        if (*s == '\0') {
            comment[0] = '\0';
            continue;
        }
        if (*s == '#') {
            strncat(comment, s, sizeof(comment) - strlen(comment) - 1);
            continue;
        }
        if (*s == '[') {
            ck_assert_ptr_nonnull(strchr(s, ']'));
            *strchr(s, ']') = '\0';
            snprintf(section, sizeof(section), "%s", s + 1);
            continue;
        }
        eq = strchr(s, '=');
        ck_assert_msg(eq != NULL, "not a key line: %s", s);
        *eq = '\0';
        name = trim(s);
        value = trim(eq + 1);
        if (value[0] == '"' && strlen(value) >= 2 && value[strlen(value) - 1] == '"') {
            value[strlen(value) - 1] = '\0';
            value++;
        }
        size_t i = 0;
        while (i < config_key_count() && (strcmp(config_key(i)->section, section) != 0 ||
                                          strcmp(config_key(i)->name, name) != 0))
            i++;
        ck_assert_msg(i < config_key_count(), "[%s] %s is not in the table", section, name);
        const struct config_key_info *k = config_key(i);
        ck_assert_msg(seen[i]++ == 0, "[%s] %s set twice", section, name);
        ck_assert_msg(strcmp(value, k->default_value) == 0, "[%s] %s = '%s', default '%s'", section,
                      name, value, k->default_value);
        ck_assert_msg(strlen(comment) > 0, "[%s] %s has no comment", section, name);
        ck_assert_msg((strstr(comment, "(reload)") != NULL) == (k->reloadable != 0),
                      "[%s] %s: '(reload)' in the comment disagrees with the table", section, name);
        comment[0] = '\0';
    }
    fclose(f);
    for (size_t i = 0; i < config_key_count(); i++)
        ck_assert_msg(seen[i] == 1, "[%s] %s is not documented", config_key(i)->section,
                      config_key(i)->name);
    free(path);
}
END_TEST

/* A file with one mistake, the line it is on and part of the expected reason. */
struct bad_file {
    const char *text;
    int line;
    const char *reason;
};

static const struct bad_file bad_files[] = {
    {"[tls]\nport = 6380\nauth_clients = no\n", 2,
     "[tls] port: a TLS listener needs cert_file and key_file"},
    {"[tls]\nport = 6380\ncert_file = a\nkey_file = b\n", 2,
     "[tls] port: auth_clients = yes needs ca_cert_file"},
    {"[tls]\ncert_file = a\nkey_file = b\nauth_clients = no\nport = 6379\n", 5,
     "[tls] port: 6379 is also the [server] port"},
    {"[tls]\nauth_clients = sometimes\n", 2,
     "[tls] auth_clients: must be one of no, optional, yes, got 'sometimes'"},
    {"[user.a]\npassword = x\ncolor = red\n", 3, "unknown key 'color' in section [user.a]"},
    {"[user.a]\nchannels = x\n", 2, "[user.a]: no password set"},
    {"[user.a]\npassword = x\npassword = y\n", 3,
     "[user.a] password: duplicate key (first set on line 2)"},
    {"[user.a]\npassword = sha256:abc\n", 2, "needs 64 hex digits"},
    {"[user.a]\npassword = x\nenabled = maybe\n", 3, "[user.a] enabled: must be yes or no"},
    {"[user.a]\npassword = x\nadmin = root\n", 3, "[user.a] admin: must be yes or no"},
    {"[user.a]\nadmin = yes\npassword = x\nadmin = no\n", 4,
     "[user.a] admin: duplicate key (first set on line 2)"},
    {"[user.default]\npassword = x\n", 1, "(the default user's password is [security]"},
    {"[upstream]\nhost = r\nunixsocket = /r.sock\n", 3,
     "[upstream] unixsocket: host is set too; set only one"},
    {"[upstream]\nreconnect_max_ms = 100\nreconnect_min_ms = 5000\n", 3,
     "[upstream] reconnect_min_ms: 5000 is above reconnect_max_ms (100)"},
    {"[upstream]\nhost = r\nuser = bob\n", 3, "[upstream] user: set without a password"},
    {"[upstream]\nreconnect_max_ms = 50\n", 2,
     "[upstream] reconnect_max_ms: 50 is below reconnect_min_ms (100, its default)"},
    {"[server]\ntcp_keepalive = 40000\n", 2, "[server] tcp_keepalive"},
    {"[server]\nport += 1\n", 2, "[server] port: += is only for lists"},
    {"[server]\nunixsocketperm = 4777\n", 2, "[server] unixsocketperm: must be octal"},
    {"[server]\nrequirepass = x\n", 2, "(did you mean [security] requirepass?)"},
    {"[log]\nloglevel = notice\n", 2, "(did you mean [log] level?)"},
    {"[server]\ntcp-keepalive = 3\n", 2, "(did you mean [server] tcp_keepalive?)"},
    {"[server]\nbind += ::1\n", 2, "[server] bind: += extends a value set before it with ="},
    {"[user.a]\npassword = x\nenabled += no\n", 3, "[user.a] enabled: += is only for lists"},
    {"[server]\nbind = 127.0.0.1\nbind += 300.1.1.1\n", 3, "'300.1.1.1' is not an IPv4"},
    {"[user.]\n", 1, "unknown section [user.]"},
    {"[security]\nprotected_mode = sometimes\n", 2, "must be yes or no, got 'sometimes'"},
    {"[server]\nport = 7000\nfoo = 1\n", 3, "unknown key 'foo' in section [server]"},
    {"[server]\nport = 7000\n\n[cluster]\nenabled = yes\n", 4, "unknown section [cluster]"},
    {"[server]\nport = abc\n", 2,
     "[server] port: must be an integer between 0 and 65535, got 'abc'"},
    {"[server]\nport = 65536\n", 2, "[server] port: must be an integer between 0 and 65535"},
    {"[server]\nmaxclients = 0\n", 2, "[server] maxclients: must be an integer between 1"},
    {"[server]\ntimeout = -1\n", 2, "[server] timeout: must be an integer between 0"},
    {"[server]\nport = 06379\n", 2, "got '06379'"},
    {"[limits]\nproto_max_bulk_len = 12xb\n", 2, "[limits] proto_max_bulk_len: must be a size"},
    {"[limits]\nproto_max_bulk_len = 1kb\n", 2, "must be at least 1mb, got '1kb'"},
    {"[limits]\nclient_query_buffer_limit = 99999999999999999999gb\n", 2, "must be a size"},
    {"[server]\nbind = 127.0.0.1 10.0.0.256\n", 2,
     "[server] bind: '10.0.0.256' is not an IPv4 or IPv6 address"},
    {"[server]\nbind = localhost\n", 2, "'localhost' is not an IPv4 or IPv6 address"},
    {"[metrics]\nlisten = localhost:9121\n", 2,
     "[metrics] listen: must be IP:PORT or [IPv6]:PORT with a port 1 to 65535, got "
     "'localhost:9121'"},
    {"[metrics]\nlisten = ::1:9121\n", 2, "[metrics] listen: must be IP:PORT"},
    {"[metrics]\nlisten = 127.0.0.1:0\n", 2, "[metrics] listen: must be IP:PORT"},
    {"[metrics]\nlisten = [127.0.0.1]:9121\n", 2, "[metrics] listen: must be IP:PORT"},
    {"[server]\nbind = \"\"\n", 2, "[server] bind: must list at least one address"},
    {"[server]\nbind = 1.1.1.1 1.1.1.2 1.1.1.3 1.1.1.4 1.1.1.5 1.1.1.6 1.1.1.7 1.1.1.8 1.1.1.9 "
     "1.1.1.10 1.1.1.11 1.1.1.12 1.1.1.13 1.1.1.14 1.1.1.15 1.1.1.16 1.1.1.17\n",
     2, "must list at most 16 addresses"},
    {"[log]\nlevel = loud\n", 2,
     "[log] level: must be one of debug, verbose, notice, warning, got 'loud'"},
    {"[log]\ntarget = \"\"\n", 2, "[log] target: must not be empty"},
    {"[server]\nport = 1\n# comment\nport = 2\n", 4,
     "[server] port: duplicate key (first set on line 2)"},
    {"[server]\nport = 1\n[log]\nlevel = debug\n[server]\nPORT = 2\n", 6,
     "duplicate key (first set on line 2)"},
    {"[server]\n\n\npidfile = /tmp/"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxxxxxxxxxxxxxxxx\n",
     4, "line too long"},
    {"[limits]\npubsub_output_limit = 32mb 8mb\n", 2,
     "[limits] pubsub_output_limit: must be '<hard> <soft> <seconds>'"},
    {"[limits]\npubsub_output_limit = 32mb 8mb 60 1\n", 2, "must be '<hard> <soft> <seconds>'"},
    {"[limits]\npubsub_output_limit = 32zb 8mb 60\n", 2, "hard limit must be a size"},
    {"[limits]\npubsub_output_limit = 32mb -8mb 60\n", 2, "soft limit must be a size"},
    {"[limits]\npubsub_output_limit = 32mb 8mb 1m\n", 2, "soft seconds must be an integer"},
    {"[server]\nunixsocketperm = 800\n", 2, "[server] unixsocketperm: must be octal"},
    {"[server]\nunixsocket = /tmp/"
     "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
     "yyyyyyyyyyyyyyyyyyyy\n",
     2, "[server] unixsocket: must be at most 107 bytes long"},
    {"[security]\nrequirepass = \"abc\n", 2, "[security] requirepass: opening '\"' is not closed"},
    {"[upstream]\ndirection = sideways\n", 2,
     "[upstream] direction: must be one of both, in, out, got 'sideways'"},
    {"[upstream]\nport = 0\n", 2, "[upstream] port: must be an integer between 1 and 65535"},
    {"port = 6379\n", 1, "key 'port' must follow a [section] header"},
    {"[server]\nport 6379\n", 2, "expected 'key = value', '[section]' or a comment"},
    {"[server\nport = 6379\n", 1, "section header '[server' has no closing ']'"},
    {"[server]\n= 6379\n", 2, "missing key name"},
    {"[server]\nport = 7000\n  6380\n", 3, "expected 'key = value'"},
};

START_TEST(test_bad_file_reports_line_and_reason)
{
    const struct bad_file *b = &bad_files[_i];
    struct config cfg;
    struct problems p;
    char *path, prefix[128];
    int n = load_text(&cfg, b->text, &p, &path);

    snprintf(prefix, sizeof(prefix), "%s:%d: ", path, b->line);
    ck_assert_msg(n == 1, "case %d: %d problems, first: %s", _i, n, n > 0 ? p.line[0] : "");
    ck_assert_int_eq(p.n, 1);
    ck_assert_msg(strncmp(p.line[0], prefix, strlen(prefix)) == 0, "case %d: '%s' lacks '%s'", _i,
                  p.line[0], prefix);
    ck_assert_msg(strstr(p.line[0], b->reason) != NULL, "case %d: '%s' lacks '%s'", _i, p.line[0],
                  b->reason);
    problems_free(&p);
    config_free(&cfg);
    free(path);
}
END_TEST

START_TEST(test_every_problem_in_a_file_is_reported_in_order)
{
    static const char text[] = "[server]\n"                 /* 1 */
                               "port = 99999\n"             /* 2: out of range */
                               "bogus = 1\n"                /* 3: unknown key */
                               "timeout = 5\n"              /* 4: fine */
                               "[nowhere]\n"                /* 5: unknown section */
                               "anything = goes\n"          /* 6: not reported again */
                               "[log]\n"                    /* 7 */
                               "level = shouty\n"           /* 8: bad level */
                               "level = debug\n"            /* 9: duplicate */
                               "this is not ini\n"          /* 10: syntax */
                               "[limits]\n"                 /* 11 */
                               "proto_max_bulk_len = 5q\n"; /* 12: bad size */
    static const char *const expect[][2] = {
        {"2", "[server] port: must be an integer between 0 and 65535, got '99999'"},
        {"3", "unknown key 'bogus' in section [server]"},
        {"5", "unknown section [nowhere]"},
        {"8", "[log] level: must be one of"},
        {"9", "[log] level: duplicate key (first set on line 8)"},
        {"10", "expected 'key = value'"},
        {"12", "[limits] proto_max_bulk_len: must be a size"},
    };
    size_t nexpect = sizeof(expect) / sizeof(expect[0]);
    struct config cfg;
    struct problems p;
    char *path;
    int n = load_text(&cfg, text, &p, &path);

    ck_assert_int_eq(n, (int)nexpect);
    for (size_t i = 0; i < nexpect; i++) {
        char want[256];
        snprintf(want, sizeof(want), "%s:%s: %s", path, expect[i][0], expect[i][1]);
        ck_assert_msg(strncmp(p.line[i], want, strlen(want)) == 0, "got '%s', want '%s'", p.line[i],
                      want);
    }
    ck_assert_int_eq(cfg.timeout, 5);
    problems_free(&p);
    config_free(&cfg);
    free(path);
}
END_TEST

START_TEST(test_line_numbers_stay_right_after_a_long_line)
{
    char text[1024];
    char filler[400];
    struct config cfg;
    struct problems p;
    char *path, want[256];

    memset(filler, 'z', sizeof(filler) - 1);
    filler[sizeof(filler) - 1] = '\0';
    snprintf(text, sizeof(text), "[server]\nrequirepass = %s\nport = nope\n", filler);
    ck_assert_int_eq(load_text(&cfg, text, &p, &path), 2);
    snprintf(want, sizeof(want), "%s:2: line too long", path);
    ck_assert_msg(strncmp(p.line[0], want, strlen(want)) == 0, "%s", p.line[0]);
    snprintf(want, sizeof(want), "%s:3: [server] port:", path);
    ck_assert_msg(strncmp(p.line[1], want, strlen(want)) == 0, "%s", p.line[1]);
    /* The over-long value was dropped, not truncated and applied. */
    ck_assert_ptr_null(cfg.requirepass);
    problems_free(&p);
    config_free(&cfg);
    free(path);
}
END_TEST

START_TEST(test_longest_allowed_line_is_accepted)
{
    char text[512];
    char value[256];
    const char *prefix = "requirepass = ";
    size_t vlen = 197 - strlen(prefix);
    struct config cfg;
    struct problems p;

    memset(value, 'p', vlen);
    value[vlen] = '\0';
    snprintf(text, sizeof(text), "[security]\r\n%s%s\r\n[server]\r\nport = 1\r\n", prefix, value);
    ck_assert_int_eq(load_text(&cfg, text, &p, NULL), 0);
    ck_assert_str_eq(cfg.requirepass, value);
    ck_assert_int_eq(cfg.port, 1);
    problems_free(&p);
    config_free(&cfg);
}
END_TEST

START_TEST(test_file_values_override_defaults)
{
    static const char text[] = "\xEF\xBB\xBF; written by hand\n"
                               "[Server]\n"
                               "  Bind = 0.0.0.0 -:: 10.1.2.3\n"
                               "port = 7777 ; inline comment\n"
                               "unixsocket = /run/evbrokerd.sock\n"
                               "unixsocketperm = 0770\n"
                               "pidfile = \"/run/evbrokerd.pid\"\n"
                               "[log]\n"
                               "level = WARNING\n"
                               "target = syslog\n"
                               "[limits]\n"
                               "pubsub_output_limit = 0 0 0\n"
                               "[security]\n"
                               "requirepass = \" s3cret with spaces \"\n";
    struct config cfg;
    struct problems p;

    ck_assert_int_eq(load_text(&cfg, text, &p, NULL), 0);
    ck_assert_int_eq(cfg.nbind, 3);
    ck_assert_str_eq(cfg.bind[0], "0.0.0.0");
    ck_assert_str_eq(cfg.bind[1], "-::");
    ck_assert_str_eq(cfg.bind[2], "10.1.2.3");
    ck_assert_int_eq(cfg.port, 7777);
    ck_assert_str_eq(cfg.unixsocket, "/run/evbrokerd.sock");
    ck_assert_int_eq(cfg.unixsocketperm, 0770);
    ck_assert_str_eq(cfg.pidfile, "/run/evbrokerd.pid");
    ck_assert_int_eq(cfg.log_level, LOG_LEVEL_WARNING);
    ck_assert_str_eq(cfg.log_target, "syslog");
    ck_assert_int_eq(cfg.pubsub_hard_limit, 0);
    ck_assert_int_eq(cfg.pubsub_soft_limit, 0);
    ck_assert_int_eq(cfg.pubsub_soft_seconds, 0);
    ck_assert_str_eq(cfg.requirepass, " s3cret with spaces ");
    problems_free(&p);
    config_free(&cfg);
}
END_TEST

START_TEST(test_empty_values_unset_strings)
{
    static const char text[] = "[server]\nunixsocket = /tmp/a.sock\npidfile =\n"
                               "[security]\nrequirepass = \"\"\n";
    struct config cfg;
    struct problems p;

    ck_assert_int_eq(load_text(&cfg, text, &p, NULL), 0);
    ck_assert_str_eq(cfg.unixsocket, "/tmp/a.sock");
    ck_assert_ptr_null(cfg.pidfile);
    ck_assert_ptr_null(cfg.requirepass);
    ck_assert_int_eq(config_set(&cfg, "server", "unixsocket", "", NULL, 0), 0);
    ck_assert_ptr_null(cfg.unixsocket);
    problems_free(&p);
    config_free(&cfg);
}
END_TEST

START_TEST(test_sizes_accept_units_in_any_case)
{
    static const struct {
        const char *text;
        long long bytes;
    } sizes[] = {
        {"1048576", 1048576},
        {"1mb", 1024LL * 1024},
        {"3MB", 3LL * 1024 * 1024},
        {"2m", 2000000},
        {"5M", 5000000},
        {"2048kb", 2048LL * 1024},
        {"1500K", 1500000},
        {"2gb", 2LL * 1024 * 1024 * 1024},
        {"4G", 4000000000LL},
        {"1Gb", 1024LL * 1024 * 1024},
    };
    struct config cfg;
    char err[256];

    config_init(&cfg);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        ck_assert_msg(
            config_set(&cfg, "limits", "proto_max_bulk_len", sizes[i].text, err, sizeof(err)) == 0,
            "%s: %s", sizes[i].text, err);
        ck_assert_int_eq(cfg.proto_max_bulk_len, sizes[i].bytes);
    }
    ck_assert_int_eq(
        config_set(&cfg, "limits", "pubsub_output_limit", "1GB 256Mb 120", err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.pubsub_hard_limit, 1024LL * 1024 * 1024);
    ck_assert_int_eq(cfg.pubsub_soft_limit, 256LL * 1024 * 1024);
    ck_assert_int_eq(cfg.pubsub_soft_seconds, 120);
    /* Below the minimum, an unknown unit and a blank are all refused; the value stays. */
    ck_assert_int_eq(
        config_set(&cfg, "limits", "client_query_buffer_limit", "999999", err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "at least 1mb"));
    ck_assert_int_eq(
        config_set(&cfg, "limits", "client_query_buffer_limit", "5tb", err, sizeof(err)), -1);
    ck_assert_int_eq(
        config_set(&cfg, "limits", "client_query_buffer_limit", "5 mb", err, sizeof(err)), -1);
    ck_assert_int_eq(cfg.client_query_buffer_limit, 1024LL * 1024 * 1024);
    config_free(&cfg);
}
END_TEST

START_TEST(test_config_set_overrides_port_and_bind)
{
    struct config cfg;
    char err[256];

    config_init(&cfg);
    ck_assert_int_eq(config_set(&cfg, "server", "port", "7000", err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.port, 7000);
    ck_assert_int_eq(config_set(&cfg, NULL, "port", "0", err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.port, 0);
    ck_assert_int_eq(config_set(&cfg, "server", "port", "70000", err, sizeof(err)), -1);
    ck_assert_str_eq(err, "must be an integer between 0 and 65535, got '70000'");
    ck_assert_int_eq(cfg.port, 0);

    ck_assert_int_eq(config_set(&cfg, "server", "bind", "10.0.0.1  -::1\t::", err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.nbind, 3);
    ck_assert_str_eq(cfg.bind[0], "10.0.0.1");
    ck_assert_str_eq(cfg.bind[1], "-::1");
    ck_assert_str_eq(cfg.bind[2], "::");
    /* A bad list leaves the previous one in place. */
    ck_assert_int_eq(config_set(&cfg, "server", "bind", "192.168.0.1 fe80::zz", err, sizeof(err)),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "'fe80::zz' is not an IPv4 or IPv6 address"));
    ck_assert_int_eq(cfg.nbind, 3);
    ck_assert_str_eq(cfg.bind[0], "10.0.0.1");
    ck_assert_int_eq(config_set(&cfg, "server", "bind", "192.168.0.1", err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.nbind, 1);
    ck_assert_ptr_null(cfg.bind[1]);

    ck_assert_int_eq(config_set(&cfg, "server", "nosuchkey", "1", err, sizeof(err)), -1);
    ck_assert_str_eq(err, "unknown key 'nosuchkey'");
    ck_assert_int_eq(config_set(&cfg, "log", "port", "1", err, sizeof(err)), -1);
    config_free(&cfg);
}
END_TEST

START_TEST(test_octal_permissions)
{
    struct config cfg;
    char err[256];

    config_init(&cfg);
    ck_assert_int_eq(config_set(&cfg, "server", "unixsocketperm", "700", err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.unixsocketperm, 0700);
    ck_assert_int_eq(config_set(&cfg, "server", "unixsocketperm", "0660", err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.unixsocketperm, 0660);
    ck_assert_int_eq(config_set(&cfg, "server", "unixsocketperm", "17777", err, sizeof(err)), -1);
    ck_assert_int_eq(config_set(&cfg, "server", "unixsocketperm", "", err, sizeof(err)), -1);
    ck_assert_int_eq(config_set(&cfg, "server", "unixsocketperm", "-1", err, sizeof(err)), -1);
    ck_assert_int_eq(cfg.unixsocketperm, 0660);
    config_free(&cfg);
}
END_TEST

START_TEST(test_unreadable_file_is_one_problem)
{
    struct config cfg;
    struct problems p = {0};

    config_init(&cfg);
    ck_assert_int_eq(config_load(&cfg, "/nonexistent/evbrokerd.conf", problems_collect_cb, &p), 1);
    ck_assert_str_eq(p.line[0], "/nonexistent/evbrokerd.conf: cannot open: No such file or "
                                "directory");
    problems_free(&p);
    ck_assert_int_eq(config_load(&cfg, "/", problems_collect_cb, &p), 1);
    ck_assert_str_eq(p.line[0], "/: not a regular file");
    problems_free(&p);
    /* A NULL callback still counts. */
    ck_assert_int_eq(config_load(&cfg, "/nonexistent", NULL, NULL), 1);
    config_free(&cfg);
}
END_TEST

/* A reload reads the file on the event loop: a FIFO must not block it (open and read would
 * wait for a writer), and an endless or huge file must not take all memory. */
START_TEST(test_only_a_regular_file_of_sane_size_is_read)
{
    struct config cfg;
    struct problems p = {0};
    char dir[] = "/tmp/evb-conf.XXXXXX", path[64], big[64];

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/fifo.conf", dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    config_init(&cfg);
    ck_assert_int_eq(config_load(&cfg, path, problems_collect_cb, &p), 1);
    ck_assert_ptr_nonnull(strstr(p.line[0], ": not a regular file"));
    problems_free(&p);
    ck_assert_int_eq(config_load(&cfg, "/dev/zero", problems_collect_cb, &p), 1);
    ck_assert_str_eq(p.line[0], "/dev/zero: not a regular file");
    problems_free(&p);

    /* 1 MiB of comments loads; one byte more is refused whole. */
    snprintf(big, sizeof(big), "%s/big.conf", dir);
    FILE *f = fopen(big, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < (1 << 20) / 64; i++)
        fprintf(f, "#%62s\n", "");
    fclose(f);
    ck_assert_int_eq(config_load(&cfg, big, problems_collect_cb, &p), 0);
    f = fopen(big, "a");
    fputc('\n', f);
    fclose(f);
    ck_assert_int_eq(config_load(&cfg, big, problems_collect_cb, &p), 1);
    ck_assert_ptr_nonnull(strstr(p.line[0], ": larger than 1048576 bytes"));
    problems_free(&p);
    config_free(&cfg);
    unlink(path);
    unlink(big);
    rmdir(dir);
}
END_TEST

START_TEST(test_empty_file_keeps_defaults)
{
    struct config cfg, defaults;
    struct problems p;

    ck_assert_int_eq(load_text(&cfg, "", &p, NULL), 0);
    config_init(&defaults);
    assert_config_equal(&cfg, &defaults);
    config_free(&defaults);
    config_free(&cfg);
}
END_TEST

START_TEST(test_free_then_init_again)
{
    struct config cfg;

    config_init(&cfg);
    ck_assert_int_eq(config_set(&cfg, "security", "requirepass", "x", NULL, 0), 0);
    config_free(&cfg);
    ck_assert_ptr_null(cfg.requirepass);
    ck_assert_int_eq(cfg.nbind, 0);
    config_init(&cfg);
    ck_assert_int_eq(cfg.nbind, 2);
    config_free(&cfg);
}
END_TEST

/* Builds the suite. */
/* Lines are limited to what inih reads (200 bytes with Debian's library), so a list goes on
 * with "key += more", joined with the list's own separator. */
START_TEST(test_lists_continue_with_plus_equals)
{
    struct config cfg;
    struct problems p;

    ck_assert_int_eq(load_text(&cfg,
                               "[server]\nbind = 127.0.0.1\nbind += ::1 127.0.0.2\n"
                               "[upstream]\nchannels = a.*\nchannels  +=  b.*\n"
                               "[tls]\nciphers = A:B\nciphers += C\nciphers += \"D\"\n"
                               "[user.u]\npassword = x\nchannels = n.*\nchannels += m\n",
                               &p, NULL),
                     0);
    ck_assert_int_eq(cfg.nbind, 3);
    ck_assert_str_eq(cfg.bind[2], "127.0.0.2");
    ck_assert_str_eq(cfg.upstream_channels, "a.* b.*");
    ck_assert_str_eq(cfg.tls_ciphers, "A:B:C:D");
    ck_assert_int_eq(cfg.users[0].nchannels, 2);
    ck_assert_str_eq(cfg.users[0].channels[1], "m");
    config_free(&cfg);
    problems_free(&p);
}
END_TEST

START_TEST(test_users_load_with_hashed_and_plain_passwords)
{
    struct config cfg;
    struct problems p;
    unsigned char want[32];

    ck_assert_int_eq(
        load_text(&cfg,
                  "[user.alice]\npassword = secret\nchannels = news.* chat\n"
                  "[user.bob]\npassword = "
                  "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\n"
                  "enabled = no\nadmin = yes\n",
                  &p, NULL),
        0);
    ck_assert_int_eq(cfg.nusers, 2);
    ck_assert_str_eq(cfg.users[0].name, "alice");
    ck_assert_int_eq(cfg.users[0].enabled, 1);
    ck_assert_int_eq(cfg.users[0].admin, 0); /* the default: only channels */
    ck_assert_int_eq(cfg.users[0].nchannels, 2);
    ck_assert_str_eq(cfg.users[0].channels[1], "chat");
    util_sha256("secret", 6, want);
    ck_assert_mem_eq(cfg.users[0].password_sha256, want, 32);
    /* The hex digest in the file is SHA-256("secret"): both forms store the same bytes. */
    ck_assert_mem_eq(cfg.users[1].password_sha256, want, 32);
    ck_assert_int_eq(cfg.users[1].enabled, 0);
    ck_assert_int_eq(cfg.users[1].admin, 1);
    ck_assert_int_eq(cfg.users[1].nchannels, 0);
    ck_assert_int_eq(cfg.protected_mode, 1);
    config_free(&cfg);
    problems_free(&p);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    int nbad = (int)(sizeof(bad_files) / sizeof(bad_files[0]));

    tcase_add_test(tc, test_defaults_are_the_documented_values);
    tcase_add_test(tc, test_users_load_with_hashed_and_plain_passwords);
    tcase_add_test(tc, test_lists_continue_with_plus_equals);
    tcase_add_test(tc, test_key_table_is_complete_and_unique);
    tcase_add_test(tc, test_each_default_is_accepted_by_its_setter);
    tcase_add_test(tc, test_shipped_conf_loads_cleanly_and_equals_defaults);
    tcase_add_test(tc, test_shipped_conf_documents_every_key_with_its_default);
    tcase_add_loop_test(tc, test_bad_file_reports_line_and_reason, 0, nbad);
    tcase_add_test(tc, test_every_problem_in_a_file_is_reported_in_order);
    tcase_add_test(tc, test_line_numbers_stay_right_after_a_long_line);
    tcase_add_test(tc, test_longest_allowed_line_is_accepted);
    tcase_add_test(tc, test_file_values_override_defaults);
    tcase_add_test(tc, test_empty_values_unset_strings);
    tcase_add_test(tc, test_sizes_accept_units_in_any_case);
    tcase_add_test(tc, test_config_set_overrides_port_and_bind);
    tcase_add_test(tc, test_octal_permissions);
    tcase_add_test(tc, test_unreadable_file_is_one_problem);
    tcase_add_test(tc, test_only_a_regular_file_of_sane_size_is_read);
    tcase_add_test(tc, test_empty_file_keeps_defaults);
    tcase_add_test(tc, test_free_then_init_again);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(config_suite)
