/* Server commands: COMMAND (generated from the command table), INFO, TIME, and the
 * keyspace commands clients and test suites send that have nothing to act on here. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bridge.h"
#include "client.h"
#include "command.h"
#include "metrics.h"
#include "msg.h"
#include "pattern.h"
#include "pubsub.h"
#include "reply.h"
#include "server.h"
#include "util.h"

/* command_each callback for COMMAND: one info entry per command. */
static void info_each_cb(const struct command *cmd, void *arg)
{
    struct client *c = arg;
    command_reply_info(c->reply, c->resp, cmd);
}

void cmd_command(struct client *c)
{
    reply_array(c->reply, command_count());
    command_each(info_each_cb, c);
}

void cmd_command_count(struct client *c)
{
    reply_integer(c->reply, (long long)command_count());
}

/* COMMAND LIST's filter: none, a glob over full names, an ACL category, or a module (there
 * are none, so nothing matches). */
struct list_ctx {
    struct evbuffer *body;
    size_t n;
    enum { LIST_ALL, LIST_PATTERN, LIST_ACLCAT, LIST_MODULE } by;
    const char *arg;
};

/* Whether a space-separated category list ("@pubsub @fast") holds "@cat", in any case. */
static int has_category(const char *acl, const char *cat)
{
    size_t len = strlen(cat);
    for (const char *p = acl; (p = strchr(p, '@')) != NULL; p++)
        if (strncasecmp(p + 1, cat, len) == 0 && (p[len + 1] == ' ' || p[len + 1] == '\0'))
            return 1;
    return 0;
}

static void list_one(struct list_ctx *l, const struct command *cmd)
{
    const char *name = cmd->fullname;
    if (l->by == LIST_MODULE ||
        (l->by == LIST_PATTERN && !pattern_match(l->arg, strlen(l->arg), name, strlen(name), 1)) ||
        (l->by == LIST_ACLCAT && !has_category(cmd->acl, l->arg)))
        return;
    reply_bulk_cstr(l->body, name);
    l->n++;
}

/* command_each callback for COMMAND LIST: a command, then its subcommands, as Redis lists
 * them ("pubsub", "pubsub|channels", ...). */
static void list_each_cb(const struct command *cmd, void *arg)
{
    list_one(arg, cmd);
    for (const struct command *s = cmd->subcommands; s && s->name; s++)
        list_one(arg, s);
}

/* Replies the names l selects, as an array. */
static void list_reply(struct client *c, struct list_ctx *l)
{
    l->body = evbuffer_new();
    command_each(list_each_cb, l);
    reply_array(c->reply, l->n);
    evbuffer_add_buffer(c->reply, l->body);
    evbuffer_free(l->body);
}

void command_reply_category(struct client *c, const char *cat)
{
    struct list_ctx l = {NULL, 0, LIST_ACLCAT, cat};
    list_reply(c, &l);
}

void cmd_command_list(struct client *c)
{
    struct list_ctx l = {NULL, 0, LIST_ALL, NULL};
    if (c->argc == 5 && strcasecmp(c->argv[2], "filterby") == 0) {
        l.arg = c->argv[4];
        if (strcasecmp(c->argv[3], "pattern") == 0)
            l.by = LIST_PATTERN;
        else if (strcasecmp(c->argv[3], "aclcat") == 0)
            l.by = LIST_ACLCAT;
        else if (strcasecmp(c->argv[3], "module") == 0)
            l.by = LIST_MODULE;
    }
    if (l.by == LIST_ALL && c->argc != 2) {
        reply_error(c->reply, "syntax error");
        return;
    }
    list_reply(c, &l);
}

void cmd_command_info(struct client *c)
{
    if (c->argc == 2) {
        cmd_command(c);
        return;
    }
    reply_array(c->reply, (size_t)(c->argc - 2));
    for (int i = 2; i < c->argc; i++) {
        const struct command *cmd = command_lookup(c->argv[i], c->argvlen[i]);
        if (cmd)
            command_reply_info(c->reply, c->resp, cmd);
        else
            reply_null(c->reply, c->resp);
    }
}

