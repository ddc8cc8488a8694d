/* Unit suite for http.c, over real loopback connections with the loop pumped by hand: GET and
 * HEAD (same headers, no body, so a kept-alive connection stays in step), keep-alive rules of
 * HTTP/1.0 and 1.1, LF-only heads, and the refusals that keep every resource bounded: other
 * methods, request bodies, over-long heads, and connections beyond HTTP_MAX_CONNS (kept-alive
 * ones between requests give way, oldest first). */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "unit.h"
#include "util.h"

static struct event_base *base;
static int port;

static void handler(const char *path, struct http_response *r)
{
    if (strcmp(path, "/metrics") == 0) {
        r->status = 200;
        r->content_type = "text/plain";
        evbuffer_add(r->body, "hello", 5);
    }
}

static void setup(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char spec[32];

    /* A free port: bound once by the test, then by the server. */
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    port = ntohs(sa.sin_port);
    close(fd);
    base = event_base_new();
    snprintf(spec, sizeof(spec), "127.0.0.1:%d", port);
    ck_assert_int_eq(http_listen(base, spec, handler), 0);
}

static void teardown(void)
{
    http_stop();
    event_base_free(base);
}

static int connect_peer(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* Pumps the loop and reads what fd gets for up to ms; *closed says whether it saw EOF. */
static size_t pump_read(int fd, char *buf, size_t cap, int ms, int *closed)
{
    size_t n = 0;

    *closed = 0;
    for (int i = 0; i < ms && !*closed; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r > 0)
            n += (size_t)r;
        else if (r == 0)
            *closed = 1;
        else
            poll(NULL, 0, 1);
    }
    buf[n] = '\0';
    return n;
}

/* Pumps the loop until fd has received a body ending in "hello" (a /metrics answer), for at
 * most ms; returns whether it did. */
static int pump_answer(int fd, int ms)
{
    char buf[512];
    size_t n = 0;

    for (int i = 0; i < ms; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
        if (r > 0)
            n += (size_t)r;
        buf[n] = '\0';
        if (n >= 5 && strcmp(buf + n - 5, "hello") == 0)
            return 1;
        if (r <= 0)
            poll(NULL, 0, 1);
    }
    return 0;
}

/* Sends req on a new connection and returns what came back within 300 ms. */
static char *exchange(const char *req, int *closed)
{
    static char buf[65536];
    int fd = connect_peer();

    ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    pump_read(fd, buf, sizeof(buf), 300, closed);
    close(fd);
    return buf;
}

START_TEST(get_answers_with_length_and_keeps_http11_open)
{
    int closed;
    char *r = exchange("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", &closed);

    ck_assert_msg(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0, "got %s", r);
    ck_assert_ptr_nonnull(strstr(r, "\r\nContent-Type: text/plain\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nContent-Length: 5\r\n"));
    ck_assert_msg(strstr(r, "\r\n\r\nhello") != NULL && closed == 0, "got %s", r);
    r = exchange("GET /nope HTTP/1.1\r\n\r\n", &closed);
    ck_assert_msg(strncmp(r, "HTTP/1.1 404 Not Found\r\n", 24) == 0, "got %s", r);
    r = exchange("GET http://h:1/metrics HTTP/1.1\r\n\r\n", &closed); /* absolute form */
    ck_assert_msg(strstr(r, "\r\n\r\nhello") != NULL, "got %s", r);
}
END_TEST

START_TEST(head_has_get_headers_and_no_body)
{
    int closed;
    char *r = exchange("HEAD /metrics HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n", &closed);

    /* The second response starts right where the first one's headers end. */
    char *first_end = strstr(r, "\r\n\r\n");
    ck_assert_ptr_nonnull(first_end);
    ck_assert_ptr_nonnull(strstr(r, "\r\nContent-Length: 5\r\n"));
    ck_assert_msg(strncmp(first_end + 4, "HTTP/1.1 200 OK\r\n", 17) == 0, "got %s", r);
    ck_assert_msg(strcmp(r + strlen(r) - 9, "\r\n\r\nhello") == 0, "got %s", r);
}
END_TEST

