/* The configuration key table and the INI loader built on inih. Every default, file value and
 * command-line override goes through the same per-type setter, so nothing bypasses validation.
 * This module only fills struct config: it never opens sockets or applies settings itself.
 * inih is fed through our own line reader, which numbers lines, rejects over-long and malformed
 * lines (inih would truncate or mis-number them) and disables multi-line continuation. */

#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

/* A configuration file is a few KiB; anything past this is the wrong file. */
#define CONFIG_FILE_MAX (1 << 20)

#define CONFIG_MB (1024LL * 1024)
#define CONFIG_SUN_PATH_MAX ((long long)sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

struct config_def;

/* Parses value for one key and stores it in cfg; on failure cfg is unchanged and err says why. */
typedef int config_setter_fn(struct config *cfg, const struct config_def *def, const char *value,
                             char *err, size_t errlen);

/* One key: the public description first, so config_key() can hand out a pointer to it. */
struct config_def {
    struct config_key_info info;
    config_setter_fn *set;
    size_t offset; /* field in struct config, for the generic setters */
    long long min; /* integers and sizes: bounds; strings: minimum and maximum length */
    long long max;
};

static config_setter_fn config_set_int;
static config_setter_fn config_set_size;
static config_setter_fn config_set_string;
static config_setter_fn config_set_perm;
static config_setter_fn config_set_level;
static config_setter_fn config_set_bind;
static config_setter_fn config_set_output_limit;
static config_setter_fn config_set_direction;
static config_setter_fn config_set_listen;
static config_setter_fn config_set_bool;
static config_setter_fn config_set_tls_auth;

#define CONFIG_FIELD(f) offsetof(struct config, f)

/* One row: section, name, default, reloadable, setter (the type), field, bounds, help. */
#define CONFIG_KEY(sec, name, def, reload, set, field, min, max, help)                             \
    {                                                                                              \
        {sec, name, def, help, reload}, set, field, min, max                                       \
    }

