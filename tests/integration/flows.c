/* End-to-end flows against a throwaway evbrokerd per test, driven with hiredis (RESP2) and raw
 * sockets (RESP3, pipelining, protocol errors): subscriptions, ordering, binary and large
 * payloads, 10,000 channels, client failures, requirepass, the unix socket and config errors.
 * Every test also requires the daemon to exit with status 0 on SIGTERM (sanitizer reports). */
#include "itest.h"

#include <hiredis.h>

/* Timeout of one Check test, seconds; the runner bounds the whole binary as well. */
#define TEST_TIMEOUT 90

static struct itest_server srv;

/* Starts the daemon for this test with extra config text, failing the test if it cannot. */
static void start(int want_unix, const char *extra)
{
    ck_assert_msg(itest_evb_start(&srv, want_unix, extra) == 0, "evbrokerd did not start");
}

/* Stops the daemon and requires a clean exit. */
static void stop(void)
{
    ck_assert_msg(itest_stop(&srv) == 0, "evbrokerd did not exit cleanly (see its log above)");
}

/* Connects hiredis to the test's daemon with generous timeouts. */
static redisContext *rconnect(void)
{
    struct timeval tv = {30, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", srv.port, tv);
    ck_assert_msg(c != NULL && c->err == 0, "connect: %s", c ? c->errstr : "oom");
    redisSetTimeout(c, tv);
    return c;
}

/* Reads the next reply, failing the test on a connection error. */
static redisReply *next_reply(redisContext *c)
{
    void *r = NULL;
    ck_assert_msg(redisGetReply(c, &r) == REDIS_OK && r != NULL, "read: %s", c->errstr);
    return r;
}

/* Sends a command with redisCommand formatting and returns its reply. */
static redisReply *cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    ck_assert_msg(r != NULL, "command '%s': %s", fmt, c->errstr);
    return r;
}

/* Runs a command expecting an integer reply equal to want. */
static void cmd_int(redisContext *c, long long want, const char *fmt, const char *a, const char *b)
{
    redisReply *r = cmd(c, fmt, a, b);
    ck_assert_msg(r->type == REDIS_REPLY_INTEGER, "'%s' gave type %d: %s", fmt, r->type,
                  r->type == REDIS_REPLY_ERROR ? r->str : "");
    ck_assert_int_eq(r->integer, want);
    freeReplyObject(r);
}

/* Checks a pub/sub array: kind, optional pattern, name (binary), then a count or payload. */
static void check_push(redisReply *r, const char *kind, const char *pat, const char *name,
                       size_t nlen, const char *payload, size_t plen, long long count)
{
    size_t i = 0, n = pat ? 4 : 3;
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(r->elements, n);
    ck_assert_str_eq(r->element[i++]->str, kind);
    if (pat)
        ck_assert_str_eq(r->element[i++]->str, pat);
    ck_assert_uint_eq(r->element[i]->len, nlen);
    ck_assert(memcmp(r->element[i++]->str, name, nlen) == 0);
    if (payload) {
        ck_assert_int_eq(r->element[i]->type, REDIS_REPLY_STRING);
        ck_assert_uint_eq(r->element[i]->len, plen);
        ck_assert(memcmp(r->element[i]->str, payload, plen) == 0);
    } else {
        ck_assert_int_eq(r->element[i]->type, REDIS_REPLY_INTEGER);
        ck_assert_int_eq(r->element[i]->integer, count);
    }
}

/* Reads one reply and checks it with check_push for text names, then frees it. */
static void expect_push(redisContext *c, const char *kind, const char *pat, const char *name,
                        const char *payload, long long count)
{
    redisReply *r = next_reply(c);
    check_push(r, kind, pat, name, strlen(name), payload, payload ? strlen(payload) : 0, count);
    freeReplyObject(r);
}

/* Sends raw bytes and requires exactly want back on a raw socket. */
static void raw_roundtrip(int fd, const char *req, const char *want)
{
    char got[2048];
    ck_assert_int_eq(itest_send(fd, req), 0);
    ck_assert_msg(itest_expect(fd, want, strlen(want), got, sizeof(got)) == 0, "request %s: got %s",
                  req, got);
}

/* Polls until the reply to fmt is want: an integer, the count of a one-channel NUMSUB reply, or
 * else the length of an array. */
