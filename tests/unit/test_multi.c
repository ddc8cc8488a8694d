/* Unit tests for transactions (multi.c) in-process, over clients on socketpairs: what CLIENT
 * LIST shows of a transaction, the memory bound on the queue, that nothing is kept once the
 * transaction is doomed, that queued arguments outlive the request they came in, and that
 * RESET and a closing client free the queue. The reply bytes themselves are checked against
 * redis-server by the wire cases (tests/integration/wire_cases.txt, "transactions"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "config.h"
#include "inproc.h"
#include "multi.h"
#include "server.h"
#include "unit.h"
#include "util.h"

/* Sends inline commands (each ended by CRLF here) and returns what comes back. */
static struct bytes call(struct peer *p, const char *inline_cmds)
{
    struct bytes got = {0};
    peer_write(p, inline_cmds, strlen(inline_cmds));
    peer_read(p, &got);
    return got;
}

/* Asserts that a call's reply is exactly want. */
static void expect_call(struct peer *p, const char *inline_cmds, const char *want)
{
    struct bytes got = call(p, inline_cmds);
    ck_assert_msg(got.len == strlen(want) && memcmp(got.p ? got.p : "", want, got.len) == 0,
                  "%s: got '%.*s', want '%s'", inline_cmds, (int)got.len, got.p ? got.p : "", want);
    free(got.p);
}

/* The CLIENT LIST line of the client named name, as seen by p (malloc'd). */
static char *client_line(struct peer *p, const char *name)
{
    struct bytes got = call(p, "CLIENT LIST\r\n");
    char key[64];
    snprintf(key, sizeof(key), " name=%s ", name);
    ck_assert_ptr_nonnull(got.p);
    char *at = strstr(got.p, key);
    ck_assert_msg(at != NULL, "no client named %s in '%s'", name, got.p);
    while (at > got.p && at[-1] != '\n' && at[-1] != '\r')
        at--;
    char *line = xstrdup(at);
    line[strcspn(line, "\n")] = '\0';
    free(got.p);
    return line;
}

static void expect_in(const char *line, const char *field)
{
    ck_assert_msg(strstr(line, field) != NULL, "'%s' not in '%s'", field, line);
}

START_TEST(client_list_shows_the_transaction)
{
    inproc_up(NULL);
    struct peer a = peer_new(0), b = peer_new(0);

    expect_call(&a, "CLIENT SETNAME txl\r\nMULTI\r\nPING\r\nECHO x\r\n",
                "+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n");
    char *line = client_line(&b, "txl");
    expect_in(line, " flags=x ");
    expect_in(line, " multi=2 ");
    expect_in(line, " cmd=echo ");
    ck_assert_msg(strstr(line, " multi-mem=0 ") == NULL, "no multi-mem in '%s'", line);
    ck_assert_uint_gt(multi_memory(a.c), 0);
    free(line);

    expect_call(&a, "EXEC\r\n", "*2\r\n+PONG\r\n$1\r\nx\r\n");
    line = client_line(&b, "txl");
    expect_in(line, " flags=N ");
    expect_in(line, " multi=-1 ");
    expect_in(line, " multi-mem=0 ");
    expect_in(line, " cmd=exec ");
    free(line);
    close(a.fd);
    close(b.fd);
    inproc_down();
}
END_TEST

/* The in-process server with a small client_query_buffer_limit. */
static void start_with_query_limit(long long limit)
{
    struct config cfg;
    config_init(&cfg);
    cfg.output_batch_us = 0;
    cfg.client_query_buffer_limit = limit;
    inproc_start(&cfg);
}

START_TEST(queue_over_the_query_buffer_limit_closes_the_client)
{
    start_with_query_limit(4096);
    struct peer p = peer_new(0), other = peer_new(0);
    char req[3100];

    memset(req, 'q', sizeof(req));
    memcpy(req, "PUBLISH ch ", 11);
    memcpy(req + sizeof(req) - 2, "\r\n", 2);
    expect_call(&p, "MULTI\r\n", "+OK\r\n");
    peer_write(&p, req, sizeof(req));
    struct bytes got = {0};
    peer_read(&p, &got);
    ck_assert_str_eq(got.p, "+QUEUED\r\n");
    ck_assert(!got.eof);
    got.len = 0;
    peer_write(&p, req, sizeof(req)); /* 2 x 3 KiB > 4 KiB */
    peer_read(&p, &got);
    ck_assert_msg(got.eof && got.len == 0, "not closed: got '%.*s'", (int)got.len, got.p);
    ck_assert_int_eq(server.stats.query_limit_disconnections, 1);
    expect_call(&other, "PING\r\n", "+PONG\r\n");
    free(got.p);
    close(p.fd);
    close(other.fd);
    inproc_down();
}
END_TEST

/* EXEC cannot pause halfway as reading does, so a few queued commands with big replies could
 * queue any amount of output: past client_query_buffer_limit the client is closed. Under
 * CLIENT REPLY OFF the same transaction queues nothing and goes through. */
START_TEST(exec_replies_over_the_limit_close_the_client)
{
    start_with_query_limit(4096);
    struct peer p = peer_new(0), q = peer_new(0);
    const char *docs = "COMMAND DOCS\r\n"; /* tens of KiB each */
    struct bytes got = {0};

    expect_call(&q, "CLIENT REPLY OFF\r\nMULTI\r\n", "");
    for (int i = 0; i < 5; i++)
        peer_write(&q, docs, strlen(docs));
    expect_call(&q, "EXEC\r\nCLIENT REPLY ON\r\nPING\r\n", "+OK\r\n+PONG\r\n");

    expect_call(&p, "MULTI\r\n", "+OK\r\n");
    for (int i = 0; i < 5; i++)
        expect_call(&p, docs, "+QUEUED\r\n");
    peer_write(&p, "EXEC\r\n", 6);
    peer_read(&p, &got);
    ck_assert_msg(got.eof, "not closed after %zu bytes", got.len);
    ck_assert_int_eq(server.stats.query_limit_disconnections, 1);
    free(got.p);
    close(p.fd);
    close(q.fd);
    inproc_down();
}
END_TEST

