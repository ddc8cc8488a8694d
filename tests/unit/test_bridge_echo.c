/* Unit tests for the bridge's echo table: counted expectations consumed once each, per-topic
 * purging, the size cap, and pattern echoes keyed by the pattern. */
#include <string.h>

#include "bridge_echo.h"
#include "unit.h"

/* Expects one copy of payload on channel ch (a channel topic is named after the channel). */
static void expect_channel(struct echo_list *topic, const char *ch, const char *payload)
{
    uint64_t h = echo_digest(ch, strlen(ch));
    echo_add(topic, PUBSUB_CHANNEL, h, h, echo_digest(payload, strlen(payload)));
}

static int take_channel(const char *ch, const char *payload)
{
    return echo_take(PUBSUB_CHANNEL, ch, strlen(ch), ch, strlen(ch), payload, strlen(payload));
}

START_TEST(each_expected_copy_is_dropped_once)
{
    struct echo_list news = LIST_HEAD_INITIALIZER(news);

    echo_init(100);
    expect_channel(&news, "news", "hello");
    expect_channel(&news, "news", "hello");
    ck_assert_uint_eq(echo_pending(), 1); /* one entry, counted twice */
    ck_assert_int_eq(take_channel("news", "hell"), 0);
    ck_assert_int_eq(take_channel("newsx", "hello"), 0);
    ck_assert_int_eq(take_channel("news", "hello"), 1);
    ck_assert_int_eq(take_channel("news", "hello"), 1);
    ck_assert_int_eq(take_channel("news", "hello"), 0); /* a third copy is someone else's */
    ck_assert_uint_eq(echo_pending(), 0);
    ck_assert_ptr_null(LIST_FIRST(&news));
    echo_cleanup();
}
END_TEST

START_TEST(purging_a_topic_drops_only_its_expectations)
{
    struct echo_list a = LIST_HEAD_INITIALIZER(a), b = LIST_HEAD_INITIALIZER(b);

    echo_init(100);
    expect_channel(&a, "a", "1");
    expect_channel(&a, "a", "2");
    expect_channel(&b, "b", "1");
    ck_assert_uint_eq(echo_pending(), 3);
    echo_purge(&a);
    ck_assert_uint_eq(echo_pending(), 1);
    ck_assert_int_eq(take_channel("a", "1"), 0);
    ck_assert_int_eq(take_channel("b", "1"), 1);
    echo_purge(&b); /* empty already: nothing to do */
    ck_assert_uint_eq(echo_pending(), 0);
    echo_cleanup();
}
END_TEST

START_TEST(a_full_table_counts_overflows_instead_of_growing)
{
    struct echo_list t = LIST_HEAD_INITIALIZER(t);

    echo_init(2);
    expect_channel(&t, "c", "1");
    expect_channel(&t, "c", "2");
    expect_channel(&t, "c", "3");
    expect_channel(&t, "c", "1"); /* an existing entry still counts up */
    ck_assert_uint_eq(echo_pending(), 2);
    ck_assert_int_eq(echo_overflows(), 1);
    ck_assert_int_eq(take_channel("c", "3"), 0);
    ck_assert_int_eq(take_channel("c", "1"), 1);
    ck_assert_int_eq(take_channel("c", "1"), 1);
    echo_purge(&t);
    echo_cleanup();
}
END_TEST

START_TEST(pattern_echoes_are_keyed_by_the_pattern)
{
    struct echo_list p = LIST_HEAD_INITIALIZER(p);

    echo_init(100); /* a fresh digest key: digests come after it */
    uint64_t ph = echo_digest("news.*", 6), ch = echo_digest("news.it", 7);
    echo_add(&p, PUBSUB_PATTERN, ph, ch, echo_digest("x", 1));
    ck_assert_int_eq(take_channel("news.it", "x"), 0); /* the channel copy is another echo */
    ck_assert_int_eq(echo_take(PUBSUB_PATTERN, "news.?", 6, "news.it", 7, "x", 1), 0);
    ck_assert_int_eq(echo_take(PUBSUB_PATTERN, "news.*", 6, "news.it", 7, "x", 1), 1);
    ck_assert_uint_eq(echo_pending(), 0);
    echo_cleanup();
}
END_TEST

static Suite *bridge_echo_suite(void)
{
    Suite *s = suite_create("bridge_echo");
    TCase *tc = tcase_create("echo table");
    tcase_add_test(tc, each_expected_copy_is_dropped_once);
    tcase_add_test(tc, purging_a_topic_drops_only_its_expectations);
    tcase_add_test(tc, a_full_table_counts_overflows_instead_of_growing);
    tcase_add_test(tc, pattern_echoes_are_keyed_by_the_pattern);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(bridge_echo_suite)
