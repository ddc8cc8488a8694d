/* Registries of channels, patterns and shard channels, and the fan-out of a publish.
 * A topic holds an array of subscriptions; each client maps names to its subscriptions,
 * which record their array position, so both directions are O(1). Fan-out never frees:
 * a client that breaks a limit is only marked closing. */
#include "pubsub.h"

#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "dict.h"
#include "msg.h"
#include "pattern.h"
#include "server.h"
#include "util.h"

/* A channel, pattern or shard channel with at least one subscriber. */
struct topic {
    struct subscription **subs;
    size_t nsubs;
    size_t cap;
    size_t len;
    char name[]; /* NUL-terminated for convenience; binary safe through len */
};

struct subscription {
    struct topic *topic;
    struct client *client;
    size_t pos; /* index in topic->subs */
};

static struct dict *registries[3]; /* enum pubsub_kind -> (name -> struct topic) */
static struct pattern_index *pattern_idx;

void pubsub_init(void)
{
    for (int k = 0; k < 3; k++)
        registries[k] = dict_new();
    pattern_idx = pattern_index_new();
}

void pubsub_cleanup(void)
{
    for (int k = 0; k < 3; k++) {
        EVB_ASSERT(dict_size(registries[k]) == 0);
        dict_free(registries[k]);
        registries[k] = NULL;
    }
    pattern_index_free(pattern_idx);
    pattern_idx = NULL;
}

/* Finds or creates the topic for a name. */
static struct topic *topic_get_or_create(enum pubsub_kind kind, const char *name, size_t len)
{
    struct topic *t = dict_get(registries[kind], name, len);
    if (t)
        return t;
    t = xmalloc(sizeof(*t) + len + 1);
    t->subs = NULL;
    t->nsubs = t->cap = 0;
    t->len = len;
    memcpy(t->name, name, len);
    t->name[len] = '\0';
    dict_add(registries[kind], t->name, len, t);
    if (kind == PUBSUB_PATTERN)
        pattern_index_add(pattern_idx, t->name, len, t);
    bridge_interest(kind, t->name, len, 1);
    return t;
}

/* Takes a subscription out of its topic; deletes the topic when it becomes empty. */
static void topic_detach(enum pubsub_kind kind, struct subscription *s)
{
    struct topic *t = s->topic;
    struct subscription *last = t->subs[--t->nsubs];

    t->subs[s->pos] = last;
    last->pos = s->pos;
    if (t->nsubs == 0) {
        dict_remove(registries[kind], t->name, t->len);
        if (kind == PUBSUB_PATTERN)
            pattern_index_remove(pattern_idx, t->name, t->len);
        bridge_interest(kind, t->name, t->len, 0);
        free(t->subs);
        free(t);
    } else if (t->cap > 8 && t->nsubs < t->cap / 4) {
        t->cap /= 2;
        t->subs = xrealloc(t->subs, t->cap * sizeof(*t->subs));
    }
}

/* Keeps CLIENT_F_PUBSUB equal to "has any subscription". */
static void client_update_pubsub_flag(struct client *c)
{
    if (c->subs[0] || c->subs[1] || c->subs[2])
        c->flags |= CLIENT_F_PUBSUB;
    else
        c->flags &= ~CLIENT_F_PUBSUB;
}

int pubsub_subscribe(struct client *c, enum pubsub_kind kind, const char *name, size_t len)
{
    if (c->subs[kind] == NULL)
        c->subs[kind] = dict_new();
    else if (dict_get(c->subs[kind], name, len))
        return 0;

    struct topic *t = topic_get_or_create(kind, name, len);
    struct subscription *s = xmalloc(sizeof(*s));
    s->topic = t;
    s->client = c;
    s->pos = t->nsubs;
    if (t->nsubs == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 2;
        t->subs = xrealloc(t->subs, t->cap * sizeof(*t->subs));
    }
    t->subs[t->nsubs++] = s;
    dict_add(c->subs[kind], t->name, len, s);
    c->flags |= CLIENT_F_PUBSUB;
    return 1;
}

int pubsub_unsubscribe(struct client *c, enum pubsub_kind kind, const char *name, size_t len)
{
    if (c->subs[kind] == NULL)
        return 0;
    struct subscription *s = dict_remove(c->subs[kind], name, len);
    if (s == NULL)
        return 0;
    topic_detach(kind, s);
    free(s);
    if (dict_size(c->subs[kind]) == 0) {
        dict_free(c->subs[kind]);
        c->subs[kind] = NULL;
    }
    client_update_pubsub_flag(c);
    return 1;
}