START_TEST(nothing_is_kept_once_the_transaction_is_doomed)
{
    inproc_up(NULL);
    struct peer p = peer_new(0);

    expect_call(&p, "MULTI\r\nPING\r\n", "+OK\r\n+QUEUED\r\n");
    size_t before = multi_memory(p.c);
    ck_assert_uint_gt(before, 0);
    expect_call(&p, "NOSUCH\r\nPUBLISH ch payload\r\nPING\r\n",
                "-ERR unknown command 'NOSUCH', with args beginning with: \r\n+QUEUED\r\n"
                "+QUEUED\r\n");
    ck_assert_uint_eq(multi_memory(p.c), before);
    ck_assert_int_eq(multi_count(p.c), 1);
    expect_call(&p, "EXEC\r\n", "-EXECABORT Transaction discarded because of previous errors.\r\n");
    ck_assert_int_eq(multi_count(p.c), -1);
    ck_assert_uint_eq(multi_memory(p.c), 0);
    ck_assert_uint_eq(p.c->flags & (CLIENT_F_MULTI | CLIENT_F_MULTI_ERROR), 0);
    close(p.fd);
    inproc_down();
}
END_TEST

START_TEST(queued_arguments_outlive_their_request)
{
    inproc_up(NULL);
    struct peer pub = peer_new(0), sub = peer_new(0);
    enum { LEN = 6000 };
    char head[64], *req = xmalloc(LEN + 128), *want = xmalloc(LEN + 128);

    expect_call(&sub, "SUBSCRIBE big\r\n", "*3\r\n$9\r\nsubscribe\r\n$3\r\nbig\r\n:1\r\n");
    expect_call(&pub, "MULTI\r\n", "+OK\r\n");
    /* A big argument (kept in a block of its own by the parser) cut across reads. */
    int h = snprintf(head, sizeof(head), "*3\r\n$7\r\nPUBLISH\r\n$3\r\nbig\r\n$%d\r\n", LEN);
    memcpy(req, head, (size_t)h);
    for (int i = 0; i < LEN; i++)
        req[h + i] = (char)('a' + i % 26);
    memcpy(req + h + LEN, "\r\n", 2);
    peer_write(&pub, req, (size_t)h + 1000);
    pump();
    struct bytes got = {0};
    peer_write(&pub, req + h + 1000, (size_t)LEN + 2 - 1000);
    peer_read(&pub, &got);
    ck_assert_str_eq(got.p, "+QUEUED\r\n");
    free(got.p);
    /* Other requests reuse the parser's memory before EXEC. */
    expect_call(&pub, "ECHO overwrite-the-parser-buffers\r\n", "+QUEUED\r\n");
    expect_call(&pub, "EXEC\r\n", "*2\r\n:1\r\n$28\r\noverwrite-the-parser-buffers\r\n");

    int w = snprintf(want, 64, "*3\r\n$7\r\nmessage\r\n$3\r\nbig\r\n$%d\r\n", LEN);
    memcpy(want + w, req + h, (size_t)LEN + 2);
    struct bytes msg = {0};
    peer_read(&sub, &msg);
    ck_assert_uint_eq(msg.len, (size_t)w + LEN + 2);
    ck_assert(memcmp(msg.p, want, msg.len) == 0);
    free(msg.p);
    free(req);
    free(want);
    close(pub.fd);
    close(sub.fd);
    inproc_down();
}
END_TEST

START_TEST(reset_and_closing_free_the_queue)
{
    inproc_up(NULL);
    struct peer p = peer_new(0), q = peer_new(0);

    expect_call(&p, "MULTI\r\nPUBLISH ch x\r\nRESET\r\nEXEC\r\n",
                "+OK\r\n+QUEUED\r\n+RESET\r\n-ERR EXEC without MULTI\r\n");
    ck_assert_int_eq(multi_count(p.c), -1);
    ck_assert_ptr_null(p.c->ext->multi);
    /* A client that goes away mid-transaction: its queue goes with it (ASan and valgrind
     * report a leak otherwise). */
    expect_call(&q, "MULTI\r\nPUBLISH ch x\r\n", "+OK\r\n+QUEUED\r\n");
    close(q.fd);
    pump();
    struct bytes list = call(&p, "CLIENT LIST\r\n");
    ck_assert_msg(strstr(strstr(list.p, "laddr=") + 1, "laddr=") == NULL,
                  "the closed client is still listed: '%s'", list.p);
    free(list.p);
    close(p.fd);
    inproc_down();
}
END_TEST

static Suite *multi_suite(void)
{
    Suite *s = suite_create("multi");
    TCase *tc = tcase_create("transactions");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, client_list_shows_the_transaction);
    tcase_add_test(tc, queue_over_the_query_buffer_limit_closes_the_client);
    tcase_add_test(tc, exec_replies_over_the_limit_close_the_client);
    tcase_add_test(tc, nothing_is_kept_once_the_transaction_is_doomed);
    tcase_add_test(tc, queued_arguments_outlive_their_request);
    tcase_add_test(tc, reset_and_closing_free_the_queue);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(multi_suite)
