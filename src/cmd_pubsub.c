/* Pub/sub commands: PUBLISH, SPUBLISH, the (P|S)(UN)SUBSCRIBE family and PUBSUB
 * introspection, with Redis 7's reply shapes in RESP2 and RESP3 (pushes). */
#include <event2/buffer.h>
#include <stdlib.h>

#include "bridge.h"
#include "client.h"
#include "command.h"
#include "metrics.h"
#include "pubsub.h"
#include "reply.h"
#include "server.h"
#include "util.h"

/* The count Redis reports in (un)subscribe confirmations: channels plus patterns, or
 * shard channels alone for the sharded commands. */
static long long subscription_count(const struct client *c, enum pubsub_kind kind)
{
    if (kind == PUBSUB_SHARD)
        return (long long)client_sub_count(c, PUBSUB_SHARD);
    return (long long)(client_sub_count(c, PUBSUB_CHANNEL) + client_sub_count(c, PUBSUB_PATTERN));
}

/* Sends one confirmation: [verb, name or null, count]. Confirmations are pushes in RESP3
 * and go to the connection even under CLIENT REPLY OFF, as in Redis 7.2. */
static void reply_confirm(struct client *c, const char *verb, enum pubsub_kind kind,
                          const char *name, size_t len)
{
    struct evbuffer *out = client_output(c);

    reply_push(out, c->resp, 3);
    reply_bulk_cstr(out, verb);
    if (name)
        reply_bulk(out, name, len);
    else
        reply_null(out, c->resp);
    reply_integer(out, subscription_count(c, kind));
}

/* SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE name [name ...] */
static void subscribe_generic(struct client *c, enum pubsub_kind kind, const char *verb)
{
    for (int i = 1; i < c->argc; i++) {
        pubsub_subscribe(c, kind, c->argv[i], c->argvlen[i]);
        reply_confirm(c, verb, kind, c->argv[i], c->argvlen[i]);
    }
}

/* UNSUBSCRIBE / PUNSUBSCRIBE / SUNSUBSCRIBE [name ...]; no names means all of them. */
static void unsubscribe_generic(struct client *c, enum pubsub_kind kind, const char *verb)
{
    if (c->argc > 1) {
        for (int i = 1; i < c->argc; i++) {
            pubsub_unsubscribe(c, kind, c->argv[i], c->argvlen[i]);
            reply_confirm(c, verb, kind, c->argv[i], c->argvlen[i]);
        }
        return;
    }
    const char **names;
    size_t *lens;
    size_t n = pubsub_client_names(c, kind, &names, &lens);
    /* Copy the names: unsubscribing frees the registry's copy. */
    for (size_t i = 0; i < n; i++)
        names[i] = xmemdup(names[i], lens[i]);
    for (size_t i = 0; i < n; i++) {
        pubsub_unsubscribe(c, kind, names[i], lens[i]);
        reply_confirm(c, verb, kind, names[i], lens[i]);
        free((char *)names[i]);
    }
    if (n == 0)
        reply_confirm(c, verb, kind, NULL, 0);
    free(names);
    free(lens);
}

void cmd_subscribe(struct client *c)
{
    subscribe_generic(c, PUBSUB_CHANNEL, "subscribe");
}

void cmd_psubscribe(struct client *c)
{
    subscribe_generic(c, PUBSUB_PATTERN, "psubscribe");
}

void cmd_ssubscribe(struct client *c)
{
    if (c->flags & CLIENT_F_MULTI) {
        /* Redis 7.0 treats a client in a transaction as one that may not block, and refuses
         * it SSUBSCRIBE (SUBSCRIBE and PSUBSCRIBE are let through). */
        reply_error(c->reply, "SSUBSCRIBE isn't allowed for a DENY BLOCKING client");
        return;
    }
    subscribe_generic(c, PUBSUB_SHARD, "ssubscribe");
}

void cmd_unsubscribe(struct client *c)
{
    unsubscribe_generic(c, PUBSUB_CHANNEL, "unsubscribe");
}

void cmd_punsubscribe(struct client *c)
{
    unsubscribe_generic(c, PUBSUB_PATTERN, "punsubscribe");
}

void cmd_sunsubscribe(struct client *c)
{
    unsubscribe_generic(c, PUBSUB_SHARD, "sunsubscribe");
}

