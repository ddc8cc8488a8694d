/* CONFIG GET, for the tools that read a Redis server's settings on connect (desktop clients,
 * redis-benchmark, exporters): evbrokerd's configuration under Redis's parameter names, plus
 * the constants a Redis without persistence would show. Settings change through the file and
 * SIGHUP, so there is no CONFIG SET; passwords are never shown (a user limited to some
 * channels must not read the default user's password). */
#include <event2/buffer.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "client.h"
#include "command.h"
#include "config.h"
#include "log.h"
#include "pattern.h"
#include "reply.h"
#include "server.h"

/* How a parameter's value is found: a field of struct config read as its type, a constant,
 * or one formatted by config_value_special. */
enum param_kind { P_INT, P_OCTAL, P_LL, P_STR, P_BOOL, P_CONST, P_SPECIAL };

static const struct {
    const char *name;
    enum param_kind kind;
    size_t off;       /* P_INT to P_BOOL: where in struct config */
    const char *text; /* P_CONST: the value */
} params[] = {
    {"bind", P_SPECIAL, 0, NULL},
    {"port", P_INT, offsetof(struct config, port), NULL},
    {"unixsocket", P_STR, offsetof(struct config, unixsocket), NULL},
    {"unixsocketperm", P_OCTAL, offsetof(struct config, unixsocketperm), NULL},
    {"tcp-backlog", P_INT, offsetof(struct config, tcp_backlog), NULL},
    {"maxclients", P_INT, offsetof(struct config, maxclients), NULL},
    {"timeout", P_INT, offsetof(struct config, timeout), NULL},
    {"tcp-keepalive", P_INT, offsetof(struct config, tcp_keepalive), NULL},
    {"pidfile", P_STR, offsetof(struct config, pidfile), NULL},
    {"loglevel", P_SPECIAL, 0, NULL},
    {"logfile", P_SPECIAL, 0, NULL},
    {"syslog-enabled", P_SPECIAL, 0, NULL},
    {"proto-max-bulk-len", P_LL, offsetof(struct config, proto_max_bulk_len), NULL},
    {"client-query-buffer-limit", P_LL, offsetof(struct config, client_query_buffer_limit), NULL},
    {"client-output-buffer-limit", P_SPECIAL, 0, NULL},
    {"protected-mode", P_BOOL, offsetof(struct config, protected_mode), NULL},
    {"tls-port", P_INT, offsetof(struct config, tls_port), NULL},
    {"tls-cert-file", P_STR, offsetof(struct config, tls_cert_file), NULL},
    {"tls-key-file", P_STR, offsetof(struct config, tls_key_file), NULL},
    {"tls-ca-cert-file", P_STR, offsetof(struct config, tls_ca_cert_file), NULL},
    {"tls-auth-clients", P_SPECIAL, 0, NULL},
    {"tls-ciphers", P_STR, offsetof(struct config, tls_ciphers), NULL},
    {"tls-ciphersuites", P_STR, offsetof(struct config, tls_ciphersuites), NULL},
    /* What a Redis that stores nothing would say. */
    {"databases", P_CONST, 0, "16"},
    {"save", P_CONST, 0, ""},
    {"appendonly", P_CONST, 0, "no"},
    {"maxmemory", P_CONST, 0, "0"},
    {"maxmemory-policy", P_CONST, 0, "noeviction"},
    {"cluster-enabled", P_CONST, 0, "no"},
    {"io-threads", P_CONST, 0, "1"},
    {"hz", P_CONST, 0, "10"},
    {"notify-keyspace-events", P_CONST, 0, ""},
    /* No command is timed (a negative threshold turns Redis's slow log off) and there is no
     * latency monitor (0 is Redis's default: off), so SLOWLOG and LATENCY stay empty. */
    {"slowlog-log-slower-than", P_CONST, 0, "-1"},
    {"slowlog-max-len", P_CONST, 0, "128"},
    {"latency-monitor-threshold", P_CONST, 0, "0"},
    {"latency-tracking", P_CONST, 0, "no"}, /* no per-command histograms (LATENCY HISTOGRAM) */
};

#define NPARAMS (sizeof(params) / sizeof(params[0]))

/* The values that are not one field: lists, enums, and Redis's way of naming log targets
 * (logfile "" is standard output, syslog-enabled says yes for syslog). */
