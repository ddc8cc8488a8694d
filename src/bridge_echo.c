/* The bridge's echo table (see bridge_echo.h). */
#include "bridge_echo.h"

#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "util.h"

/* Bytes of an echo key: the kind, then a 64-bit digest of (topic, channel, payload). */
#define ECHO_KEY_LEN 9

/* How many upstream copies of one forwarded message are still to be dropped. Two equal
 * payloads on one topic are interchangeable, so a count is exact enough. */
struct echo {
    uint8_t key[ECHO_KEY_LEN];
    unsigned count;
    LIST_ENTRY(echo) link; /* on its topic's list */
};

static struct {
    struct dict *table; /* key -> struct echo */
    size_t max;
    uint8_t hash_key[16];
    long long overflows;
} echoes;

void echo_init(size_t max)
{
    util_random_bytes(echoes.hash_key, sizeof(echoes.hash_key));
    echoes.table = dict_new();
    echoes.max = max;
    echoes.overflows = 0;
}

void echo_cleanup(void)
{
    EVB_ASSERT(echoes.table == NULL || dict_size(echoes.table) == 0);
    dict_free(echoes.table);
    echoes.table = NULL;
}

uint64_t echo_digest(const void *p, size_t len)
{
    return util_siphash(p, len, echoes.hash_key);
}

/* Builds the echo key of a message on a topic from the three digests. */
static void echo_key(uint8_t key[ECHO_KEY_LEN], enum pubsub_kind kind, uint64_t topic_hash,
                     uint64_t ch_hash, uint64_t payload_hash)
{
    uint64_t parts[3] = {topic_hash, ch_hash, payload_hash};
    uint64_t h = echo_digest(parts, sizeof(parts));

    key[0] = (uint8_t)kind;
    memcpy(key + 1, &h, sizeof(h));
}

/* Takes one expectation out of the table and its topic's list, and frees it. */
static void echo_drop(struct echo *e)
{
    dict_remove(echoes.table, e->key, ECHO_KEY_LEN);
    LIST_REMOVE(e, link);
    free(e);
}

void echo_add(struct echo_list *topic_list, enum pubsub_kind kind, uint64_t topic_hash,
              uint64_t ch_hash, uint64_t payload_hash)
{
    uint8_t key[ECHO_KEY_LEN];
    struct echo *e;

    echo_key(key, kind, topic_hash, ch_hash, payload_hash);
    e = dict_get(echoes.table, key, ECHO_KEY_LEN);
    if (e != NULL) {
        e->count++;
        return;
    }
    if (dict_size(echoes.table) >= echoes.max) {
        echoes.overflows++; /* the echo will be delivered a second time */
        return;
    }
    e = xmalloc(sizeof(*e));
    memcpy(e->key, key, ECHO_KEY_LEN);
    e->count = 1;
    LIST_INSERT_HEAD(topic_list, e, link);
    dict_add(echoes.table, e->key, ECHO_KEY_LEN, e);
}

void echo_purge(struct echo_list *topic_list)
{
    struct echo *e;

    while ((e = LIST_FIRST(topic_list)) != NULL)
        echo_drop(e);
}

int echo_take(enum pubsub_kind kind, const char *name, size_t len, const char *ch, size_t chlen,
              const char *payload, size_t plen)
{
    uint8_t key[ECHO_KEY_LEN];
    uint64_t ch_hash;
    struct echo *e;

    if (dict_size(echoes.table) == 0)
        return 0;
    ch_hash = echo_digest(ch, chlen);
    echo_key(key, kind, kind == PUBSUB_PATTERN ? echo_digest(name, len) : ch_hash, ch_hash,
             echo_digest(payload, plen));
    e = dict_get(echoes.table, key, ECHO_KEY_LEN);
    if (e == NULL)
        return 0;
    if (--e->count == 0)
        echo_drop(e);
    return 1;
}

size_t echo_pending(void)
{
    return echoes.table ? dict_size(echoes.table) : 0;
}

long long echo_overflows(void)
{
    return echoes.overflows;
}