/* PUBLISH / SPUBLISH channel message: replies the number of deliveries. */
static void publish_generic(struct client *c, enum pubsub_kind kind)
{
    struct resp_block *pb = client_arg_block(c, 2);
    long long n;

    server.stats.publishes++;
    if (server.cfg.metrics_listen == NULL) {
        n = pubsub_publish(kind, c->argv[1], c->argvlen[1], c->argv[2], c->argvlen[2], pb);
    } else {
        /* The fan-out histogram exists only on /metrics: time it only when that is served. */
        long long t0 = metrics_now_ns();
        n = pubsub_publish(kind, c->argv[1], c->argvlen[1], c->argv[2], c->argvlen[2], pb);
        metrics_observe_fanout(metrics_now_ns() - t0);
    }
    bridge_forward(kind, c->argv[1], c->argvlen[1], c->argv[2], c->argvlen[2]);
    reply_integer(c->reply, n);
}

void cmd_publish(struct client *c)
{
    publish_generic(c, PUBSUB_CHANNEL);
}

void cmd_spublish(struct client *c)
{
    publish_generic(c, PUBSUB_SHARD);
}

struct name_list {
    struct evbuffer *body;
    size_t n;
};

/* pubsub_each_channel callback: collects one bulk string. */
static void collect_name_cb(const char *name, size_t len, void *arg)
{
    struct name_list *l = arg;
    reply_bulk(l->body, name, len);
    l->n++;
}

/* Redis's reply when a subcommand has the wrong number of arguments inside its arity. */
static void reply_subcommand_syntax(struct client *c)
{
    reply_errorf(c->reply,
                 "unknown subcommand or wrong number of arguments for '%.128s'. Try PUBSUB HELP.",
                 c->argv[1]);
}

/* PUBSUB CHANNELS / SHARDCHANNELS [pattern] */
static void channels_generic(struct client *c, enum pubsub_kind kind)
{
    if (c->argc > 3) {
        reply_subcommand_syntax(c);
        return;
    }
    struct name_list l = {evbuffer_new(), 0};
    pubsub_each_channel(kind, c->argc == 3 ? c->argv[2] : NULL, c->argc == 3 ? c->argvlen[2] : 0,
                        collect_name_cb, &l);
    reply_array(c->reply, l.n);
    evbuffer_add_buffer(c->reply, l.body);
    evbuffer_free(l.body);
}

/* PUBSUB NUMSUB / SHARDNUMSUB [channel ...] */
static void numsub_generic(struct client *c, enum pubsub_kind kind)
{
    reply_array(c->reply, (size_t)(c->argc - 2) * 2);
    for (int i = 2; i < c->argc; i++) {
        reply_bulk(c->reply, c->argv[i], c->argvlen[i]);
        reply_integer(c->reply, (long long)pubsub_numsub(kind, c->argv[i], c->argvlen[i]));
    }
}

void cmd_pubsub_channels(struct client *c)
{
    channels_generic(c, PUBSUB_CHANNEL);
}

void cmd_pubsub_shardchannels(struct client *c)
{
    channels_generic(c, PUBSUB_SHARD);
}

void cmd_pubsub_numsub(struct client *c)
{
    numsub_generic(c, PUBSUB_CHANNEL);
}

void cmd_pubsub_shardnumsub(struct client *c)
{
    numsub_generic(c, PUBSUB_SHARD);
}

void cmd_pubsub_numpat(struct client *c)
{
    reply_integer(c->reply, (long long)pubsub_numpat());
}

void cmd_pubsub_help(struct client *c)
{
    static const char *const lines[] = {
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    List the channels that have subscribers, optionally only those matching <pattern>.",
        "NUMPAT",
        "    Count the distinct patterns with subscribers.",
        "NUMSUB [<channel> ...]",
        "    Count the subscribers of each channel (pattern subscriptions not included).",
        "SHARDCHANNELS [<pattern>]",
        "    List the shard channels that have subscribers, optionally matching <pattern>.",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Count the subscribers of each shard channel.",
        "HELP",
        "    Print this help.",
    };
    reply_lines(c->reply, lines, sizeof(lines) / sizeof(lines[0]));
}
