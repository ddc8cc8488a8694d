/* Registries of channels, patterns and shard channels, and the fan-out of a publish.
 * A topic holds an array of subscriptions; each client keeps its subscriptions of a kind in
 * a short list (a map beyond PUBSUB_LIST_MAX), and each records its array position, so both
 * directions are O(1). Fan-out never frees: a client that breaks a limit is only marked
 * closing. */
#include "pubsub.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "dict.h"
#include "msg.h"
#include "pattern.h"
#include "server.h"
#include "util.h"

/* A client's subscriptions of one kind live in a list threaded through the records up to this
 * many (most clients have one or a few: no allocation besides the records), in a map beyond.
 * The map turns back into a list at half of it, so one name added and removed at the edge
 * does not convert each time. */
#define PUBSUB_LIST_MAX 8

/* A channel, pattern or shard channel with at least one subscriber. */
struct topic {
    struct subscription **subs; /* &one until a second subscriber comes */
    uint32_t nsubs;
    uint32_t cap;
    size_t len;
    struct subscription *one; /* most channels have one subscriber: no array for them */
    char name[];              /* NUL-terminated for convenience; binary safe through len */
};

struct subscription {
    struct topic *topic;
    struct client *client;
    struct subscription *next; /* the client's list of this kind (unused in a map) */
    size_t pos;                /* index in topic->subs */
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
    t->subs = &t->one;
    t->nsubs = 0;
    t->cap = 1;
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
        if (t->subs != &t->one)
            free(t->subs);
        free(t);
    } else if (t->cap > 8 && t->nsubs < t->cap / 4) {
        t->cap /= 2;
        t->subs = xrealloc(t->subs, t->cap * sizeof(*t->subs));
    }
}

/* Whether c has a subscription of this kind. A map is never empty (it turns back into a list
 * first). */
static int client_has_subs(const struct client *c, enum pubsub_kind kind)
{
    if (c->flags & CLIENT_F_SUBS_MAP(kind))
        return 1;
    return c->subs[kind].list != NULL;
}

/* Keeps CLIENT_F_PUBSUB equal to "has any subscription". */
static void client_update_pubsub_flag(struct client *c)
{
    if (client_has_subs(c, PUBSUB_CHANNEL) || client_has_subs(c, PUBSUB_PATTERN) ||
        client_has_subs(c, PUBSUB_SHARD))
        c->flags |= CLIENT_F_PUBSUB;
    else
        c->flags &= ~CLIENT_F_PUBSUB;
}

/* Finds c's subscription to a name, or NULL. */
static struct subscription *client_subs_find(const struct client *c, enum pubsub_kind kind,
                                             const char *name, size_t len)
{
    if (c->flags & CLIENT_F_SUBS_MAP(kind))
        return dict_get(c->subs[kind].map, name, len);
    for (struct subscription *s = c->subs[kind].list; s != NULL; s = s->next)
        if (s->topic->len == len && memcmp(s->topic->name, name, len) == 0)
            return s;
    return NULL;
}

/* Adds a new subscription to c's list, or map once the list is full. */
static void client_subs_add(struct client *c, enum pubsub_kind kind, struct subscription *s)
{
    union client_subs *cs = &c->subs[kind];
    size_t n = 0;

    if (c->flags & CLIENT_F_SUBS_MAP(kind)) {
        dict_add(cs->map, s->topic->name, s->topic->len, s);
        return;
    }
    for (struct subscription *x = cs->list; x != NULL; x = x->next)
        n++;
    if (n < PUBSUB_LIST_MAX) {
        s->next = cs->list;
        cs->list = s;
        return;
    }
    struct dict *d = dict_new();
    for (struct subscription *x = cs->list, *next; x != NULL; x = next) {
        next = x->next;
        x->next = NULL;
        dict_add(d, x->topic->name, x->topic->len, x);
    }
    s->next = NULL;
    dict_add(d, s->topic->name, s->topic->len, s);
    cs->map = d;
    c->flags |= CLIENT_F_SUBS_MAP(kind);
}

/* Takes c's subscription to a name out of its list or map and returns it, or NULL. */
static struct subscription *client_subs_remove(struct client *c, enum pubsub_kind kind,
                                               const char *name, size_t len)
{
    union client_subs *cs = &c->subs[kind];

    if (!(c->flags & CLIENT_F_SUBS_MAP(kind))) {
        for (struct subscription **link = &cs->list; *link != NULL; link = &(*link)->next) {
            struct subscription *s = *link;
            if (s->topic->len == len && memcmp(s->topic->name, name, len) == 0) {
                *link = s->next;
                return s;
            }
        }
        return NULL;
    }
    struct subscription *s = dict_remove(cs->map, name, len);
    if (s == NULL || dict_size(cs->map) > PUBSUB_LIST_MAX / 2)
        return s;
    /* Small again: back to a list (collected first, the map must not change while walked). */
    struct dict *d = cs->map;
    struct dict_iter it;
    void *val;
    struct subscription *list = NULL;
    dict_iter_init(&it, d);
    while (dict_iter_next(&it, NULL, NULL, &val)) {
        struct subscription *x = val;
        x->next = list;
        list = x;
    }
    dict_free(d);
    cs->list = list;
    c->flags &= ~CLIENT_F_SUBS_MAP(kind);
    return s;
}