static void wait_count(redisContext *c, long long want, const char *fmt, const char *arg)
{
    long long got = -1;
    for (int i = 0; i < 500 && got != want; i++) {
        redisReply *r = cmd(c, fmt, arg);
        if (r->type == REDIS_REPLY_INTEGER)
            got = r->integer;
        else if (r->elements == 2 && r->element[1]->type == REDIS_REPLY_INTEGER)
            got = r->element[1]->integer;
        else
            got = (long long)r->elements;
        freeReplyObject(r);
        if (got != want)
            itest_sleep_ms(10);
    }
    ck_assert_int_eq(got, want);
}

START_TEST(subscribe_psubscribe_flow_resp2)
{
    start(0, NULL);
    redisContext *sub = rconnect(), *pub = rconnect();
    redisAppendCommand(sub, "SUBSCRIBE news sport");
    expect_push(sub, "subscribe", NULL, "news", NULL, 1);
    expect_push(sub, "subscribe", NULL, "sport", NULL, 2);
    redisAppendCommand(sub, "PSUBSCRIBE n*");
    expect_push(sub, "psubscribe", NULL, "n*", NULL, 3);
    cmd_int(pub, 2, "PUBLISH %s %s", "news", "hello");
    cmd_int(pub, 1, "PUBLISH %s %s", "sport", "goal");
    cmd_int(pub, 1, "PUBLISH %s %s", "nope", "x");
    expect_push(sub, "message", NULL, "news", "hello", 0);
    expect_push(sub, "pmessage", "n*", "news", "hello", 0);
    expect_push(sub, "message", NULL, "sport", "goal", 0);
    expect_push(sub, "pmessage", "n*", "nope", "x", 0);
    redisAppendCommand(sub, "PING");
    redisReply *r = next_reply(sub);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_str_eq(r->element[0]->str, "pong");
    freeReplyObject(r);
    redisAppendCommand(sub, "UNSUBSCRIBE sport");
    expect_push(sub, "unsubscribe", NULL, "sport", NULL, 2);
    redisAppendCommand(sub, "PUNSUBSCRIBE");
    expect_push(sub, "punsubscribe", NULL, "n*", NULL, 1);
    redisAppendCommand(sub, "UNSUBSCRIBE");
    expect_push(sub, "unsubscribe", NULL, "news", NULL, 0);
    r = cmd(sub, "PING");
    ck_assert_int_eq(r->type, REDIS_REPLY_STATUS);
    ck_assert_str_eq(r->str, "PONG");
    freeReplyObject(r);
    cmd_int(pub, 0, "PUBLISH %s %s", "news", "gone");
    redisFree(sub);
    redisFree(pub);
    stop();
}
END_TEST

START_TEST(subscribe_flow_resp3_push_frames)
{
    start(0, NULL);
    int sub = itest_connect(srv.port), pub = itest_connect(srv.port);
    char got[1024];
    const char *hello_head = "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n";
    ck_assert_int_eq(itest_send(sub, "HELLO 3\r\n"), 0);
    ck_assert_msg(itest_expect(sub, hello_head, strlen(hello_head), got, sizeof(got)) == 0,
                  "HELLO 3 reply starts %s", got);
    /* Drain the rest of the map, which ends with the empty modules array. */
    char tail[7] = {0};
    while (memcmp(tail, "*0\r\n", 4) != 0) {
        ck_assert_int_eq(itest_read_exact(sub, tail + 4, 1, ITEST_TIMEOUT_MS), 0);
        memmove(tail, tail + 1, 4);
    }
    raw_roundtrip(sub, "SUBSCRIBE r3\r\nPSUBSCRIBE r3*\r\nSSUBSCRIBE s3\r\n",
                  ">3\r\n$9\r\nsubscribe\r\n$2\r\nr3\r\n:1\r\n"
                  ">3\r\n$10\r\npsubscribe\r\n$3\r\nr3*\r\n:2\r\n"
                  ">3\r\n$10\r\nssubscribe\r\n$2\r\ns3\r\n:1\r\n");
    /* RESP3 subscribers may run any command. */
    raw_roundtrip(sub, "ECHO hi\r\nPING\r\nPUBSUB NUMPAT\r\n", "$2\r\nhi\r\n+PONG\r\n:1\r\n");
    raw_roundtrip(pub, "PUBLISH r3 a\r\nSPUBLISH s3 b\r\n", ":2\r\n:1\r\n");
    const char *want = ">3\r\n$7\r\nmessage\r\n$2\r\nr3\r\n$1\r\na\r\n"
                       ">4\r\n$8\r\npmessage\r\n$3\r\nr3*\r\n$2\r\nr3\r\n$1\r\na\r\n"
                       ">3\r\n$8\r\nsmessage\r\n$2\r\ns3\r\n$1\r\nb\r\n";
    ck_assert_msg(itest_expect(sub, want, strlen(want), got, sizeof(got)) == 0, "got %s", got);
    raw_roundtrip(sub, "UNSUBSCRIBE\r\nPUNSUBSCRIBE\r\nSUNSUBSCRIBE\r\nUNSUBSCRIBE\r\n",
                  ">3\r\n$11\r\nunsubscribe\r\n$2\r\nr3\r\n:1\r\n"
                  ">3\r\n$12\r\npunsubscribe\r\n$3\r\nr3*\r\n:0\r\n"
                  ">3\r\n$12\r\nsunsubscribe\r\n$2\r\ns3\r\n:0\r\n"
                  ">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n");
    raw_roundtrip(pub, "PUBLISH r3 a\r\n", ":0\r\n");
    close(sub);
    close(pub);
    stop();
}
END_TEST

