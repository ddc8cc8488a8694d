/* The command table and the dispatcher. The table is the single source for arity, the
 * checks the dispatcher makes, and what COMMAND and COMMAND DOCS report. Handlers live in
 * cmd_*.c and never re-validate what the dispatcher checked. */
#include "command.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "acl.h"
#include "client.h"
#include "monitor.h"
#include "multi.h"
#include "reply.h"
#include "server.h"
#include "util.h"

#define F_PUBSUB_CMD "pubsub noscript loading stale"
#define F_CONN "noscript loading stale fast no_auth allow_busy"
#define F_TX "noscript loading stale"

static struct command pubsub_subcommands[] = {
    {"channels", cmd_pubsub_channels, -2, 0, "pubsub loading stale", "@pubsub @slow", "pubsub",
     "2.8.0", "Returns the active channels.",
     "O(N) where N is the number of active channels, and assuming constant time pattern matching "
     "(relatively short channels and patterns)",
     "pattern:pattern:optional"},
    {"help", cmd_pubsub_help, 2, 0, "loading stale", "@slow", "pubsub", "6.2.0",
     "Returns helpful text about the different subcommands.", "O(1)", ""},
    {"numpat", cmd_pubsub_numpat, 2, 0, "pubsub loading stale", "@pubsub @slow", "pubsub", "2.8.0",
     "Returns a count of unique pattern subscriptions.", "O(1)", ""},
    {"numsub", cmd_pubsub_numsub, -2, 0, "pubsub loading stale", "@pubsub @slow", "pubsub", "2.8.0",
     "Returns a count of subscribers to channels.",
     "O(N) for the NUMSUB subcommand, where N is the number of requested channels",
     "channel:string:optional,multiple"},
    {"shardchannels", cmd_pubsub_shardchannels, -2, 0, "pubsub loading stale", "@pubsub @slow",
     "pubsub", "7.0.0", "Returns the active shard channels.",
     "O(N) where N is the number of active shard channels, and assuming constant time pattern "
     "matching (relatively short shard channels).",
     "pattern:pattern:optional"},
    {"shardnumsub", cmd_pubsub_shardnumsub, -2, 0, "pubsub loading stale", "@pubsub @slow",
     "pubsub", "7.0.0", "Returns the count of subscribers of shard channels.",
     "O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard channels",
     "shardchannel:string:optional,multiple"},
    {0},
};

static struct command client_subcommands[] = {
    {"getname", cmd_client_getname, 2, 0, "noscript loading stale", "@slow @connection",
     "connection", "2.6.9", "Returns the name of the connection.", "O(1)", ""},
    {"getredir", cmd_client_getredir, 2, 0, "noscript loading stale", "@slow @connection",
     "connection", "6.0.0",
     "Returns the client ID to which the connection's tracking notifications are redirected.",
     "O(1)", ""},
    {"help", cmd_client_help, 2, 0, "loading stale", "@slow @connection", "connection", "5.0.0",
     "Returns helpful text about the different subcommands.", "O(1)", ""},
    {"id", cmd_client_id, 2, 0, "noscript loading stale", "@slow @connection", "connection",
     "5.0.0", "Returns the unique client ID of the connection.", "O(1)", ""},
    {"info", cmd_client_info, 2, 0, "noscript loading stale", "@slow @connection", "connection",
     "6.2.0", "Returns information about the connection.", "O(1)", "",
     .tips = "nondeterministic_output"},
    {"kill", cmd_client_kill, -3, 0, "admin noscript loading stale",
     "@admin @slow @dangerous @connection", "connection", "2.4.0", "Terminates open connections.",
     "O(N) where N is the number of client connections", "filter:string"},
    {"list", cmd_client_list, -2, 0, "admin noscript loading stale",
     "@admin @slow @dangerous @connection", "connection", "2.4.0", "Lists open connections.",
     "O(N) where N is the number of client connections",
     "type:string:optional client-id:integer:optional,multiple", .tips = "nondeterministic_output"},
    {"no-evict", cmd_client_no_evict, 3, 0, "admin noscript loading stale",
     "@admin @slow @dangerous @connection", "connection", "7.0.0",
     "Sets the client eviction mode of the connection (accepted; nothing is evicted).", "O(1)",
     "enabled:string"},
    {"reply", cmd_client_reply, 3, 0, "noscript loading stale", "@slow @connection", "connection",
     "3.2.0", "Instructs the server whether to reply to commands.", "O(1)", "action:string"},
    {"setinfo", cmd_client_setinfo, 4, 0, "noscript loading stale", "@slow @connection",
     "connection", "7.2.0", "Sets information specific to the client or connection.", "O(1)",
     "attr:string"},
    {"setname", cmd_client_setname, 3, 0, "noscript loading stale", "@slow @connection",
     "connection", "2.6.9", "Sets the connection name.", "O(1)", "connection-name:string"},
    {"tracking", cmd_client_tracking, -3, 0, "noscript loading stale", "@slow @connection",
     "connection", "6.0.0", "Controls server-assisted client-side caching (only OFF here).",
     "O(1). Some options may introduce additional complexity.", "status:string"},
    {"trackinginfo", cmd_client_trackinginfo, 2, 0, "noscript loading stale", "@slow @connection",
     "connection", "6.2.0",
     "Returns information about server-assisted client-side caching for the connection.", "O(1)",
     ""},
    {"unblock", cmd_client_unblock, -3, 0, "admin noscript loading stale",
     "@admin @slow @dangerous @connection", "connection", "5.0.0",
     "Unblocks a client blocked by a blocking command (none block here).",
     "O(log N) where N is the number of client connections",
     "client-id:integer unblock-type:string:optional"},
    {0},
};

