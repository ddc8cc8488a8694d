/* Bad input against a real evbrokerd: a table of malformed requests, each with the exact reply
 * bytes and whether the connection then closes, stays usable or is left waiting; the same
 * table runs against redis-server 7.0.15 so every expectation is Redis's own. A bystander
 * connection must answer PING while each bad input is in flight and after it. Also: a
 * 100,000-character pattern, a 1 GB announced bulk, a million PINGs in one stream, and the
 * stricter limits for unauthenticated clients, with the daemon's RSS read from /proc. */
#include "itest.h"
#include "itest_mem.h"

/* Timeout of one Check test, seconds; the runner bounds the whole binary as well. */
#define TEST_TIMEOUT 120

/* What a connection does after the reply. */
enum after {
    AFTER_OPEN,   /* still serves: PING gets +PONG */
    AFTER_CLOSED, /* the daemon closes it */
    AFTER_HELD,   /* input incomplete: nothing more comes, the connection stays open */
    AFTER_NOAUTH, /* still serves, unauthenticated: PING gets -NOAUTH */
};

/* One malformed input and Redis's answer to it. */
struct bad_case {
    const char *name;
    const char *input;
    size_t input_len;
    const char *want;
    size_t want_len;
    enum after after;
};

#define B(s) s, sizeof(s) - 1
#define PROTO(s) "-ERR Protocol error: " s "\r\n"
#define NOAUTH "-NOAUTH Authentication required.\r\n"
#define UNKNOWN(s) "-ERR unknown command '" s "', with args beginning with: \r\n"