START_TEST(ssubscribe_flow_separate_namespace)
{
    start(0, NULL);
    redisContext *sub = rconnect(), *pub = rconnect();
    redisAppendCommand(sub, "SSUBSCRIBE shard.a");
    expect_push(sub, "ssubscribe", NULL, "shard.a", NULL, 1);
    redisAppendCommand(sub, "SUBSCRIBE shard.a");
    expect_push(sub, "subscribe", NULL, "shard.a", NULL, 1);
    cmd_int(pub, 1, "SPUBLISH %s %s", "shard.a", "s-msg");
    cmd_int(pub, 1, "PUBLISH %s %s", "shard.a", "c-msg");
    expect_push(sub, "smessage", NULL, "shard.a", "s-msg", 0);
    expect_push(sub, "message", NULL, "shard.a", "c-msg", 0);
    redisReply *r = cmd(pub, "PUBSUB SHARDNUMSUB shard.a");
    ck_assert_int_eq(r->element[1]->integer, 1);
    freeReplyObject(r);
    redisAppendCommand(sub, "SUNSUBSCRIBE");
    expect_push(sub, "sunsubscribe", NULL, "shard.a", NULL, 0);
    cmd_int(pub, 0, "SPUBLISH %s %s", "shard.a", "x");
    cmd_int(pub, 1, "PUBLISH %s %s", "shard.a", "still");
    expect_push(sub, "message", NULL, "shard.a", "still", 0);
    redisFree(sub);
    redisFree(pub);
    stop();
}
END_TEST

START_TEST(pipeline_1000_commands_in_one_write)
{
    start(0, NULL);
    int fd = itest_connect(srv.port);
    size_t cap = 1000 * 64;
    char *req = malloc(cap), *want = malloc(cap), *got = malloc(cap);
    size_t rl = 0, wl = 0;
    for (int i = 0; i < 1000; i++) {
        char arg[32];
        int n = snprintf(arg, sizeof(arg), "m-%d", i);
        if (i % 3 == 0) {
            rl += (size_t)snprintf(req + rl, cap - rl, "PING\r\n");
            wl += (size_t)snprintf(want + wl, cap - wl, "+PONG\r\n");
        } else if (i % 3 == 1) {
            rl += (size_t)snprintf(req + rl, cap - rl, "*2\r\n$4\r\nECHO\r\n$%d\r\n%s\r\n", n, arg);
            wl += (size_t)snprintf(want + wl, cap - wl, "$%d\r\n%s\r\n", n, arg);
        } else {
            rl += (size_t)snprintf(req + rl, cap - rl, "PUBLISH %s x\r\n", arg);
            wl += (size_t)snprintf(want + wl, cap - wl, ":0\r\n");
        }
    }
    ck_assert_int_eq(itest_write_all(fd, req, rl), 0);
    ck_assert_int_eq(itest_read_exact(fd, got, wl, ITEST_TIMEOUT_MS), 0);
    ck_assert_msg(memcmp(got, want, wl) == 0, "replies differ or are out of order");
    ck_assert_msg(!itest_wait_closed(fd, 50), "unexpected bytes or close after the replies");
    free(req);
    free(want);
    free(got);
    close(fd);
    stop();
}
END_TEST