int pubsub_subscribe(struct client *c, enum pubsub_kind kind, const char *name, size_t len)
{
    if (client_subs_find(c, kind, name, len))
        return 0;

    struct topic *t = topic_get_or_create(kind, name, len);
    struct subscription *s = xmalloc(sizeof(*s));
    s->topic = t;
    s->client = c;
    s->next = NULL;
    s->pos = t->nsubs;
    if (t->nsubs == t->cap) {
        /* Out of the inline slot: the first array holds four. */
        if (t->subs == &t->one) {
            t->cap = 4;
            t->subs = xmalloc(t->cap * sizeof(*t->subs));
            t->subs[0] = t->one;
        } else {
            t->cap *= 2;
            t->subs = xrealloc(t->subs, t->cap * sizeof(*t->subs));
        }
    }
    t->subs[t->nsubs++] = s;
    client_subs_add(c, kind, s);
    c->flags |= CLIENT_F_PUBSUB;
    return 1;
}

int pubsub_unsubscribe(struct client *c, enum pubsub_kind kind, const char *name, size_t len)
{
    struct subscription *s = client_subs_remove(c, kind, name, len);
    if (s == NULL)
        return 0;
    topic_detach(kind, s);
    free(s);
    client_update_pubsub_flag(c);
    return 1;
}

size_t pubsub_client_count(const struct client *c, enum pubsub_kind kind)
{
    size_t n = 0;

    if (c->flags & CLIENT_F_SUBS_MAP(kind))
        return dict_size(c->subs[kind].map);
    for (const struct subscription *s = c->subs[kind].list; s != NULL; s = s->next)
        n++;
    return n;
}

size_t pubsub_client_names(const struct client *c, enum pubsub_kind kind, const char ***names,
                           size_t **lens)
{
    size_t n = pubsub_client_count(c, kind), i = 0;
    *names = xmalloc((n ? n : 1) * sizeof(**names));
    *lens = xmalloc((n ? n : 1) * sizeof(**lens));
    if (n == 0)
        return 0;
    if (!(c->flags & CLIENT_F_SUBS_MAP(kind))) {
        /* The list is newest first, so names come out in subscription order (after a map
         * turned back into a list, in the map's order: Redis promises no order either). */
        i = n;
        for (const struct subscription *s = c->subs[kind].list; s != NULL; s = s->next) {
            i--;
            (*names)[i] = s->topic->name;
            (*lens)[i] = s->topic->len;
        }
        return n;
    }
    struct dict_iter it;
    const void *key;
    size_t len;
    dict_iter_init(&it, c->subs[kind].map);
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
    for (int k = 0; k < 3; k++) {
        n += pubsub_client_count(c, (enum pubsub_kind)k) * sizeof(struct subscription);
        if (c->flags & CLIENT_F_SUBS_MAP(k))
            n += dict_memory(c->subs[k].map);
    }
    return n;
}

void pubsub_drop_client(struct client *c)
{
    for (int k = 0; k < 3; k++) {
        if (c->flags & CLIENT_F_SUBS_MAP(k)) {
            struct dict *d = c->subs[k].map;
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
            c->flags &= ~CLIENT_F_SUBS_MAP(k);
        } else {
            for (struct subscription *s = c->subs[k].list, *next; s != NULL; s = next) {
                next = s->next;
                topic_detach((enum pubsub_kind)k, s);
                free(s);
            }
        }
        c->subs[k].list = NULL;
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

/* Delivers to the subscribers of exactly this channel; the frame is encoded around the payload
 * in place when pb is its block. */
static long long channel_deliver(enum pubsub_kind kind, const char *ch, size_t chlen,
                                 const char *payload, size_t plen, struct resp_block *pb)
{
    struct topic *t = dict_get(registries[kind], ch, chlen);
    if (t == NULL)
        return 0;
    const char *what = kind == PUBSUB_SHARD ? "smessage" : "message";
    struct msg *m = pb ? msg_new_in_place(what, NULL, 0, ch, chlen, pb, plen)
                       : msg_new(what, NULL, 0, ch, chlen, payload, plen);
    topic_deliver(t, m);
    msg_unref(m);
    server.stats.deliveries += (long long)t->nsubs;
    return (long long)t->nsubs;
}

long long pubsub_deliver_channel(enum pubsub_kind kind, const char *ch, size_t chlen,
                                 const char *payload, size_t plen)
{
    return channel_deliver(kind, ch, chlen, payload, plen, NULL);
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
                         size_t plen, struct resp_block *pb)
{
    long long receivers = channel_deliver(kind, ch, chlen, payload, plen, pb);

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