static struct command command_subcommands[] = {
    {"count", cmd_command_count, 2, 0, "loading stale", "@slow @connection", "server", "2.8.13",
     "Returns a count of commands.", "O(1)", ""},
    {"getkeys", cmd_command_getkeys, -4, 0, "loading stale", "@slow @connection", "server",
     "2.8.13", "Extracts the key names from an arbitrary command (only WATCH takes keys here).",
     "O(N) where N is the number of arguments to the command",
     "command:string arg:string:optional,multiple"},
    {"getkeysandflags", cmd_command_getkeys, -4, 0, "loading stale", "@slow @connection", "server",
     "7.0.0", "Extracts the key names and access flags for an arbitrary command.",
     "O(N) where N is the number of arguments to the command",
     "command:string arg:string:optional,multiple"},
    {"docs", cmd_command_docs, -2, 0, "loading stale", "@slow @connection", "server", "7.0.0",
     "Returns documentary information about one, multiple or all commands.",
     "O(N) where N is the number of commands to look up", "command-name:string:optional,multiple",
     .tips = "nondeterministic_output_order"},
    {"help", cmd_command_help, 2, 0, "loading stale", "@slow @connection", "server", "5.0.0",
     "Returns helpful text about the different subcommands.", "O(1)", ""},
    {"info", cmd_command_info, -2, 0, "loading stale", "@slow @connection", "server", "2.8.13",
     "Returns information about one, multiple or all commands.",
     "O(N) where N is the number of commands to look up", "command-name:string:optional,multiple",
     .tips = "nondeterministic_output_order"},
    {"list", cmd_command_list, -2, 0, "loading stale", "@slow @connection", "server", "7.0.0",
     "Returns a list of command names.", "O(N) where N is the total number of Redis commands",
     "filterby:string:optional", .tips = "nondeterministic_output_order"},
    {0},
};

static struct command function_subcommands[] = {
    {"flush", cmd_function_flush, -2, CMD_F_KEYSPACE, "write noscript", "@write @slow @scripting",
     "scripting", "7.0.0", "Deletes all libraries and functions (there are none here).",
     "O(N) where N is the number of functions deleted", "flush-type:string:optional",
     .tips = "request_policy:all_shards response_policy:all_succeeded"},
    {"help", cmd_function_help, 2, 0, "loading stale", "@slow @scripting", "scripting", "7.0.0",
     "Returns helpful text about the different subcommands.", "O(1)", ""},
    {0},
};

static struct command config_subcommands[] = {
    {"get", cmd_config_get, -3, 0, "admin noscript loading stale", "@admin @slow @dangerous",
     "server", "2.0.0", "Returns the effective values of configuration parameters.",
     "O(N) when N is the number of configuration parameters provided", "parameter:string:multiple"},
    {"help", cmd_config_help, 2, 0, "loading stale", "@slow", "server", "5.0.0",
     "Returns helpful text about the different subcommands.", "O(1)", ""},
    {0},
};

static struct command acl_subcommands[] = {
    {"cat", cmd_acl_cat, -2, 0, "noscript loading stale", "@slow", "server", "6.0.0",
     "Lists the ACL categories, or the commands inside a category.",
     "O(1) since the categories and commands are a fixed set.", "category:string:optional"},
    {"help", cmd_acl_help, 2, 0, "loading stale", "@slow", "server", "6.0.0",
     "Returns helpful text about the different subcommands.", "O(1)", ""},
    {"users", cmd_acl_users, 2, 0, "admin noscript loading stale", "@admin @slow @dangerous",
     "server", "6.0.0", "Lists all ACL users.", "O(N). Where N is the number of configured users.",
     ""},
    {"whoami", cmd_acl_whoami, 2, 0, "noscript loading stale", "@slow", "server", "6.0.0",
     "Returns the authenticated username of the current connection.", "O(1)", ""},
    {0},
};

#define F_LATENCY "admin noscript loading stale", "@admin @slow @dangerous", "server", "2.8.13"
#define F_SLOWLOG "admin loading stale", "@admin @slow @dangerous", "server", "2.2.12"