/* hiredis's blocking API writes a whole pipeline before it reads a reply, as redis-py's
 * pipelines do: 20 MB of replies must not deadlock (reading used to pause at 1 MiB of unread
 * replies, and the client never read). observability.sh checks that a client that reads,
 * slowly, stays paused. */
START_TEST(pipeline_written_before_any_reply_is_read)
{
    start(0, NULL);
    redisContext *c = rconnect();
    char arg[1000];
    memset(arg, 'p', sizeof(arg));
    for (int i = 0; i < 20000; i++)
        ck_assert_int_eq(redisAppendCommand(c, "ECHO %b", arg, sizeof(arg)), REDIS_OK);
    for (int i = 0; i < 20000; i++) {
        redisReply *r = next_reply(c);
        ck_assert_msg(r->type == REDIS_REPLY_STRING && r->len == sizeof(arg), "reply %d", i);
        freeReplyObject(r);
    }
    redisReply *r = cmd(c, "PING");
    ck_assert_str_eq(r->str, "PONG");
    freeReplyObject(r);
    redisFree(c);
    stop();
}
END_TEST

START_TEST(binary_payloads_and_channel_names)
{
    static const char chan[] = "bin\0chan\xff\r\n";
    char all[256];
    size_t clen = sizeof(chan) - 1;
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    start(0, NULL);
    redisContext *sub = rconnect(), *pub = rconnect();
    redisAppendCommand(sub, "SUBSCRIBE %b", chan, clen);
    redisReply *r = next_reply(sub);
    check_push(r, "subscribe", NULL, chan, clen, NULL, 0, 1);
    freeReplyObject(r);
    r = cmd(pub, "PUBLISH %b %b", chan, clen, all, sizeof(all));
    ck_assert_int_eq(r->integer, 1);
    freeReplyObject(r);
    r = cmd(pub, "PUBLISH %b %b", chan, clen, "", (size_t)0);
    ck_assert_int_eq(r->integer, 1);
    freeReplyObject(r);
    r = cmd(pub, "PUBSUB NUMSUB %b", chan, clen);
    ck_assert_uint_eq(r->element[0]->len, clen);
    ck_assert_int_eq(r->element[1]->integer, 1);
    freeReplyObject(r);
    r = next_reply(sub);
    check_push(r, "message", NULL, chan, clen, all, sizeof(all), 0);
    freeReplyObject(r);
    r = next_reply(sub);
    check_push(r, "message", NULL, chan, clen, "", 0, 0);
    freeReplyObject(r);
    /* A name differing only after the NUL is another channel. */
    r = cmd(pub, "PUBLISH %b x", "bin\0other", (size_t)9);
    ck_assert_int_eq(r->integer, 0);
    freeReplyObject(r);
    redisFree(sub);
    redisFree(pub);
    stop();
}
END_TEST

START_TEST(payload_24mib_intact)
{
    size_t len = 24u * 1024 * 1024;
    char *big = malloc(len);
    for (size_t i = 0; i < len; i++)
        big[i] = (char)((i * 2654435761u) >> 13);
    start(0, NULL);
    redisContext *sub = rconnect(), *pub = rconnect();
    redisAppendCommand(sub, "SUBSCRIBE big");
    expect_push(sub, "subscribe", NULL, "big", NULL, 1);
    redisReply *r = cmd(pub, "PUBLISH big %b", big, len);
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    ck_assert_int_eq(r->integer, 1);
    freeReplyObject(r);
    r = next_reply(sub);
    check_push(r, "message", NULL, "big", 3, big, len, 0);
    freeReplyObject(r);
    cmd_int(pub, 1, "PUBLISH %s %s", "big", "after");
    expect_push(sub, "message", NULL, "big", "after", 0);
    free(big);
    redisFree(sub);
    redisFree(pub);
    stop();
}
END_TEST

/* Fills argv with "SUBSCRIBE" or "PUBSUB NUMSUB" followed by n channel names. */
static int channel_argv(const char **argv, char (*names)[16], int first, int n, const char *cmd1,
                        const char *cmd2)
{
    int argc = 0;
    argv[argc++] = cmd1;
    if (cmd2)
        argv[argc++] = cmd2;
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof(names[i]), "ch:%d", first + i);
        argv[argc++] = names[i];
    }
    return argc;
}

