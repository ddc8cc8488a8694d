/* Unit tests for pubsub.c in-process: real clients on socketpairs inside a loop made by
 * server_init_loop, the registries driven through pubsub_* directly, and deliveries read
 * back as exact bytes from the other end of each socketpair. Covers the O(1) bookkeeping,
 * channel/pattern/shard fan-out and its order, dropping clients, random churn, and the
 * pub/sub output hard limit closing only a subscriber that does not read. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "config.h"
#include "dict.h"
#include "msg.h"
#include "pubsub.h"
#include "server.h"
#include "inproc.h"
#include "unit.h"
#include "util.h"

/* The write-coalescing window for the next world_up: 0 (tests read right after a loop pass)
 * except in the test of batching itself. */
static int test_batch_us;

/* Starts the in-process server with test_batch_us; hard_limit < 0 keeps the default. */
static void world_up(long long hard_limit)
{
    struct config cfg;

    config_init(&cfg);
    cfg.output_batch_us = test_batch_us;
    cfg.output_batch_load = 0; /* batching always engaged when a window is set */
    if (hard_limit >= 0) {
        cfg.pubsub_hard_limit = hard_limit;
        cfg.pubsub_soft_limit = 0;
    }
    inproc_start(&cfg);
}

/* Asserts that the peer received exactly want (wantlen bytes) and nothing else. */
static void expect_peer(struct peer *p, const char *want, size_t wantlen)
{
    struct bytes b = {0};

    peer_read(p, &b);
    ck_assert_msg(b.len == wantlen && (wantlen == 0 || memcmp(b.p, want, wantlen) == 0),
                  "peer got %zu bytes '%.*s', want %zu bytes '%.*s'", b.len, (int)b.len,
                  b.p ? b.p : "", wantlen, (int)wantlen, want);
    ck_assert_int_eq(b.eof, 0);
    free(b.p);
}

#define EXPECT_PEER(p, lit) expect_peer(p, lit, sizeof(lit) - 1)
#define SUB(c, kind, lit) pubsub_subscribe(c, kind, lit, sizeof(lit) - 1)
#define UNSUB(c, kind, lit) pubsub_unsubscribe(c, kind, lit, sizeof(lit) - 1)
#define PUB(kind, ch, payload)                                                                     \
    pubsub_publish(kind, ch, sizeof(ch) - 1, payload, sizeof(payload) - 1, NULL)

START_TEST(subscribe_counts_new_then_existing)
{
    world_up(-1);
    struct peer a = peer_new(0), b = peer_new(0);

    ck_assert_uint_eq(a.c->flags & CLIENT_F_PUBSUB, 0);
    ck_assert_int_eq(SUB(a.c, PUBSUB_CHANNEL, "ch1"), 1);
    ck_assert_int_eq(SUB(a.c, PUBSUB_CHANNEL, "ch1"), 0);
    ck_assert_int_eq(SUB(a.c, PUBSUB_CHANNEL, "ch2"), 1);
    ck_assert_int_eq(SUB(b.c, PUBSUB_CHANNEL, "ch1"), 1);
    ck_assert_uint_ne(a.c->flags & CLIENT_F_PUBSUB, 0);
    ck_assert_uint_eq(pubsub_numsub(PUBSUB_CHANNEL, "ch1", 3), 2);
    ck_assert_uint_eq(pubsub_numsub(PUBSUB_CHANNEL, "ch2", 3), 1);
    ck_assert_uint_eq(pubsub_numsub(PUBSUB_CHANNEL, "ch3", 3), 0);
    ck_assert_uint_eq(pubsub_count(PUBSUB_CHANNEL), 2);
    ck_assert_uint_eq(client_sub_count(a.c, PUBSUB_CHANNEL), 2);
    ck_assert_uint_eq(client_sub_count(b.c, PUBSUB_CHANNEL), 1);
    ck_assert_uint_eq(client_sub_count(a.c, PUBSUB_PATTERN), 0);

    ck_assert_int_eq(SUB(a.c, PUBSUB_PATTERN, "ch*"), 1);
    ck_assert_int_eq(SUB(a.c, PUBSUB_PATTERN, "ch*"), 0);
    ck_assert_int_eq(SUB(b.c, PUBSUB_PATTERN, "ch*"), 1);
    ck_assert_int_eq(SUB(b.c, PUBSUB_PATTERN, "x?"), 1);
    ck_assert_uint_eq(pubsub_numpat(), 2); /* distinct patterns, not subscriptions */
    ck_assert_uint_eq(pubsub_count(PUBSUB_PATTERN), 2);
    ck_assert_uint_eq(client_sub_count(b.c, PUBSUB_PATTERN), 2);
    /* A pattern is not a channel: NUMSUB ignores it. */
    ck_assert_uint_eq(pubsub_numsub(PUBSUB_CHANNEL, "ch*", 3), 0);
    inproc_down();
}
END_TEST