static struct command latency_subcommands[] = {
    {"doctor", cmd_latency_doctor, 2, 0, F_LATENCY,
     "Returns a human-readable latency analysis report (there is no latency monitor).", "O(1)", "",
     .tips = "nondeterministic_output request_policy:all_nodes response_policy:special"},
    {"graph", cmd_latency_graph, 3, 0, F_LATENCY,
     "Returns a latency graph for an event (there are no samples).", "O(1)", "event:string",
     .tips = "nondeterministic_output request_policy:all_nodes response_policy:special"},
    {"help", cmd_latency_help, 2, 0, "loading stale", "@slow", "server", "2.8.13",
     "Returns helpful text about the different subcommands.", "O(1)", ""},
    {"histogram", cmd_latency_histogram, -2, 0, "admin noscript loading stale",
     "@admin @slow @dangerous", "server", "7.0.0",
     "Returns the cumulative distribution of latencies of a subset or all commands (none are "
     "kept).",
     "O(N) where N is the number of commands with latency information being retrieved.",
     "command:string:optional,multiple",
     .tips = "nondeterministic_output request_policy:all_nodes response_policy:special"},
    {"history", cmd_reply_empty_array, 3, 0, F_LATENCY,
     "Returns timestamp-latency samples for an event (none: there is no latency monitor).", "O(1)",
     "event:string",
     .tips = "nondeterministic_output request_policy:all_nodes response_policy:special"},
    {"latest", cmd_reply_empty_array, 2, 0, F_LATENCY,
     "Returns the latest latency samples for all events (none).", "O(1)", "",
     .tips = "nondeterministic_output request_policy:all_nodes response_policy:special"},
    {"reset", cmd_reply_zero, -2, 0, F_LATENCY,
     "Resets the latency data for one or more events (there is none).", "O(1)",
     "event:string:optional,multiple",
     .tips = "request_policy:all_nodes response_policy:all_succeeded"},
    {0},
};

static struct command slowlog_subcommands[] = {
    {"get", cmd_slowlog_get, -2, 0, F_SLOWLOG,
     "Returns the slow log's entries (none: evbrokerd times no command).",
     "O(N) where N is the number of entries returned", "count:integer:optional",
     .tips = "request_policy:all_nodes nondeterministic_output"},
    {"help", cmd_slowlog_help, 2, 0, "loading stale", "@slow", "server", "6.2.0",
     "Show helpful text about the different subcommands", "O(1)", ""},
    {"len", cmd_reply_zero, 2, 0, F_SLOWLOG, "Returns the number of entries in the slow log (0).",
     "O(1)", "",
     .tips = "request_policy:all_nodes response_policy:agg_sum nondeterministic_output"},
    {"reset", cmd_slowlog_reset, 2, 0, F_SLOWLOG, "Clears all entries from the slow log.",
     "O(N) where N is the number of entries in the slowlog", "",
     .tips = "request_policy:all_nodes response_policy:all_succeeded"},
    {0},
};