/* command_each callback for COMMAND DOCS with no names. */
static void docs_each_cb(const struct command *cmd, void *arg)
{
    struct client *c = arg;
    reply_bulk_cstr(c->reply, cmd->fullname);
    command_reply_docs(c->reply, c->resp, cmd);
}

void cmd_command_docs(struct client *c)
{
    if (c->argc == 2) {
        reply_map(c->reply, c->resp, command_count());
        command_each(docs_each_cb, c);
        return;
    }
    size_t found = 0;
    for (int i = 2; i < c->argc; i++)
        found += command_lookup(c->argv[i], c->argvlen[i]) != NULL;
    reply_map(c->reply, c->resp, found);
    for (int i = 2; i < c->argc; i++) {
        const struct command *cmd = command_lookup(c->argv[i], c->argvlen[i]);
        if (cmd)
            docs_each_cb(cmd, c);
    }
}

/* COMMAND GETKEYS and GETKEYSANDFLAGS: only WATCH takes keys here (Redis marks shard channels
 * not_key), so any other known command gets Redis's "no key arguments" error, which Redis gives
 * before it looks at the arity. */
void cmd_command_getkeys(struct client *c)
{
    const struct command *cmd = command_find(c->argc - 2, c->argv + 2, c->argvlen + 2);
    int n = c->argc - 2, flags = strcasecmp(c->argv[1], "getkeysandflags") == 0;

    if (cmd == NULL) {
        reply_error(c->reply, "Invalid command specified");
    } else if (cmd->key_flag == NULL) {
        reply_error(c->reply, "The command has no key arguments");
    } else if (!command_arity_ok(cmd, n)) {
        reply_error(c->reply, "Invalid number of arguments specified for command");
    } else {
        /* WATCH: its keys run from its first argument to the last (last_key -1) or one. */
        int last = cmd->last_key < 0 ? c->argc - 1 : 3;
        reply_array(c->reply, (size_t)(last - 2));
        for (int i = 3; i <= last; i++) {
            if (flags)
                reply_array(c->reply, 2);
            reply_bulk(c->reply, c->argv[i], c->argvlen[i]);
            if (flags) {
                reply_set(c->reply, c->resp, 1);
                reply_simple(c->reply, cmd->key_flag);
            }
        }
    }
}

void cmd_command_help(struct client *c)
{
    static const char *const lines[] = {
        "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "(no subcommand)",
        "    Describe every command.",
        "COUNT",
        "    Count the commands.",
        "DOCS [<command-name> ...]",
        "    Document the given commands, or all of them.",
        "GETKEYS <full-command>",
        "    Return the keys of a command (only WATCH takes keys here).",
        "GETKEYSANDFLAGS <full-command>",
        "    Return the keys of a command and how it uses them.",
        "INFO [<command-name> ...]",
        "    Describe the given commands, or all of them.",
        "LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]",
        "    List the command names.",
        "HELP",
        "    Print this help.",
    };
    reply_lines(c->reply, lines, sizeof(lines) / sizeof(lines[0]));
}