/* Every reply here was checked against redis-server 7.0.15 (the test repeats that check). */
static const struct bad_case bad_cases[] = {
    {"mbulk_count_not_a_number", B("*abc\r\n"), B(PROTO("invalid multibulk length")), AFTER_CLOSED},
    {"mbulk_count_empty", B("*\r\n"), B(PROTO("invalid multibulk length")), AFTER_CLOSED},
    {"mbulk_count_trailing_space", B("*1 \r\n"), B(PROTO("invalid multibulk length")),
     AFTER_CLOSED},
    {"mbulk_count_leading_zero", B("*01\r\n$4\r\nPING\r\n"), B(PROTO("invalid multibulk length")),
     AFTER_CLOSED},
    {"mbulk_count_over_int_max", B("*2147483648\r\n"), B(PROTO("invalid multibulk length")),
     AFTER_CLOSED},
    {"mbulk_count_over_llong_max", B("*9223372036854775808\r\n"),
     B(PROTO("invalid multibulk length")), AFTER_CLOSED},
    {"mbulk_count_int_max_announced", B("*2147483647\r\n$4\r\nECHO\r\n"), B(""), AFTER_HELD},
    {"mbulk_count_negative_is_skipped", B("*-5\r\nPING\r\n"), B("+PONG\r\n"), AFTER_OPEN},
    {"empty_requests_skipped", B("*-1\r\n*0\r\n\r\n\r\n PING\r\n"), B("+PONG\r\n"), AFTER_OPEN},
    {"bulk_len_not_a_number", B("*1\r\n$abc\r\n"), B(PROTO("invalid bulk length")), AFTER_CLOSED},
    {"bulk_len_negative", B("*1\r\n$-1\r\n"), B(PROTO("invalid bulk length")), AFTER_CLOSED},
    {"bulk_len_minus_zero", B("*2\r\n$4\r\nECHO\r\n$-0\r\n"), B(PROTO("invalid bulk length")),
     AFTER_CLOSED},
    {"bulk_len_plus_sign", B("*1\r\n$+4\r\nPING\r\n"), B(PROTO("invalid bulk length")),
     AFTER_CLOSED},
    {"bulk_len_leading_zero", B("*2\r\n$4\r\nECHO\r\n$01\r\nx\r\n"),
     B(PROTO("invalid bulk length")), AFTER_CLOSED},
    {"bulk_len_leading_space", B("*2\r\n$4\r\nECHO\r\n$ 1\r\nx\r\n"),
     B(PROTO("invalid bulk length")), AFTER_CLOSED},
    {"bulk_len_over_512mb", B("*1\r\n$536870913\r\n"), B(PROTO("invalid bulk length")),
     AFTER_CLOSED},
    {"bulk_len_1gb_announced", B("*2\r\n$7\r\nPUBLISH\r\n$1073741824\r\nabc"),
     B(PROTO("invalid bulk length")), AFTER_CLOSED},
    {"bulk_len_llong_max", B("*2\r\n$4\r\nECHO\r\n$9223372036854775807\r\n"),
     B(PROTO("invalid bulk length")), AFTER_CLOSED},
    {"bulk_len_overflow", B("*2\r\n$4\r\nECHO\r\n$99999999999999999999\r\n"),
     B(PROTO("invalid bulk length")), AFTER_CLOSED},
    {"wrong_type_in_multibulk", B("*1\r\n+PING\r\n"), B(PROTO("expected '$', got '+'")),
     AFTER_CLOSED},
    {"inline_word_in_multibulk", B("*1\r\nPING\r\n"), B(PROTO("expected '$', got 'P'")),
     AFTER_CLOSED},
    {"nested_multibulk", B("*1\r\n*1\r\n$4\r\nPING\r\n"), B(PROTO("expected '$', got '*'")),
     AFTER_CLOSED},
    {"garbage_after_command", B("*1\r\n$4\r\nPING\r\n*x\r\n"),
     B("+PONG\r\n" PROTO("invalid multibulk length")), AFTER_CLOSED},
    {"simple_string_type_byte", B("+PING\r\n"), B(UNKNOWN("+PING")), AFTER_OPEN},
    {"integer_type_byte", B(":1\r\n"), B(UNKNOWN(":1")), AFTER_OPEN},
    {"error_type_byte", B("-ERR x\r\n"),
     B("-ERR unknown command '-ERR', with args beginning with: 'x' \r\n"), AFTER_OPEN},
    {"bulk_type_byte_at_top", B("$5\r\nhellx\r\n"), B(UNKNOWN("$5") UNKNOWN("hellx")), AFTER_OPEN},
    {"binary_inline", B("\xff\xfe\x01\r\n"), B(UNKNOWN("\xff\xfe\x01")), AFTER_OPEN},
    {"nul_in_command_name", B("*1\r\n$4\r\nPI\0G\r\n"), B(UNKNOWN("PI")), AFTER_OPEN},
    {"nul_in_argument", B("*2\r\n$4\r\nEcHo\r\n$1\r\n\0\r\n"), B("$1\r\n\0\r\n"), AFTER_OPEN},
    {"nul_in_inline_stalls", B("PING\0\r\n"), B(""), AFTER_HELD},
    {"empty_command_name", B("*1\r\n$0\r\n\r\n"), B(UNKNOWN("")), AFTER_OPEN},
    {"crlf_as_command_name", B("*1\r\n$4\r\n\r\n\r\n\r\n"), B(UNKNOWN("    ")), AFTER_OPEN},
    {"bulk_trailer_not_checked", B("*2\r\n$4\r\nECHO\r\n$3\r\nabcXY*1\r\n$4\r\nPING\r\n"),
     B("$3\r\nabc\r\n+PONG\r\n"), AFTER_OPEN},
    {"bulk_overrun_into_next", B("*1\r\n$4\r\nPINGxx$4\r\n"), B("+PONG\r\n" UNKNOWN("$4")),
     AFTER_OPEN},
    {"lf_only_multibulk_waits", B("*1\n$4\nPING\n"), B(""), AFTER_HELD},
    {"truncated_count", B("*3"), B(""), AFTER_HELD},
    {"truncated_bulk_header", B("*1\r\n$4"), B(""), AFTER_HELD},
    {"truncated_payload", B("*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$10\r\nabc"), B(""), AFTER_HELD},
    {"truncated_trailer", B("*1\r\n$4\r\nPING"), B(""), AFTER_HELD},
    {"million_args_announced", B("*1000000\r\n$4\r\nECHO\r\n$1\r\nx\r\n"), B(""), AFTER_HELD},
    {"unbalanced_quotes", B("ECHO \"abc\r\n"), B(PROTO("unbalanced quotes in request")),
     AFTER_CLOSED},
    {"quote_not_followed_by_space", B("ECHO \"a\"b\r\n"), B(PROTO("unbalanced quotes in request")),
     AFTER_CLOSED},
    {"single_quote_escape", B("ECHO 'a\\'b'\r\n"), B("$3\r\na'b\r\n"), AFTER_OPEN},
    {"short_hex_escape", B("ECHO \"\\x4\"\r\n"), B("$2\r\nx4\r\n"), AFTER_OPEN},
    {"bad_escapes", B("ECHO \"\\xZZ\" \"\\q\"\r\n"),
     B("-ERR wrong number of arguments for 'echo' command\r\n"), AFTER_OPEN},
    {"blank_inline_lines", B("   \r\n\t\r\nPING\r\n"), B("+PONG\r\n"), AFTER_OPEN},
    {"empty_channel_name", B("*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$0\r\n\r\n"),
     B("*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$0\r\n\r\n:2\r\n"),
     AFTER_HELD},
    {"quit_then_more", B("*1\r\n$4\r\nQUIT\r\nPING\r\n"), B("+OK\r\n"), AFTER_CLOSED},
};