static struct command command_table[] = {
    {"acl", NULL, -2, 0, "", "@slow", "server", "6.0.0",
     "A container for Access List Control commands.", "Depends on subcommand.", "",
     acl_subcommands},
    {"auth", cmd_auth, -2, CMD_F_NO_AUTH, F_CONN, "@fast @connection", "connection", "1.0.0",
     "Authenticates the connection.",
     "O(N) where N is the number of passwords defined for the user",
     "username:string:optional password:string"},
    {"client", NULL, -2, 0, "", "@slow", "connection", "2.4.0",
     "A container for client connection commands.", "Depends on subcommand.", "",
     client_subcommands},
    {"cluster", cmd_cluster, -2, 0, "", "@slow", "cluster", "3.0.0",
     "A container for Redis Cluster commands (cluster mode is never enabled here).",
     "Depends on subcommand.", "subcommand:string"},
    {"command", cmd_command, -1, 0, "loading stale", "@slow @connection", "server", "2.8.13",
     "Returns detailed information about all commands.",
     "O(N) where N is the total number of Redis commands", "", command_subcommands,
     .tips = "nondeterministic_output_order"},
    {"config", NULL, -2, 0, "", "@slow", "server", "2.0.0",
     "A container for server configuration commands.", "Depends on subcommand.", "",
     config_subcommands},
    {"dbsize", cmd_dbsize, 1, CMD_F_KEYSPACE, "readonly fast", "@keyspace @read @fast", "server",
     "1.0.0", "Returns the number of keys in the database (always 0: evbrokerd stores no keys).",
     "O(1)", "", .tips = "request_policy:all_shards response_policy:agg_sum"},
    {"debug", NULL, -2, CMD_F_UNSUPPORTED, "admin noscript loading stale",
     "@admin @slow @dangerous", "server", "1.0.0",
     "A container for debugging commands (not supported).", "Depends on subcommand.", ""},
    {"discard", cmd_discard, 1, CMD_F_NOT_QUEUED, F_TX " fast allow_busy", "@fast @transaction",
     "transactions", "2.0.0", "Discards a transaction.",
     "O(N), when N is the number of queued commands", ""},
    {"echo", cmd_echo, 2, 0, "loading stale fast", "@fast @connection", "connection", "1.0.0",
     "Returns the given string.", "O(1)", "message:string"},
    {"exec", cmd_exec, 1, CMD_F_NOT_QUEUED, F_TX " skip_slowlog", "@slow @transaction",
     "transactions", "1.2.0", "Executes all commands in a transaction.",
     "Depends on commands in the transaction", ""},
    {"flushall", cmd_flushall, -1, CMD_F_KEYSPACE, "write", "@keyspace @write @slow @dangerous",
     "server", "1.0.0", "Removes all keys from all databases (there are none here).",
     "O(N) where N is the total number of keys in all databases", "flush-type:string:optional",
     .tips = "request_policy:all_shards response_policy:all_succeeded"},
    {"flushdb", cmd_flushdb, -1, CMD_F_KEYSPACE, "write", "@keyspace @write @slow @dangerous",
     "server", "1.0.0", "Remove all keys from the current database (there are none here).",
     "O(N) where N is the number of keys in the selected database", "flush-type:string:optional",
     .tips = "request_policy:all_shards response_policy:all_succeeded"},
    {"function", NULL, -2, 0, "", "@slow", "scripting", "7.0.0",
     "A container for function commands.", "Depends on subcommand.", "", function_subcommands},
    {"hello", cmd_hello, -1, CMD_F_NO_AUTH, F_CONN, "@fast @connection", "connection", "6.0.0",
     "Handshakes with the Redis server.", "O(1)", "arguments:string:optional"},
    {"info", cmd_info, -1, 0, "loading stale", "@slow @dangerous", "server", "1.0.0",
     "Returns information and statistics about the server.", "O(1)",
     "section:string:optional,multiple",
     .tips = "nondeterministic_output request_policy:all_shards response_policy:special"},
    {"lastsave", cmd_lastsave, 1, 0, "loading stale fast", "@admin @fast @dangerous", "server",
     "1.0.0", "Returns the Unix timestamp of the last successful save (the start: none since).",
     "O(1)", "", .tips = "nondeterministic_output"},
    {"latency", NULL, -2, 0, "", "@slow", "server", "2.8.13",
     "A container for latency diagnostics commands.", "Depends on subcommand.", "",
     latency_subcommands},
    {"monitor", cmd_monitor, 1, 0, "admin noscript loading stale", "@admin @slow @dangerous",
     "server", "1.0.0", "Listens for all requests received by the server in real-time.", "", ""},
    {"multi", cmd_multi, 1, CMD_F_NOT_QUEUED, F_TX " fast allow_busy", "@fast @transaction",
     "transactions", "1.2.0", "Starts a transaction.", "O(1)", ""},
    {"ping", cmd_ping, -1, CMD_F_PUBSUB_OK, "fast", "@fast @connection", "connection", "1.0.0",
     "Returns the server's liveliness response.", "O(1)", "message:string:optional",
     .tips = "request_policy:all_shards response_policy:all_succeeded"},
    {"psubscribe", cmd_psubscribe, -2, CMD_F_PUBSUB_OK | CMD_F_ACL_PATTERNS, F_PUBSUB_CMD,
     "@pubsub @slow", "pubsub", "2.0.0",
     "Listens for messages published to channels that match one or more patterns.",
     "O(N) where N is the number of patterns the client is already subscribed to.",
     "pattern:pattern:multiple"},
    {"publish", cmd_publish, 3, CMD_F_ACL_CHANNEL | CMD_F_KEYSPACE, "pubsub loading stale fast",
     "@pubsub @fast", "pubsub", "2.0.0", "Posts a message to a channel.",
     "O(N+M) where N is the number of clients subscribed to the receiving channel and M is the "
     "number of patterns that can match it.",
     "channel:string message:string"},
    {"pubsub", NULL, -2, 0, "", "@slow", "pubsub", "2.8.0", "A container for Pub/Sub commands.",
     "Depends on subcommand.", "", pubsub_subcommands},
    {"punsubscribe", cmd_punsubscribe, -1, CMD_F_PUBSUB_OK, F_PUBSUB_CMD, "@pubsub @slow", "pubsub",
     "2.0.0",
     "Stops listening to messages published to channels that match one or "
     "more patterns.",
     "O(N) where N is the number of patterns to unsubscribe.", "pattern:pattern:optional,multiple"},
    {"quit", cmd_quit, -1, CMD_F_PUBSUB_OK | CMD_F_NO_AUTH | CMD_F_NOT_QUEUED, F_CONN,
     "@fast @connection", "connection", "1.0.0", "Closes the connection.", "O(1)", ""},
    {"readonly", cmd_cluster_disabled, 1, 0, "loading stale fast", "@fast @connection", "cluster",
     "3.0.0", "Enables read-only queries for a connection to a Redis Cluster replica.", "O(1)", ""},
    {"readwrite", cmd_cluster_disabled, 1, 0, "loading stale fast", "@fast @connection", "cluster",
     "3.0.0", "Enables read-write queries for a connection to a Redis Cluster replica.", "O(1)",
     ""},
    {"reset", cmd_reset, 1, CMD_F_PUBSUB_OK | CMD_F_NO_AUTH | CMD_F_NOT_QUEUED, F_CONN,
     "@fast @connection", "connection", "6.2.0", "Resets the connection.", "O(1)", ""},
    {"role", cmd_role, 1, 0, "noscript loading stale fast", "@admin @fast @dangerous", "server",
     "2.8.12", "Returns the replication role.", "O(1)", ""},
    {"select", cmd_select, 2, 0, "loading stale fast", "@fast @connection", "connection", "1.0.0",
     "Changes the selected database (pub/sub is database independent).", "O(1)", "index:integer"},
    {"slowlog", NULL, -2, 0, "", "@slow", "server", "2.2.12", "A container for slow log commands.",
     "Depends on subcommand.", "", slowlog_subcommands},
    {"spublish", cmd_spublish, 3, CMD_F_ACL_CHANNEL | CMD_F_KEYSPACE, "pubsub loading stale fast",
     "@pubsub @fast", "pubsub", "7.0.0", "Post a message to a shard channel",
     "O(N) where N is the number of clients subscribed to the receiving shard channel.",
     "shardchannel:string message:string", .last_key = 1},
    {"ssubscribe", cmd_ssubscribe, -2, CMD_F_PUBSUB_OK | CMD_F_ACL_CHANNELS, F_PUBSUB_CMD,
     "@pubsub @slow", "pubsub", "7.0.0", "Listens for messages published to shard channels.",
     "O(N) where N is the number of shard channels to subscribe to.",
     "shardchannel:string:multiple", .last_key = -1},
    {"subscribe", cmd_subscribe, -2, CMD_F_PUBSUB_OK | CMD_F_ACL_CHANNELS, F_PUBSUB_CMD,
     "@pubsub @slow", "pubsub", "2.0.0", "Listens for messages published to channels.",
     "O(N) where N is the number of channels to subscribe to.", "channel:string:multiple"},
    {"sunsubscribe", cmd_sunsubscribe, -1, CMD_F_PUBSUB_OK, F_PUBSUB_CMD, "@pubsub @slow", "pubsub",
     "7.0.0", "Stops listening to messages posted to shard channels.",
     "O(N) where N is the number of shard channels to unsubscribe.",
     "shardchannel:string:optional,multiple", .last_key = -1},
    {"time", cmd_time, 1, 0, "loading stale fast", "@fast", "server", "2.6.0",
     "Returns the server time.", "O(1)", "", .tips = "nondeterministic_output"},
    {"unsubscribe", cmd_unsubscribe, -1, CMD_F_PUBSUB_OK, F_PUBSUB_CMD, "@pubsub @slow", "pubsub",
     "2.0.0", "Stops listening to messages posted to channels.",
     "O(N) where N is the number of channels to unsubscribe.", "channel:string:optional,multiple"},
    {"unwatch", cmd_unwatch, 1, 0, F_TX " fast allow_busy", "@fast @transaction", "transactions",
     "2.2.0", "Forgets about watched keys.", "O(1)", ""},
    {"watch", cmd_watch, -2, CMD_F_NOT_QUEUED, F_TX " fast allow_busy", "@fast @transaction",
     "transactions", "2.2.0",
     "Monitors changes to keys (none change here: a watched transaction always runs).",
     "O(1) for every key.", "key:key:multiple", .last_key = -1, .key_flag = "RO"},
    {0},
};

