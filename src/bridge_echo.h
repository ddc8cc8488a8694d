/* The bridge's echo table: how many upstream copies of each message we forwarded are still to
 * come back and be dropped. Keys are keyed digests of (kind, topic, channel, payload), so
 * memory per expectation is fixed whatever the payload size. Expectations are also listed on
 * the topic they will arrive on, so that a topic going away (unsubscribed, link lost) can drop
 * its own. Internal to the bridge. */
#ifndef EVB_BRIDGE_ECHO_H
#define EVB_BRIDGE_ECHO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "client.h"

struct echo;
LIST_HEAD(echo_list, echo);

/* Starts an empty table with a fresh random digest key; at most max expectations are held
 * (beyond that an echo is delivered a second time and counted as an overflow). */
void echo_init(size_t max);
/* Frees the table; every list must have been purged. */
void echo_cleanup(void);

/* The table's keyed digest of a buffer (topic names are digested once and kept). */
uint64_t echo_digest(const void *p, size_t len);

/* Records one more copy to come back on the topic whose name digests to topic_hash; the
 * expectation is also put on that topic's list. */
void echo_add(struct echo_list *topic_list, enum pubsub_kind kind, uint64_t topic_hash,
              uint64_t ch_hash, uint64_t payload_hash);

/* Drops every expectation on a topic's list. */
void echo_purge(struct echo_list *topic_list);

/* Consumes one expected copy of this message arriving on topic (name, len) — the pattern for
 * pmessage, the channel otherwise; returns 1 if it was one, 0 if it must be delivered. */
int echo_take(enum pubsub_kind kind, const char *name, size_t len, const char *ch, size_t chlen,
              const char *payload, size_t plen);

/* Expectations held, and copies that could not be recorded because the table was full. */
size_t echo_pending(void);
long long echo_overflows(void);

#endif