/* Formats a byte count like Redis's *_human fields. */
static void human_bytes(char *buf, size_t len, long long n)
{
    static const char units[] = "BKMGTP";
    double d = (double)n;
    int u = 0;
    while (d >= 1024 && u < 5) {
        d /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%lldB", n);
    else
        snprintf(buf, len, "%.2f%c", d, units[u]);
}

/* A random 40-hex-digit id for this process, made on first use (INFO run_id). */
static const char *run_id(void)
{
    static char id[41];
    if (id[0] == '\0') {
        unsigned char raw[20];
        util_random_bytes(raw, sizeof(raw));
        for (size_t i = 0; i < sizeof(raw); i++)
            snprintf(id + 2 * i, 3, "%02x", raw[i]);
    }
    return id;
}

/* Appends the "# Server" section. */
static void info_server(struct evbuffer *b)
{
    struct utsname un;
    struct timeval tv;
    char exe[4096];
    long long up = (server.now_ms - server.start_ms) / 1000;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = '\0';
    uname(&un);
    gettimeofday(&tv, NULL);
    /* Redis 7.0's fields in its order, then evbrokerd's. The build id is a hash of the
     * version; lru_clock is Redis's: seconds, modulo 2^24. */
    unsigned long long build_id = 1469598103934665603ULL;
    for (const char *p = EVB_VERSION; *p; p++)
        build_id = (build_id ^ (unsigned char)*p) * 1099511628211ULL;
    evbuffer_add_printf(
        b,
        "# Server\r\nredis_version:%s\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\n"
        "redis_build_id:%llx\r\nredis_mode:standalone\r\nos:%s %s %s\r\narch_bits:%d\r\n"
        "monotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:%s\r\n"
        "atomicvar_api:c11-builtin\r\ngcc_version:%d.%d.%d\r\nprocess_id:%d\r\n"
        "process_supervised:%s\r\nrun_id:%s\r\ntcp_port:%d\r\nserver_time_usec:%lld\r\n"
        "uptime_in_seconds:%lld\r\nuptime_in_days:%lld\r\nhz:10\r\nconfigured_hz:10\r\n"
        "lru_clock:%lld\r\nexecutable:%s\r\nconfig_file:%s\r\nio_threads_active:0\r\n"
        "evbrokerd_version:%s\r\nlibevent_version:%s\r\n",
        EVB_REDIS_COMPAT_VERSION, build_id, un.sysname, un.release, un.machine,
        (int)(sizeof(long) * 8), event_base_get_method(server.base),
#ifdef __GNUC__
        __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__,
#else
        0, 0, 0,
#endif
        (int)getpid(), getenv("NOTIFY_SOCKET") ? "systemd" : "no", run_id(), server.port,
        (long long)tv.tv_sec * 1000000 + tv.tv_usec, up, up / 86400,
        (long long)tv.tv_sec & ((1 << 24) - 1), exe, server.config_path ? server.config_path : "",
        EVB_VERSION, event_get_version());
}

/* Appends the "# Clients" section; the "recent max" buffers are the largest right now. */
static void info_clients(struct evbuffer *b)
{
    long long pubsub_clients = 0;
    size_t max_in = 0, max_out = 0;
    struct client *c;
    TAILQ_FOREACH(c, &server.clients, all_link)
    {
        size_t in = client_input_pending(c), out = client_output_len(c);
        pubsub_clients += (c->flags & CLIENT_F_PUBSUB) != 0;
        max_in = in > max_in ? in : max_in;
        max_out = out > max_out ? out : max_out;
    }
    evbuffer_add_printf(
        b,
        "# Clients\r\nconnected_clients:%lld\r\ncluster_connections:0\r\n"
        "maxclients:%d\r\nclient_recent_max_input_buffer:%zu\r\n"
        "client_recent_max_output_buffer:%zu\r\nblocked_clients:0\r\n"
        "tracking_clients:0\r\nclients_in_timeout_table:0\r\npubsub_clients:%lld\r\n",
        server.nclients, server.cfg.maxclients, max_in, max_out, pubsub_clients);
}

/* Appends the "# Memory" section. used_memory is what the allocator has handed out. */
/* b / a, or 0 when a is 0, for INFO's ratios. */
static double ratio(long long b, long long a)
{
    return a > 0 ? (double)b / (double)a : 0.0;
}

/* Redis 7.0's fields in its order. Nothing is stored, so all used memory is overhead and the
 * dataset is empty; there is no Lua, no function, no replication and no AOF. */
static void info_memory(struct evbuffer *b)
{
    char used_h[32], rss_h[32], peak_h[32], sys_h[32];
    long long used = metrics_used_memory(), rss = metrics_rss_bytes();
    long long peak = metrics_used_memory_peak(), startup = metrics_used_memory_startup();
    long long sys = (long long)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE);
    long long allocated, active, resident;
    metrics_allocator_stats(&allocated, &active, &resident);
    human_bytes(used_h, sizeof(used_h), used);
    human_bytes(rss_h, sizeof(rss_h), rss);
    human_bytes(peak_h, sizeof(peak_h), peak);
    human_bytes(sys_h, sizeof(sys_h), sys);
    evbuffer_add_printf(
        b,
        "# Memory\r\nused_memory:%lld\r\nused_memory_human:%s\r\n"
        "used_memory_rss:%lld\r\nused_memory_rss_human:%s\r\n"
        "used_memory_peak:%lld\r\nused_memory_peak_human:%s\r\nused_memory_peak_perc:%.2f%%\r\n"
        "used_memory_overhead:%lld\r\nused_memory_startup:%lld\r\nused_memory_dataset:0\r\n"
        "used_memory_dataset_perc:0.00%%\r\nallocator_allocated:%lld\r\n"
        "allocator_active:%lld\r\nallocator_resident:%lld\r\n"
        "total_system_memory:%lld\r\ntotal_system_memory_human:%s\r\n"
        "used_memory_lua:0\r\nused_memory_vm_eval:0\r\nused_memory_lua_human:0B\r\n"
        "used_memory_scripts_eval:0\r\nnumber_of_cached_scripts:0\r\nnumber_of_functions:0\r\n"
        "number_of_libraries:0\r\nused_memory_vm_functions:0\r\nused_memory_vm_total:0\r\n"
        "used_memory_vm_total_human:0B\r\nused_memory_functions:0\r\nused_memory_scripts:0\r\n"
        "used_memory_scripts_human:0B\r\n"
        "maxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\n"
        "allocator_frag_ratio:%.2f\r\nallocator_frag_bytes:%lld\r\n"
        "allocator_rss_ratio:%.2f\r\nallocator_rss_bytes:%lld\r\n"
        "rss_overhead_ratio:%.2f\r\nrss_overhead_bytes:%lld\r\n"
        "mem_fragmentation_ratio:%.2f\r\nmem_fragmentation_bytes:%lld\r\n"
        "mem_not_counted_for_evict:0\r\nmem_replication_backlog:0\r\n"
        "mem_total_replication_buffers:0\r\nmem_clients_slaves:0\r\nmem_clients_normal:%zu\r\n"
        "mem_cluster_links:0\r\nmem_aof_buffer:0\r\nmem_allocator:%s\r\n"
        "active_defrag_running:0\r\nlazyfree_pending_objects:0\r\nlazyfreed_objects:0\r\n",
        used, used_h, rss, rss_h, peak, peak_h, ratio(used, peak) * 100, used, startup, allocated,
        active, resident, sys, sys_h, ratio(active, allocated), active - allocated,
        ratio(resident, active), resident - active, ratio(rss, resident), rss - resident,
        ratio(rss, used), rss - used, client_memory_total(), metrics_allocator());
}