/* The only source of keys, defaults, bounds and help; conf/evbrokerd.conf mirrors it. */
static const struct config_def config_table[] = {
    CONFIG_KEY("server", "bind", "127.0.0.1 -::1", 0, config_set_bind, CONFIG_FIELD(bind), 1,
               CONFIG_MAX_BIND,
               "addresses to listen on; a leading '-' skips an address that is unavailable"),
    CONFIG_KEY("server", "port", "6379", 0, config_set_int, CONFIG_FIELD(port), 0, 65535,
               "TCP port; 0 disables TCP"),
    CONFIG_KEY("server", "unixsocket", "", 0, config_set_string, CONFIG_FIELD(unixsocket), 0,
               CONFIG_SUN_PATH_MAX, "Unix socket path; empty for none"),
    CONFIG_KEY("server", "unixsocketperm", "0", 0, config_set_perm, CONFIG_FIELD(unixsocketperm), 0,
               0777, "octal permissions of the Unix socket; 0 leaves them to the umask"),
    CONFIG_KEY("server", "tcp_backlog", "511", 0, config_set_int, CONFIG_FIELD(tcp_backlog), 1,
               65535, "listen(2) backlog"),
    CONFIG_KEY("server", "maxclients", "10000", 1, config_set_int, CONFIG_FIELD(maxclients), 1,
               1000000, "maximum number of connected clients"),
    CONFIG_KEY("server", "timeout", "0", 1, config_set_int, CONFIG_FIELD(timeout), 0, INT_MAX,
               "seconds before an idle non-subscriber is closed; 0 = never"),
    CONFIG_KEY("server", "tcp_keepalive", "300", 1, config_set_int, CONFIG_FIELD(tcp_keepalive), 0,
               32767, "TCP keepalive interval in seconds; 0 = off"),
    CONFIG_KEY("server", "pidfile", "", 0, config_set_string, CONFIG_FIELD(pidfile), 0,
               PATH_MAX - 1, "file to write the process id to; empty for none"),
    CONFIG_KEY("server", "output_batch_us", "2000", 1, config_set_int,
               CONFIG_FIELD(output_batch_us), 0, 100000,
               "longest a subscriber's messages wait to leave in one write while the loop is "
               "busy; 0 = write after every loop pass"),
    CONFIG_KEY("server", "output_batch_load", "70", 1, config_set_int,
               CONFIG_FIELD(output_batch_load), 0, 100,
               "percent of the time the loop must be busy for batching to engage; 0 = always"),
    CONFIG_KEY("log", "level", "notice", 1, config_set_level, CONFIG_FIELD(log_level), 0, 0,
               "debug, verbose, notice or warning"),
    CONFIG_KEY("log", "target", "stderr", 1, config_set_string, CONFIG_FIELD(log_target), 1,
               PATH_MAX - 1, "stderr, syslog or a file path"),
    CONFIG_KEY("limits", "proto_max_bulk_len", "512mb", 1, config_set_size,
               CONFIG_FIELD(proto_max_bulk_len), CONFIG_MB, LLONG_MAX,
               "largest bulk string a client may send"),
    CONFIG_KEY("limits", "client_query_buffer_limit", "1gb", 1, config_set_size,
               CONFIG_FIELD(client_query_buffer_limit), CONFIG_MB, LLONG_MAX,
               "largest unparsed input kept per client"),
    CONFIG_KEY("limits", "pubsub_output_limit", "32mb 8mb 60", 1, config_set_output_limit, 0, 0,
               LLONG_MAX, "subscriber output limits: hard soft seconds; 0 disables a limit"),
    CONFIG_KEY("security", "requirepass", "", 1, config_set_string, CONFIG_FIELD(requirepass), 0,
               INT_MAX, "password clients must AUTH with; empty for none"),
    CONFIG_KEY("security", "protected_mode", "yes", 1, config_set_bool,
               CONFIG_FIELD(protected_mode), 0, 1,
               "without requirepass, refuse clients that do not connect over loopback"),
    CONFIG_KEY("upstream", "host", "", 0, config_set_string, CONFIG_FIELD(upstream_host), 0, 255,
               "upstream Redis host name or address; empty (and no unixsocket) = no bridge"),
    CONFIG_KEY("upstream", "port", "6379", 0, config_set_int, CONFIG_FIELD(upstream_port), 1, 65535,
               "upstream Redis TCP port"),
    CONFIG_KEY("upstream", "unixsocket", "", 0, config_set_string,
               CONFIG_FIELD(upstream_unixsocket), 0, CONFIG_SUN_PATH_MAX,
               "upstream Redis Unix socket path, instead of host and port"),
    CONFIG_KEY("upstream", "user", "", 0, config_set_string, CONFIG_FIELD(upstream_user), 0, 255,
               "ACL user for AUTH upstream; empty = the default user"),
    CONFIG_KEY("upstream", "password", "", 0, config_set_string, CONFIG_FIELD(upstream_password), 0,
               4096, "password for AUTH upstream; empty = none"),
    CONFIG_KEY("upstream", "connect_timeout_ms", "2000", 0, config_set_int,
               CONFIG_FIELD(upstream_connect_timeout_ms), 10, 600000,
               "milliseconds to connect and authenticate before giving up on an attempt"),
    CONFIG_KEY("upstream", "reconnect_min_ms", "100", 0, config_set_int,
               CONFIG_FIELD(upstream_reconnect_min_ms), 1, 3600000,
               "first reconnect delay; doubles per failed attempt"),
    CONFIG_KEY("upstream", "reconnect_max_ms", "1000", 0, config_set_int,
               CONFIG_FIELD(upstream_reconnect_max_ms), 1, 3600000,
               "cap of the reconnect delay (jittered between half and all of it)"),
    CONFIG_KEY("upstream", "channels", "*", 0, config_set_string, CONFIG_FIELD(upstream_channels),
               1, 4096, "space-separated globs of the channel names that are bridged"),
    CONFIG_KEY("upstream", "direction", "both", 0, config_set_direction,
               CONFIG_FIELD(upstream_direction), 0, 0, "both, in (upstream to local) or out"),
    CONFIG_KEY(
        "upstream", "queue_limit", "10000", 0, config_set_int, CONFIG_FIELD(upstream_queue_limit),
        1, 100000000,
        "publishes buffered for forwarding while the link is down or busy; more are dropped"),
    CONFIG_KEY("upstream", "queue_memory", "64mb", 0, config_set_size,
               CONFIG_FIELD(upstream_queue_memory), 1024, LLONG_MAX,
               "bytes (channels and payloads) those publishes may hold; more are dropped"),
    CONFIG_KEY("upstream", "reply_timeout_ms", "10000", 0, config_set_int,
               CONFIG_FIELD(upstream_reply_timeout_ms), 1000, 3600000,
               "a publish unanswered this long means the upstream is stuck: reconnect"),
    CONFIG_KEY("metrics", "listen", "", 0, config_set_listen, CONFIG_FIELD(metrics_listen), 0, 0,
               "IP:PORT or [IPv6]:PORT of the Prometheus endpoint (/metrics); empty = off"),
    CONFIG_KEY("tls", "port", "0", 0, config_set_int, CONFIG_FIELD(tls_port), 0, 65535,
               "TLS port on the [server] bind addresses; 0 = no TLS listener"),
    CONFIG_KEY("tls", "cert_file", "", 1, config_set_string, CONFIG_FIELD(tls_cert_file), 0,
               PATH_MAX - 1, "PEM certificate (chain) of the server; required with a TLS port"),
    CONFIG_KEY("tls", "key_file", "", 1, config_set_string, CONFIG_FIELD(tls_key_file), 0,
               PATH_MAX - 1, "PEM private key of cert_file; required with a TLS port"),
    CONFIG_KEY("tls", "ca_cert_file", "", 1, config_set_string, CONFIG_FIELD(tls_ca_cert_file), 0,
               PATH_MAX - 1,
               "PEM CA certificates client certificates are checked against; required unless "
               "auth_clients = no"),
    CONFIG_KEY("tls", "auth_clients", "yes", 1, config_set_tls_auth, CONFIG_FIELD(tls_auth_clients),
               0, 0, "client certificates: yes (required), optional (checked if sent) or no"),
    CONFIG_KEY("tls", "ciphers", "", 1, config_set_string, CONFIG_FIELD(tls_ciphers), 0, 4096,
               "OpenSSL cipher list for TLS 1.2; empty = OpenSSL's default"),
    CONFIG_KEY("tls", "ciphersuites", "", 1, config_set_string, CONFIG_FIELD(tls_ciphersuites), 0,
               4096, "TLS 1.3 cipher suites; empty = OpenSSL's default"),
    CONFIG_KEY("tls", "handshake_timeout_ms", "10000", 1, config_set_int,
               CONFIG_FIELD(tls_handshake_timeout_ms), 100, 3600000,
               "milliseconds a TLS client has to finish its handshake before it is closed"),
};

#define CONFIG_NKEYS (sizeof(config_table) / sizeof(config_table[0]))

static const char *const config_sections[] = {"server",   "log",     "limits", "security",
                                              "upstream", "metrics", "tls"};

/* Keys of a [user.NAME] section; the user table is this one plus the section name. */
typedef int config_user_setter_fn(struct config_user *u, const char *value, char *err,
                                  size_t errlen);
static config_user_setter_fn config_user_set_password;
static config_user_setter_fn config_user_set_enabled;
static config_user_setter_fn config_user_set_admin;
static config_user_setter_fn config_user_set_channels;