START_TEST(ten_thousand_channels_one_connection)
{
    enum { N = 10000 };
    static char names[N][16];
    static const char *argv[N + 2];
    start(0, NULL);
    redisContext *sub = rconnect(), *obs = rconnect();
    int argc = channel_argv(argv, names, 0, N, "SUBSCRIBE", NULL);
    redisAppendCommandArgv(sub, argc, argv, NULL);
    for (int i = 0; i < N; i++) {
        redisReply *r = next_reply(sub);
        check_push(r, "subscribe", NULL, names[i], strlen(names[i]), NULL, 0, i + 1);
        freeReplyObject(r);
    }
    argc = channel_argv(argv, names, 0, N, "PUBSUB", "NUMSUB");
    redisReply *r = redisCommandArgv(obs, argc, argv, NULL);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->elements, 2 * N);
    for (int i = 0; i < N; i++) {
        ck_assert_str_eq(r->element[2 * i]->str, names[i]);
        ck_assert_int_eq(r->element[2 * i + 1]->integer, 1);
    }
    freeReplyObject(r);
    r = cmd(obs, "PUBSUB CHANNELS ch:*");
    ck_assert_uint_eq(r->elements, N);
    static char seen[N];
    memset(seen, 0, sizeof(seen));
    for (size_t i = 0; i < r->elements; i++) {
        int k = atoi(r->element[i]->str + 3);
        ck_assert(k >= 0 && k < N && !seen[k]);
        seen[k] = 1;
    }
    freeReplyObject(r);
    cmd_int(obs, 1, "PUBLISH %s %s", "ch:9999", "last");
    expect_push(sub, "message", NULL, "ch:9999", "last", 0);
    redisAppendCommand(sub, "UNSUBSCRIBE");
    for (int i = 0; i < N; i++) {
        r = next_reply(sub);
        ck_assert_int_eq(r->element[2]->integer, N - 1 - i);
        freeReplyObject(r);
    }
    r = cmd(obs, "PUBSUB CHANNELS");
    ck_assert_uint_eq(r->elements, 0);
    freeReplyObject(r);
    redisFree(sub);
    redisFree(obs);
    stop();
}
END_TEST

/* Reads count messages from a subscriber, checking each publisher's sequence stays in order. */
static void check_order(redisContext *sub, int count, int npub)
{
    int next[4] = {0};
    for (int i = 0; i < count; i++) {
        redisReply *r = next_reply(sub);
        ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
        const char *payload = r->element[r->elements - 1]->str;
        int p = -1, seq = -1;
        ck_assert_int_eq(sscanf(payload, "p%d:%d", &p, &seq), 2);
        ck_assert(p >= 0 && p < npub);
        ck_assert_msg(seq == next[p], "publisher %d: got %d, expected %d", p, seq, next[p]);
        next[p]++;
        freeReplyObject(r);
    }
}

START_TEST(per_publisher_order_10000_messages)
{
    enum { MSGS = 10000, PUBS = 2 };
    start(0, NULL);
    redisContext *subs[3] = {rconnect(), rconnect(), rconnect()};
    redisAppendCommand(subs[0], "SUBSCRIBE order");
    expect_push(subs[0], "subscribe", NULL, "order", NULL, 1);
    redisAppendCommand(subs[1], "PSUBSCRIBE ord*");
    expect_push(subs[1], "psubscribe", NULL, "ord*", NULL, 1);
    redisAppendCommand(subs[2], "SUBSCRIBE order");
    expect_push(subs[2], "subscribe", NULL, "order", NULL, 1);
    int pubs[PUBS];
    char *req = malloc(MSGS * 48), *rep = malloc(MSGS * 4 + 1);
    for (int p = 0; p < PUBS; p++) {
        size_t rl = 0;
        pubs[p] = itest_connect(srv.port);
        for (int i = 0; i < MSGS; i++)
            rl += (size_t)sprintf(req + rl, "PUBLISH order p%d:%d\r\n", p, i);
        ck_assert_int_eq(itest_write_all(pubs[p], req, rl), 0);
    }
    for (int p = 0; p < PUBS; p++) {
        ck_assert_int_eq(itest_read_exact(pubs[p], rep, MSGS * 4, ITEST_TIMEOUT_MS), 0);
        for (int i = 0; i < MSGS; i++)
            ck_assert_msg(memcmp(rep + 4 * i, ":3\r\n", 4) == 0, "publish %d did not count 3", i);
        close(pubs[p]);
    }
    for (int s = 0; s < 3; s++) {
        check_order(subs[s], MSGS * PUBS, PUBS);
        redisFree(subs[s]);
    }
    free(req);
    free(rep);
    stop();
}
END_TEST

