/* The admin commands monitoring agents and cluster-aware clients send: ROLE, LASTSAVE, ACL
 * (the read-only half), LATENCY, SLOWLOG, and the cluster probes. evbrokerd replicates nothing,
 * saves nothing, times no command and runs no cluster, so most answers are what a Redis 7.0
 * with the same state (and its default settings) gives. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client.h"
#include "command.h"
#include "config.h"
#include "monitor.h"
#include "reply.h"
#include "server.h"
#include "util.h"

void cmd_role(struct client *c)
{
    reply_array(c->reply, 3);
    reply_bulk_cstr(c->reply, "master");
    reply_integer(c->reply, 0); /* replication offset */
    reply_array(c->reply, 0);   /* replicas */
}

/* Redis sets the last save time to its start time; nothing is saved here after that. */
void cmd_lastsave(struct client *c)
{
    reply_integer(c->reply, server.start_unix);
}

void cmd_cluster_disabled(struct client *c)
{
    reply_error(c->reply, "This instance has cluster support disabled");
}

/* CLUSTER: every subcommand Redis 7.0 knows is refused as a Redis without cluster mode refuses
 * it; others get the unknown-subcommand text. */
void cmd_cluster(struct client *c)
{
    static const char *const known[] = {
        "addslots",
        "addslotsrange",
        "bumpepoch",
        "count-failure-reports",
        "countkeysinslot",
        "delslots",
        "delslotsrange",
        "failover",
        "flushslots",
        "forget",
        "getkeysinslot",
        "help",
        "info",
        "keyslot",
        "links",
        "meet",
        "myid",
        "nodes",
        "replicas",
        "replicate",
        "reset",
        "saveconfig",
        "set-config-epoch",
        "setslot",
        "shards",
        "slaves",
        "slots",
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcasecmp(c->argv[1], known[i]) == 0) {
            cmd_cluster_disabled(c);
            return;
        }
    }
    reply_errorf(c->reply, "unknown subcommand '%.128s'. Try CLUSTER HELP.", c->argv[1]);
}

/* MONITOR: from now on the client is sent a line for every command run (monitor.c). A second
 * MONITOR gets no reply, as in Redis; inside a transaction Redis refuses it at EXEC. */
void cmd_monitor(struct client *c)
{
    if (c->flags & CLIENT_F_MONITOR)
        return;
    if (c->flags & CLIENT_F_MULTI) {
        reply_error(c->reply, "MONITOR isn't allowed for DENY BLOCKING client");
        return;
    }
    monitor_add(c);
    reply_simple(c->reply, "OK");
}