/* Where replies go while CLIENT REPLY OFF or SKIP is in force; drained after each command. */
static struct evbuffer *discard_buf;

/* Where the top-level names starting with each letter begin in the (sorted) table, so a
 * lookup compares only names with the right first letter. */
static unsigned char table_first[27];
static int table_indexed;

/* The lower-case letter index of a name's first byte, 26 for anything else. */
static unsigned letter_index(char ch)
{
    unsigned c = (unsigned char)ch | 0x20u;
    return c >= 'a' && c <= 'z' ? c - 'a' : 26;
}

/* Builds table_first; command_init runs it, a lookup before that too. */
static void command_index(void)
{
    size_t n = command_count();

    for (unsigned l = 27; l-- > 0;) {
        table_first[l] = (unsigned char)n;
        for (size_t i = 0; i < n; i++)
            if (letter_index(command_table[i].name[0]) == l) {
                table_first[l] = (unsigned char)i;
                break;
            }
    }
    /* The index needs names with the same first letter next to each other. */
    EVB_ASSERT(n < 256);
    for (size_t i = 1; i < n; i++)
        EVB_ASSERT(letter_index(command_table[i - 1].name[0]) <=
                   letter_index(command_table[i].name[0]));
    table_indexed = 1;
}

/* The flags the table's texts imply: Redis's "admin" flag (MONITOR skips the command) and
 * its @admin category (ACL users need admin = yes), which differ for LASTSAVE and ROLE. */
static void command_init_flags(struct command *c)
{
    if (util_has_word(c->info_flags, "admin"))
        c->flags |= CMD_F_ADMIN;
    if (util_has_word(c->acl, "@admin"))
        c->flags |= CMD_F_ACL_ADMIN;
}

void command_init(void)
{
    command_index();
    for (struct command *c = command_table; c->name; c++) {
        snprintf(c->fullname, sizeof(c->fullname), "%s", c->name);
        command_init_flags(c);
        for (struct command *s = c->subcommands; s && s->name; s++) {
            s->parent = c->name;
            snprintf(s->fullname, sizeof(s->fullname), "%s|%s", c->name, s->name);
            command_init_flags(s);
        }
    }
}

/* A command name in capitals, as error texts name it ("CLIENT"), into buf. */
static const char *upper_name(const char *name, char *buf, size_t len)
{
    size_t i;
    for (i = 0; name[i] && i < len - 1; i++)
        buf[i] = (char)toupper((unsigned char)name[i]);
    buf[i] = '\0';
    return buf;
}