START_TEST(unsubscribe_deletes_empty_channels_and_clears_flag)
{
    world_up(-1);
    struct peer a = peer_new(0), b = peer_new(0);

    SUB(a.c, PUBSUB_CHANNEL, "ch");
    SUB(b.c, PUBSUB_CHANNEL, "ch");
    SUB(a.c, PUBSUB_PATTERN, "p*");
    ck_assert_int_eq(UNSUB(a.c, PUBSUB_CHANNEL, "nosuch"), 0);
    ck_assert_int_eq(UNSUB(a.c, PUBSUB_SHARD, "ch"), 0);
    ck_assert_int_eq(UNSUB(a.c, PUBSUB_CHANNEL, "ch"), 1);
    ck_assert_int_eq(UNSUB(a.c, PUBSUB_CHANNEL, "ch"), 0);
    ck_assert_uint_eq(pubsub_numsub(PUBSUB_CHANNEL, "ch", 2), 1);
    ck_assert_uint_eq(pubsub_count(PUBSUB_CHANNEL), 1);
    ck_assert_uint_ne(a.c->flags & CLIENT_F_PUBSUB, 0); /* still has the pattern */
    ck_assert_int_eq(UNSUB(a.c, PUBSUB_PATTERN, "p*"), 1);
    ck_assert_uint_eq(a.c->flags & CLIENT_F_PUBSUB, 0);
    ck_assert_uint_eq(pubsub_numpat(), 0);
    ck_assert_int_eq(UNSUB(b.c, PUBSUB_CHANNEL, "ch"), 1);
    ck_assert_uint_eq(pubsub_count(PUBSUB_CHANNEL), 0);
    ck_assert_uint_eq(pubsub_numsub(PUBSUB_CHANNEL, "ch", 2), 0);
    ck_assert_uint_eq(b.c->flags & CLIENT_F_PUBSUB, 0);
    /* A deleted channel can come back. */
    ck_assert_int_eq(SUB(b.c, PUBSUB_CHANNEL, "ch"), 1);
    ck_assert_uint_eq(pubsub_numsub(PUBSUB_CHANNEL, "ch", 2), 1);
    ck_assert_int_eq(PUB(PUBSUB_CHANNEL, "ch", "x"), 1);
    EXPECT_PEER(&b, "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n");
    EXPECT_PEER(&a, "");
    inproc_down();
}
END_TEST

START_TEST(busy_subscriber_output_waits_for_the_batch_window)
{
    static char big[70000];
    test_batch_us = 200000;
    world_up(-1);
    struct peer a = peer_new(0);
    struct bytes got = {0};

    SUB(a.c, PUBSUB_CHANNEL, "b");
    server_update_time();
    PUB(PUBSUB_CHANNEL, "b", "1"); /* idle subscriber: written at once */
    EXPECT_PEER(&a, "*3\r\n$7\r\nmessage\r\n$1\r\nb\r\n$1\r\n1\r\n");
    server_update_time();
    PUB(PUBSUB_CHANNEL, "b", "2"); /* written moments ago: held for the window */
    PUB(PUBSUB_CHANNEL, "b", "3");
    EXPECT_PEER(&a, "");
    usleep(250 * 1000);
    /* Both held messages leave together once the window ends. */
    EXPECT_PEER(&a, "*3\r\n$7\r\nmessage\r\n$1\r\nb\r\n$1\r\n2\r\n"
                    "*3\r\n$7\r\nmessage\r\n$1\r\nb\r\n$1\r\n3\r\n");
    /* A large message is never held: it amortizes its write by itself. */
    static char mid[9000];
    server_update_time();
    ck_assert_int_eq(pubsub_publish(PUBSUB_CHANNEL, "b", 1, mid, sizeof(mid), NULL), 1);
    peer_read(&a, &got);
    ck_assert_uint_gt(got.len, sizeof(mid));
    got.len = 0;
    /* 64 KiB queued is written at once, window or not. */
    server_update_time();
    ck_assert_int_eq(pubsub_publish(PUBSUB_CHANNEL, "b", 1, big, sizeof(big), NULL), 1);
    for (int i = 0; i < 10 && got.len < sizeof(big); i++)
        peer_read(&a, &got);
    ck_assert_uint_gt(got.len, sizeof(big));
    free(got.p);
    test_batch_us = 0;
    inproc_down();
}
END_TEST

