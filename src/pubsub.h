/* The channel, pattern and shard-channel registries, and fan-out. Subscribe and unsubscribe
 * are O(1): each client keeps its subscriptions (a short list, or a map) with their positions.
 * Empty channels and patterns are deleted. Replies to clients are the caller's business. */
#ifndef EVB_PUBSUB_H
#define EVB_PUBSUB_H

#include <stddef.h>

#include "client.h"

/* Creates the registries. Call once after dict_set_seed. */
void pubsub_init(void);
/* Frees the registries; every client must have been unsubscribed. */
void pubsub_cleanup(void);

/* Subscribes c; returns 1 when new, 0 when it was already subscribed. */
int pubsub_subscribe(struct client *c, enum pubsub_kind kind, const char *name, size_t len);
/* Unsubscribes c; returns 1 when it was subscribed, 0 otherwise. */
int pubsub_unsubscribe(struct client *c, enum pubsub_kind kind, const char *name, size_t len);

/* The names c is subscribed to in kind, as a newly allocated array of pointers to the
 * registry's name bytes (valid until the next change). Caller frees the array. */
size_t pubsub_client_names(const struct client *c, enum pubsub_kind kind, const char ***names,
                           size_t **lens);

/* Number of c's subscriptions of one kind. */
size_t pubsub_client_count(const struct client *c, enum pubsub_kind kind);

/* Bytes c's subscriptions cost: its maps and subscription records (CLIENT LIST tot-mem). */
size_t pubsub_client_memory(const struct client *c);

/* Removes every subscription of c (on close and RESET). */
void pubsub_drop_client(struct client *c);

/* Delivers a message to the subscribers of a channel (kind PUBSUB_CHANNEL, which also
 * reaches matching patterns, or PUBSUB_SHARD). pb is the block the payload lies in when it is
 * a big request argument (resp.h), else NULL: the channel's frame is then encoded around it.
 * Returns the number of deliveries. */
long long pubsub_publish(enum pubsub_kind kind, const char *ch, size_t chlen, const char *payload,
                         size_t plen, struct resp_block *pb);

/* Delivers to the subscribers of exactly this channel or shard channel, no patterns
 * (the bridge uses it for upstream messages). Returns the number of deliveries. */
long long pubsub_deliver_channel(enum pubsub_kind kind, const char *ch, size_t chlen,
                                 const char *payload, size_t plen);
/* Delivers a pmessage to the subscribers of exactly this pattern (for upstream pmessages). */
long long pubsub_deliver_pattern(const char *pat, size_t patlen, const char *ch, size_t chlen,
                                 const char *payload, size_t plen);

/* Subscriber count of one channel (PUBSUB NUMSUB / SHARDNUMSUB). */
size_t pubsub_numsub(enum pubsub_kind kind, const char *name, size_t len);
/* Number of distinct patterns with subscribers (PUBSUB NUMPAT). */
size_t pubsub_numpat(void);
/* Number of channels of a kind with subscribers. */
size_t pubsub_count(enum pubsub_kind kind);

/* Calls fn for every channel, shard channel or pattern (by kind) whose name matches pat
 * (NULL = all); the bridge walks all three to resubscribe after reconnecting. */
void pubsub_each_channel(enum pubsub_kind kind, const char *pat, size_t patlen,
                         void (*fn)(const char *name, size_t len, void *arg), void *arg);

#endif