static const struct {
    const char *name;
    config_user_setter_fn *set;
} config_user_keys[] = {
    {"password", config_user_set_password}, /* "sha256:<64 hex digits>" or the password */
    {"enabled", config_user_set_enabled},   /* yes or no; default yes */
    {"channels", config_user_set_channels}, /* globs; default none; "*" = every channel */
    {"admin", config_user_set_admin},       /* yes or no; default no */
};
_Static_assert(sizeof(config_user_keys) / sizeof(config_user_keys[0]) ==
                   sizeof(((struct config_user *)0)->set_on) / sizeof(int),
               "struct config_user's set_on has one line per key");

#define CONFIG_USER_PREFIX "user."

/* State of one config_load run, shared by the line reader and the inih handler. */
struct config_load {
    struct config *cfg;
    const char *path;
    config_report_fn *report;
    void *arg;
    int problems;
    const char *buf; /* the whole file */
    size_t len;
    size_t pos;
    int lineno;               /* line most recently handed to inih */
    int in_bad_header;        /* after a malformed [section] line, already reported */
    int set_on[CONFIG_NKEYS]; /* line each key was set on, 0 if not yet */
    char *list[CONFIG_NKEYS]; /* a list key's value so far, for "key += more" */
};

/* The keys whose value is a list, which "key += more" extends (lines are limited to what
 * inih reads, 200 bytes with Debian's library), and what joins the parts. */
static const struct {
    const char *section, *name, *sep;
} config_list_keys[] = {
    {"server", "bind", " "},
    {"upstream", "channels", " "},
    {"tls", "ciphers", ":"},
    {"tls", "ciphersuites", ":"},
};

/* The joiner of a list key, or NULL for a key that is not a list. */
static const char *config_list_sep(const char *section, const char *name)
{
    for (size_t i = 0; i < sizeof(config_list_keys) / sizeof(config_list_keys[0]); i++)
        if (strcasecmp(section, config_list_keys[i].section) == 0 &&
            strcasecmp(name, config_list_keys[i].name) == 0)
            return config_list_keys[i].sep;
    return NULL;
}

/* For an unknown key: where a key of that name lives, also written Redis's way with '-'
 * ("tcp-keepalive" is [server] tcp_keepalive), as " (did you mean ...?)", or "". */
static const char *config_key_hint(const char *name, char *buf, size_t len)
{
    static const char *const redis_names[][2] = {
        {"loglevel", "level"},
        {"logfile", "target"},
        {"client_output_buffer_limit", "pubsub_output_limit"}};
    char want[64];
    size_t n = strlen(name);

    if (n >= sizeof(want))
        return "";
    for (size_t i = 0; i <= n; i++)
        want[i] = name[i] == '-' ? '_' : name[i];
    for (size_t i = 0; i < sizeof(redis_names) / sizeof(redis_names[0]); i++)
        if (strcasecmp(want, redis_names[i][0]) == 0)
            snprintf(want, sizeof(want), "%s", redis_names[i][1]);
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        if (strcasecmp(config_table[i].info.name, want) == 0) {
            snprintf(buf, len, " (did you mean [%s] %s?)", config_table[i].info.section,
                     config_table[i].info.name);
            return buf;
        }
    }
    return "";
}

/* a, sep and b in a new string. */
static char *config_join(const char *a, const char *sep, const char *b)
{
    size_t la = strlen(a), ls = strlen(sep), lb = strlen(b);
    char *s = xmalloc(la + ls + lb + 1);

    memcpy(s, a, la);
    memcpy(s + la, sep, ls);
    memcpy(s + la + ls, b, lb + 1);
    return s;
}

/* For "key += value": strips the '+' that inih left at the end of name into base (at least
 * 64 bytes). Returns 1 if name had it. */
static int config_append_name(const char *name, char *base, size_t baselen)
{
    size_t n = strlen(name);

    if (n == 0 || name[n - 1] != '+')
        return 0;
    n--;
    while (n > 0 && isspace((unsigned char)name[n - 1]))
        n--;
    snprintf(base, baselen, "%.*s", (int)n, name);
    return 1;
}

/* Returns 1 for yes/on/true/1, 0 for no/off/false/0, -1 otherwise. */
static int config_parse_bool(const char *value)
{
    static const char *const yes[] = {"yes", "on", "true", "1"}, *const no[] = {"no", "off",
                                                                                "false", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(value, yes[i]) == 0)
            return 1;
        if (strcasecmp(value, no[i]) == 0)
            return 0;
    }
    return -1;
}

/* Returns a pointer to the int field a generic setter writes. */
static int *config_int_field(struct config *cfg, const struct config_def *def)
{
    return (int *)((char *)cfg + def->offset);
}

/* Returns a pointer to the long long field a size setter writes. */
static long long *config_ll_field(struct config *cfg, const struct config_def *def)
{
    return (long long *)((char *)cfg + def->offset);
}

/* Returns a pointer to the string field a string setter writes. */
static char **config_str_field(struct config *cfg, const struct config_def *def)
{
    return (char **)((char *)cfg + def->offset);
}

/* Writes a byte count the way a user would type it ("1mb", "1500"), for error messages. */
static void config_format_size(long long v, char *buf, size_t len)
{
    if (v != 0 && v % (1024 * CONFIG_MB) == 0)
        snprintf(buf, len, "%lldgb", v / (1024 * CONFIG_MB));
    else if (v != 0 && v % CONFIG_MB == 0)
        snprintf(buf, len, "%lldmb", v / CONFIG_MB);
    else if (v != 0 && v % 1024 == 0)
        snprintf(buf, len, "%lldkb", v / 1024);
    else
        snprintf(buf, len, "%lld", v);
}

/* Sets an int field from a strict decimal integer within [min, max]. */
static int config_set_int(struct config *cfg, const struct config_def *def, const char *value,
                          char *err, size_t errlen)
{
    long long v;

    if (util_parse_ll(value, strlen(value), &v) < 0 || v < def->min || v > def->max) {
        snprintf(err, errlen, "must be an integer between %lld and %lld, got '%s'", def->min,
                 def->max, value);
        return -1;
    }
    *config_int_field(cfg, def) = (int)v;
    return 0;
}

