/* Unit tests for dict.c: add, get and remove on binary-safe keys, duplicate rejection,
 * growth to 100,000 entries and shrinking back, iteration that visits each entry exactly
 * once, and memory accounting that follows the size. The table borrows keys, so every
 * test keeps its key bytes in arrays that outlive the table. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dict.h"
#include "unit.h"

#define BIG 100000
#define KEYLEN 16

/* Key bytes for the large tests; the table only points at them. */
static char big_keys[BIG][KEYLEN];
static size_t big_lens[BIG];

/* Seeds the table hash once per test process with a fixed key. */
static void seed_setup(void)
{
    uint8_t key[16];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)(0xa0 + i);
    dict_set_seed(key);
}

/* Fills big_keys with "k:<i>" and big_lens with their lengths. */
static void big_keys_make(void)
{
    for (size_t i = 0; i < BIG; i++)
        big_lens[i] = (size_t)snprintf(big_keys[i], KEYLEN, "k:%zu", i);
}

/* Turns an index into a distinct non-NULL value pointer. */
static void *val_of(size_t i)
{
    return (void *)(uintptr_t)(i + 1);
}

START_TEST(add_get_remove_round_trip)
{
    struct dict *d = dict_new();
    int a = 1, b = 2;

    ck_assert_uint_eq(dict_size(d), 0);
    ck_assert_ptr_null(dict_get(d, "alpha", 5));
    ck_assert_int_eq(dict_add(d, "alpha", 5, &a), 0);
    ck_assert_int_eq(dict_add(d, "beta", 4, &b), 0);
    ck_assert_uint_eq(dict_size(d), 2);
    ck_assert_ptr_eq(dict_get(d, "alpha", 5), &a);
    ck_assert_ptr_eq(dict_get(d, "beta", 4), &b);
    ck_assert_ptr_null(dict_get(d, "alph", 4));
    ck_assert_ptr_null(dict_get(d, "alphaa", 6));
    ck_assert_ptr_null(dict_get(d, "ALPHA", 5)); /* keys are case-sensitive bytes */
    ck_assert_ptr_eq(dict_remove(d, "alpha", 5), &a);
    ck_assert_uint_eq(dict_size(d), 1);
    ck_assert_ptr_null(dict_get(d, "alpha", 5));
    ck_assert_ptr_null(dict_remove(d, "alpha", 5));
    ck_assert_ptr_null(dict_remove(d, "nosuch", 6));
    ck_assert_uint_eq(dict_size(d), 1);
    ck_assert_ptr_eq(dict_remove(d, "beta", 4), &b);
    ck_assert_uint_eq(dict_size(d), 0);
    dict_free(d);
}
END_TEST

START_TEST(duplicate_add_is_rejected_and_keeps_first_value)
{
    struct dict *d = dict_new();
    int a = 1, b = 2;
    char copy[] = "same";

    ck_assert_int_eq(dict_add(d, "same", 4, &a), 0);
    ck_assert_int_eq(dict_add(d, "same", 4, &b), -1);
    ck_assert_int_eq(dict_add(d, copy, 4, &b), -1); /* equal bytes at another address */
    ck_assert_uint_eq(dict_size(d), 1);
    ck_assert_ptr_eq(dict_get(d, "same", 4), &a);
    /* Once removed, the key may be added again. */
    ck_assert_ptr_eq(dict_remove(d, "same", 4), &a);
    ck_assert_int_eq(dict_add(d, copy, 4, &b), 0);
    ck_assert_ptr_eq(dict_get(d, "same", 4), &b);
    dict_free(d);
}
END_TEST

START_TEST(binary_keys_with_nul_bytes_are_distinct)
{
    static const char k1[] = "a\0b", k2[] = "a\0c", k3[] = "a", k4[] = "a\0", k5[] = "\0\0\0";
    struct dict *d = dict_new();
    int v[6];

    ck_assert_int_eq(dict_add(d, k1, 3, &v[1]), 0);
    ck_assert_int_eq(dict_add(d, k2, 3, &v[2]), 0);
    ck_assert_int_eq(dict_add(d, k3, 1, &v[3]), 0);
    ck_assert_int_eq(dict_add(d, k4, 2, &v[4]), 0);
    ck_assert_int_eq(dict_add(d, k5, 3, &v[5]), 0);
    ck_assert_int_eq(dict_add(d, "", 0, &v[0]), 0);
    ck_assert_uint_eq(dict_size(d), 6);
    ck_assert_ptr_eq(dict_get(d, "a\0b", 3), &v[1]);
    ck_assert_ptr_eq(dict_get(d, "a\0c", 3), &v[2]);
    ck_assert_ptr_eq(dict_get(d, "a", 1), &v[3]);
    ck_assert_ptr_eq(dict_get(d, "a\0", 2), &v[4]);
    ck_assert_ptr_eq(dict_get(d, "\0\0\0", 3), &v[5]);
    ck_assert_ptr_eq(dict_get(d, "", 0), &v[0]);
    ck_assert_ptr_null(dict_get(d, "\0\0", 2));
    ck_assert_ptr_null(dict_get(d, "a\0d", 3));
    ck_assert_ptr_eq(dict_remove(d, "a\0", 2), &v[4]);
    ck_assert_ptr_eq(dict_get(d, "a", 1), &v[3]);
    ck_assert_ptr_eq(dict_get(d, "a\0b", 3), &v[1]);
    dict_free(d);
}
END_TEST