START_TEST(channel_and_two_patterns_deliver_three_frames_channel_first)
{
    static const char msg[] = "*3\r\n$7\r\nmessage\r\n$7\r\nnews.it\r\n$4\r\nciao\r\n";
    static const char pm1[] =
        "*4\r\n$8\r\npmessage\r\n$6\r\nnews.*\r\n$7\r\nnews.it\r\n$4\r\nciao\r\n";
    static const char pm2[] = "*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$7\r\nnews.it\r\n$4\r\nciao\r\n";
    world_up(-1);
    struct peer a = peer_new(0), other = peer_new(0);
    struct bytes got = {0};

    /* Patterns first, so that registration order cannot put the channel first. */
    SUB(a.c, PUBSUB_PATTERN, "news.*");
    SUB(a.c, PUBSUB_PATTERN, "n*");
    SUB(a.c, PUBSUB_CHANNEL, "news.it");
    SUB(a.c, PUBSUB_PATTERN, "sports.*");
    SUB(other.c, PUBSUB_PATTERN, "n*");
    ck_assert_int_eq(PUB(PUBSUB_CHANNEL, "news.it", "ciao"), 4);

    peer_read(&a, &got);
    size_t lm = sizeof(msg) - 1, l1 = sizeof(pm1) - 1, l2 = sizeof(pm2) - 1;
    ck_assert_uint_eq(got.len, lm + l1 + l2);
    ck_assert_int_eq(memcmp(got.p, msg, lm), 0);
    int order12 = memcmp(got.p + lm, pm1, l1) == 0 && memcmp(got.p + lm + l1, pm2, l2) == 0;
    int order21 = memcmp(got.p + lm, pm2, l2) == 0 && memcmp(got.p + lm + l2, pm1, l1) == 0;
    ck_assert_msg(order12 || order21, "pmessages wrong: '%.*s'", (int)got.len, got.p);
    free(got.p);
    expect_peer(&other, pm2, l2);

    /* Without the channel subscription only the two patterns count. */
    UNSUB(a.c, PUBSUB_CHANNEL, "news.it");
    ck_assert_int_eq(PUB(PUBSUB_CHANNEL, "news.it", "ciao"), 3);
    ck_assert_int_eq(PUB(PUBSUB_CHANNEL, "other", "ciao"), 0);
    inproc_down();
}
END_TEST

START_TEST(shard_channels_are_a_separate_namespace)
{
    world_up(-1);
    struct peer a = peer_new(0), b = peer_new(0);

    SUB(a.c, PUBSUB_SHARD, "a");
    SUB(b.c, PUBSUB_CHANNEL, "a");
    SUB(b.c, PUBSUB_PATTERN, "*");
    ck_assert_uint_eq(pubsub_numsub(PUBSUB_SHARD, "a", 1), 1);
    ck_assert_uint_eq(pubsub_numsub(PUBSUB_CHANNEL, "a", 1), 1);
    ck_assert_uint_eq(pubsub_count(PUBSUB_SHARD), 1);
    ck_assert_uint_eq(pubsub_count(PUBSUB_CHANNEL), 1);
    ck_assert_uint_eq(client_sub_count(a.c, PUBSUB_SHARD), 1);
    ck_assert_uint_eq(client_sub_count(a.c, PUBSUB_CHANNEL), 0);
    ck_assert_uint_ne(a.c->flags & CLIENT_F_PUBSUB, 0);

    /* A shard publish reaches shard subscribers only; patterns never match shards. */
    ck_assert_int_eq(PUB(PUBSUB_SHARD, "a", "s"), 1);
    EXPECT_PEER(&a, "*3\r\n$8\r\nsmessage\r\n$1\r\na\r\n$1\r\ns\r\n");
    EXPECT_PEER(&b, "");
    ck_assert_int_eq(PUB(PUBSUB_CHANNEL, "a", "c"), 2);
    EXPECT_PEER(&a, "");
    EXPECT_PEER(&b, "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nc\r\n"
                    "*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$1\r\na\r\n$1\r\nc\r\n");
    ck_assert_int_eq(PUB(PUBSUB_SHARD, "b", "s"), 0);

    /* Unsubscribing in one namespace leaves the other alone. */
    ck_assert_int_eq(UNSUB(a.c, PUBSUB_CHANNEL, "a"), 0);
    ck_assert_int_eq(UNSUB(b.c, PUBSUB_SHARD, "a"), 0);
    ck_assert_int_eq(UNSUB(a.c, PUBSUB_SHARD, "a"), 1);
    ck_assert_uint_eq(pubsub_count(PUBSUB_SHARD), 0);
    ck_assert_uint_eq(pubsub_numsub(PUBSUB_CHANNEL, "a", 1), 1);
    inproc_down();
}
END_TEST