/* The same table shape for a server with requirepass "pw". */
static const struct bad_case unauth_cases[] = {
    {"unauth_11_args", B("*11\r\n"), B(PROTO("unauthenticated multibulk length")), AFTER_CLOSED},
    {"unauth_10_args_allowed",
     B("*10\r\n$4\r\nPING\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$"
       "1\r\na\r\n$1\r\na\r\n$1\r\na\r\n"),
     B("-NOAUTH Authentication required.\r\n"), AFTER_NOAUTH},
    {"unauth_bulk_16385", B("*2\r\n$4\r\nAUTH\r\n$16385\r\n"),
     B(PROTO("unauthenticated bulk length")), AFTER_CLOSED},
    {"unauth_bulk_over_512mb", B("*2\r\n$4\r\nAUTH\r\n$536870913\r\n"),
     B(PROTO("invalid bulk length")), AFTER_CLOSED},
    {"unauth_inline_many_args", B("PING a a a a a a a a a a a a a a a a a a a a\r\n"),
     B("-NOAUTH Authentication required.\r\n"), AFTER_NOAUTH},
    {"unauth_subscribe_refused", B("*2\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n"),
     B("-NOAUTH Authentication required.\r\n"), AFTER_NOAUTH},
    {"auth_lifts_limits",
     B("*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*11\r\n$4\r\nPING\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1"
       "\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n"),
     B("+OK\r\n-ERR wrong number of arguments for 'ping' command\r\n"), AFTER_OPEN},
};

static struct itest_server srv;

/* Connects to the test's server, failing the test if it cannot. */
static int conn(int port)
{
    int fd = itest_connect(port);
    ck_assert_msg(fd >= 0, "connect to port %d: %s", port, strerror(errno));
    return fd;
}

/* Connects a bystander, authenticated when the server has requirepass "pw". */
static int bystander_conn(int port, int with_password)
{
    char got[64];
    int fd = conn(port);
    if (with_password) {
        ck_assert_int_eq(itest_send(fd, "AUTH pw\r\n"), 0);
        ck_assert_msg(itest_expect(fd, "+OK\r\n", 5, got, sizeof(got)) == 0, "AUTH: '%s'", got);
    }
    return fd;
}

/* Sends PING on fd and requires +PONG. */
static void ping_ok(int fd, const char *when)
{
    char got[128];
    ck_assert_msg(itest_send(fd, "PING\r\n") == 0, "bystander: send failed %s", when);
    ck_assert_msg(itest_expect(fd, "+PONG\r\n", 7, got, sizeof(got)) == 0,
                  "bystander: no PONG %s: got '%s'", when, got);
}

/* Requires that nothing arrives on fd for ms milliseconds and that it is not closed. */
static int quiet_for(int fd, int ms)
{
    char buf[64];
    return itest_read_some(fd, buf, sizeof(buf), ms) == -2;
}

