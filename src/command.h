/* The command table and the dispatcher. The table is the only source of arity, flags and
 * the COMMAND / COMMAND DOCS output. The dispatcher checks existence, arity, auth, channel
 * permissions and the RESP2 subscribed-context rule before a handler runs, so handlers never
 * re-validate; inside a transaction it queues what passed (multi.h). */
#ifndef EVB_COMMAND_H
#define EVB_COMMAND_H

#include <stddef.h>

struct client;
struct evbuffer;

#define CMD_F_PUBSUB_OK (1u << 0)    /* allowed in the RESP2 subscribed context */
#define CMD_F_NO_AUTH (1u << 1)      /* allowed before authentication */
#define CMD_F_ACL_CHANNEL (1u << 2)  /* argv[1] is a channel the user must be allowed */
#define CMD_F_ACL_CHANNELS (1u << 3) /* argv[1..] are channels the user must be allowed */
#define CMD_F_ACL_PATTERNS (1u << 4) /* argv[1..] are patterns the user must be allowed */
#define CMD_F_NOT_QUEUED (1u << 5)   /* runs at once inside a transaction (EXEC, RESET...) */
#define CMD_F_UNSUPPORTED (1u << 6)  /* listed for COMMAND, refused before any other check */
#define CMD_F_KEYSPACE (1u << 7)     /* Redis's write, read or may-replicate: no MONITOR client */
#define CMD_F_ADMIN (1u << 8)        /* "admin" in info_flags (set at start): never monitored */
#define CMD_F_ACL_ADMIN (1u << 9)    /* "@admin" in acl (set at start): users need admin = yes */

typedef void command_proc(struct client *c);

struct command {
    const char *name;       /* lower case; for a subcommand just the subcommand */
    command_proc *proc;     /* for a container: runs when no subcommand is given, or NULL */
    int arity;              /* argc including the name; negative means "at least -arity" */
    unsigned flags;         /* CMD_F_*: what the dispatcher checks */
    const char *info_flags; /* COMMAND flags, space separated ("pubsub loading stale fast") */
    const char *acl;        /* ACL categories, space separated ("@pubsub @fast") */
    const char *group;      /* COMMAND DOCS group: "pubsub", "connection", "server" */
    const char *since;
    const char *summary;
    const char *complexity;
    const char *args;            /* COMMAND DOCS arguments: "name:type[:flag]" space separated */
    struct command *subcommands; /* table ended by a zeroed entry, or NULL */
    const char *parent;          /* container name for a subcommand; filled at start */
    char fullname[40];           /* "pubsub|numsub"; filled at start */
    const char *tips;            /* COMMAND INFO tips, space separated, or NULL */
    int last_key; /* Redis's key specs from argv[1]: 1 = that one, -1 = all after it; 0 none */
    const char *key_flag; /* the keys' flag: NULL for shard channels ("not_key"), "RO"... */
};

/* Fills the full names. Call once at start. */
void command_init(void);

/* Runs the command in c->argc/argv after the checks, or queues it inside a transaction. */
void command_dispatch(struct client *c);

/* Runs a command EXEC took from the queue: its replies obey CLIENT REPLY as it stands, and the
 * user must still be allowed its channels (a reload may have changed the rules). */
void command_run_queued(struct client *c, const struct command *cmd);

/* Writes COMMAND, COMMAND COUNT/LIST/INFO/DOCS replies (cmd_server.c uses these). */
size_t command_count(void);
void command_reply_info(struct evbuffer *out, int resp, const struct command *cmd);
void command_reply_docs(struct evbuffer *out, int resp, const struct command *cmd);
/* The command (or subcommand) an argument vector names, or NULL; arity is not checked. */
const struct command *command_find(int argc, char **argv, const size_t *argvlen);
/* Whether argc (the name included) suits cmd's arity. */
int command_arity_ok(const struct command *cmd, int argc);
/* Looks a top-level command up by name (case-insensitive), or NULL. */
const struct command *command_lookup(const char *name, size_t len);
/* Calls fn for every top-level command in table order. */
void command_each(void (*fn)(const struct command *cmd, void *arg), void *arg);

/* Handlers, grouped by file. */
/* cmd_pubsub.c */
command_proc cmd_publish, cmd_spublish, cmd_subscribe, cmd_unsubscribe, cmd_psubscribe,
    cmd_punsubscribe, cmd_ssubscribe, cmd_sunsubscribe, cmd_pubsub_channels, cmd_pubsub_numsub,
    cmd_pubsub_numpat, cmd_pubsub_shardchannels, cmd_pubsub_shardnumsub, cmd_pubsub_help;
/* cmd_conn.c */
command_proc cmd_ping, cmd_echo, cmd_quit, cmd_reset, cmd_select, cmd_auth, cmd_hello,
    cmd_client_id, cmd_client_setname, cmd_client_getname, cmd_client_setinfo, cmd_client_info,
    cmd_client_list, cmd_client_kill, cmd_client_reply, cmd_client_help, cmd_client_no_evict,
    cmd_client_tracking, cmd_client_trackinginfo, cmd_client_getredir, cmd_client_unblock;
/* multi.c */
command_proc cmd_multi, cmd_exec, cmd_discard, cmd_watch, cmd_unwatch;
/* cmd_config.c */
command_proc cmd_config_get, cmd_config_help;
/* cmd_admin.c */
command_proc cmd_role, cmd_lastsave, cmd_cluster, cmd_cluster_disabled, cmd_acl_cat, cmd_acl_help,
    cmd_acl_users, cmd_acl_whoami, cmd_reply_empty_array, cmd_reply_zero, cmd_latency_doctor,
    cmd_latency_graph, cmd_latency_histogram, cmd_latency_help, cmd_slowlog_get, cmd_slowlog_len,
    cmd_slowlog_reset, cmd_slowlog_help, cmd_monitor;
/* cmd_server.c: also replies the commands and subcommands in an ACL category (cat without
 * '@', any case) in table order, for COMMAND LIST FILTERBY ACLCAT and ACL CAT. */
void command_reply_category(struct client *c, const char *cat);
command_proc cmd_command, cmd_command_count, cmd_command_getkeys, cmd_command_list,
    cmd_command_info, cmd_command_docs, cmd_command_help, cmd_info, cmd_flushall, cmd_flushdb,
    cmd_dbsize, cmd_function_flush, cmd_function_help, cmd_time;

#endif
