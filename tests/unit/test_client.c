/* Unit tests for client.c in-process, on socketpairs and loopback TCP: what an idle connection
 * holds (no parser, output buffer or write event once idle, and each made again when needed),
 * a request cut across reads keeping its own parser, and addresses kept packed but shown
 * exactly as before (addr=, laddr=, CLIENT LIST). */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "command.h"
#include "config.h"
#include "dict.h"
#include "msg.h"
#include "pubsub.h"
#include "server.h"
#include "inproc.h"
#include "unit.h"
#include "util.h"

/* Asserts that the peer received exactly the string want. */
static void expect_reply(struct peer *p, const char *want)
{
    struct bytes b = {0};

    peer_read(p, &b);
    ck_assert_msg(b.len == strlen(want) && (b.len == 0 || memcmp(b.p, want, b.len) == 0),
                  "got '%.*s', want '%s'", (int)b.len, b.p ? b.p : "", want);
    free(b.p);
}

/* Makes c look idle for 3 s (nothing read or written) and runs its cron step. */
static size_t idle_cron(struct client *c)
{
    c->last_ms = server.now_ms - 3000;
    c->last_deliver_us = (uint32_t)(server.now_us - 3000 * 1000LL);
    return client_cron(c);
}

START_TEST(idle_client_gives_back_parser_and_output_buffer)
{
    inproc_up(NULL);
    struct peer p = peer_new(0);

    /* Nothing is made before it is needed. */
    ck_assert_ptr_null(p.c->parser);
    ck_assert_ptr_null(p.c->out);
    ck_assert_ptr_null(p.c->write_ev);
    ck_assert_ptr_null(p.c->ext);

    /* A request that arrives whole is parsed by the shared parser. */
    peer_write(&p, "PING\r\n", 6);
    expect_reply(&p, "+PONG\r\n");
    ck_assert_ptr_null(p.c->parser);
    ck_assert_ptr_nonnull(p.c->out);

    /* One cut across reads keeps its state in a parser of the client's own... */
    peer_write(&p, "*1\r\n$4\r\nPI", 10);
    expect_reply(&p, "");
    ck_assert_ptr_nonnull(p.c->parser);
    ck_assert_uint_eq(client_input_pending(p.c), 10);
    /* ...which an idle pass leaves alone while the request is incomplete. */
    idle_cron(p.c);
    ck_assert_ptr_nonnull(p.c->parser);
    peer_write(&p, "NG\r\n", 4);
    expect_reply(&p, "+PONG\r\n");
    ck_assert_uint_eq(client_input_pending(p.c), 0);

    /* Recently active: kept. Idle: everything given back, and it all comes back on use. */
    ck_assert_uint_eq(client_cron(p.c), 0);
    ck_assert_ptr_nonnull(p.c->out);
    ck_assert_uint_gt(idle_cron(p.c), 0);
    ck_assert_ptr_null(p.c->parser);
    ck_assert_ptr_null(p.c->out);
    ck_assert_ptr_null(p.c->reply);
    ck_assert_uint_eq(idle_cron(p.c), 0);
    peer_write(&p, "*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n", 22);
    expect_reply(&p, "$2\r\nhi\r\n");

    /* A subscriber that went idle needs no buffer for messages: they are sent straight
     * from the frame log; a large one (referenced, not logged) brings the buffer back. */
    peer_write(&p, "*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n", 27);
    expect_reply(&p, "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
    idle_cron(p.c);
    ck_assert_ptr_null(p.c->out);
    ck_assert_int_eq(pubsub_publish(PUBSUB_CHANNEL, "ch", 2, "m", 1, NULL), 1);
    ck_assert_ptr_null(p.c->out);
    ck_assert_ptr_nonnull(p.c->run);
    expect_reply(&p, "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n");
    ck_assert_ptr_null(p.c->run);
    static char big[MSG_COPY_MAX];
    ck_assert_int_eq(pubsub_publish(PUBSUB_CHANNEL, "ch", 2, big, sizeof(big), NULL), 1);
    ck_assert_ptr_nonnull(p.c->out);
    inproc_down();
}
END_TEST

/* Starts the daemon in-process with one subscriber to "ch" whose socket takes sndbuf bytes. */
static struct peer up_with_subscriber(int sndbuf)
{
    inproc_up(NULL);
    struct peer p = peer_new(sndbuf);
    ck_assert_int_eq(pubsub_subscribe(p.c, PUBSUB_CHANNEL, "ch", 2), 1);
    return p;
}

START_TEST(write_event_is_made_when_the_socket_fills_and_freed_once_idle)
{
    static char payload[4096];
    struct bytes b = {0};
    struct peer p = up_with_subscriber(4096);

    memset(payload, 'x', sizeof(payload));
    for (int i = 0; i < 256; i++)
        ck_assert_int_eq(pubsub_publish(PUBSUB_CHANNEL, "ch", 2, payload, sizeof(payload), NULL),
                         1);
    pump();
    ck_assert_uint_ne(p.c->flags & CLIENT_F_WRITE_WAIT, 0);
    ck_assert_ptr_nonnull(p.c->write_ev);
    /* Waiting to write is not idle, however old the last write. */
    idle_cron(p.c);
    ck_assert_ptr_nonnull(p.c->write_ev);
    ck_assert_ptr_nonnull(p.c->out);

    peer_read(&p, &b);
    ck_assert_uint_eq(b.len, 256 * (sizeof("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$4096\r\n\r\n") - 1 +
                                    sizeof(payload)));
    free(b.p);
    ck_assert_uint_eq(p.c->flags & CLIENT_F_WRITE_WAIT, 0);
    ck_assert_ptr_nonnull(p.c->write_ev); /* kept while the client is busy */
    idle_cron(p.c);
    ck_assert_ptr_null(p.c->write_ev);
    ck_assert_ptr_null(p.c->out);
    inproc_down();
}
END_TEST

/* A fast reader of a big backlog gets at most client_write_per_pass bytes per loop pass, so
 * other clients get their turn. Lowered to 64 KiB here, below what an unprivileged socket
 * buffer takes at once; the limit is cut inside a 16 KiB frame, which a send must respect. */
START_TEST(one_pass_writes_at_most_the_per_pass_cap)
{
    static char payload[16384];
    struct bytes b = {0};
    struct peer p = up_with_subscriber(256 * 1024);
    size_t cap = client_write_per_pass;

    client_write_per_pass = 64 * 1024;
    memset(payload, 'y', sizeof(payload));
    for (int i = 0; i < 64; i++)
        ck_assert_int_eq(pubsub_publish(PUBSUB_CHANNEL, "ch", 2, payload, sizeof(payload), NULL),
                         1);
    long long before = server.stats.net_output_bytes;
    event_base_loop(server.base, EVLOOP_ONCE | EVLOOP_NONBLOCK); /* one flush pass */
    ck_assert_int_eq(server.stats.net_output_bytes - before, 64 * 1024);
    ck_assert_uint_ne(p.c->flags & CLIENT_F_WRITE_WAIT, 0);
    peer_read(&p, &b);
    ck_assert_uint_eq(b.len, 64 * (sizeof("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$16384\r\n\r\n") - 1 +
                                   sizeof(payload)));
    free(b.p);
    client_write_per_pass = cap;
    inproc_down();
}
END_TEST

/* One run of 500 small messages (about 21 KiB) in a fresh log segment: more than a 4 KiB
 * socket takes at once. */
static void publish_small_run(void)
{
    msg_log_release();
    for (int i = 0; i < 500; i++)
        pubsub_publish(PUBSUB_CHANNEL, "ch", 2, "0123456789", 10, NULL);
}

/* Reads q until it is drained, checks that all 500 messages came, and stops the daemon. */
static void expect_small_run_and_stop(struct peer *q)
{
    static const char frame[] = "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$10\r\n0123456789\r\n";
    struct bytes b = {0};

    peer_read(q, &b);
    ck_assert_uint_eq(b.len, 500 * (sizeof(frame) - 1));
    free(b.p);
    inproc_down();
}

START_TEST(runs_keep_order_with_replies_and_survive_a_full_socket)
{
    struct bytes b = {0};
    char payload[16], want[80];

    inproc_up(NULL);
    struct peer p = peer_new(0);
    ck_assert_int_eq(pubsub_subscribe(p.c, PUBSUB_CHANNEL, "ch", 2), 1);
    /* A message waits as a run; a command read before the flush replies after it. */
    ck_assert_int_eq(pubsub_publish(PUBSUB_CHANNEL, "ch", 2, "a", 1, NULL), 1);
    ck_assert_ptr_nonnull(p.c->run);
    peer_write(&p, "*1\r\n$4\r\nPING\r\n", 14);
    peer_read(&p, &b);
    ck_assert_str_eq(b.p, "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\na\r\n"
                          "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    b.len = 0;

    /* A RESP3 subscriber keeps a run too, over the RESP3 copies of the frames. */
    struct peer r = peer_new(0);
    peer_write(&r, "*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n", 22);
    peer_read(&r, &b);
    ck_assert_int_eq(r.c->resp, 3);
    b.len = 0;
    ck_assert_int_eq(pubsub_subscribe(r.c, PUBSUB_CHANNEL, "ch", 2), 1);
    ck_assert_int_eq(pubsub_publish(PUBSUB_CHANNEL, "ch", 2, "b", 1, NULL), 2);
    ck_assert_int_eq(pubsub_publish(PUBSUB_CHANNEL, "ch", 2, "c", 1, NULL), 2);
    ck_assert_ptr_nonnull(r.c->run);
    ck_assert_int_eq(r.c->run[0], '>');
    peer_read(&r, &b);
    ck_assert_str_eq(b.p, ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nb\r\n"
                          ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nc\r\n");
    b.len = 0;
    peer_read(&p, &b); /* the RESP2 subscriber got the same two in its own protocol */
    ck_assert_str_eq(b.p, "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nb\r\n"
                          "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nc\r\n");
    b.len = 0;
    ck_assert_int_eq(pubsub_unsubscribe(r.c, PUBSUB_CHANNEL, "ch", 2), 1);

    /* Many small messages into a small socket buffer: the run is partly sent, the rest waits
     * in out with the write event, later messages queue behind it, and all arrive in order. */
    struct peer q = peer_new(4096);
    ck_assert_int_eq(pubsub_subscribe(q.c, PUBSUB_CHANNEL, "ch", 2), 1);
    for (int i = 0; i < 3000; i++) {
        int n = snprintf(payload, sizeof(payload), "%09d", i);
        pubsub_publish(PUBSUB_CHANNEL, "ch", 2, payload, (size_t)n, NULL);
    }
    ck_assert_uint_gt(q.c->run_len, 0);
    pump();
    ck_assert_ptr_null(q.c->run);
    ck_assert_uint_ne(q.c->flags & CLIENT_F_WRITE_WAIT, 0);
    ck_assert_uint_gt(client_output_len(q.c), 0);
    ck_assert_int_eq(pubsub_publish(PUBSUB_CHANNEL, "ch", 2, "last", 4, NULL), 2);
    ck_assert_ptr_null(q.c->run); /* no run while the socket is full */
    peer_read(&q, &b);
    size_t off = 0;
    for (int i = 0; i <= 3000; i++) {
        int n = i < 3000 ? snprintf(payload, sizeof(payload), "%09d", i)
                         : snprintf(payload, sizeof(payload), "last");
        int wl = snprintf(want, sizeof(want), "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$%d\r\n%s\r\n", n,
                          payload);
        ck_assert_uint_le(off + (size_t)wl, b.len);
        ck_assert_msg(memcmp(b.p + off, want, (size_t)wl) == 0, "message %d differs", i);
        off += (size_t)wl;
    }
    ck_assert_uint_eq(off, b.len);

    /* One run in a fresh segment, larger than the socket takes: sent straight from the log
     * in part, the rest referenced from out until the socket drains. */
    free(b.p);
    publish_small_run();
    ck_assert_uint_eq(q.c->flags & CLIENT_F_RUN_AFTER_OUT, 0);
    ck_assert_uint_gt(q.c->run_len, 16384);
    pump();
    ck_assert_ptr_null(q.c->run);
    ck_assert_uint_ne(q.c->flags & CLIENT_F_WRITE_WAIT, 0);
    expect_small_run_and_stop(&q);
}
END_TEST

START_TEST(a_deep_pipeline_gets_its_first_replies_early)
{
    struct bytes b = {0};
    char req[64 * 14];

    inproc_up(NULL);
    struct peer p = peer_new(0);
    for (int n = 20; n <= 64; n += 44) {
        for (int i = 0; i < n; i++)
            memcpy(req + 14 * i, "*1\r\n$4\r\nPING\r\n", 14);
        long long writes = server.stats.output_writes;
        peer_write(&p, req, (size_t)(14 * n));
        b.len = 0;
        peer_read(&p, &b);
        ck_assert_uint_eq(b.len, 7 * (size_t)n);
        /* 20 replies leave in one send at the end of the pass; 64 in two, sent after the 32nd
         * and the 64th command, with nothing left for the flush. */
        ck_assert_int_eq(server.stats.output_writes - writes, n == 20 ? 1 : 2);
    }
    free(b.p);
    inproc_down();
}
END_TEST

/* While batching is engaged, a subscriber that had a message within the window is held, and
 * the messages that reach it while held are counted as joins: the controller weighs the two to
 * judge whether holding pays (test_server). */
START_TEST(held_subscribers_and_their_joins_are_counted)
{
    struct peer p = up_with_subscriber(1 << 20);
    server.batch_engaged = 1;
    server.batch_window_us = 2000;
    ck_assert_int_eq(pubsub_publish(PUBSUB_CHANNEL, "ch", 2, "a", 1, NULL), 1);
    usleep(3000); /* held or not (a new client), it is out once the window is over */
    expect_reply(&p, "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\na\r\n");
    server.batch_holds = server.batch_joins = 0;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pubsub_publish(PUBSUB_CHANNEL, "ch", 2, "b", 1, NULL), 1);
    ck_assert_uint_ne(p.c->flags & CLIENT_F_BATCHING, 0);
    ck_assert_int_eq(server.batch_holds, 1);
    ck_assert_int_eq(server.batch_joins, 2);
    /* The window ends and the three leave together. */
    usleep(3000);
    expect_reply(&p, "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nb\r\n"
                     "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nb\r\n"
                     "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nb\r\n");
    ck_assert_int_eq(server.batch_holds, 1);
    inproc_down();
}
END_TEST

START_TEST(a_stalled_subscriber_releases_the_log_at_cron)
{
    static char filler[1000];
    struct peer q = up_with_subscriber(4096);

    publish_small_run();
    pump(); /* partly sent; the tail is referenced from out, holding its segment */
    ck_assert_uint_ne(q.c->flags & CLIENT_F_WRITE_WAIT, 0);
    ck_assert_uint_ne(q.c->flags & CLIENT_F_OUT_PINS, 0);
    size_t queued = client_output_len(q.c);

    /* The log moves on (frames made and dropped); the stalled client keeps one segment. */
    for (int i = 0; i < 3 * (MSG_SEG_SIZE / 1000); i++)
        msg_unref(msg_new("message", NULL, 0, "x", 1, filler, sizeof(filler)));
    msg_log_release();
    ck_assert_uint_eq(msg_log_segments(), 1);

    /* Still stalled at the cron tick: the tail becomes a copy and the segment goes. */
    client_cron(q.c);
    ck_assert_uint_eq(q.c->flags & CLIENT_F_OUT_PINS, 0);
    ck_assert_uint_eq(client_output_len(q.c), queued);
    msg_log_release();
    ck_assert_uint_eq(msg_log_segments(), 0);
    expect_small_run_and_stop(&q);
}
END_TEST

START_TEST(the_soft_output_limit_drops_only_after_its_window)
{
    struct bytes b = {0};
    struct peer q = up_with_subscriber(4096);

    server.cfg.pubsub_hard_limit = 0;
    server.cfg.pubsub_soft_limit = 8192;
    server.cfg.pubsub_soft_seconds = 1;
    /* Over the soft limit: marked, not dropped; a drained client loses the mark. */
    publish_small_run();
    ck_assert_uint_ne(q.c->flags & CLIENT_F_OVER_SOFT, 0);
    ck_assert_uint_eq(q.c->flags & CLIENT_F_CLOSE_ASAP, 0);
    peer_read(&q, &b);
    ck_assert_uint_eq(q.c->flags & CLIENT_F_OVER_SOFT, 0);
    free(b.p);

    /* Over it again, and still over it more than the window later: dropped. */
    publish_small_run();
    ck_assert_uint_ne(q.c->flags & CLIENT_F_OVER_SOFT, 0);
    server.now_ms += 500;
    pubsub_publish(PUBSUB_CHANNEL, "ch", 2, "x", 1, NULL);
    ck_assert_uint_eq(q.c->flags & CLIENT_F_CLOSE_ASAP, 0);
    server.now_ms += 1000;
    pubsub_publish(PUBSUB_CHANNEL, "ch", 2, "x", 1, NULL);
    ck_assert_uint_ne(q.c->flags & CLIENT_F_CLOSE_ASAP, 0);
    inproc_down();
}
END_TEST

/* Returns one CLIENT LIST line for c. */
static char *describe(const struct client *c)
{
    struct evbuffer *b = evbuffer_new();
    client_describe(c, b);
    evbuffer_add(b, "", 1);
    char *s = xstrdup((const char *)evbuffer_pullup(b, -1));
    evbuffer_free(b);
    return s;
}

START_TEST(packed_addresses_are_shown_as_text)
{
    char buf[CLIENT_ADDR_LEN], want[64];
    int sv[2];

    inproc_up(NULL);
    /* IPv4 and IPv6 peers as given at accept; a unix client shows its socket's name. */
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(4567)};
    inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    struct client *c4 = client_create(sv[0], 0, (struct sockaddr *)&sin);
    close(sv[1]);
    client_addr(c4, buf, sizeof(buf));
    ck_assert_str_eq(buf, "10.1.2.3:4567");

    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(80)};
    inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    struct client *c6 = client_create(sv[0], 0, (struct sockaddr *)&sin6);
    close(sv[1]);
    client_addr(c6, buf, sizeof(buf));
    ck_assert_str_eq(buf, "2001:db8::1:80");

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    struct client *cu = client_create(sv[0], 1, NULL);
    close(sv[1]);
    client_addr(cu, buf, sizeof(buf));
    ck_assert_str_eq(buf, ":0"); /* a socketpair has no path */

    /* laddr comes from the socket: a real loopback connection. */
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in la = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t ll = sizeof(la);
    ck_assert_int_ge(l, 0);
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    ck_assert_int_eq(bind(l, (struct sockaddr *)&la, sizeof(la)), 0);
    ck_assert_int_eq(listen(l, 1), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&la, &ll), 0);
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(cfd, (struct sockaddr *)&la, sizeof(la)), 0);
    struct sockaddr_in pa;
    socklen_t pl = sizeof(pa);
    int afd = accept(l, (struct sockaddr *)&pa, &pl);
    ck_assert_int_ge(afd, 0);
    struct client *ct = client_create(afd, 0, (struct sockaddr *)&pa);
    client_laddr(ct, buf, sizeof(buf));
    snprintf(want, sizeof(want), "127.0.0.1:%d", ntohs(la.sin_port));
    ck_assert_str_eq(buf, want);
    char *line = describe(ct);
    snprintf(want, sizeof(want), " addr=127.0.0.1:%d laddr=127.0.0.1:%d ", ntohs(pa.sin_port),
             ntohs(la.sin_port));
    ck_assert_msg(strstr(line, want) != NULL, "'%s' lacks '%s'", line, want);
    free(line);
    line = describe(c4);
    ck_assert_msg(strstr(line, " addr=10.1.2.3:4567 laddr=:0 ") != NULL, "'%s'", line);
    free(line);
    close(cfd);
    close(l);
    inproc_down();
}
END_TEST

static Suite *client_suite(void)
{
    Suite *s = suite_create("client");
    TCase *idle = tcase_create("idle");
    TCase *addr = tcase_create("addresses");

    tcase_add_test(idle, idle_client_gives_back_parser_and_output_buffer);
    tcase_add_test(idle, write_event_is_made_when_the_socket_fills_and_freed_once_idle);
    tcase_add_test(idle, runs_keep_order_with_replies_and_survive_a_full_socket);
    tcase_add_test(idle, a_deep_pipeline_gets_its_first_replies_early);
    tcase_add_test(idle, held_subscribers_and_their_joins_are_counted);
    tcase_add_test(idle, one_pass_writes_at_most_the_per_pass_cap);
    tcase_add_test(idle, a_stalled_subscriber_releases_the_log_at_cron);
    tcase_add_test(idle, the_soft_output_limit_drops_only_after_its_window);
    suite_add_tcase(s, idle);
    tcase_add_test(addr, packed_addresses_are_shown_as_text);
    suite_add_tcase(s, addr);
    return s;
}

UNIT_MAIN(client_suite)