START_TEST(publish_return_counts)
{
    start(0, NULL);
    redisContext *a = rconnect(), *b = rconnect(), *pub = rconnect();
    cmd_int(pub, 0, "PUBLISH %s %s", "cnt", "x");
    redisAppendCommand(a, "SUBSCRIBE cnt");
    expect_push(a, "subscribe", NULL, "cnt", NULL, 1);
    cmd_int(pub, 1, "PUBLISH %s %s", "cnt", "x");
    expect_push(a, "message", NULL, "cnt", "x", 0);
    redisAppendCommand(a, "PSUBSCRIBE c*");
    expect_push(a, "psubscribe", NULL, "c*", NULL, 2);
    /* One client, two matching subscriptions: two deliveries, channel first. */
    cmd_int(pub, 2, "PUBLISH %s %s", "cnt", "y");
    expect_push(a, "message", NULL, "cnt", "y", 0);
    expect_push(a, "pmessage", "c*", "cnt", "y", 0);
    redisAppendCommand(b, "PSUBSCRIBE *");
    expect_push(b, "psubscribe", NULL, "*", NULL, 1);
    redisAppendCommand(b, "SSUBSCRIBE cnt");
    expect_push(b, "ssubscribe", NULL, "cnt", NULL, 1);
    cmd_int(pub, 3, "PUBLISH %s %s", "cnt", "x");
    cmd_int(pub, 1, "PUBLISH %s %s", "other", "x");
    cmd_int(pub, 1, "SPUBLISH %s %s", "cnt", "x");
    redisFree(a);
    redisFree(b);
    wait_count(pub, 0, "PUBSUB NUMPAT", NULL);
    cmd_int(pub, 0, "PUBLISH %s %s", "cnt", "x");
    redisFree(pub);
    stop();
}
END_TEST

START_TEST(empty_channels_disappear)
{
    start(0, NULL);
    redisContext *sub = rconnect(), *obs = rconnect();
    redisAppendCommand(sub, "SUBSCRIBE e1 e2 e3");
    for (int i = 0; i < 3; i++)
        freeReplyObject(next_reply(sub));
    redisAppendCommand(sub, "SSUBSCRIBE e1");
    freeReplyObject(next_reply(sub));
    wait_count(obs, 3, "PUBSUB CHANNELS e*", NULL);
    redisAppendCommand(sub, "UNSUBSCRIBE e2");
    expect_push(sub, "unsubscribe", NULL, "e2", NULL, 2);
    redisReply *r = cmd(obs, "PUBSUB CHANNELS e*");
    ck_assert_uint_eq(r->elements, 2);
    for (size_t i = 0; i < r->elements; i++)
        ck_assert_str_ne(r->element[i]->str, "e2");
    freeReplyObject(r);
    redisFree(sub);
    wait_count(obs, 0, "PUBSUB CHANNELS", NULL);
    wait_count(obs, 0, "PUBSUB SHARDCHANNELS", NULL);
    redisFree(obs);
    stop();
}
END_TEST