int command_arity_ok(const struct command *cmd, int argc)
{
    return cmd->arity > 0 ? argc == cmd->arity : argc >= -cmd->arity;
}

/* Finds a name in a table ended by a zeroed entry. */
static struct command *table_lookup(struct command *table, const char *name, size_t len)
{
    for (struct command *c = table; c->name; c++)
        if (util_strcaseeq(c->name, name, len))
            return c;
    return NULL;
}

/* Finds a top-level command through the first-letter index. */
static struct command *top_lookup(const char *name, size_t len)
{
    if (len == 0)
        return NULL;
    if (!table_indexed)
        command_index();
    unsigned l = letter_index(name[0]);
    for (struct command *c = &command_table[table_first[l]];
         c->name && letter_index(c->name[0]) == l; c++)
        if (util_strcaseeq(c->name, name, len))
            return c;
    return NULL;
}

const struct command *command_find(int argc, char **argv, const size_t *argvlen)
{
    struct command *cmd = top_lookup(argv[0], argvlen[0]);
    if (cmd && cmd->subcommands && argc >= 2)
        return table_lookup(cmd->subcommands, argv[1], argvlen[1]);
    return cmd;
}

const struct command *command_lookup(const char *name, size_t len)
{
    const char *bar = memchr(name, '|', len);
    if (bar == NULL)
        return top_lookup(name, len);
    struct command *parent = top_lookup(name, (size_t)(bar - name));
    if (parent == NULL || parent->subcommands == NULL)
        return NULL;
    return table_lookup(parent->subcommands, bar + 1, len - (size_t)(bar - name) - 1);
}

size_t command_count(void)
{
    return sizeof(command_table) / sizeof(command_table[0]) - 1;
}

void command_each(void (*fn)(const struct command *cmd, void *arg), void *arg)
{
    for (const struct command *c = command_table; c->name; c++)
        fn(c, arg);
}

/* Redis's "unknown command" text: the name and the first arguments, 128 bytes at most. */
static void format_unknown_command(const struct client *c, char *err, size_t errlen)
{
    char args[256];
    size_t n = 0;
    args[0] = '\0';
    for (int i = 1; i < c->argc && n < 128; i++) {
        int room = 128 - (int)n;
        int len = (int)c->argvlen[i] < room ? (int)c->argvlen[i] : room;
        n += (size_t)snprintf(args + n, sizeof(args) - n, "'%.*s' ", len, c->argv[i]);
    }
    snprintf(err, errlen, "unknown command '%.128s', with args beginning with: %s", c->argv[0],
             args);
}

/* Finds the command (or subcommand) for c's arguments; NULL when there is none. Formats
 * Redis's error into err (left empty when the command may run): none, or a wrong arity. */
static const struct command *dispatch_lookup(const struct client *c, char *err, size_t errlen)
{
    struct command *cmd = top_lookup(c->argv[0], c->argvlen[0]);

    if (cmd == NULL) {
        format_unknown_command(c, err, errlen);
        return NULL;
    }
    if (cmd->subcommands && c->argc >= 2) {
        struct command *sub = table_lookup(cmd->subcommands, c->argv[1], c->argvlen[1]);
        if (sub == NULL) {
            char upper[40];
            snprintf(err, errlen, "unknown subcommand '%.128s'. Try %s HELP.", c->argv[1],
                     upper_name(cmd->name, upper, sizeof(upper)));
            return NULL;
        }
        cmd = sub;
    }
    if ((cmd->subcommands && cmd->proc == NULL && c->argc < 2) || !command_arity_ok(cmd, c->argc))
        snprintf(err, errlen, "wrong number of arguments for '%s' command", cmd->fullname);
    return cmd;
}

/* Checks the channels or patterns a command names against the client's user. */
static int dispatch_acl_allows(const struct client *c, const struct command *cmd)
{
    int last = (cmd->flags & CMD_F_ACL_CHANNEL) ? 1 : c->argc - 1;
    int pattern = (cmd->flags & CMD_F_ACL_PATTERNS) != 0;

    if (!(cmd->flags & (CMD_F_ACL_CHANNEL | CMD_F_ACL_CHANNELS | CMD_F_ACL_PATTERNS)))
        return 1;
    for (int i = 1; i <= last; i++)
        if (!acl_channel_allowed(client_user(c), c->argv[i], c->argvlen[i], pattern))
            return 0;
    return 1;
}

/* Points c->reply where the next command replies: the discard buffer while CLIENT REPLY OFF
 * or SKIP is in force, or once the client is marked closing (it killed itself inside EXEC:
 * Redis sends it nothing more either), else c's output. */
static void select_reply(struct client *c)
{
    if (c->flags & (CLIENT_F_REPLY_OFF | CLIENT_F_REPLY_SKIP | CLIENT_F_CLOSE_AFTER_REPLY |
                    CLIENT_F_CLOSE_ASAP)) {
        if (discard_buf == NULL)
            discard_buf = evbuffer_new();
        c->reply = discard_buf;
    } else {
        c->reply = client_output(c);
    }
}

static void run(struct client *c, const struct command *cmd)
{
    c->cmd = cmd;
    cmd->proc(c);
    c->cmd = NULL;
    server.stats.commands_processed++;
    if (monitor_count && !(cmd->flags & CMD_F_ADMIN)) /* Redis shows no admin command */
        monitor_feed(c, cmd);
}