/* Sets a long long field from a size with an optional unit, at least min bytes. */
static int config_set_size(struct config *cfg, const struct config_def *def, const char *value,
                           char *err, size_t errlen)
{
    char min[32];
    long long v;

    config_format_size(def->min, min, sizeof(min));
    if (util_parse_size(value, &v) < 0) {
        snprintf(err, errlen, "must be a size such as 512mb (units k, kb, m, mb, g, gb), got '%s'",
                 value);
        return -1;
    }
    if (v < def->min || v > def->max) {
        snprintf(err, errlen, "must be at least %s, got '%s'", min, value);
        return -1;
    }
    *config_ll_field(cfg, def) = v;
    return 0;
}

/* Sets a string field; an empty value stores NULL unless min demands a non-empty one. */
static int config_set_string(struct config *cfg, const struct config_def *def, const char *value,
                             char *err, size_t errlen)
{
    size_t len = strlen(value);
    char **field = config_str_field(cfg, def);

    if ((long long)len < def->min) {
        snprintf(err, errlen, "must not be empty");
        return -1;
    }
    if ((long long)len > def->max) {
        snprintf(err, errlen, "must be at most %lld bytes long, got %zu", def->max, len);
        return -1;
    }
    free(*field);
    *field = len > 0 ? xstrdup(value) : NULL;
    return 0;
}

/* Sets permission bits written in octal, with or without a leading 0 ("700", "0770"). */
static int config_set_perm(struct config *cfg, const struct config_def *def, const char *value,
                           char *err, size_t errlen)
{
    size_t len = strlen(value);
    long long v = 0;

    for (size_t i = 0; i < len && len <= 5; i++) {
        if (value[i] < '0' || value[i] > '7') {
            v = -1;
            break;
        }
        v = v * 8 + (value[i] - '0');
    }
    if (len == 0 || len > 5 || v < def->min || v > def->max) {
        snprintf(err, errlen, "must be octal permission bits such as 700 or 0770, got '%s'", value);
        return -1;
    }
    *config_int_field(cfg, def) = (int)v;
    return 0;
}

/* Sets a log level by name, ignoring case as Redis does for enumerated values. */
static int config_set_level(struct config *cfg, const struct config_def *def, const char *value,
                            char *err, size_t errlen)
{
    char lower[16];
    size_t len = strlen(value);
    int level = -1;

    if (len < sizeof(lower)) {
        for (size_t i = 0; i <= len; i++)
            lower[i] = (char)tolower((unsigned char)value[i]);
        level = log_level_parse(lower);
    }
    if (level < 0) {
        snprintf(err, errlen, "must be one of debug, verbose, notice, warning, got '%s'", value);
        return -1;
    }
    *config_int_field(cfg, def) = level;
    return 0;
}

/* Sets the bridge direction: both, in or out (case-insensitive). */
static int config_set_direction(struct config *cfg, const struct config_def *def, const char *value,
                                char *err, size_t errlen)
{
    static const char *const names[] = {"both", "in", "out"}; /* enum config_direction */

    for (int i = 0; i < 3; i++) {
        if (strcasecmp(value, names[i]) == 0) {
            *config_int_field(cfg, def) = i;
            return 0;
        }
    }
    snprintf(err, errlen, "must be one of both, in, out, got '%s'", value);
    return -1;
}

/* Parses yes/no (also on/off, true/false, 1/0) into an int field. */
static int config_set_bool(struct config *cfg, const struct config_def *def, const char *value,
                           char *err, size_t errlen)
{
    int v = config_parse_bool(value);
    if (v < 0) {
        snprintf(err, errlen, "must be yes or no, got '%s'", value);
        return -1;
    }
    *config_int_field(cfg, def) = v;
    return 0;
}

/* Sets the client certificate policy: no, optional or yes (also on/off, true/false, 1/0). */
static int config_set_tls_auth(struct config *cfg, const struct config_def *def, const char *value,
                               char *err, size_t errlen)
{
    int v = strcasecmp(value, "optional") == 0 ? CONFIG_TLS_AUTH_OPTIONAL : -1;

    if (v < 0) {
        v = config_parse_bool(value);
        if (v >= 0)
            v = v ? CONFIG_TLS_AUTH_YES : CONFIG_TLS_AUTH_NO;
    }
    if (v < 0) {
        snprintf(err, errlen, "must be one of no, optional, yes, got '%s'", value);
        return -1;
    }
    *config_int_field(cfg, def) = v;
    return 0;
}

/* Sets an HTTP listen address ("IP:PORT", "[IPv6]:PORT"); empty stores NULL (off). */
static int config_set_listen(struct config *cfg, const struct config_def *def, const char *value,
                             char *err, size_t errlen)
{
    char host[64];
    int port;
    char **field = config_str_field(cfg, def);

    if (value[0] != '\0' && metrics_parse_listen(value, host, sizeof(host), &port) < 0) {
        snprintf(err, errlen, "must be IP:PORT or [IPv6]:PORT with a port 1 to 65535, got '%s'",
                 value);
        return -1;
    }
    free(*field);
    *field = value[0] != '\0' ? xstrdup(value) : NULL;
    return 0;
}

/* Checks one bind token: an IPv4 or IPv6 literal, optionally prefixed with '-'. */
static int config_bind_valid(const char *token)
{
    struct in6_addr addr;

    if (token[0] == '-')
        token++;
    return inet_pton(AF_INET, token, &addr) == 1 || inet_pton(AF_INET6, token, &addr) == 1;
}