/* Runs one table against a server on port; a bystander on the same server pings during and
 * after every case. Returns the number of failing rows, describing the first in why. */
static int run_table(int port, int with_password, const struct bad_case *cases, size_t n,
                     const char *label, char *why, size_t whylen)
{
    int bystander = bystander_conn(port, with_password), failures = 0;

    for (size_t i = 0; i < n; i++) {
        const struct bad_case *bc = &cases[i];
        char got[512] = "", problem[700] = "";
        int fd = conn(port);

        ck_assert_int_eq(itest_write_all(fd, bc->input, bc->input_len), 0);
        ping_ok(bystander, bc->name); /* while the bad input is being handled */
        if (bc->want_len && itest_expect(fd, bc->want, bc->want_len, got, sizeof(got)) < 0)
            snprintf(problem, sizeof(problem), "reply '%s'", got);
        else if (bc->after == AFTER_CLOSED && !itest_wait_closed(fd, 3000))
            snprintf(problem, sizeof(problem), "connection not closed");
        else if (bc->after == AFTER_HELD && !quiet_for(fd, 150))
            snprintf(problem, sizeof(problem), "unexpected bytes or close");
        else if (bc->after == AFTER_OPEN || bc->after == AFTER_NOAUTH) {
            const char *next = bc->after == AFTER_OPEN ? "+PONG\r\n" : NOAUTH;
            if (itest_send(fd, "PING\r\n") < 0 ||
                itest_expect(fd, next, strlen(next), got, sizeof(got)) < 0)
                snprintf(problem, sizeof(problem), "not usable after: '%s'", got);
        }
        close(fd);
        if (problem[0]) {
            if (failures++ == 0)
                snprintf(why, whylen, "%s: %s: %s", label, bc->name, problem);
            fprintf(stderr, "%s: %s: %s\n", label, bc->name, problem);
        }
        ping_ok(bystander, bc->name); /* and after */
    }
    close(bystander);
    return failures;
}

/* Starts evbrokerd with extra config, failing the test if it cannot. */
static void start(const char *extra)
{
    ck_assert_msg(itest_evb_start(&srv, 0, extra) == 0, "evbrokerd did not start");
}

/* Stops the daemon and requires a clean exit (sanitizer reports make it unclean). */
static void stop(void)
{
    ck_assert_msg(itest_stop(&srv) == 0, "evbrokerd did not exit cleanly (see its log above)");
}

/* Runs a table against redis-server (with extra arguments) and then against evbrokerd. */
static void table_both(const struct bad_case *cases, size_t n, const char *const *redis_args,
                       const char *evb_extra)
{
    struct itest_server redis;
    char why[1024] = "";
    int bad;

    if (itest_redis_start(&redis, redis_args) == 0) {
        bad = run_table(redis.port, evb_extra != NULL, cases, n, "redis-server", why, sizeof(why));
        itest_stop(&redis);
        ck_assert_msg(bad == 0, "%d rows differ from Redis 7.0.15 itself; first %s", bad, why);
    } else {
        fprintf(stderr, "badinput: redis-server did not start; expectations not re-checked\n");
    }
    start(evb_extra);
    bad = run_table(srv.port, evb_extra != NULL, cases, n, "evbrokerd", why, sizeof(why));
    ck_assert_msg(itest_alive(&srv), "evbrokerd died during the table");
    stop();
    ck_assert_msg(bad == 0, "%d rows failed; first %s", bad, why);
}

START_TEST(malformed_inputs_table_matches_redis)
{
    table_both(bad_cases, sizeof(bad_cases) / sizeof(bad_cases[0]), NULL, NULL);
}
END_TEST

START_TEST(unauthenticated_limits_match_redis)
{
    static const char *const redis_args[] = {"--requirepass", "pw", NULL};
    table_both(unauth_cases, sizeof(unauth_cases) / sizeof(unauth_cases[0]), redis_args,
               "[security]\nrequirepass = pw\n");
}
END_TEST