START_TEST(drop_client_removes_every_subscription)
{
    world_up(-1);
    struct peer a = peer_new(0), b = peer_new(0);

    SUB(a.c, PUBSUB_CHANNEL, "c1");
    SUB(a.c, PUBSUB_CHANNEL, "c2");
    SUB(a.c, PUBSUB_CHANNEL, "c3");
    SUB(a.c, PUBSUB_PATTERN, "p1*");
    SUB(a.c, PUBSUB_PATTERN, "p2*");
    SUB(a.c, PUBSUB_SHARD, "s1");
    SUB(a.c, PUBSUB_SHARD, "s2");
    SUB(b.c, PUBSUB_CHANNEL, "c2");
    SUB(b.c, PUBSUB_PATTERN, "p2*");

    pubsub_drop_client(a.c);
    for (int k = 0; k < 3; k++) {
        ck_assert_uint_eq(client_sub_count(a.c, (enum pubsub_kind)k), 0);
        ck_assert_ptr_null(a.c->subs[k].list);
    }
    ck_assert_uint_eq(a.c->flags & CLIENT_F_PUBSUB, 0);
    ck_assert_uint_eq(pubsub_count(PUBSUB_CHANNEL), 1);
    ck_assert_uint_eq(pubsub_numpat(), 1);
    ck_assert_uint_eq(pubsub_count(PUBSUB_SHARD), 0);
    ck_assert_uint_eq(pubsub_numsub(PUBSUB_CHANNEL, "c2", 2), 1);
    ck_assert_uint_eq(pubsub_numsub(PUBSUB_CHANNEL, "c1", 2), 0);
    ck_assert_int_eq(PUB(PUBSUB_CHANNEL, "c2", "x"), 1);
    ck_assert_int_eq(PUB(PUBSUB_CHANNEL, "p2x", "x"), 1);
    ck_assert_int_eq(PUB(PUBSUB_CHANNEL, "p1x", "x"), 0);
    ck_assert_int_eq(PUB(PUBSUB_SHARD, "s1", "x"), 0);
    EXPECT_PEER(&a, "");
    /* Dropping twice, or a client without subscriptions, is harmless. */
    pubsub_drop_client(a.c);
    ck_assert_int_eq(SUB(a.c, PUBSUB_CHANNEL, "c1"), 1);
    ck_assert_int_eq(PUB(PUBSUB_CHANNEL, "c1", "y"), 1);
    inproc_down();
}
END_TEST

/* pubsub_each_channel callback: counts names and checks they are listed once. */
static void count_name_cb(const char *name, size_t len, void *arg)
{
    int *n = arg;
    ck_assert_uint_ge(len, 1);
    ck_assert_int_eq(name[len], '\0');
    (*n)++;
}