/* Replaces the bind list with a space-separated list of addresses, all validated first. */
static int config_set_bind(struct config *cfg, const struct config_def *def, const char *value,
                           char *err, size_t errlen)
{
    char *copy = xstrdup(value);
    char *tokens[CONFIG_MAX_BIND];
    char *save = NULL;
    int n = 0;
    int rc = -1;

    for (char *t = strtok_r(copy, " \t", &save); t != NULL; t = strtok_r(NULL, " \t", &save)) {
        if (n == CONFIG_MAX_BIND) {
            snprintf(err, errlen, "must list at most %d addresses, got more in '%s'",
                     CONFIG_MAX_BIND, value);
            goto done;
        }
        if (!config_bind_valid(t)) {
            snprintf(err, errlen, "'%s' is not an IPv4 or IPv6 address", t);
            goto done;
        }
        tokens[n++] = t;
    }
    if (n < def->min) {
        snprintf(err, errlen, "must list at least one address (set port = 0 to disable TCP)");
        goto done;
    }
    for (int i = 0; i < cfg->nbind; i++) {
        free(cfg->bind[i]);
        cfg->bind[i] = NULL;
    }
    for (int i = 0; i < n; i++)
        cfg->bind[i] = xstrdup(tokens[i]);
    cfg->nbind = n;
    rc = 0;
done:
    free(copy);
    return rc;
}

/* Sets the pubsub output limits from "hard soft seconds", Redis's client-output-buffer-limit
 * form: two sizes (0 disables that limit) and how long the soft limit may be exceeded. */
static int config_set_output_limit(struct config *cfg, const struct config_def *def,
                                   const char *value, char *err, size_t errlen)
{
    static const char *const what[] = {"hard limit", "soft limit", "soft seconds"};
    char *copy = xstrdup(value);
    char *tokens[4];
    char *save = NULL;
    long long v[3];
    int n = 0;
    int rc = -1;

    for (char *t = strtok_r(copy, " \t", &save); t != NULL && n < 4;
         t = strtok_r(NULL, " \t", &save))
        tokens[n++] = t;
    if (n != 3) {
        snprintf(err, errlen, "must be '<hard> <soft> <seconds>' such as '32mb 8mb 60', got '%s'",
                 value);
        goto done;
    }
    for (int i = 0; i < 2; i++) {
        if (util_parse_size(tokens[i], &v[i]) < 0 || v[i] > def->max) {
            snprintf(err, errlen, "%s must be a size such as 32mb (0 = none), got '%s'", what[i],
                     tokens[i]);
            goto done;
        }
    }
    if (util_parse_ll(tokens[2], strlen(tokens[2]), &v[2]) < 0 || v[2] < 0 || v[2] > INT_MAX) {
        snprintf(err, errlen, "%s must be an integer between 0 and %d, got '%s'", what[2], INT_MAX,
                 tokens[2]);
        goto done;
    }
    cfg->pubsub_hard_limit = v[0];
    cfg->pubsub_soft_limit = v[1];
    cfg->pubsub_soft_seconds = (int)v[2];
    rc = 0;
done:
    free(copy);
    return rc;
}

/* Finds a key by section (NULL = any) and name, both case-insensitive; -1 when unknown. */
static int config_find(const char *section, const char *name)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const struct config_key_info *k = &config_table[i].info;
        if ((section == NULL || strcasecmp(section, k->section) == 0) &&
            strcasecmp(name, k->name) == 0)
            return (int)i;
    }
    return -1;
}

/* Whether a user name is acceptable: printable, no spaces, not "default" (the default user
 * is configured with [security] requirepass). */
static int config_user_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > 64 || util_strcaseeq("default", name, len))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (name[i] < '!' || name[i] > '~' || name[i] == '[' || name[i] == ']')
            return 0;
    return 1;
}

/* Tells whether a section name (length-counted, as cut from a line) is one we know. */
static int config_section_known(const char *name, size_t len)
{
    size_t plen = strlen(CONFIG_USER_PREFIX);
    if (len > plen && strncasecmp(name, CONFIG_USER_PREFIX, plen) == 0)
        return config_user_name_valid(name + plen, len - plen);
    for (size_t i = 0; i < sizeof(config_sections) / sizeof(config_sections[0]); i++)
        if (util_strcaseeq(config_sections[i], name, len))
            return 1;
    return 0;
}

/* Applies every default string through its key's setter; a default that fails is a bug. */
void config_init(struct config *cfg)
{
    char err[256];

    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const struct config_def *def = &config_table[i];
        int rc = def->set(cfg, def, def->info.default_value, err, sizeof(err));
        EVB_ASSERT(rc == 0);
    }
}

/* Frees the strings and zeroes cfg, so it can be initialised again. */
void config_free(struct config *cfg)
{
    for (int i = 0; i < cfg->nbind; i++)
        free(cfg->bind[i]);
    free(cfg->unixsocket);
    free(cfg->pidfile);
    free(cfg->log_target);
    free(cfg->requirepass);
    free(cfg->upstream_host);
    free(cfg->upstream_unixsocket);
    free(cfg->upstream_user);
    free(cfg->upstream_password);
    free(cfg->upstream_channels);
    free(cfg->metrics_listen);
    free(cfg->tls_cert_file);
    free(cfg->tls_key_file);
    free(cfg->tls_ca_cert_file);
    free(cfg->tls_ciphers);
    free(cfg->tls_ciphersuites);
    for (int i = 0; i < cfg->nusers; i++) {
        struct config_user *u = &cfg->users[i];
        free(u->name);
        for (int j = 0; j < u->nchannels; j++)
            free(u->channels[j]);
        free(u->channels);
    }
    free(cfg->users);
    memset(cfg, 0, sizeof(*cfg));
}

/* Sets one key as the file would; a NULL section matches the key in any section. */
int config_set(struct config *cfg, const char *section, const char *name, const char *value,
               char *err, size_t errlen)
{
    int i = config_find(section, name);

    if (i < 0) {
        snprintf(err, errlen, "unknown key '%s'", name);
        return -1;
    }
    return config_table[i].set(cfg, &config_table[i], value, err, errlen);
}