size_t pubsub_client_names(const struct client *c, enum pubsub_kind kind, const char ***names,
                           size_t **lens)
{
    size_t n = c->subs[kind] ? dict_size(c->subs[kind]) : 0, i = 0;
    *names = xmalloc((n ? n : 1) * sizeof(**names));
    *lens = xmalloc((n ? n : 1) * sizeof(**lens));
    if (n == 0)
        return 0;
    struct dict_iter it;
    const void *key;
    size_t len;
    dict_iter_init(&it, c->subs[kind]);
    while (dict_iter_next(&it, &key, &len, NULL)) {
        (*names)[i] = key;
        (*lens)[i] = len;
        i++;
    }
    return n;
}

size_t pubsub_client_memory(const struct client *c)
{
    size_t n = 0;
    for (int k = 0; k < 3; k++)
        if (c->subs[k])
            n += dict_memory(c->subs[k]) + dict_size(c->subs[k]) * sizeof(struct subscription);
    return n;
}

void pubsub_drop_client(struct client *c)
{
    for (int k = 0; k < 3; k++) {
        struct dict *d = c->subs[k];
        if (d == NULL)
            continue;
        struct dict_iter it;
        void *val;
        dict_iter_init(&it, d);
        /* The client's map is dropped whole, so detaching while walking it is safe:
         * only the topics change. */
        while (dict_iter_next(&it, NULL, NULL, &val)) {
            topic_detach((enum pubsub_kind)k, val);
            free(val);
        }
        dict_free(d);
        c->subs[k] = NULL;
    }
    c->flags &= ~CLIENT_F_PUBSUB;
}

/* Queues one frame to every subscriber of a topic. */
static void topic_deliver(struct topic *t, struct msg *m)
{
    for (size_t i = 0; i < t->nsubs; i++)
        client_deliver(t->subs[i]->client, m);
}

struct pattern_fanout {
    const char *ch;
    size_t chlen;
    const char *payload;
    size_t plen;
    long long receivers;
};

/* pattern_index_match callback: a pattern matched, send it a pmessage. */
static void pattern_deliver_cb(void *data, void *arg)
{
    struct topic *t = data;
    struct pattern_fanout *f = arg;
    struct msg *m = msg_new("pmessage", t->name, t->len, f->ch, f->chlen, f->payload, f->plen);
    topic_deliver(t, m);
    msg_unref(m);
    f->receivers += (long long)t->nsubs;
}

long long pubsub_deliver_channel(enum pubsub_kind kind, const char *ch, size_t chlen,
                                 const char *payload, size_t plen)
{
    struct topic *t = dict_get(registries[kind], ch, chlen);
    if (t == NULL)
        return 0;
    struct msg *m =
        msg_new(kind == PUBSUB_SHARD ? "smessage" : "message", NULL, 0, ch, chlen, payload, plen);
    topic_deliver(t, m);
    msg_unref(m);
    server.stats.deliveries += (long long)t->nsubs;
    return (long long)t->nsubs;
}

long long pubsub_deliver_pattern(const char *pat, size_t patlen, const char *ch, size_t chlen,
                                 const char *payload, size_t plen)
{
    struct topic *t = dict_get(registries[PUBSUB_PATTERN], pat, patlen);
    if (t == NULL)
        return 0;
    struct pattern_fanout f = {ch, chlen, payload, plen, 0};
    pattern_deliver_cb(t, &f);
    server.stats.deliveries += f.receivers;
    return f.receivers;
}

long long pubsub_publish(enum pubsub_kind kind, const char *ch, size_t chlen, const char *payload,
                         size_t plen)
{
    long long receivers = pubsub_deliver_channel(kind, ch, chlen, payload, plen);

    if (kind == PUBSUB_CHANNEL && pattern_index_size(pattern_idx) > 0) {
        struct pattern_fanout f = {ch, chlen, payload, plen, 0};
        pattern_index_match(pattern_idx, ch, chlen, pattern_deliver_cb, &f);
        server.stats.deliveries += f.receivers;
        receivers += f.receivers;
    }
    return receivers;
}

size_t pubsub_numsub(enum pubsub_kind kind, const char *name, size_t len)
{
    struct topic *t = dict_get(registries[kind], name, len);
    return t ? t->nsubs : 0;
}

size_t pubsub_numpat(void)
{
    return dict_size(registries[PUBSUB_PATTERN]);
}

size_t pubsub_count(enum pubsub_kind kind)
{
    return dict_size(registries[kind]);
}

void pubsub_each_channel(enum pubsub_kind kind, const char *pat, size_t patlen,
                         void (*fn)(const char *name, size_t len, void *arg), void *arg)
{
    struct dict_iter it;
    const void *key;
    size_t len;
    dict_iter_init(&it, registries[kind]);
    while (dict_iter_next(&it, &key, &len, NULL))
        if (pat == NULL || pattern_match(pat, patlen, key, len, 0))
            fn(key, len, arg);
}