START_TEST(client_names_and_channel_listing)
{
    world_up(-1);
    struct peer a = peer_new(0);
    const char **names;
    size_t *lens;
    int seen[3] = {0}, n = 0;

    SUB(a.c, PUBSUB_CHANNEL, "news.it");
    SUB(a.c, PUBSUB_CHANNEL, "news.fr");
    pubsub_subscribe(a.c, PUBSUB_CHANNEL, "bin\0ary", 7);
    SUB(a.c, PUBSUB_SHARD, "news.de");
    size_t k = pubsub_client_names(a.c, PUBSUB_CHANNEL, &names, &lens);
    ck_assert_uint_eq(k, 3);
    for (size_t i = 0; i < k; i++) {
        if (lens[i] == 7 && memcmp(names[i], "news.it", 7) == 0)
            seen[0]++;
        else if (lens[i] == 7 && memcmp(names[i], "news.fr", 7) == 0)
            seen[1]++;
        else if (lens[i] == 7 && memcmp(names[i], "bin\0ary", 7) == 0)
            seen[2]++;
        else
            ck_abort_msg("unexpected name '%.*s'", (int)lens[i], names[i]);
    }
    ck_assert(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
    free(names);
    free(lens);
    ck_assert_uint_eq(pubsub_client_names(a.c, PUBSUB_PATTERN, &names, &lens), 0);
    free(names);
    free(lens);

    pubsub_each_channel(PUBSUB_CHANNEL, NULL, 0, count_name_cb, &n);
    ck_assert_int_eq(n, 3);
    n = 0;
    pubsub_each_channel(PUBSUB_CHANNEL, "news.*", 6, count_name_cb, &n);
    ck_assert_int_eq(n, 2);
    n = 0;
    pubsub_each_channel(PUBSUB_SHARD, "news.*", 6, count_name_cb, &n);
    ck_assert_int_eq(n, 1);
    n = 0;
    pubsub_each_channel(PUBSUB_CHANNEL, "x*", 2, count_name_cb, &n);
    ck_assert_int_eq(n, 0);

    /* Binary channel names with NUL bytes deliver under their exact name. */
    ck_assert_int_eq(pubsub_publish(PUBSUB_CHANNEL, "bin\0ary", 7, "v", 1, NULL), 1);
    ck_assert_int_eq(pubsub_publish(PUBSUB_CHANNEL, "bin", 3, "v", 1, NULL), 0);
    EXPECT_PEER(&a, "*3\r\n$7\r\nmessage\r\n$7\r\nbin\0ary\r\n$1\r\nv\r\n");
    inproc_down();
}
END_TEST

/* Checks that c lists exactly the channels "s.<i>" with want[i] set, each once. */
static void expect_names(struct client *c, const int *want, int n)
{
    const char **names;
    size_t *lens, expect = 0;
    int seen[64] = {0};
    char buf[16];

    for (int i = 0; i < n; i++)
        expect += want[i] != 0;
    size_t k = pubsub_client_names(c, PUBSUB_CHANNEL, &names, &lens);
    ck_assert_uint_eq(k, expect);
    ck_assert_uint_eq(client_sub_count(c, PUBSUB_CHANNEL), expect);
    for (size_t j = 0; j < k; j++) {
        int i = -1;
        ck_assert_int_eq(sscanf(names[j], "s.%d", &i), 1);
        ck_assert(i >= 0 && i < n && want[i] && !seen[i]);
        snprintf(buf, sizeof(buf), "s.%d", i);
        ck_assert_uint_eq(lens[j], strlen(buf));
        seen[i] = 1;
    }
    free(names);
    free(lens);
}

/* The per-client set is a list up to eight names and a map beyond, and turns back into a list
 * at four: lookups, duplicates, names, counts and deliveries stay right across each change. */
START_TEST(client_subscriptions_move_from_list_to_map_and_back)
{
    world_up(-1);
    struct peer a = peer_new(0), b = peer_new(0);
    int want[20] = {0};
    char name[16];

    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "s.%d", i);
        ck_assert_int_eq(pubsub_subscribe(a.c, PUBSUB_CHANNEL, name, strlen(name)), 1);
        want[i] = 1;
        /* Every earlier name is still found: subscribing again is not new. */
        for (int j = 0; j <= i; j++) {
            snprintf(name, sizeof(name), "s.%d", j);
            ck_assert_int_eq(pubsub_subscribe(a.c, PUBSUB_CHANNEL, name, strlen(name)), 0);
        }
        ck_assert_int_eq((a.c->flags & CLIENT_F_SUBS_MAP(PUBSUB_CHANNEL)) != 0, i >= 8);
        expect_names(a.c, want, 20);
    }
    ck_assert_uint_eq(a.c->flags & CLIENT_F_SUBS_MAP(PUBSUB_PATTERN), 0);
    SUB(b.c, PUBSUB_CHANNEL, "s.7");
    ck_assert_int_eq(PUB(PUBSUB_CHANNEL, "s.7", "x"), 2);
    ck_assert_int_eq(PUB(PUBSUB_CHANNEL, "s.19", "y"), 1);
    EXPECT_PEER(&a, "*3\r\n$7\r\nmessage\r\n$3\r\ns.7\r\n$1\r\nx\r\n"
                    "*3\r\n$7\r\nmessage\r\n$4\r\ns.19\r\n$1\r\ny\r\n");
    EXPECT_PEER(&b, "*3\r\n$7\r\nmessage\r\n$3\r\ns.7\r\n$1\r\nx\r\n");

    /* Down again in a scattered order: the map stays until four are left. */
    static const int order[20] = {3,  17, 0,  9, 12, 5, 19, 1,  14, 8,
                                  11, 6,  16, 2, 18, 4, 10, 15, 7,  13};
    for (int j = 0; j < 20; j++) {
        int i = order[j];
        snprintf(name, sizeof(name), "s.%d", i);
        ck_assert_int_eq(pubsub_unsubscribe(a.c, PUBSUB_CHANNEL, name, strlen(name)), 1);
        ck_assert_int_eq(pubsub_unsubscribe(a.c, PUBSUB_CHANNEL, name, strlen(name)), 0);
        want[i] = 0;
        int left = 19 - j;
        ck_assert_int_eq((a.c->flags & CLIENT_F_SUBS_MAP(PUBSUB_CHANNEL)) != 0, left > 4);
        ck_assert_int_eq((a.c->flags & CLIENT_F_PUBSUB) != 0, left > 0);
        expect_names(a.c, want, 20);
    }
    ck_assert_ptr_null(a.c->subs[PUBSUB_CHANNEL].list);
    ck_assert_uint_eq(pubsub_count(PUBSUB_CHANNEL), 1);
    ck_assert_uint_eq(pubsub_numsub(PUBSUB_CHANNEL, "s.7", 3), 1);
    /* A map dropped whole on close. */
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof(name), "s.%d", i);
        ck_assert_int_eq(pubsub_subscribe(a.c, PUBSUB_CHANNEL, name, strlen(name)), 1);
    }
    pubsub_drop_client(a.c);
    ck_assert_uint_eq(a.c->flags & (CLIENT_F_SUBS_MAP(PUBSUB_CHANNEL) | CLIENT_F_PUBSUB), 0);
    ck_assert_uint_eq(pubsub_count(PUBSUB_CHANNEL), 1);
    inproc_down();
}
END_TEST