static void config_value_special(const struct config *cfg, const char *name, char *buf, size_t len)
{
    static const char *const auth[] = {"no", "optional", "yes"};
    const char *target = cfg->log_target ? cfg->log_target : "stderr";
    int syslog = strcasecmp(target, "syslog") == 0;

    buf[0] = '\0';
    if (strcmp(name, "bind") == 0) {
        size_t n = 0;
        for (int i = 0; i < cfg->nbind && n < len; i++)
            n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? " " : "", cfg->bind[i]);
    } else if (strcmp(name, "loglevel") == 0) {
        snprintf(buf, len, "%s", log_level_name(cfg->log_level));
    } else if (strcmp(name, "logfile") == 0) {
        snprintf(buf, len, "%s", syslog || strcasecmp(target, "stderr") == 0 ? "" : target);
    } else if (strcmp(name, "syslog-enabled") == 0) {
        snprintf(buf, len, "%s", syslog ? "yes" : "no");
    } else if (strcmp(name, "client-output-buffer-limit") == 0) {
        /* Only the pubsub class applies here; the others show Redis's defaults. */
        snprintf(buf, len, "normal 0 0 0 slave 268435456 67108864 60 pubsub %lld %lld %d",
                 cfg->pubsub_hard_limit, cfg->pubsub_soft_limit, cfg->pubsub_soft_seconds);
    } else if (strcmp(name, "tls-auth-clients") == 0) {
        snprintf(buf, len, "%s", auth[cfg->tls_auth_clients]);
    }
}

/* Formats parameter i of cfg into buf. */
static const char *config_value(const struct config *cfg, size_t i, char *buf, size_t len)
{
    const char *field = (const char *)cfg + params[i].off;

    switch (params[i].kind) {
    case P_INT:
        snprintf(buf, len, "%d", *(const int *)field);
        break;
    case P_OCTAL:
        snprintf(buf, len, "%o", (unsigned)*(const int *)field);
        break;
    case P_LL:
        snprintf(buf, len, "%lld", *(const long long *)field);
        break;
    case P_STR:
        snprintf(buf, len, "%s", *(char *const *)field ? *(char *const *)field : "");
        break;
    case P_BOOL:
        snprintf(buf, len, "%s", *(const int *)field ? "yes" : "no");
        break;
    case P_CONST:
        return params[i].text;
    case P_SPECIAL:
        config_value_special(cfg, params[i].name, buf, len);
        break;
    }
    return buf;
}

/* Whether CONFIG GET's argument a names parameter i: as a glob when it has one of Redis's glob
 * characters ('[', '*', '?'), else exactly; both fold case, as Redis does. */
static int config_arg_names(const struct client *c, int a, size_t i)
{
    const char *name = params[i].name;
    if (strpbrk(c->argv[a], "[*?") == NULL)
        return strcasecmp(c->argv[a], name) == 0;
    return pattern_match(c->argv[a], c->argvlen[a], name, strlen(name), 1);
}

/* CONFIG GET pattern [pattern ...]: every parameter one of the arguments names, each once, as
 * pairs (RESP2) or a map (RESP3). A name given without glob characters comes back as it was
 * written, as Redis answers it. */
void cmd_config_get(struct client *c)
{
    int by[NPARAMS] = {0}; /* the argument that matched, or 0 */
    size_t n = 0;
    char value[4096];

    for (size_t i = 0; i < NPARAMS; i++) {
        for (int a = 2; a < c->argc && !by[i]; a++)
            if (config_arg_names(c, a, i))
                by[i] = a;
        n += by[i] != 0;
    }
    reply_map(c->reply, c->resp, n);
    for (size_t i = 0; i < NPARAMS; i++) {
        if (!by[i])
            continue;
        const char *arg = c->argv[by[i]];
        reply_bulk_cstr(c->reply, strpbrk(arg, "[*?") ? params[i].name : arg);
        reply_bulk_cstr(c->reply, config_value(&server.cfg, i, value, sizeof(value)));
    }
}

void cmd_config_help(struct client *c)
{
    static const char *const lines[] = {
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern> [<pattern> ...]",
        "    Return the parameters matching the glob-like patterns and their values, under",
        "    Redis's names. evbrokerd reads its settings from its configuration file: change",
        "    them there and send SIGHUP (there is no CONFIG SET).",
        "HELP",
        "    Print this help.",
    };
    reply_lines(c->reply, lines, sizeof(lines) / sizeof(lines[0]));
}