/* Appends the "# Stats" section (Redis's field names, then evbrokerd's own counters). */
static void info_stats(struct evbuffer *b)
{
    const struct stats *s = &server.stats;
    /* Redis 7.0's fields in its order, so dashboards and exporters find them all: what a Redis
     * that stores, expires, replicates and forks nothing would show is 0. evbrokerd's own
     * counters follow. */
    evbuffer_add_printf(
        b,
        "# Stats\r\ntotal_connections_received:%lld\r\ntotal_commands_processed:%lld\r\n"
        "instantaneous_ops_per_sec:%lld\r\ntotal_net_input_bytes:%lld\r\n"
        "total_net_output_bytes:%lld\r\ntotal_net_repl_input_bytes:0\r\n"
        "total_net_repl_output_bytes:0\r\ninstantaneous_input_kbps:%.2f\r\n"
        "instantaneous_output_kbps:%.2f\r\ninstantaneous_input_repl_kbps:0.00\r\n"
        "instantaneous_output_repl_kbps:0.00\r\nrejected_connections:%lld\r\n"
        "sync_full:0\r\nsync_partial_ok:0\r\nsync_partial_err:0\r\nexpired_keys:0\r\n"
        "expired_stale_perc:0.00\r\nexpired_time_cap_reached_count:0\r\n"
        "expire_cycle_cpu_milliseconds:0\r\nevicted_keys:0\r\nevicted_clients:0\r\n"
        "total_eviction_exceeded_time:0\r\ncurrent_eviction_exceeded_time:0\r\n"
        "keyspace_hits:0\r\nkeyspace_misses:0\r\n"
        "pubsub_channels:%zu\r\npubsub_patterns:%zu\r\npubsubshard_channels:%zu\r\n"
        "latest_fork_usec:0\r\ntotal_forks:0\r\nmigrate_cached_sockets:0\r\n"
        "slave_expires_tracked_keys:0\r\nactive_defrag_hits:0\r\nactive_defrag_misses:0\r\n"
        "active_defrag_key_hits:0\r\nactive_defrag_key_misses:0\r\n"
        "total_active_defrag_time:0\r\ncurrent_active_defrag_time:0\r\n"
        "tracking_total_keys:0\r\ntracking_total_items:0\r\ntracking_total_prefixes:0\r\n"
        "unexpected_error_replies:0\r\ntotal_error_replies:%lld\r\n"
        "dump_payload_sanitizations:0\r\ntotal_reads_processed:%lld\r\n"
        "total_writes_processed:%lld\r\nio_threaded_reads_processed:0\r\n"
        "io_threaded_writes_processed:0\r\nreply_buffer_shrinks:0\r\nreply_buffer_expands:0\r\n"
        "client_output_buffer_limit_disconnections:%lld\r\n"
        "client_query_buffer_limit_disconnections:%lld\r\ntotal_protocol_errors:%lld\r\n"
        "pubsub_publishes:%lld\r\npubsub_deliveries:%lld\r\n",
        s->connections_received, s->commands_processed, metrics_rate(METRICS_RATE_OPS),
        s->net_input_bytes, s->net_output_bytes, (double)metrics_rate(METRICS_RATE_NET_IN) / 1024,
        (double)metrics_rate(METRICS_RATE_NET_OUT) / 1024, s->rejected_connections,
        pubsub_count(PUBSUB_CHANNEL), pubsub_count(PUBSUB_PATTERN), pubsub_count(PUBSUB_SHARD),
        reply_error_count(), s->input_reads, s->output_writes, s->output_limit_disconnections,
        s->query_limit_disconnections, s->protocol_errors, s->publishes, s->deliveries);
}