START_TEST(client_closing_mid_stream_does_not_disturb_others)
{
    enum { MSGS = 4000 };
    start(0, NULL);
    int quitter = itest_connect(srv.port), rcv = 4096;
    setsockopt(quitter, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    raw_roundtrip(quitter, "SUBSCRIBE stream\r\n",
                  "*3\r\n$9\r\nsubscribe\r\n$6\r\nstream\r\n:1\r\n");
    redisContext *stay = rconnect(), *pub = rconnect();
    redisAppendCommand(stay, "SUBSCRIBE stream");
    expect_push(stay, "subscribe", NULL, "stream", NULL, 1);
    char payload[1100];
    memset(payload, 'z', sizeof(payload));
    for (int i = 0; i < MSGS; i++) {
        int n = snprintf(payload, 16, "%d:", i);
        payload[n] = 'z';
        redisAppendCommand(pub, "PUBLISH stream %b", payload, sizeof(payload));
        if (i == MSGS / 2) {
            /* Leave with unread messages queued on both sides. */
            char some[512];
            int done = 0;
            while (!done)
                ck_assert_int_eq(redisBufferWrite(pub, &done), REDIS_OK);
            itest_sleep_ms(50);
            itest_read_some(quitter, some, sizeof(some), 1000);
            close(quitter);
        }
    }
    for (int i = 0; i < MSGS; i++) {
        redisReply *r = next_reply(pub);
        ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
        ck_assert(r->integer == 1 || r->integer == 2);
        freeReplyObject(r);
    }
    for (int i = 0; i < MSGS; i++) {
        redisReply *r = next_reply(stay);
        ck_assert_int_eq(atoi(r->element[2]->str), i);
        ck_assert_uint_eq(r->element[2]->len, sizeof(payload));
        freeReplyObject(r);
    }
    wait_count(pub, 1, "PUBSUB NUMSUB %s", "stream");
    redisFree(stay);
    redisFree(pub);
    stop();
}
END_TEST

START_TEST(protocol_error_closes_only_that_connection)
{
    start(0, NULL);
    redisContext *sub = rconnect(), *pub = rconnect();
    redisAppendCommand(sub, "SUBSCRIBE pe");
    expect_push(sub, "subscribe", NULL, "pe", NULL, 1);
    int bad = itest_connect(srv.port);
    raw_roundtrip(bad, "PING\r\n*1\r\n$x\r\nPING\r\n",
                  "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n");
    ck_assert_msg(itest_wait_closed(bad, ITEST_TIMEOUT_MS), "bad client not closed");
    close(bad);
    bad = itest_connect(srv.port);
    raw_roundtrip(bad, "\"unbalanced\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n");
    ck_assert(itest_wait_closed(bad, ITEST_TIMEOUT_MS));
    close(bad);
    cmd_int(pub, 1, "PUBLISH %s %s", "pe", "still here");
    expect_push(sub, "message", NULL, "pe", "still here", 0);
    redisReply *r = cmd(pub, "PING");
    ck_assert_str_eq(r->str, "PONG");
    freeReplyObject(r);
    redisFree(sub);
    redisFree(pub);
    stop();
}
END_TEST

START_TEST(requirepass_auth_flow)
{
    start(0, "[security]\nrequirepass = s3cret\n");
    redisContext *c = rconnect();
    redisReply *r = cmd(c, "PING");
    ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
    ck_assert_str_eq(r->str, "NOAUTH Authentication required.");
    freeReplyObject(r);
    r = cmd(c, "SUBSCRIBE x");
    ck_assert_str_eq(r->str, "NOAUTH Authentication required.");
    freeReplyObject(r);
    r = cmd(c, "AUTH wrong");
    ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
    ck_assert_str_eq(r->str, "WRONGPASS invalid username-password pair or user is disabled.");
    freeReplyObject(r);
    r = cmd(c, "AUTH s3cret");
    ck_assert_str_eq(r->str, "OK");
    freeReplyObject(r);
    cmd_int(c, 0, "PUBLISH %s %s", "a", "b");
    redisFree(c);

    int fd = itest_connect(srv.port);
    raw_roundtrip(fd, "HELLO 3 AUTH default nope\r\n",
                  "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    raw_roundtrip(fd, "HELLO 3 AUTH default s3cret\r\n", "%7\r\n$6\r\nserver\r\n");
    char skip[512];
    itest_read_some(fd, skip, sizeof(skip), 200);
    raw_roundtrip(fd, "SUBSCRIBE ok\r\n", ">3\r\n$9\r\nsubscribe\r\n$2\r\nok\r\n:1\r\n");
    close(fd);
    stop();
}
END_TEST

START_TEST(unix_socket_and_tcp_share_channels)
{
    start(1, NULL);
    struct timeval tv = {10, 0};
    redisContext *u = redisConnectUnixWithTimeout(srv.unixsock, tv);
    ck_assert_msg(u && !u->err, "unix connect %s: %s", srv.unixsock, u ? u->errstr : "oom");
    redisSetTimeout(u, tv);
    redisReply *r = cmd(u, "PING");
    ck_assert_str_eq(r->str, "PONG");
    freeReplyObject(r);
    redisAppendCommand(u, "SUBSCRIBE viaunix");
    expect_push(u, "subscribe", NULL, "viaunix", NULL, 1);
    redisContext *t = rconnect();
    cmd_int(t, 1, "PUBLISH %s %s", "viaunix", "from-tcp");
    expect_push(u, "message", NULL, "viaunix", "from-tcp", 0);
    redisFree(u);
    redisFree(t);
    stop();
}
END_TEST

/* Runs the daemon on a config file body, expecting a quick non-zero exit whose output names
 * FILE:LINE and the key. */
static void expect_config_error(const char *body, int line, const char *key)
{
    char dir[256], conf[300], log[300], want[400], text[4096] = "";
    const char *bin = getenv("EVBROKERD");
    ck_assert_int_eq(itest_mkdtemp(dir, sizeof(dir), "cfg"), 0);
    snprintf(conf, sizeof(conf), "%.200s/bad.conf", dir);
    snprintf(log, sizeof(log), "%.200s/out.log", dir);
    FILE *f = fopen(conf, "w");
    fputs(body, f);
    fclose(f);
    char *argv[] = {(char *)bin, "-c", conf, NULL};
    pid_t pid = itest_spawn(argv, log);
    int status = itest_wait_pid(pid, ITEST_TIMEOUT_MS);
    if (status == -1) {
        kill(pid, SIGKILL);
        itest_wait_pid(pid, 2000);
    }
    f = fopen(log, "r");
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    itest_rmtree(dir);
    ck_assert_msg(status != -1, "daemon kept running on a bad config");
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0, "exit status 0x%x", status);
    snprintf(want, sizeof(want), "%s:%d:", conf, line);
    ck_assert_msg(strstr(text, want) != NULL, "no '%s' in: %s", want, text);
    ck_assert_msg(strstr(text, key) != NULL, "no '%s' in: %s", key, text);
}

START_TEST(config_unknown_key_exits_with_file_line)
{
    expect_config_error("[server]\nport = 0\nno_such_key = 1\n", 3, "no_such_key");
}
END_TEST

START_TEST(config_bad_value_exits_with_file_line)
{
    expect_config_error("# comment\n[server]\nbind = 127.0.0.1\nport = notaport\n", 4, "port");
    expect_config_error("[limits]\nproto_max_bulk_len = 1kb\n", 2, "proto_max_bulk_len");
}
END_TEST

/* Adds one test in a TCase of its own, so results are reported by test name. */
static void add(Suite *s, const char *name, const TTest *t)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, t);
    suite_add_tcase(s, tc);
}