void cmd_acl_whoami(struct client *c)
{
    const char *name = client_user_name(c);
    reply_bulk_cstr(c->reply, name ? name : "default");
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The default user and the [user.NAME] sections, sorted as Redis lists its users. */
void cmd_acl_users(struct client *c)
{
    int n = server.cfg.nusers;
    const char **names = xmalloc(sizeof(*names) * (size_t)(n + 1));

    names[0] = "default";
    for (int i = 0; i < n; i++)
        names[i + 1] = server.cfg.users[i].name;
    qsort(names, (size_t)n + 1, sizeof(*names), name_cmp);
    reply_array(c->reply, (size_t)n + 1);
    for (int i = 0; i <= n; i++)
        reply_bulk_cstr(c->reply, names[i]);
    free(names);
}

/* Redis 7.0's command categories, in the order ACL CAT lists them. */
static const char *const acl_categories[] = {
    "keyspace", "read",   "write",       "set",       "sortedset",  "list",        "hash",
    "string",   "bitmap", "hyperloglog", "geo",       "stream",     "pubsub",      "admin",
    "fast",     "slow",   "blocking",    "dangerous", "connection", "transaction", "scripting",
};

void cmd_acl_cat(struct client *c)
{
    const size_t ncat = sizeof(acl_categories) / sizeof(acl_categories[0]);

    if (c->argc > 3) {
        reply_error(c->reply, "unknown subcommand or wrong number of arguments for 'CAT'. Try "
                              "ACL HELP.");
        return;
    }
    if (c->argc == 2) {
        reply_array(c->reply, ncat);
        for (size_t i = 0; i < ncat; i++)
            reply_bulk_cstr(c->reply, acl_categories[i]);
        return;
    }
    for (size_t i = 0; i < ncat; i++) {
        if (strcasecmp(c->argv[2], acl_categories[i]) == 0) {
            command_reply_category(c, acl_categories[i]);
            return;
        }
    }
    reply_errorf(c->reply, "Unknown category '%.128s'", c->argv[2]);
}

void cmd_acl_help(struct client *c)
{
    static const char *const lines[] = {
        "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CAT [<category>]",
        "    List the command categories, or the commands in <category>.",
        "USERS",
        "    List the users: default and the [user.NAME] sections of the configuration.",
        "WHOAMI",
        "    Return the user this connection is logged in as.",
        "HELP",
        "    Print this help.",
        "Users are defined in the configuration file and change with SIGHUP.",
    };
    reply_lines(c->reply, lines, sizeof(lines) / sizeof(lines[0]));
}

/* The empty answers: LATENCY HISTORY and LATEST (Redis's monitor is off by default,
 * latency-monitor-threshold 0, and evbrokerd has none, so there are never samples), and the
 * zero of LATENCY RESET (event classes reset) and SLOWLOG LEN. */
void cmd_reply_empty_array(struct client *c)
{
    reply_array(c->reply, 0);
}

void cmd_reply_zero(struct client *c)
{
    reply_integer(c->reply, 0);
}

void cmd_latency_doctor(struct client *c)
{
    static const char text[] = "evbrokerd has no latency monitor, so there are no latency "
                               "samples to analyse. INFO pubsub shows the event loop's load, "
                               "and /metrics the fan-out time histogram.\n";
    reply_verbatim(c->reply, c->resp, text, sizeof(text) - 1);
}

void cmd_latency_graph(struct client *c)
{
    reply_errorf(c->reply, "No samples available for event '%.128s'", c->argv[2]);
}

/* Per-command latency histograms are not kept: the empty map of a Redis run with
 * latency-tracking no (CONFIG GET says so). */
void cmd_latency_histogram(struct client *c)
{
    reply_map(c->reply, c->resp, 0);
}

void cmd_latency_help(struct client *c)
{
    static const char *const lines[] = {
        "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DOCTOR",
        "    Say that there is no latency monitor, and where to look instead.",
        "GRAPH <event>",
        "    Graph the samples of <event> (there are none).",
        "HISTOGRAM [<command> ...]",
        "    Return per-command latency histograms (none are kept: an empty map).",
        "HISTORY <event>",
        "    Return the samples of <event> (none: evbrokerd has no latency monitor).",
        "LATEST",
        "    Return the latest sample of every event (none).",
        "RESET [<event> ...]",
        "    Reset the samples of the events (there are none to reset).",
        "HELP",
        "    Print this help.",
    };
    reply_lines(c->reply, lines, sizeof(lines) / sizeof(lines[0]));
}

/* SLOWLOG: evbrokerd times no command (CONFIG GET slowlog-log-slower-than says -1, which
 * disables Redis's log), so the log is always empty. */
void cmd_slowlog_get(struct client *c)
{
    long long count = 10;
    if (c->argc == 3 && (util_parse_ll(c->argv[2], c->argvlen[2], &count) < 0 || count < -1)) {
        reply_error(c->reply, "count should be greater than or equal to -1");
        return;
    }
    if (c->argc > 3) {
        reply_error(c->reply, "unknown subcommand or wrong number of arguments for 'GET'. Try "
                              "SLOWLOG HELP.");
        return;
    }
    cmd_reply_empty_array(c);
}

void cmd_slowlog_reset(struct client *c)
{
    reply_simple(c->reply, "OK");
}

void cmd_slowlog_help(struct client *c)
{
    static const char *const lines[] = {
        "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET [<count>]",
        "    Return up to <count> entries (always none: evbrokerd times no command).",
        "LEN",
        "    Return the number of entries (0).",
        "RESET",
        "    Empty the log.",
        "HELP",
        "    Print this help.",
    };
    reply_lines(c->reply, lines, sizeof(lines) / sizeof(lines[0]));
}