/* Appends the "# Pubsub" section (evbrokerd's own). */
static void info_pubsub(struct evbuffer *b)
{
    const struct stats *s = &server.stats;
    evbuffer_add_printf(b,
                        "# Pubsub\r\npubsub_channels:%zu\r\npubsub_patterns:%zu\r\n"
                        "pubsubshard_channels:%zu\r\npubsub_publishes:%lld\r\n"
                        "pubsub_deliveries:%lld\r\npubsub_frames_alive:%zu\r\n"
                        "pubsub_log_segments:%zu\r\n"
                        "output_writes:%lld\r\nevent_loop_busy_pct:%d\r\n"
                        "output_batching:%d\r\noutput_batch_window_us:%d\r\n"
                        "output_batch_declined:%lld\r\n",
                        pubsub_count(PUBSUB_CHANNEL), pubsub_count(PUBSUB_PATTERN),
                        pubsub_count(PUBSUB_SHARD), s->publishes, s->deliveries, msg_live_count(),
                        msg_log_segments(), s->output_writes, server.load_pct, server.batch_engaged,
                        server.batch_engaged ? server.batch_window_us : 0, s->batch_declines);
}

/* Appends "# Replication" as a Redis master without replicas shows it: a broker is never a
 * replica and has none (the replication ID is the run ID; nothing is ever replicated). */