/* Number of rows in the key table. */
size_t config_key_count(void)
{
    return CONFIG_NKEYS;
}

/* The public part of row i, or NULL past the end. */
const struct config_key_info *config_key(size_t i)
{
    return i < CONFIG_NKEYS ? &config_table[i].info : NULL;
}

/* Counts one problem and passes it to the callback as "FILE:LINE: text" (no line if 0). */
__attribute__((format(printf, 3, 4))) static void config_problem(struct config_load *ld, int line,
                                                                 const char *fmt, ...)
{
    char text[768];
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(msg, sizeof(msg), "%s:%d: %s", ld->path, line, text);
    else
        snprintf(msg, sizeof(msg), "%s: %s", ld->path, text);
    ld->problems++;
    if (ld->report != NULL)
        ld->report(msg, ld->arg);
}

/* Checks the syntax of one line (leading blanks already skipped, line end excluded) the way
 * inih reads it, so that every malformed line is reported rather than only the first.
 * Returns 0 when inih may have it, -1 after reporting it. */
static int config_check_line(struct config_load *ld, const char *s, size_t len)
{
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    if (len == 0 || s[0] == ';' || s[0] == '#')
        return 0;
    if (memchr(s, '\0', len) != NULL) {
        config_problem(ld, ld->lineno, "line contains a NUL byte");
        return -1;
    }
    if (s[0] == '[') {
        const char *end = memchr(s, ']', len);
        if (end == NULL) {
            config_problem(ld, ld->lineno, "section header '%.*s' has no closing ']'", (int)len, s);
            ld->in_bad_header = 1;
            return -1;
        }
        ld->in_bad_header = 0;
        if (!config_section_known(s + 1, (size_t)(end - s - 1)))
            config_problem(ld, ld->lineno, "unknown section [%.*s]%s", (int)(end - s - 1), s + 1,
                           util_strcaseeq("user.default", s + 1, (size_t)(end - s - 1))
                               ? " (the default user's password is [security] requirepass)"
                               : "");
        return 0;
    }
    /* inih splits at the first '=' or ':'; " ;" starts an inline comment before that. */
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ';' && i > 0 && isspace((unsigned char)s[i - 1]))
            break;
        if (s[i] == '=' || s[i] == ':') {
            if (i > 0)
                return 0;
            config_problem(ld, ld->lineno, "missing key name before '%c'", s[i]);
            return -1;
        }
    }
    config_problem(ld, ld->lineno, "expected 'key = value', '[section]' or a comment, got '%.*s'",
                   (int)len, s);
    return -1;
}

/* inih's fgets-style reader: hands over one whole line of the file at a time. Over-long and
 * malformed lines are reported here and replaced by an empty line, so inih never truncates
 * a value or counts the rest of a long line as a new one. Leading blanks are removed, which
 * turns off inih's multi-line values (an indented line would continue the previous value). */
static char *config_reader(char *str, int num, void *stream)
{
    struct config_load *ld = stream;
    const char *line, *nl;
    size_t len, content;

    if (ld->pos >= ld->len || num < 4)
        return NULL;
    line = ld->buf + ld->pos;
    nl = memchr(line, '\n', ld->len - ld->pos);
    len = nl != NULL ? (size_t)(nl - line) : ld->len - ld->pos;
    ld->pos += len + (nl != NULL);
    ld->lineno++;

    content = len > 0 && line[len - 1] == '\r' ? len - 1 : len;
    if (ld->lineno == 1 && content >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
        line += 3;
        len -= 3;
        content -= 3;
    }
    /* inih needs room for "\r\n\0" after the longest line. */
    if (content > (size_t)num - 3) {
        config_problem(ld, ld->lineno,
                       "line too long (%zu characters, at most %d; a list continues on the "
                       "next line with \"key += more\")",
                       content, num - 3);
        len = 0;
    }
    while (len > 0 && (*line == ' ' || *line == '\t')) {
        line++;
        len--;
    }
    if (len > 0 && config_check_line(ld, line, len) < 0)
        len = 0;
    memcpy(str, line, len);
    str[len] = '\n';
    str[len + 1] = '\0';
    return str;
}

/* Removes one pair of double quotes around a value (there are no escapes). Returns 0 and sets
 * *out to value itself, or to a copy in *owned (caller frees); -1 if a quote is not closed. */
static int config_unquote(const char *value, const char **out, char **owned)
{
    size_t len = strlen(value);

    *owned = NULL;
    *out = value;
    if (len == 0 || value[0] != '"')
        return 0;
    if (len < 2 || value[len - 1] != '"')
        return -1;
    *owned = xmemdup(value + 1, len - 2);
    *out = *owned;
    return 0;
}

/* Finds the user of a [user.NAME] section, creating it (enabled, no channels) on first use. */
static struct config_user *config_user_get(struct config *cfg, const char *name, int line)
{
    for (int i = 0; i < cfg->nusers; i++)
        if (strcmp(cfg->users[i].name, name) == 0)
            return &cfg->users[i];
    cfg->users = xrealloc(cfg->users, sizeof(*cfg->users) * (size_t)(cfg->nusers + 1));
    struct config_user *u = &cfg->users[cfg->nusers++];
    memset(u, 0, sizeof(*u));
    u->name = xstrdup(name);
    u->enabled = 1;
    u->line = line;
    return u;
}