/* Appends a RESP bulk string to buf at *off. */
static void put_bulk(char *buf, size_t *off, const char *s, size_t len)
{
    *off += (size_t)sprintf(buf + *off, "$%zu\r\n", len);
    memcpy(buf + *off, s, len);
    *off += len;
    memcpy(buf + *off, "\r\n", 2);
    *off += 2;
}

/* Sends a multibulk command of argc arguments (with lengths) on fd. */
static void send_cmd(int fd, int argc, const char *const *argv, const size_t *lens)
{
    size_t total = 32, off = 0;
    for (int i = 0; i < argc; i++)
        total += lens[i] + 32;
    char *buf = malloc(total);
    off += (size_t)sprintf(buf, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++)
        put_bulk(buf, &off, argv[i], lens[i]);
    ck_assert_int_eq(itest_write_all(fd, buf, off), 0);
    free(buf);
}

START_TEST(star_question_pattern_100k_answers_fast)
{
    size_t plen = 100000, clen = 100000;
    char *pat = malloc(plen), *ch = malloc(clen);
    char head[64], got[256];

    for (size_t i = 0; i < plen; i += 2)
        memcpy(pat + i, "*?", 2);
    memset(ch, 'a', clen);
    start(NULL);
    int sub = conn(srv.port), pub = conn(srv.port), bystander = conn(srv.port);
    send_cmd(sub, 2, (const char *const[]){"PSUBSCRIBE", pat}, (const size_t[]){10, plen});
    int hl = snprintf(head, sizeof(head), "*3\r\n$10\r\npsubscribe\r\n$%zu\r\n", plen);
    ck_assert_int_eq(itest_expect(sub, head, (size_t)hl, got, sizeof(got)), 0);
    ck_assert_int_eq(itest_expect(sub, pat, plen, NULL, 0), 0);
    ck_assert_int_eq(itest_expect(sub, "\r\n:1\r\n", 6, got, sizeof(got)), 0);
    long long t0 = itest_now_ms();
    send_cmd(pub, 3, (const char *const[]){"PUBLISH", ch, "m"}, (const size_t[]){7, clen, 1});
    ping_ok(bystander, "during the long match");
    ck_assert_msg(itest_expect(pub, ":0\r\n", 4, got, sizeof(got)) == 0, "PUBLISH gave '%s'", got);
    long long ms = itest_now_ms() - t0;
    fprintf(stderr,
            "badinput: PUBLISH to a 100,000-byte channel against a 100,000-char *? "
            "pattern answered in %lld ms\n",
            ms);
    ck_assert_msg(ms < 2000, "PUBLISH took %lld ms", ms);
    /* A pattern just under the 1,000-star limit, which the matcher must still bound. */
    memset(pat, 0, plen);
    size_t p2 = 0;
    for (int i = 0; i < 999; i++)
        pat[p2++] = '*';
    pat[p2++] = 'b';
    send_cmd(sub, 2, (const char *const[]){"PSUBSCRIBE", pat}, (const size_t[]){10, p2});
    hl = snprintf(head, sizeof(head), "*3\r\n$10\r\npsubscribe\r\n$%zu\r\n", p2);
    ck_assert_int_eq(itest_expect(sub, head, (size_t)hl, got, sizeof(got)), 0);
    ck_assert_int_eq(itest_expect(sub, pat, p2, NULL, 0), 0);
    ck_assert_int_eq(itest_expect(sub, "\r\n:2\r\n", 6, got, sizeof(got)), 0);
    t0 = itest_now_ms();
    send_cmd(pub, 3, (const char *const[]){"PUBLISH", ch, "m"}, (const size_t[]){7, clen, 1});
    ck_assert_msg(itest_expect(pub, ":0\r\n", 4, got, sizeof(got)) == 0, "PUBLISH gave '%s'", got);
    ms = itest_now_ms() - t0;
    fprintf(stderr, "badinput: same with 999 stars then 'b': %lld ms\n", ms);
    ck_assert_msg(ms < 2000, "PUBLISH took %lld ms", ms);
    ping_ok(bystander, "after");
    close(sub);
    close(pub);
    close(bystander);
    free(pat);
    free(ch);
    stop();
}
END_TEST