static void info_replication(struct evbuffer *b)
{
    evbuffer_add_printf(b,
                        "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n"
                        "master_failover_state:no-failover\r\nmaster_replid:%s\r\n"
                        "master_replid2:0000000000000000000000000000000000000000\r\n"
                        "master_repl_offset:0\r\nsecond_repl_offset:-1\r\n"
                        "repl_backlog_active:0\r\nrepl_backlog_size:1048576\r\n"
                        "repl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n",
                        run_id());
}

/* Appends "# CPU" as Redis does: seconds of system and user time, of the process, of its
 * children (none) and of the loop's thread. */
static void info_cpu(struct evbuffer *b)
{
    struct rusage self, children, thread;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &children);
    getrusage(RUSAGE_THREAD, &thread);
    evbuffer_add_printf(
        b,
        "# CPU\r\nused_cpu_sys:%ld.%06ld\r\nused_cpu_user:%ld.%06ld\r\n"
        "used_cpu_sys_children:%ld.%06ld\r\nused_cpu_user_children:%ld.%06ld\r\n"
        "used_cpu_sys_main_thread:%ld.%06ld\r\nused_cpu_user_main_thread:%ld.%06ld\r\n",
        (long)self.ru_stime.tv_sec, (long)self.ru_stime.tv_usec, (long)self.ru_utime.tv_sec,
        (long)self.ru_utime.tv_usec, (long)children.ru_stime.tv_sec,
        (long)children.ru_stime.tv_usec, (long)children.ru_utime.tv_sec,
        (long)children.ru_utime.tv_usec, (long)thread.ru_stime.tv_sec,
        (long)thread.ru_stime.tv_usec, (long)thread.ru_utime.tv_sec, (long)thread.ru_utime.tv_usec);
}

static void errorstat_cb(const char *code, long long count, void *arg)
{
    evbuffer_add_printf(arg, "errorstat_%s:count=%lld\r\n", code, count);
}

/* Appends "# Errorstats": error replies by their code, as Redis counts them. */
static void info_errorstats(struct evbuffer *b)
{
    evbuffer_add_printf(b, "# Errorstats\r\n");
    reply_error_each(errorstat_cb, b);
}

/* Sections Redis always has that are empty or constant here; tools probe them (a client
 * reads cluster_enabled to choose its mode). */
static void info_modules(struct evbuffer *b)
{
    evbuffer_add_printf(b, "# Modules\r\n");
}

/* Nothing is loaded or saved; readiness checks look for loading:0 here. The last save time
 * is the start, as Redis reports before its first save. */
static void info_persistence(struct evbuffer *b)
{
    evbuffer_add_printf(b,
                        "# Persistence\r\nloading:0\r\nasync_loading:0\r\n"
                        "current_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\n"
                        "current_fork_perc:0.00\r\ncurrent_save_keys_processed:0\r\n"
                        "current_save_keys_total:0\r\nrdb_changes_since_last_save:0\r\n"
                        "rdb_bgsave_in_progress:0\r\nrdb_last_save_time:%lld\r\n"
                        "rdb_last_bgsave_status:ok\r\nrdb_last_bgsave_time_sec:-1\r\n"
                        "rdb_current_bgsave_time_sec:-1\r\nrdb_saves:0\r\nrdb_last_cow_size:0\r\n"
                        "rdb_last_load_keys_expired:0\r\nrdb_last_load_keys_loaded:0\r\n"
                        "aof_enabled:0\r\naof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0\r\n"
                        "aof_last_rewrite_time_sec:-1\r\naof_current_rewrite_time_sec:-1\r\n"
                        "aof_last_bgrewrite_status:ok\r\naof_rewrites:0\r\n"
                        "aof_rewrites_consecutive_failures:0\r\naof_last_write_status:ok\r\n"
                        "aof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\n"
                        "module_fork_last_cow_size:0\r\n",
                        server.start_unix);
}

static void info_cluster(struct evbuffer *b)
{
    evbuffer_add_printf(b, "# Cluster\r\ncluster_enabled:0\r\n");
}

static void info_keyspace(struct evbuffer *b)
{
    evbuffer_add_printf(b, "# Keyspace\r\n");
}