START_TEST(grows_to_100000_entries_and_shrinks_back)
{
    struct dict *d = dict_new();
    size_t empty_mem = dict_memory(d), prev = empty_mem;

    big_keys_make();
    for (size_t i = 0; i < BIG; i++) {
        ck_assert_int_eq(dict_add(d, big_keys[i], big_lens[i], val_of(i)), 0);
        size_t mem = dict_memory(d);
        ck_assert_msg(mem > prev, "memory did not grow at entry %zu", i);
        prev = mem;
    }
    ck_assert_uint_eq(dict_size(d), BIG);
    for (size_t i = 0; i < BIG; i++)
        ck_assert_ptr_eq(dict_get(d, big_keys[i], big_lens[i]), val_of(i));
    ck_assert_ptr_null(dict_get(d, "k:100000", 8));
    size_t full_mem = dict_memory(d);
    /* At least one bucket pointer and one entry per key; at most four words per entry (a
     * 32-byte allocation, one per channel and per subscription) and two bucket pointers. */
    ck_assert_uint_ge(full_mem, (size_t)BIG * (sizeof(void *) * 4));
    ck_assert_uint_le(full_mem, (size_t)BIG * (sizeof(void *) * 6) + 64);

    /* Remove odd keys first, then the rest; lookups stay right across every shrink. */
    for (size_t i = 1; i < BIG; i += 2)
        ck_assert_ptr_eq(dict_remove(d, big_keys[i], big_lens[i]), val_of(i));
    ck_assert_uint_eq(dict_size(d), BIG / 2);
    ck_assert_uint_lt(dict_memory(d), full_mem);
    for (size_t i = 0; i < BIG; i++) {
        void *want = i % 2 ? NULL : val_of(i);
        ck_assert_ptr_eq(dict_get(d, big_keys[i], big_lens[i]), want);
    }
    prev = dict_memory(d);
    for (size_t i = 0; i < BIG; i += 2) {
        ck_assert_ptr_eq(dict_remove(d, big_keys[i], big_lens[i]), val_of(i));
        size_t mem = dict_memory(d);
        ck_assert_msg(mem < prev, "memory did not shrink at removal of %zu", i);
        prev = mem;
    }
    ck_assert_uint_eq(dict_size(d), 0);
    /* Back to the size of a fresh table: the buckets shrank too. */
    ck_assert_uint_eq(dict_memory(d), empty_mem);
    dict_free(d);
}
END_TEST

/* Iterates d and checks each entry against big_keys: each index once, n in total. */
static void check_iteration(struct dict *d, size_t n, size_t step)
{
    static unsigned char seen[BIG];
    struct dict_iter it;
    const void *key;
    size_t len, visits = 0;
    void *val;

    memset(seen, 0, sizeof(seen));
    dict_iter_init(&it, d);
    while (dict_iter_next(&it, &key, &len, &val)) {
        size_t i = (size_t)(uintptr_t)val - 1;
        ck_assert_uint_lt(i, BIG);
        ck_assert_msg(i % step == 0, "removed entry %zu visited", i);
        ck_assert_msg(!seen[i], "entry %zu visited twice", i);
        seen[i] = 1;
        ck_assert_ptr_eq(key, big_keys[i]); /* the borrowed key itself, not a copy */
        ck_assert_uint_eq(len, big_lens[i]);
        visits++;
    }
    ck_assert_uint_eq(visits, n);
    ck_assert_uint_eq(visits, dict_size(d));
    /* An exhausted iterator stays exhausted. */
    ck_assert_int_eq(dict_iter_next(&it, NULL, NULL, NULL), 0);
}

START_TEST(iteration_visits_every_entry_exactly_once)
{
    static const size_t sizes[] = {0, 1, 2, 5, 1000, BIG};
    struct dict_iter it;

    big_keys_make();
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        struct dict *d = dict_new();
        for (size_t i = 0; i < sizes[s]; i++)
            ck_assert_int_eq(dict_add(d, big_keys[i], big_lens[i], val_of(i)), 0);
        check_iteration(d, sizes[s], 1);
        /* Remove all but every fourth entry (the table shrinks), then walk again. */
        size_t kept = 0;
        for (size_t i = 0; i < sizes[s]; i++) {
            if (i % 4 == 0)
                kept++;
            else
                ck_assert_ptr_eq(dict_remove(d, big_keys[i], big_lens[i]), val_of(i));
        }
        check_iteration(d, kept, 4);
        dict_free(d);
    }
    /* NULL out-pointers are allowed. */
    struct dict *d = dict_new();
    ck_assert_int_eq(dict_add(d, "x", 1, val_of(0)), 0);
    dict_iter_init(&it, d);
    ck_assert_int_eq(dict_iter_next(&it, NULL, NULL, NULL), 1);
    ck_assert_int_eq(dict_iter_next(&it, NULL, NULL, NULL), 0);
    dict_free(d);
}
END_TEST

/* The suite: basics, binary keys, scale and iteration. */
static Suite *dict_suite(void)
{
    Suite *s = suite_create("dict");
    TCase *basic = tcase_create("basic");
    TCase *scale = tcase_create("scale");

    tcase_add_unchecked_fixture(basic, seed_setup, NULL);
    tcase_add_test(basic, add_get_remove_round_trip);
    tcase_add_test(basic, duplicate_add_is_rejected_and_keeps_first_value);
    tcase_add_test(basic, binary_keys_with_nul_bytes_are_distinct);
    suite_add_tcase(s, basic);

    tcase_add_unchecked_fixture(scale, seed_setup, NULL);
    tcase_set_timeout(scale, 60);
    tcase_add_test(scale, grows_to_100000_entries_and_shrinks_back);
    tcase_add_test(scale, iteration_visits_every_entry_exactly_once);
    suite_add_tcase(s, scale);
    return s;
}

UNIT_MAIN(dict_suite)