START_TEST(http10_closes_unless_keep_alive)
{
    int closed;
    char *r = exchange("GET /metrics HTTP/1.0\n\n", &closed); /* LF-only lines too */

    ck_assert_msg(strncmp(r, "HTTP/1.0 200 OK\r\n", 17) == 0 && closed, "got %s", r);
    ck_assert_ptr_nonnull(strstr(r, "\r\nConnection: close\r\n"));
    r = exchange("GET /metrics HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &closed);
    ck_assert_msg(strstr(r, "\r\nConnection: keep-alive\r\n") != NULL && !closed, "got %s", r);
    r = exchange("GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n", &closed);
    ck_assert_msg(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0 && closed, "got %s", r);
}
END_TEST

START_TEST(refusals_close_the_connection)
{
    static const struct {
        const char *req, *status;
    } cases[] = {
        {"POST /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 405 Method Not Allowed\r\n"},
        {"GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", "HTTP/1.1 413 "},
        {"GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 413 "},
        {"GET /metrics HTTP/2.0\r\n\r\n", "HTTP/1.1 505 "},
        {"\x01\x02 garbage\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int closed;
        char *r = exchange(cases[i].req, &closed);
        ck_assert_msg(strncmp(r, cases[i].status, strlen(cases[i].status)) == 0 && closed,
                      "case %zu got %s", i, r);
    }
    int closed;
    char *r = exchange("POST / HTTP/1.1\r\n\r\n", &closed);
    ck_assert_ptr_nonnull(strstr(r, "\r\nAllow: GET, HEAD\r\n"));
}
END_TEST

/* A refusal closes with data the client is still sending: the answer must arrive and the
 * connection end in an orderly close, not a reset that can discard the answer. */
START_TEST(refusal_with_unread_input_closes_in_order)
{
    static char junk[200000];
    char buf[4096];
    size_t n = 0;
    int fd = connect_peer(), eof = 0, reset = 0;

    memset(junk, 'j', sizeof(junk));
    memcpy(junk, "POST /metrics HTTP/1.1\r\n\r\n", 27);
    size_t sent = 0;
    for (int i = 0; i < 2000 && !eof && !reset; i++) {
        if (sent < sizeof(junk)) {
            ssize_t w = send(fd, junk + sent, sizeof(junk) - sent, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
        }
        event_base_loop(base, EVLOOP_NONBLOCK);
        ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
        if (r > 0)
            n += (size_t)r;
        else if (r == 0)
            eof = 1;
        else if (errno == ECONNRESET)
            reset = 1;
        else
            poll(NULL, 0, 1);
    }
    buf[n] = '\0';
    ck_assert_msg(strncmp(buf, "HTTP/1.1 405 ", 13) == 0, "got %s", buf);
    ck_assert_msg(eof && !reset, "eof %d reset %d", eof, reset);
    close(fd);
}
END_TEST

START_TEST(over_long_head_is_refused_without_waiting_for_its_end)
{
    char *req = xmalloc(HTTP_MAX_HEAD + 64);
    int closed;

    memset(req, 'a', HTTP_MAX_HEAD + 63);
    memcpy(req, "GET /metrics HTTP/1.1\r\nX: ", 26);
    req[HTTP_MAX_HEAD + 63] = '\0';
    char *r = exchange(req, &closed);
    ck_assert_msg(strncmp(r, "HTTP/1.1 431 ", 13) == 0 && closed, "got %.80s", r);
    free(req);
}
END_TEST

START_TEST(connections_beyond_the_cap_get_503)
{
    int fds[HTTP_MAX_CONNS], closed;
    char buf[512];

    for (int i = 0; i < HTTP_MAX_CONNS; i++)
        fds[i] = connect_peer();
    for (int i = 0; i < 50 && http_connections() < HTTP_MAX_CONNS; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        poll(NULL, 0, 1);
    }
    ck_assert_int_eq(http_connections(), HTTP_MAX_CONNS);
    int extra = connect_peer();
    pump_read(extra, buf, sizeof(buf), 300, &closed);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 503 ", 13) == 0 && closed, "got %s", buf);
    close(extra);
    close(fds[0]);
    for (int i = 0; i < 50 && http_connections() == HTTP_MAX_CONNS; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        poll(NULL, 0, 1);
    }
    ck_assert_int_eq(http_connections(), HTTP_MAX_CONNS - 1);
    for (int i = 1; i < HTTP_MAX_CONNS; i++)
        close(fds[i]);
}
END_TEST

START_TEST(kept_alive_connections_give_way_oldest_first)
{
    int fds[HTTP_MAX_CONNS], closed;
    char buf[512];
    static const char get[] = "GET /metrics HTTP/1.1\r\n\r\n";

    for (int i = 0; i < HTTP_MAX_CONNS; i++) { /* each served once, then waiting */
        fds[i] = connect_peer();
        ck_assert_int_eq(write(fds[i], get, sizeof(get) - 1), (ssize_t)sizeof(get) - 1);
        ck_assert_msg(pump_answer(fds[i], 300), "connection %d not answered", i);
    }
    int extra = connect_peer();
    ck_assert_int_eq(write(extra, get, sizeof(get) - 1), (ssize_t)sizeof(get) - 1);
    ck_assert_msg(pump_answer(extra, 300), "the newcomer was not answered");
    pump_read(fds[0], buf, sizeof(buf), 100, &closed);
    ck_assert_msg(closed, "the oldest idle connection is still open");
    pump_read(fds[1], buf, sizeof(buf), 50, &closed);
    ck_assert_msg(!closed, "the second oldest was closed too");
    ck_assert_int_eq(http_connections(), HTTP_MAX_CONNS);
    close(extra);
    for (int i = 0; i < HTTP_MAX_CONNS; i++)
        close(fds[i]);
}
END_TEST

static Suite *http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("http");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, get_answers_with_length_and_keeps_http11_open);
    tcase_add_test(tc, head_has_get_headers_and_no_body);
    tcase_add_test(tc, http10_closes_unless_keep_alive);
    tcase_add_test(tc, refusals_close_the_connection);
    tcase_add_test(tc, over_long_head_is_refused_without_waiting_for_its_end);
    tcase_add_test(tc, refusal_with_unread_input_closes_in_order);
    tcase_add_test(tc, connections_beyond_the_cap_get_503);
    tcase_add_test(tc, kept_alive_connections_give_way_oldest_first);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(http_suite)