START_TEST(announced_1gb_bulk_stays_small)
{
    static const char req[] = "*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$1073741824\r\nabc";
    /* Raise the bulk limit so the 1 GB length is accepted and only bytes count. */
    start("[limits]\nproto_max_bulk_len = 2gb\n");
    int bystander = conn(srv.port);
    ping_ok(bystander, "before");
    long before = itest_rss_kib(srv.pid);
    int fds[8];
    for (int i = 0; i < 8; i++) {
        fds[i] = conn(srv.port);
        ck_assert_int_eq(itest_write_all(fds[i], req, sizeof(req) - 1), 0);
    }
    ping_ok(bystander, "while 8 clients announced 1 GB each");
    itest_sleep_ms(200);
    long during = itest_rss_kib(srv.pid);
    for (int i = 0; i < 8; i++) {
        ck_assert_msg(quiet_for(fds[i], 50), "client %d got a reply or was closed", i);
        close(fds[i]);
    }
    itest_sleep_ms(100);
    ping_ok(bystander, "after the 1 GB announcers closed");
    long after = itest_rss_kib(srv.pid);
    fprintf(stderr, "badinput: 8 x 1 GB announced: RSS %ld KiB before, %ld during, %ld after\n",
            before, during, after);
    ck_assert_msg(during - before < 8 * 1024, "RSS grew by %ld KiB", during - before);
    close(bystander);
    stop();
}
END_TEST

START_TEST(million_pings_in_one_stream)
{
    const long count = 1000000;
    const size_t req_len = 6 * (size_t)count, rep_len = 7 * (size_t)count;
    char *req = malloc(req_len), *rep = malloc(65536);
    size_t sent = 0, got = 0;
    long peak = 0, base;
    int bad = 0, pings = 0;

    for (long i = 0; i < count; i++)
        memcpy(req + 6 * i, "PING\r\n", 6);
    start(NULL);
    int fd = conn(srv.port), bystander = conn(srv.port);
    base = itest_rss_kib(srv.pid);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    long long t0 = itest_now_ms(), last_ping = t0;
    while (got < rep_len && itest_now_ms() - t0 < 90000) {
        struct pollfd pfd = {fd, POLLIN | (sent < req_len ? POLLOUT : 0), 0};
        poll(&pfd, 1, 100);
        if (sent < req_len && (pfd.revents & POLLOUT)) {
            ssize_t n = send(fd, req + sent, req_len - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(fd, rep, 65536, 0);
            ck_assert_msg(n > 0, "connection closed after %zu reply bytes", got);
            for (ssize_t i = 0; i < n && !bad; i++)
                bad = rep[i] != "+PONG\r\n"[(got + (size_t)i) % 7];
            ck_assert_msg(!bad, "reply bytes out of order near byte %zu", got);
            got += (size_t)n;
        }
        long r = itest_rss_kib(srv.pid);
        peak = r > peak ? r : peak;
        if (itest_now_ms() - last_ping > 20) {
            ping_ok(bystander, "during the million PINGs");
            pings++;
            last_ping = itest_now_ms();
        }
    }
    long long ms = itest_now_ms() - t0;
    ck_assert_msg(got == rep_len, "got %zu of %zu reply bytes in %lld ms", got, rep_len, ms);
    ping_ok(bystander, "after");
    long end = itest_rss_kib(srv.pid);
    peak = end > peak ? end : peak;
    fprintf(stderr,
            "badinput: 1,000,000 PINGs in %lld ms (bystander answered %d PINGs meanwhile); RSS "
            "base %ld KiB, peak %ld, end %ld\n",
            ms, pings, base, peak, end);
    ck_assert_msg(peak - base < 32 * 1024, "RSS grew by %ld KiB", peak - base);
    close(fd);
    close(bystander);
    free(req);
    free(rep);
    stop();
}
END_TEST

START_TEST(unauthenticated_flood_output_bounded)
{
    char chunk[60000];
    size_t sent = 0;

    for (size_t i = 0; i < sizeof(chunk); i += 6)
        memcpy(chunk + i, "PING\r\n", 6);
    start("[security]\nrequirepass = pw\n");
    int fd = conn(srv.port), bystander = bystander_conn(srv.port, 1);
    long base = itest_rss_kib(srv.pid), peak = base;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    /* Never read: NOAUTH replies pile up until the daemon stops reading this client. */
    long long t0 = itest_now_ms();
    while (itest_now_ms() - t0 < 2000) {
        ssize_t n = send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL);
        if (n > 0)
            sent += (size_t)n;
        else
            itest_sleep_ms(20);
        long r = itest_rss_kib(srv.pid);
        peak = r > peak ? r : peak;
    }
    ping_ok(bystander, "while an unauthenticated client floods without reading");
    fprintf(stderr, "badinput: unauthenticated flood: %zu bytes taken, RSS base %ld KiB peak %ld\n",
            sent, base, peak);
    ck_assert_msg(peak - base < 16 * 1024, "RSS grew by %ld KiB", peak - base);
    close(fd);
    close(bystander);
    stop();
}
END_TEST

