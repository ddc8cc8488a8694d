/* Chained hash table with power-of-two bucket counts. It grows at load factor 1 and shrinks
 * at 1/8 by a full rehash; keys are borrowed from the caller. An entry is four words (a
 * 32-byte allocation): the hash is not cached but recomputed on resize, which costs one
 * amortized hash per insertion and saves 16 bytes per entry (one per channel and
 * subscription). */
#include "dict.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

struct dict_entry {
    struct dict_entry *next;
    const void *key;
    size_t len;
    void *val;
};

struct dict {
    struct dict_entry **buckets;
    size_t mask; /* bucket count - 1 */
    size_t size;
};

#define DICT_MIN_BUCKETS 4

static uint8_t dict_seed[16];

void dict_set_seed(const uint8_t key[16])
{
    memcpy(dict_seed, key, sizeof(dict_seed));
}

struct dict *dict_new(void)
{
    struct dict *d = xmalloc(sizeof(*d));
    d->buckets = xcalloc(DICT_MIN_BUCKETS, sizeof(*d->buckets));
    d->mask = DICT_MIN_BUCKETS - 1;
    d->size = 0;
    return d;
}

void dict_free(struct dict *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i <= d->mask; i++) {
        struct dict_entry *e = d->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(d->buckets);
    free(d);
}

/* Moves every entry into a table of nbuckets (a power of two). */
static void dict_resize(struct dict *d, size_t nbuckets)
{
    struct dict_entry **nb = xcalloc(nbuckets, sizeof(*nb));
    for (size_t i = 0; i <= d->mask; i++) {
        struct dict_entry *e = d->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            size_t b = util_siphash(e->key, e->len, dict_seed) & (nbuckets - 1);
            e->next = nb[b];
            nb[b] = e;
        }
    }
    free(d->buckets);
    d->buckets = nb;
    d->mask = nbuckets - 1;
}

/* Returns the address of the link that points at the key's entry (or at NULL). */
static struct dict_entry **dict_find(const struct dict *d, const void *key, size_t len)
{
    uint64_t hash = util_siphash(key, len, dict_seed);
    struct dict_entry **link = &d->buckets[hash & d->mask];
    for (; *link != NULL; link = &(*link)->next) {
        struct dict_entry *e = *link;
        if (e->len == len && memcmp(e->key, key, len) == 0)
            break;
    }
    return link;
}

void *dict_get(const struct dict *d, const void *key, size_t len)
{
    struct dict_entry *e = *dict_find(d, key, len);
    return e ? e->val : NULL;
}

int dict_add(struct dict *d, const void *key, size_t len, void *val)
{
    struct dict_entry **link = dict_find(d, key, len);
    if (*link != NULL)
        return -1;
    struct dict_entry *e = xmalloc(sizeof(*e));
    e->key = key;
    e->len = len;
    e->val = val;
    e->next = NULL;
    *link = e;
    if (++d->size > d->mask + 1)
        dict_resize(d, (d->mask + 1) * 2);
    return 0;
}

void *dict_remove(struct dict *d, const void *key, size_t len)
{
    struct dict_entry **link = dict_find(d, key, len);
    struct dict_entry *e = *link;
    if (e == NULL)
        return NULL;
    void *val = e->val;
    *link = e->next;
    free(e);
    d->size--;
    if (d->mask + 1 > DICT_MIN_BUCKETS && d->size < (d->mask + 1) / 8)
        dict_resize(d, (d->mask + 1) / 2);
    return val;
}

size_t dict_size(const struct dict *d)
{
    return d->size;
}

size_t dict_memory(const struct dict *d)
{
    return sizeof(*d) + (d->mask + 1) * sizeof(*d->buckets) + d->size * sizeof(struct dict_entry);
}

void dict_iter_init(struct dict_iter *it, struct dict *d)
{
    it->d = d;
    it->bucket = 0;
    it->next = d->buckets[0];
}

int dict_iter_next(struct dict_iter *it, const void **key, size_t *len, void **val)
{
    while (it->next == NULL) {
        if (++it->bucket > it->d->mask)
            return 0;
        it->next = it->d->buckets[it->bucket];
    }
    struct dict_entry *e = it->next;
    it->next = e->next;
    if (key)
        *key = e->key;
    if (len)
        *len = e->len;
    if (val)
        *val = e->val;
    return 1;
}