/* Stores the SHA-256 of a password, or decodes one given as "sha256:<64 hex digits>". */
static int config_user_set_password(struct config_user *u, const char *value, char *err,
                                    size_t errlen)
{
    if (strncasecmp(value, "sha256:", 7) != 0) {
        if (value[0] == '\0') {
            snprintf(err, errlen, "must not be empty");
            return -1;
        }
        util_sha256(value, strlen(value), u->password_sha256);
        return 0;
    }
    const char *hex = value + 7;
    if (strlen(hex) != 64) {
        snprintf(err, errlen, "sha256: needs 64 hex digits, got %zu characters", strlen(hex));
        return -1;
    }
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (!isxdigit((unsigned char)hex[2 * i]) || !isxdigit((unsigned char)hex[2 * i + 1]) ||
            sscanf(hex + 2 * i, "%2x", &v) != 1) {
            snprintf(err, errlen, "sha256: '%s' is not hexadecimal", hex);
            return -1;
        }
        u->password_sha256[i] = (unsigned char)v;
    }
    return 0;
}

/* Stores a yes or no into *field. */
static int config_user_set_bool(int *field, const char *value, char *err, size_t errlen)
{
    int v = config_parse_bool(value);
    if (v < 0) {
        snprintf(err, errlen, "must be yes or no, got '%s'", value);
        return -1;
    }
    *field = v;
    return 0;
}

static int config_user_set_enabled(struct config_user *u, const char *value, char *err,
                                   size_t errlen)
{
    return config_user_set_bool(&u->enabled, value, err, errlen);
}

static int config_user_set_admin(struct config_user *u, const char *value, char *err, size_t errlen)
{
    return config_user_set_bool(&u->admin, value, err, errlen);
}

/* Adds the globs of a space-separated list to a user's. */
static void config_user_add_channels(struct config_user *u, const char *value)
{
    char *copy = xstrdup(value), *save = NULL;
    for (char *tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        u->channels = xrealloc(u->channels, sizeof(*u->channels) * (size_t)(u->nchannels + 1));
        u->channels[u->nchannels++] = xstrdup(tok);
    }
    free(copy);
}

/* A space-separated list of channel globs. */
static int config_user_set_channels(struct config_user *u, const char *value, char *err,
                                    size_t errlen)
{
    for (int j = 0; j < u->nchannels; j++)
        free(u->channels[j]);
    u->nchannels = 0;
    config_user_add_channels(u, value);
    return 0;
}

/* Handles one key of a [user.NAME] section. */
static int config_user_handler(struct config_load *ld, const char *user, const char *name,
                               const char *value, int append)
{
    char err[256];
    const char *v;
    char *owned;
    size_t k, nkeys = sizeof(config_user_keys) / sizeof(config_user_keys[0]);

    for (k = 0; k < nkeys; k++)
        if (strcasecmp(name, config_user_keys[k].name) == 0)
            break;
    if (k == nkeys) {
        config_problem(ld, ld->lineno, "unknown key '%s' in section [user.%s]", name, user);
        return 1;
    }
    struct config_user *u = config_user_get(ld->cfg, user, ld->lineno);
    int list = config_user_keys[k].set == config_user_set_channels;
    if (append && (!list || u->set_on[k] == 0)) {
        config_problem(ld, ld->lineno, "[user.%s] %s: %s", user, config_user_keys[k].name,
                       list ? "+= extends a value set before it with ="
                            : "+= is only for lists (channels)");
        return 1;
    }
    if (!append && u->set_on[k] != 0) {
        config_problem(ld, ld->lineno, "[user.%s] %s: duplicate key (first set on line %d)", user,
                       config_user_keys[k].name, u->set_on[k]);
        return 1;
    }
    u->set_on[k] = ld->lineno;
    if (config_unquote(value, &v, &owned) < 0) {
        config_problem(ld, ld->lineno, "[user.%s] %s: opening '\"' is not closed", user,
                       config_user_keys[k].name);
        return 1;
    }
    if (append)
        config_user_add_channels(u, v);
    else if (config_user_keys[k].set(u, v, err, sizeof(err)) < 0)
        config_problem(ld, ld->lineno, "[user.%s] %s: %s", user, config_user_keys[k].name, err);
    free(owned);
    return 1;
}

/* inih's callback for each "key = value": finds the key, rejects repeats, applies the value. */
static int config_handler(void *user, const char *section, const char *name, const char *value)
{
    struct config_load *ld = user;
    char err[512];
    const char *v;
    char *owned;
    int i;

    if (name == NULL || value == NULL || ld->in_bad_header)
        return 1; /* a section start, a bare name, or a key under a header already reported */
    if (section[0] == '\0') {
        config_problem(ld, ld->lineno, "key '%s' must follow a [section] header", name);
        return 1;
    }
    if (!config_section_known(section, strlen(section)))
        return 1; /* reported once, at the section header */
    char base[64];
    int append = config_append_name(name, base, sizeof(base));
    if (append)
        name = base;
    if (strncasecmp(section, CONFIG_USER_PREFIX, strlen(CONFIG_USER_PREFIX)) == 0)
        return config_user_handler(ld, section + strlen(CONFIG_USER_PREFIX), name, value, append);
    i = config_find(section, name);
    if (i < 0) {
        char hint[128];
        config_problem(ld, ld->lineno, "unknown key '%s' in section [%s]%s", name, section,
                       config_key_hint(name, hint, sizeof(hint)));
        return 1;
    }
    const struct config_def *def = &config_table[i];
    const char *sep = config_list_sep(def->info.section, def->info.name);
    if (append && (sep == NULL || ld->set_on[i] == 0)) {
        config_problem(ld, ld->lineno, "[%s] %s: %s", def->info.section, def->info.name,
                       sep ? "+= extends a value set before it with ="
                           : "+= is only for lists "
                             "([server] bind, [upstream] channels, [tls] ciphers and ciphersuites, "
                             "[user.NAME] channels)");
        return 1;
    }
    if (!append && ld->set_on[i] != 0) {
        config_problem(ld, ld->lineno, "[%s] %s: duplicate key (first set on line %d)",
                       def->info.section, def->info.name, ld->set_on[i]);
        return 1;
    }
    ld->set_on[i] = ld->lineno;
    if (config_unquote(value, &v, &owned) < 0) {
        config_problem(ld, ld->lineno,
                       "[%s] %s: opening '\"' is not closed (note that ' ;' starts a comment)",
                       def->info.section, def->info.name);
        return 1;
    }
    if (sep) { /* keep the list so far: the next line may extend it */
        char *joined = append ? config_join(ld->list[i], sep, v) : xstrdup(v);
        free(ld->list[i]);
        ld->list[i] = joined;
        v = joined;
    }
    if (def->set(ld->cfg, def, v, err, sizeof(err)) < 0)
        config_problem(ld, ld->lineno, "[%s] %s: %s", def->info.section, def->info.name, err);
    free(owned);
    return 1;
}