/* An authenticated client that never reads is read on (it may be writing a whole pipeline
 * first), but its unread replies are bounded by client_query_buffer_limit: then it is closed,
 * and the daemon's memory stays near that bound. */
START_TEST(never_reading_client_closed_at_reply_bound)
{
    static const char head[] = "*2\r\n$4\r\nECHO\r\n$1000\r\n";
    const size_t one = sizeof(head) - 1 + 1002; /* an ECHO of 1000 bytes */
    char chunk[64 * 1024];
    size_t clen = 0, sent = 0;
    int closed = 0;

    while (clen + one <= sizeof(chunk)) {
        memcpy(chunk + clen, head, sizeof(head) - 1);
        memset(chunk + clen + sizeof(head) - 1, 'e', 1000);
        memcpy(chunk + clen + one - 2, "\r\n", 2);
        clen += one;
    }
    start("[limits]\nclient_query_buffer_limit = 8mb\n");
    int fd = conn(srv.port), bystander = bystander_conn(srv.port, 0);
    long base = itest_rss_kib(srv.pid), peak = base;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    long long t0 = itest_now_ms();
    while (itest_now_ms() - t0 < 4000 && !closed) {
        ssize_t n = send(fd, chunk + sent % clen, clen - sent % clen, MSG_NOSIGNAL);
        if (n > 0)
            sent += (size_t)n; /* a partial send goes on where it stopped */
        else if (errno == EAGAIN)
            itest_sleep_ms(5);
        else
            closed = 1;
        long r = itest_rss_kib(srv.pid);
        peak = r > peak ? r : peak;
    }
    ping_ok(bystander, "while a client floods without reading");
    fprintf(stderr, "badinput: never-reading client: %zu bytes taken, RSS base %ld KiB peak %ld\n",
            sent, base, peak);
    ck_assert_msg(closed, "still connected after %zu bytes of requests", sent);
    ck_assert_msg(peak - base < 48 * 1024, "RSS grew by %ld KiB", peak - base);
    close(fd);
    close(bystander);
    stop();
}
END_TEST

/* Builds the suite: one TCase per test so each is reported by name. */
static Suite *badinput_suite(void)
{
    Suite *s = suite_create("badinput");
    const struct {
        const char *name;
        const TTest *test;
    } tests[] = {
        {"malformed_inputs_table_matches_redis", malformed_inputs_table_matches_redis},
        {"unauthenticated_limits_match_redis", unauthenticated_limits_match_redis},
        {"star_question_pattern_100k_answers_fast", star_question_pattern_100k_answers_fast},
        {"announced_1gb_bulk_stays_small", announced_1gb_bulk_stays_small},
        {"million_pings_in_one_stream", million_pings_in_one_stream},
        {"unauthenticated_flood_output_bounded", unauthenticated_flood_output_bounded},
        {"never_reading_client_closed_at_reply_bound", never_reading_client_closed_at_reply_bound},
    };
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        TCase *tc = tcase_create(tests[i].name);
        tcase_set_timeout(tc, TEST_TIMEOUT);
        tcase_add_test(tc, tests[i].test);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    itest_san_small_quarantine();
    return itest_run_suite(badinput_suite(), "badinput");
}