/* A channel's first subscriber sits in the topic itself; more move to an array and back. */
START_TEST(channel_subscribers_grow_past_the_inline_slot_and_shrink)
{
    world_up(-1);
    struct peer p[6];

    for (int i = 0; i < 6; i++) {
        p[i] = peer_new(0);
        ck_assert_int_eq(SUB(p[i].c, PUBSUB_CHANNEL, "ch"), 1);
        ck_assert_uint_eq(pubsub_numsub(PUBSUB_CHANNEL, "ch", 2), (size_t)i + 1);
    }
    ck_assert_int_eq(PUB(PUBSUB_CHANNEL, "ch", "m"), 6);
    for (int i = 0; i < 6; i++)
        EXPECT_PEER(&p[i], "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n");
    /* Removing from the end and then the front keeps the others reachable. */
    ck_assert_int_eq(UNSUB(p[5].c, PUBSUB_CHANNEL, "ch"), 1);
    ck_assert_int_eq(UNSUB(p[1].c, PUBSUB_CHANNEL, "ch"), 1);
    ck_assert_int_eq(UNSUB(p[3].c, PUBSUB_CHANNEL, "ch"), 1);
    ck_assert_int_eq(UNSUB(p[4].c, PUBSUB_CHANNEL, "ch"), 1);
    ck_assert_int_eq(PUB(PUBSUB_CHANNEL, "ch", "z"), 2);
    EXPECT_PEER(&p[0], "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nz\r\n");
    EXPECT_PEER(&p[2], "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nz\r\n");
    EXPECT_PEER(&p[1], "");
    ck_assert_int_eq(UNSUB(p[2].c, PUBSUB_CHANNEL, "ch"), 1);
    ck_assert_int_eq(UNSUB(p[0].c, PUBSUB_CHANNEL, "ch"), 1);
    ck_assert_uint_eq(pubsub_count(PUBSUB_CHANNEL), 0);
    ck_assert_int_eq(PUB(PUBSUB_CHANNEL, "ch", "z"), 0);
    inproc_down();
}
END_TEST

#define NCLIENTS 64

/* Shuffles idx[0..n) with rand_r. */
static void shuffle(int *idx, int n, unsigned *seed)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rand_r(seed) % (unsigned)(i + 1)), t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

START_TEST(random_churn_keeps_swap_remove_positions_consistent)
{
    static const char frame[] = "*3\r\n$7\r\nmessage\r\n$4\r\nroom\r\n$2\r\nhi\r\n";
    world_up(-1);
    struct peer p[NCLIENTS];
    int subscribed[NCLIENTS], idx[NCLIENTS], live = 0;
    unsigned seed = 12345;

    for (int i = 0; i < NCLIENTS; i++) {
        p[i] = peer_new(0);
        subscribed[i] = 0;
        idx[i] = i;
    }
    for (int round = 0; round < 12; round++) {
        /* Flip a random subset, in random order, checking counts as they move. */
        shuffle(idx, NCLIENTS, &seed);
        int flips = 1 + (int)(rand_r(&seed) % NCLIENTS);
        for (int f = 0; f < flips; f++) {
            int i = idx[f];
            if (subscribed[i]) {
                ck_assert_int_eq(UNSUB(p[i].c, PUBSUB_CHANNEL, "room"), 1);
                live--;
            } else {
                ck_assert_int_eq(SUB(p[i].c, PUBSUB_CHANNEL, "room"), 1);
                live++;
            }
            subscribed[i] = !subscribed[i];
            ck_assert_uint_eq(pubsub_numsub(PUBSUB_CHANNEL, "room", 4), (size_t)live);
        }
        /* Every subscriber gets exactly one copy; nobody else gets anything. */
        ck_assert_int_eq(PUB(PUBSUB_CHANNEL, "room", "hi"), live);
        for (int i = 0; i < NCLIENTS; i++) {
            if (subscribed[i])
                EXPECT_PEER(&p[i], frame);
            else
                EXPECT_PEER(&p[i], "");
        }
        ck_assert_uint_eq(pubsub_count(PUBSUB_CHANNEL), live ? 1 : 0);
    }
    /* Drop half the clients in random order; the rest still get one copy each. */
    shuffle(idx, NCLIENTS, &seed);
    for (int f = 0; f < NCLIENTS / 2; f++) {
        int i = idx[f];
        pubsub_drop_client(p[i].c);
        live -= subscribed[i];
        subscribed[i] = 0;
        ck_assert_uint_eq(pubsub_numsub(PUBSUB_CHANNEL, "room", 4), (size_t)live);
    }
    ck_assert_int_eq(PUB(PUBSUB_CHANNEL, "room", "hi"), live);
    for (int i = 0; i < NCLIENTS; i++) {
        if (subscribed[i])
            EXPECT_PEER(&p[i], frame);
        else
            EXPECT_PEER(&p[i], "");
    }
    inproc_down();
}
END_TEST

