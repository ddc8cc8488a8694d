/* A hash table from binary-safe byte-string keys to pointers, hashed with the process-wide
 * keyed SipHash. The table borrows each key: the caller keeps the key bytes alive (usually
 * inside the value) until the entry is removed. Values are never freed by the table. */
#ifndef EVB_DICT_H
#define EVB_DICT_H

#include <stddef.h>
#include <stdint.h>

struct dict;
struct dict_entry;

struct dict_iter {
    struct dict *d;
    size_t bucket;
    struct dict_entry *next;
};

/* Sets the hash key for every table; call once at start, before the first table is made. */
void dict_set_seed(const uint8_t key[16]);

/* Creates an empty table. Caller frees with dict_free. */
struct dict *dict_new(void);
/* Frees the table and its entries, not the keys or values. */
void dict_free(struct dict *d);

/* Returns the value stored under the key, or NULL. */
void *dict_get(const struct dict *d, const void *key, size_t len);
/* Adds key -> val; borrows key. Returns 0, or -1 when the key is already present. */
int dict_add(struct dict *d, const void *key, size_t len, void *val);
/* Removes the key and returns its value, or NULL when it was absent. */
void *dict_remove(struct dict *d, const void *key, size_t len);
size_t dict_size(const struct dict *d);
/* Bytes the table itself holds (buckets and entries), for memory accounting. */
size_t dict_memory(const struct dict *d);

/* Iteration in no particular order. The table must not change while an iterator is in use
 * (a removal may shrink it): collect first, then remove. */
void dict_iter_init(struct dict_iter *it, struct dict *d);
/* Returns 1 and fills the out pointers (any may be NULL), or 0 at the end. */
int dict_iter_next(struct dict_iter *it, const void **key, size_t *len, void **val);

#endif
