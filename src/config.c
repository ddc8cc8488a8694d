/* The configuration key table and its setters. Every default, file value (config_file.c reads
 * files) and command-line override goes through the same per-type setter, so nothing bypasses
 * validation. This module only fills struct config: it never opens sockets or applies settings
 * itself. */

#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

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
_Static_assert(CONFIG_NKEYS <= CONFIG_MAX_KEYS, "config.h's CONFIG_MAX_KEYS is too small");

/* Returns 1 for yes/on/true/1, 0 for no/off/false/0, -1 otherwise. */
int config_parse_bool(const char *value)
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
int config_find(const char *section, const char *name)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const struct config_key_info *k = &config_table[i].info;
        if ((section == NULL || strcasecmp(section, k->section) == 0) &&
            strcasecmp(name, k->name) == 0)
            return (int)i;
    }
    return -1;
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