START_TEST(churn_with_many_channels_per_client)
{
    world_up(-1);
    struct peer p[8];
    char name[16];
    unsigned seed = 99;

    for (int i = 0; i < 8; i++)
        p[i] = peer_new(0);
    /* 8 clients x 200 channels each, some shared; then remove in random order. */
    for (int i = 0; i < 8; i++)
        for (int ch = 0; ch < 200; ch++) {
            int n = snprintf(name, sizeof(name), "c%d", (ch * (i + 1)) % 300);
            pubsub_subscribe(p[i].c, PUBSUB_CHANNEL, name, (size_t)n);
        }
    long long total = 0;
    for (int ch = 0; ch < 300; ch++) {
        int n = snprintf(name, sizeof(name), "c%d", ch);
        total += (long long)pubsub_numsub(PUBSUB_CHANNEL, name, (size_t)n);
    }
    long long subs = 0;
    for (int i = 0; i < 8; i++)
        subs += (long long)client_sub_count(p[i].c, PUBSUB_CHANNEL);
    ck_assert_int_eq(total, subs);
    for (int step = 0; step < 5000; step++) {
        int i = (int)(rand_r(&seed) % 8);
        int n = snprintf(name, sizeof(name), "c%u", rand_r(&seed) % 300);
        size_t before = pubsub_numsub(PUBSUB_CHANNEL, name, (size_t)n);
        int r = pubsub_unsubscribe(p[i].c, PUBSUB_CHANNEL, name, (size_t)n);
        ck_assert_uint_eq(pubsub_numsub(PUBSUB_CHANNEL, name, (size_t)n), before - (size_t)r);
        if (step % 3 == 0) {
            ck_assert_int_eq(pubsub_subscribe(p[i].c, PUBSUB_CHANNEL, name, (size_t)n), 1);
            ck_assert_uint_eq(pubsub_numsub(PUBSUB_CHANNEL, name, (size_t)n),
                              before - (size_t)r + 1);
        }
    }
    /* Cross-check: publishing each channel reaches exactly its NUMSUB. */
    for (int ch = 0; ch < 300; ch++) {
        int n = snprintf(name, sizeof(name), "c%d", ch);
        long long want = (long long)pubsub_numsub(PUBSUB_CHANNEL, name, (size_t)n);
        ck_assert_int_eq(pubsub_publish(PUBSUB_CHANNEL, name, (size_t)n, "", 0, NULL), want);
    }
    inproc_down();
}
END_TEST

START_TEST(resp3_frames_differ_from_resp2_only_in_first_byte)
{
    world_up(-1);
    struct peer a2 = peer_new(0), a3 = peer_new(0);
    struct bytes g2 = {0}, g3 = {0};
    char big[5000];

    memset(big, 'z', sizeof(big));
    a3.c->resp = 3;
    SUB(a2.c, PUBSUB_CHANNEL, "ch");
    SUB(a3.c, PUBSUB_CHANNEL, "ch");
    SUB(a2.c, PUBSUB_PATTERN, "c*");
    SUB(a3.c, PUBSUB_PATTERN, "c*");
    SUB(a2.c, PUBSUB_SHARD, "ch");
    SUB(a3.c, PUBSUB_SHARD, "ch");
    ck_assert_int_eq(PUB(PUBSUB_CHANNEL, "ch", "small"), 4);
    ck_assert_int_eq(pubsub_publish(PUBSUB_CHANNEL, "ch", 2, big, sizeof(big), NULL), 4);
    ck_assert_int_eq(PUB(PUBSUB_SHARD, "ch", "s"), 2);
    peer_read(&a2, &g2);
    peer_read(&a3, &g3);

    /* Rebuild the expected stream frame by frame from msg_new. */
    struct msg *m[5] = {
        msg_new("message", NULL, 0, "ch", 2, "small", 5),
        msg_new("pmessage", "c*", 2, "ch", 2, "small", 5),
        msg_new("message", NULL, 0, "ch", 2, big, sizeof(big)),
        msg_new("pmessage", "c*", 2, "ch", 2, big, sizeof(big)),
        msg_new("smessage", NULL, 0, "ch", 2, "s", 1),
    };
    size_t off = 0;
    ck_assert_uint_eq(g2.len, g3.len);
    for (int i = 0; i < 5; i++) {
        ck_assert_uint_le(off + m[i]->len, g2.len);
        ck_assert_int_eq(memcmp(g2.p + off, m[i]->data, m[i]->len), 0);
        ck_assert_int_eq(g3.p[off], '>');
        ck_assert_int_eq(memcmp(g3.p + off + 1, m[i]->data + 1, m[i]->len - 1), 0);
        off += m[i]->len;
        msg_unref(m[i]);
    }
    ck_assert_uint_eq(off, g2.len);
    free(g2.p);
    free(g3.p);
    inproc_down();
}
END_TEST