/* Refuses a command with err (a Redis error text, "-CODE ..." or plain for -ERR). Inside a
 * transaction that dooms it; a refused EXEC ends it and says why, as Redis words it. */
static void refuse(struct client *c, const struct command *cmd, const char *err)
{
    if (cmd && cmd->proc == cmd_exec) {
        reply_errorf(c->reply, "-EXECABORT Transaction discarded because of: %s",
                     err[0] == '-' ? err + 1 : err);
        multi_discard(c);
        return;
    }
    reply_error(c->reply, err);
    multi_flag_error(c);
}

void command_run_queued(struct client *c, const struct command *cmd)
{
    static const char acl_changed[] =
        "-NOPERM ACLs rules changed between the moment the transaction was accumulated and the "
        "EXEC call. This command is no longer allowed for the following reason: ";

    select_reply(c);
    if (!acl_command_allowed(client_user(c), cmd->flags))
        reply_errorf(c->reply, "%s%s", acl_changed,
                     "no permission to execute the command or subcommand");
    else if (client_user(c) && !dispatch_acl_allows(c, cmd))
        reply_errorf(c->reply, "%s%s", acl_changed,
                     "no permission to access one of the channels used as arguments");
    else
        run(c, cmd);
    if (c->reply == discard_buf) /* replies dropped under CLIENT REPLY OFF must not pile up */
        evbuffer_drain(discard_buf, evbuffer_get_length(discard_buf));
}

void command_dispatch(struct client *c)
{
    char err[512];
    const struct command *cmd;

    err[0] = '\0'; /* not = "": that would clear 512 bytes per command */
    select_reply(c);
    cmd = dispatch_lookup(c, err, sizeof(err));
    c->last_cmd = cmd ? cmd->fullname : "NULL"; /* CLIENT LIST shows the running command too */
    if (err[0]) {
        refuse(c, cmd, err);
    } else if (cmd->flags & CMD_F_UNSUPPORTED) {
        /* like Redis's protected commands: refused before authentication, and it dooms a
         * transaction instead of failing inside EXEC */
        char upper[40];
        snprintf(err, sizeof(err), "%s is not supported by evbrokerd",
                 upper_name(cmd->fullname, upper, sizeof(upper)));
        refuse(c, cmd, err);
    } else if (client_auth_required(c) && !(cmd->flags & CMD_F_NO_AUTH)) {
        refuse(c, cmd, "-NOAUTH Authentication required.");
    } else if (!acl_command_allowed(client_user(c), cmd->flags)) {
        snprintf(err, sizeof(err), "-NOPERM this user has no permissions to run the '%s' command",
                 cmd->fullname);
        refuse(c, cmd, err);
    } else if (client_user(c) && !dispatch_acl_allows(c, cmd)) {
        refuse(c, cmd,
               "-NOPERM this user has no permissions to access one of the channels used as "
               "arguments");
    } else if ((c->flags & CLIENT_F_PUBSUB) && c->resp == 2 && !(cmd->flags & CMD_F_PUBSUB_OK)) {
        snprintf(err, sizeof(err),
                 "Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
                 "RESET are allowed in this context",
                 cmd->fullname);
        refuse(c, cmd, err);
    } else if ((c->flags & CLIENT_F_MONITOR) && (cmd->flags & CMD_F_KEYSPACE)) {
        refuse(c, cmd, "Replica can't interact with the keyspace"); /* Redis's MONITOR rule */
    } else if ((c->flags & CLIENT_F_MULTI) && !(cmd->flags & CMD_F_NOT_QUEUED)) {
        multi_queue(c, cmd);
    } else {
        run(c, cmd);
    }

    if (discard_buf)
        evbuffer_drain(discard_buf, evbuffer_get_length(discard_buf));
    c->reply = client_output(c);
    c->flags &= ~CLIENT_F_REPLY_SKIP;
    if (c->flags & CLIENT_F_REPLY_SKIP_NEXT)
        c->flags = (c->flags & ~CLIENT_F_REPLY_SKIP_NEXT) | CLIENT_F_REPLY_SKIP;
}

/* Replies a space-separated word list as a set: simple strings (flags, categories), or bulk
 * strings (tips), as Redis sends each. */
static void reply_word_set(struct evbuffer *out, int resp, const char *words, int bulk)
{
    size_t n = 0;
    for (const char *p = words + strspn(words, " "); *p; p += strspn(p, " ")) {
        p += strcspn(p, " ");
        n++;
    }
    reply_set(out, resp, n);
    for (const char *p = words + strspn(words, " "); *p; p += strspn(p, " ")) {
        size_t len = strcspn(p, " ");
        if (bulk) {
            reply_bulk(out, p, len);
        } else {
            evbuffer_add(out, "+", 1);
            evbuffer_add(out, p, len);
            evbuffer_add(out, "\r\n", 2);
        }
        p += len;
    }
}

/* Replies a command's key specs (last_key 1: argv[1]; -1: argv[1..]) as Redis 7.0 describes
 * them; shard channels route like keys but are flagged not_key. */