/* Redis's sections in Redis's order, then evbrokerd's own. */
static const struct {
    const char *name;
    void (*fn)(struct evbuffer *b);
} info_sections[] = {
    {"server", info_server},
    {"clients", info_clients},
    {"memory", info_memory},
    {"persistence", info_persistence},
    {"stats", info_stats},
    {"replication", info_replication},
    {"cpu", info_cpu},
    {"modules", info_modules},
    {"errorstats", info_errorstats},
    {"cluster", info_cluster},
    {"keyspace", info_keyspace},
    {"pubsub", info_pubsub},
    {"bridge", bridge_info},
};

#define INFO_NSECTIONS (sizeof(info_sections) / sizeof(info_sections[0]))

void cmd_info(struct client *c)
{
    int want[INFO_NSECTIONS] = {0};
    int all = c->argc == 1;
    struct evbuffer *b = evbuffer_new();

    for (int i = 1; i < c->argc; i++) {
        if (strcasecmp(c->argv[i], "all") == 0 || strcasecmp(c->argv[i], "everything") == 0 ||
            strcasecmp(c->argv[i], "default") == 0)
            all = 1;
        for (size_t s = 0; s < INFO_NSECTIONS; s++)
            if (strcasecmp(c->argv[i], info_sections[s].name) == 0)
                want[s] = 1;
    }
    struct evbuffer *section = evbuffer_new();
    for (size_t s = 0; s < INFO_NSECTIONS; s++) {
        if (!all && !want[s])
            continue;
        info_sections[s].fn(section);
        if (evbuffer_get_length(section) == 0)
            continue; /* e.g. no bridge configured */
        if (evbuffer_get_length(b) > 0)
            evbuffer_add(b, "\r\n", 2);
        evbuffer_add_buffer(b, section);
    }
    evbuffer_free(section);
    size_t len = evbuffer_get_length(b);
    reply_verbatim(c->reply, c->resp, len ? (const char *)evbuffer_pullup(b, -1) : "", len);
    evbuffer_free(b);
}

/* Whether argv[i] is a flush mode Redis accepts (FLUSHALL, FLUSHDB, FUNCTION FLUSH). */
static int flush_mode(const struct client *c, int i)
{
    return strcasecmp(c->argv[i], "async") == 0 || strcasecmp(c->argv[i], "sync") == 0;
}

/* FLUSHALL and FLUSHDB [ASYNC|SYNC]: nothing to flush, but Redis's syntax check. */
void cmd_flushall(struct client *c)
{
    if (c->argc > 2 || (c->argc == 2 && !flush_mode(c, 1)))
        reply_error(c->reply, "syntax error");
    else
        reply_simple(c->reply, "OK");
}

void cmd_flushdb(struct client *c)
{
    cmd_flushall(c);
}

void cmd_dbsize(struct client *c)
{
    reply_integer(c->reply, 0);
}

void cmd_function_flush(struct client *c)
{
    if (c->argc > 3)
        reply_errorf(c->reply,
                     "unknown subcommand or wrong number of arguments for '%.128s'. Try FUNCTION "
                     "HELP.",
                     c->argv[1]);
    else if (c->argc == 3 && !flush_mode(c, 2))
        reply_error(c->reply, "FUNCTION FLUSH only supports SYNC|ASYNC option");
    else
        reply_simple(c->reply, "OK");
}

void cmd_function_help(struct client *c)
{
    static const char *const lines[] = {
        "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "FLUSH [ASYNC|SYNC]",
        "    Delete every library (evbrokerd keeps none, so there is nothing to delete).",
        "HELP",
        "    Print this help.",
    };
    reply_lines(c->reply, lines, sizeof(lines) / sizeof(lines[0]));
}

void cmd_time(struct client *c)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    reply_array(c->reply, 2);
    reply_bulk_ll(c->reply, (long long)tv.tv_sec);
    reply_bulk_ll(c->reply, (long long)tv.tv_usec);
}