START_TEST(large_frames_are_released_once_every_subscriber_wrote_them)
{
    world_up(-1);
    struct peer p[5];
    struct bytes got[5];
    char big[20000];
    size_t base = msg_live_count();

    memset(big, 'q', sizeof(big));
    for (int i = 0; i < 5; i++) {
        p[i] = peer_new(0);
        memset(&got[i], 0, sizeof(got[i]));
        SUB(p[i].c, PUBSUB_CHANNEL, "big");
    }
    ck_assert_int_eq(pubsub_publish(PUBSUB_CHANNEL, "big", 3, big, sizeof(big), NULL), 5);
    /* Queued but not yet written: the one shared frame is alive. */
    ck_assert_uint_eq(msg_live_count(), base + 1);
    for (int i = 0; i < 5; i++) {
        peer_read(&p[i], &got[i]);
        ck_assert_uint_eq(got[i].len, 20000 + 36);
        free(got[i].p);
    }
    ck_assert_uint_eq(msg_live_count(), base);
    inproc_down();
}
END_TEST

START_TEST(output_hard_limit_closes_only_the_slow_subscriber)
{
    enum { N = 3000 };
    world_up(4096);
    struct peer slow = peer_new(4096), fast = peer_new(0);
    struct bytes fast_got = {0}, slow_got = {0}, want = {0};
    char payload[32];
    int closed_at = -1;

    SUB(slow.c, PUBSUB_CHANNEL, "ch");
    SUB(fast.c, PUBSUB_CHANNEL, "ch");
    for (int i = 0; i < N; i++) {
        int n = snprintf(payload, sizeof(payload), "message-%06d", i);
        struct msg *m = msg_new("message", NULL, 0, "ch", 2, payload, (size_t)n);
        bytes_add(&want, m->data, m->len);
        msg_unref(m);
        long long r = pubsub_publish(PUBSUB_CHANNEL, "ch", 2, payload, (size_t)n, NULL);
        ck_assert(r == 1 || r == 2);
        if (i % 10 == 9) {
            peer_read(&fast, &fast_got); /* the fast one reads every batch */
            if (closed_at < 0 && server.stats.output_limit_disconnections > 0)
                closed_at = i;
        }
        if (closed_at >= 0 && i > closed_at)
            ck_assert_int_eq(r, 1); /* the slow client is gone from the channel */
    }
    peer_read(&fast, &fast_got);
    ck_assert_msg(closed_at >= 0, "the slow subscriber was never closed");
    ck_assert_int_eq(server.stats.output_limit_disconnections, 1);
    ck_assert_int_eq(server.nclients, 1);
    ck_assert_uint_eq(pubsub_numsub(PUBSUB_CHANNEL, "ch", 2), 1);

    /* The reader got every message, in order, and is still connected. */
    ck_assert_uint_eq(fast_got.len, want.len);
    ck_assert_int_eq(memcmp(fast_got.p, want.p, want.len), 0);
    ck_assert_int_eq(fast_got.eof, 0);

    /* The slow peer sees a prefix of the stream, then EOF. */
    peer_read(&slow, &slow_got);
    ck_assert_int_eq(slow_got.eof, 1);
    ck_assert_uint_lt(slow_got.len, want.len);
    ck_assert(slow_got.len == 0 || memcmp(slow_got.p, want.p, slow_got.len) == 0);
    free(fast_got.p);
    free(slow_got.p);
    free(want.p);
    inproc_down();
}
END_TEST

/* The suite: bookkeeping, fan-out, churn and limits. */
static Suite *pubsub_suite(void)
{
    Suite *s = suite_create("pubsub");
    TCase *book = tcase_create("bookkeeping");
    TCase *fan = tcase_create("fanout");

    tcase_add_test(book, subscribe_counts_new_then_existing);
    tcase_add_test(book, unsubscribe_deletes_empty_channels_and_clears_flag);
    tcase_add_test(book, drop_client_removes_every_subscription);
    tcase_add_test(book, client_names_and_channel_listing);
    tcase_add_test(book, client_subscriptions_move_from_list_to_map_and_back);
    tcase_add_test(book, channel_subscribers_grow_past_the_inline_slot_and_shrink);
    tcase_add_test(book, random_churn_keeps_swap_remove_positions_consistent);
    tcase_add_test(book, churn_with_many_channels_per_client);
    suite_add_tcase(s, book);

    tcase_set_timeout(fan, 60);
    tcase_add_test(fan, channel_and_two_patterns_deliver_three_frames_channel_first);
    tcase_add_test(fan, shard_channels_are_a_separate_namespace);
    tcase_add_test(fan, resp3_frames_differ_from_resp2_only_in_first_byte);
    tcase_add_test(fan, large_frames_are_released_once_every_subscriber_wrote_them);
    tcase_add_test(fan, output_hard_limit_closes_only_the_slow_subscriber);
    tcase_add_test(fan, busy_subscriber_output_waits_for_the_batch_window);
    suite_add_tcase(s, fan);
    return s;
}

UNIT_MAIN(pubsub_suite)