static void reply_key_specs(struct evbuffer *out, int resp, int last_key, const char *flag)
{
    reply_set(out, resp, last_key ? 1 : 0);
    if (last_key == 0)
        return;
    reply_map(out, resp, 3);
    reply_bulk_cstr(out, "flags");
    reply_set(out, resp, 1);
    reply_simple(out, flag ? flag : "not_key");
    reply_bulk_cstr(out, "begin_search");
    reply_map(out, resp, 2);
    reply_bulk_cstr(out, "type");
    reply_bulk_cstr(out, "index");
    reply_bulk_cstr(out, "spec");
    reply_map(out, resp, 1);
    reply_bulk_cstr(out, "index");
    reply_integer(out, 1);
    reply_bulk_cstr(out, "find_keys");
    reply_map(out, resp, 2);
    reply_bulk_cstr(out, "type");
    reply_bulk_cstr(out, "range");
    reply_bulk_cstr(out, "spec");
    reply_map(out, resp, 3);
    reply_bulk_cstr(out, "lastkey");
    reply_integer(out, last_key == 1 ? 0 : -1);
    reply_bulk_cstr(out, "keystep");
    reply_integer(out, 1);
    reply_bulk_cstr(out, "limit");
    reply_integer(out, 0);
}

/* Number of entries in a zero-terminated subcommand table. */
static size_t subcommand_count(const struct command *cmd)
{
    size_t n = 0;
    for (const struct command *s = cmd->subcommands; s && s->name; s++)
        n++;
    return n;
}

void command_reply_info(struct evbuffer *out, int resp, const struct command *cmd)
{
    reply_array(out, 10);
    reply_bulk_cstr(out, cmd->fullname);
    reply_integer(out, cmd->arity);
    reply_word_set(out, resp, cmd->info_flags, 0);
    reply_integer(out, cmd->last_key ? 1 : 0); /* first, last key and step */
    reply_integer(out, cmd->last_key);
    reply_integer(out, cmd->last_key ? 1 : 0);
    reply_word_set(out, resp, cmd->acl, 0);
    reply_word_set(out, resp, cmd->tips ? cmd->tips : "", 1);
    reply_key_specs(out, resp, cmd->last_key, cmd->key_flag);
    /* Redis sends an empty set when there are no subcommands, else an array. */
    if (subcommand_count(cmd) == 0)
        reply_set(out, resp, 0);
    else
        reply_array(out, subcommand_count(cmd));
    for (const struct command *s = cmd->subcommands; s && s->name; s++)
        command_reply_info(out, resp, s);
}

/* Replies the "arguments" array of COMMAND DOCS from the "name:type[:flags]" list. */
static void reply_doc_args(struct evbuffer *out, int resp, const char *spec)
{
    char buf[256];
    char *fields[8][3];
    size_t n = 0;

    snprintf(buf, sizeof(buf), "%s", spec);
    for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok && n < 8;
         tok = strtok_r(NULL, " ", &save)) {
        fields[n][0] = tok;
        fields[n][1] = strchr(tok, ':');
        if (fields[n][1])
            *fields[n][1]++ = '\0';
        fields[n][2] = fields[n][1] ? strchr(fields[n][1], ':') : NULL;
        if (fields[n][2])
            *fields[n][2]++ = '\0';
        n++;
    }
    reply_array(out, n);
    for (size_t i = 0; i < n; i++) {
        int has_flags = fields[i][2] != NULL;
        reply_map(out, resp, has_flags ? 3 : 2);
        reply_bulk_cstr(out, "name");
        reply_bulk_cstr(out, fields[i][0]);
        reply_bulk_cstr(out, "type");
        reply_bulk_cstr(out, fields[i][1] ? fields[i][1] : "string");
        if (has_flags) {
            char words[64];
            snprintf(words, sizeof(words), "%s", fields[i][2]);
            for (char *p = words; *p; p++)
                if (*p == ',')
                    *p = ' ';
            reply_bulk_cstr(out, "flags");
            reply_word_set(out, resp, words, 0);
        }
    }
}

void command_reply_docs(struct evbuffer *out, int resp, const struct command *cmd)
{
    int has_args = cmd->args && cmd->args[0];
    size_t nsub = subcommand_count(cmd);

    reply_map(out, resp, 4 + (has_args ? 1 : 0) + (nsub ? 1 : 0));
    reply_bulk_cstr(out, "summary");
    reply_bulk_cstr(out, cmd->summary);
    reply_bulk_cstr(out, "since");
    reply_bulk_cstr(out, cmd->since);
    reply_bulk_cstr(out, "group");
    reply_bulk_cstr(out, cmd->group);
    reply_bulk_cstr(out, "complexity");
    reply_bulk_cstr(out, cmd->complexity);
    if (has_args) {
        reply_bulk_cstr(out, "arguments");
        reply_doc_args(out, resp, cmd->args);
    }
    if (nsub) {
        reply_bulk_cstr(out, "subcommands");
        reply_map(out, resp, nsub);
        for (const struct command *s = cmd->subcommands; s->name; s++) {
            reply_bulk_cstr(out, s->fullname);
            command_reply_docs(out, resp, s);
        }
    }
}