/* Reads the whole file, or says why not in why. Only a regular file of at most
 * CONFIG_FILE_MAX bytes: a FIFO would block the loop in open or read (a reload runs there),
 * and /dev/zero or a wrong path to a huge file would take all memory. */
static char *config_read_file(const char *path, size_t *lenp, char *why, size_t whylen)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    size_t len = 0;
    char *buf;

    if (fd < 0) {
        snprintf(why, whylen, "cannot open: %s", strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        snprintf(why, whylen, "cannot stat: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "not a regular file");
        close(fd);
        return NULL;
    }
    buf = xmalloc(CONFIG_FILE_MAX + 1);
    for (;;) {
        ssize_t n = read(fd, buf + len, CONFIG_FILE_MAX + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(why, whylen, "cannot read: %s", strerror(errno));
            free(buf);
            close(fd);
            return NULL;
        }
        len += (size_t)n;
        if (n == 0 || len > CONFIG_FILE_MAX)
            break;
    }
    close(fd);
    if (len > CONFIG_FILE_MAX) { /* read one byte past the bound to tell */
        snprintf(why, whylen, "larger than %d bytes: is this the configuration file?",
                 CONFIG_FILE_MAX);
        free(buf);
        return NULL;
    }
    *lenp = len;
    return xrealloc(buf, len + 1);
}

/* Checks that the [tls] keys fit together (what a listener needs is set), reported on the
 * line of [tls] port. Whether the files can be read is checked when the listener starts. */
static void config_check_tls(struct config_load *ld)
{
    const struct config *cfg = ld->cfg;
    int line = ld->set_on[config_find("tls", "port")];

    if (cfg->tls_port == 0)
        return;
    if (cfg->tls_cert_file == NULL || cfg->tls_key_file == NULL)
        config_problem(ld, line, "[tls] port: a TLS listener needs cert_file and key_file");
    if (cfg->tls_auth_clients != CONFIG_TLS_AUTH_NO && cfg->tls_ca_cert_file == NULL)
        config_problem(ld, line,
                       "[tls] port: auth_clients = %s needs ca_cert_file (or auth_clients = no)",
                       cfg->tls_auth_clients == CONFIG_TLS_AUTH_YES ? "yes" : "optional");
    if (cfg->tls_port == cfg->port)
        config_problem(ld, line, "[tls] port: %d is also the [server] port", cfg->tls_port);
}

/* Checks that the [upstream] keys fit together, on the line of the key to change. */
static void config_check_upstream(struct config_load *ld)
{
    const struct config *cfg = ld->cfg;

    if (cfg->upstream_host != NULL && cfg->upstream_unixsocket != NULL)
        config_problem(ld, ld->set_on[config_find("upstream", "unixsocket")],
                       "[upstream] unixsocket: host is set too; set only one");
    int min_line = ld->set_on[config_find("upstream", "reconnect_min_ms")];
    int max_line = ld->set_on[config_find("upstream", "reconnect_max_ms")];
    if (cfg->upstream_reconnect_min_ms > cfg->upstream_reconnect_max_ms) {
        if (min_line) /* on the line that set the minimum, else on the maximum's */
            config_problem(ld, min_line,
                           "[upstream] reconnect_min_ms: %d is above reconnect_max_ms (%d%s)",
                           cfg->upstream_reconnect_min_ms, cfg->upstream_reconnect_max_ms,
                           max_line ? "" : ", its default");
        else
            config_problem(ld, max_line,
                           "[upstream] reconnect_max_ms: %d is below reconnect_min_ms (%d, its "
                           "default)",
                           cfg->upstream_reconnect_max_ms, cfg->upstream_reconnect_min_ms);
    }
    if (cfg->upstream_user != NULL && cfg->upstream_password == NULL)
        config_problem(ld, ld->set_on[config_find("upstream", "user")],
                       "[upstream] user: set without a password");
}

/* Reads the whole file, then lets inih parse it through config_reader and config_handler. */
int config_load(struct config *cfg, const char *path, config_report_fn *report, void *arg)
{
    struct config_load ld;
    char *buf;
    int rc;

    memset(&ld, 0, sizeof(ld));
    ld.cfg = cfg;
    ld.path = path;
    ld.report = report;
    ld.arg = arg;
    char why[256];
    buf = config_read_file(path, &ld.len, why, sizeof(why));
    if (buf == NULL) {
        config_problem(&ld, 0, "%s", why);
        return ld.problems;
    }
    ld.buf = buf;
    rc = ini_parse_stream(config_reader, &ld, config_handler, &ld);
    /* The reader blanks every line it rejects and the handler never fails, so inih only
     * complains about a line our checks let through; report it rather than lose it. */
    if (rc > 0)
        config_problem(&ld, rc, "syntax error");
    else if (rc < 0)
        config_problem(&ld, 0, "cannot parse (inih error %d)", rc);
    for (int i = 0; i < cfg->nusers; i++)
        if (cfg->users[i].set_on[0] == 0)
            config_problem(&ld, cfg->users[i].line, "[user.%s]: no password set",
                           cfg->users[i].name);
    config_check_tls(&ld);
    config_check_upstream(&ld);
    for (size_t i = 0; i < CONFIG_NKEYS; i++)
        free(ld.list[i]);
    free(buf);
    return ld.problems;
}