int main(void)
{
    Suite *s = suite_create("flows");
    signal(SIGPIPE, SIG_IGN);
    add(s, "subscribe_psubscribe_flow_resp2", subscribe_psubscribe_flow_resp2);
    add(s, "subscribe_flow_resp3_push_frames", subscribe_flow_resp3_push_frames);
    add(s, "ssubscribe_flow_separate_namespace", ssubscribe_flow_separate_namespace);
    add(s, "pipeline_1000_commands_in_one_write", pipeline_1000_commands_in_one_write);
    add(s, "pipeline_written_before_any_reply_is_read", pipeline_written_before_any_reply_is_read);
    add(s, "binary_payloads_and_channel_names", binary_payloads_and_channel_names);
    add(s, "payload_24mib_intact", payload_24mib_intact);
    add(s, "ten_thousand_channels_one_connection", ten_thousand_channels_one_connection);
    add(s, "per_publisher_order_10000_messages", per_publisher_order_10000_messages);
    add(s, "publish_return_counts", publish_return_counts);
    add(s, "empty_channels_disappear", empty_channels_disappear);
    add(s, "client_closing_mid_stream_does_not_disturb_others",
        client_closing_mid_stream_does_not_disturb_others);
    add(s, "protocol_error_closes_only_that_connection",
        protocol_error_closes_only_that_connection);
    add(s, "requirepass_auth_flow", requirepass_auth_flow);
    add(s, "unix_socket_and_tcp_share_channels", unix_socket_and_tcp_share_channels);
    add(s, "config_unknown_key_exits_with_file_line", config_unknown_key_exits_with_file_line);
    add(s, "config_bad_value_exits_with_file_line", config_bad_value_exits_with_file_line);
    return itest_run_suite(s, "flows");
}
