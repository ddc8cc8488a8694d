/* A slow consumer against a real evbrokerd with pubsub_output_limit = 32mb 8mb 60: one
 * subscriber (tiny SO_RCVBUF) stops reading while ~1 GB of 64 KiB messages is published
 * pipelined. The daemon's RSS, sampled throughout, must stay under the hard limit plus a
 * small overhead; the slow subscriber is dropped once (INFO counter, one log line, EOF); a fast
 * subscriber gets every message, in order. SLOWCONSUMER_MB sets the volume (default 1024, also
 * under ASan, where it takes about 2 s; there the RSS bound allows ASan's own overhead). */
#include "itest.h"
#include "itest_mem.h"

/* Timeout of the Check test, seconds; the runner bounds the whole binary as well. */
#define TEST_TIMEOUT 140
#define PAYLOAD (64 * 1024)
/* Publishes sent but not yet received by the fast subscriber, at most. */
#define WINDOW 64
#define HARD_LIMIT_KIB (32 * 1024)
/* Allowed above the baseline besides the hard limit: the fast subscriber's window of shared
 * frames, a publish being parsed, allocator slack. */
#define OVERHEAD_KIB (24 * 1024)
/* The same under ASan: redzones, its allocator's own caches and a 4 MB quarantine. */
#define SAN_OVERHEAD_KIB (48 * 1024)

static struct itest_server srv;

/* Progress of the fast subscriber's stream of fixed-size message frames. */
struct reader {
    char *frame; /* the expected frame of the current message, payload rewritten per message */
    size_t frame_len, head_len;
    char *buf; /* bytes of the current frame so far */
    size_t have;
    long next; /* sequence number expected next */
};

/* Writes message i's payload: its number then a filler derived from it. */
static void fill_payload(char *p, long i)
{
    memset(p, 'a' + (int)(i % 26), PAYLOAD);
    snprintf(p, 24, "%020ld", i);
    p[20] = ':';
}

/* Builds the frame a RESP2 subscriber of "ch" gets for a 64 KiB payload. */
static void reader_init(struct reader *r)
{
    char head[64];
    int n = snprintf(head, sizeof(head), "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$%d\r\n", PAYLOAD);
    r->head_len = (size_t)n;
    r->frame_len = r->head_len + PAYLOAD + 2;
    r->frame = malloc(r->frame_len);
    r->buf = malloc(r->frame_len);
    memcpy(r->frame, head, r->head_len);
    memcpy(r->frame + r->head_len + PAYLOAD, "\r\n", 2);
    r->have = 0;
    r->next = 0;
}

/* Takes len bytes of the stream, checking each completed frame against the expected one. */
static void reader_take(struct reader *r, const char *p, size_t len)
{
    while (len > 0) {
        size_t n = r->frame_len - r->have;
        n = n < len ? n : len;
        memcpy(r->buf + r->have, p, n);
        r->have += n;
        p += n;
        len -= n;
        if (r->have < r->frame_len)
            continue;
        fill_payload(r->frame + r->head_len, r->next);
        ck_assert_msg(memcmp(r->buf, r->frame, r->frame_len) == 0,
                      "fast subscriber: message %ld is wrong or out of order (got '%.40s')",
                      r->next, r->buf + r->head_len);
        r->next++;
        r->have = 0;
    }
}

/* Connects with a small receive buffer (set before connect, so the window stays small). */
static int connect_small_rcvbuf(int port)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), sz = 4096;
    struct timeval tv = {ITEST_TIMEOUT_MS / 1000, 0};

    ck_assert_int_ge(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0, "connect: %s",
                  strerror(errno));
    return fd;
}

/* Subscribes fd to "ch" and reads the confirmation. */
static void subscribe_ch(int fd)
{
    static const char conf[] = "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n";
    char got[128];
    ck_assert_int_eq(itest_send(fd, "SUBSCRIBE ch\r\n"), 0);
    ck_assert_msg(itest_expect(fd, conf, sizeof(conf) - 1, got, sizeof(got)) == 0,
                  "subscribe: '%s'", got);
}

/* Counts the lines of a log file that contain needle. */
static int log_count(const char *path, const char *needle)
{
    char line[1024];
    int n = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

START_TEST(slow_subscriber_dropped_memory_bounded_fast_one_complete)
{
    const char *env = getenv("SLOWCONSUMER_MB");
    long mb = env ? atol(env) : 1024;
    long total = mb * 1024 * 1024 / PAYLOAD, sent = 0, replies = 0, twos = 0;
    char cmd_head[64], rbuf[65536], *cmd;
    struct reader rd;
    size_t cmd_len, cmd_off = 0;
    int have_cmd = 0;

    ck_assert_msg(itest_evb_start(&srv, 0, "[limits]\npubsub_output_limit = 32mb 8mb 60\n") == 0,
                  "evbrokerd did not start");
    int slow = connect_small_rcvbuf(srv.port), fast = itest_connect(srv.port);
    int pub = itest_connect(srv.port);
    subscribe_ch(slow);
    subscribe_ch(fast);
    long base = itest_rss_kib(srv.pid), peak = base;
    long bound = HARD_LIMIT_KIB + (itest_is_san() ? SAN_OVERHEAD_KIB : OVERHEAD_KIB);
    reader_init(&rd);
    int hl =
        snprintf(cmd_head, sizeof(cmd_head), "*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$%d\r\n", PAYLOAD);
    cmd_len = (size_t)hl + PAYLOAD + 2;
    cmd = malloc(cmd_len);
    memcpy(cmd, cmd_head, (size_t)hl);
    memcpy(cmd + cmd_len - 2, "\r\n", 2);
    fcntl(pub, F_SETFL, fcntl(pub, F_GETFL) | O_NONBLOCK);
    fcntl(fast, F_SETFL, fcntl(fast, F_GETFL) | O_NONBLOCK);

    long long t0 = itest_now_ms(), last_sample = 0, last_progress = t0;
    char rep_part[8];
    size_t rep_have = 0;
    while ((rd.next < total || replies < total) && itest_now_ms() - last_progress < 20000) {
        if (!have_cmd && sent < total && sent - rd.next < WINDOW) {
            fill_payload(cmd + hl, sent);
            cmd_off = 0;
            have_cmd = 1;
        }
        struct pollfd pfd[2] = {{pub, POLLIN | (have_cmd ? POLLOUT : 0), 0}, {fast, POLLIN, 0}};
        poll(pfd, 2, 100);
        if (have_cmd && (pfd[0].revents & POLLOUT)) {
            ssize_t n = send(pub, cmd + cmd_off, cmd_len - cmd_off, MSG_NOSIGNAL);
            if (n > 0 && (cmd_off += (size_t)n) == cmd_len) {
                have_cmd = 0;
                sent++;
            }
        }
        if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(pub, rbuf, sizeof(rbuf), 0);
            ck_assert_msg(n > 0, "publisher connection closed after %ld replies", replies);
            for (ssize_t i = 0; i < n; i++) { /* ":2\r\n" while both listen, then ":1\r\n" */
                rep_part[rep_have++] = rbuf[i];
                if (rep_have < 4)
                    continue;
                ck_assert_msg(rep_part[0] == ':' && (rep_part[1] == '1' || rep_part[1] == '2') &&
                                  rep_part[2] == '\r' && rep_part[3] == '\n',
                              "publish reply %ld: '%.4s'", replies, rep_part);
                ck_assert_msg(rep_part[1] == '1' || replies == twos,
                              "reply %ld counts 2 receivers after a 1", replies);
                twos += rep_part[1] == '2';
                replies++;
                rep_have = 0;
            }
            last_progress = itest_now_ms();
        }
        if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(fast, rbuf, sizeof(rbuf), 0);
            ck_assert_msg(n > 0, "the fast subscriber was disconnected at message %ld", rd.next);
            reader_take(&rd, rbuf, (size_t)n);
            last_progress = itest_now_ms();
        }
        if (itest_now_ms() - last_sample >= 5) {
            long r = itest_rss_kib(srv.pid);
            peak = r > peak ? r : peak;
            last_sample = itest_now_ms();
        }
    }
    long long ms = itest_now_ms() - t0;
    ck_assert_msg(rd.next == total && replies == total,
                  "stalled: fast subscriber got %ld of %ld messages, %ld publish replies", rd.next,
                  total, replies);

    /* The slow subscriber: what its socket held, then EOF or reset. */
    size_t slow_bytes = 0;
    int closed = 0;
    for (long long t1 = itest_now_ms(); itest_now_ms() - t1 < 10000;) {
        ssize_t n = itest_read_some(slow, rbuf, sizeof(rbuf), 2000);
        if (n <= 0) {
            closed = n == 0;
            break;
        }
        slow_bytes += (size_t)n;
    }
    long long drops =
        itest_info_field(srv.port, "stats", "client_output_buffer_limit_disconnections");
    long end = itest_rss_kib(srv.pid);
    fprintf(stderr,
            "slowconsumer: %ld MiB in %ld messages of 64 KiB in %lld ms (%.0f MiB/s); the slow "
            "subscriber received %zu bytes (%ld publishes counted it) then was %s; daemon RSS "
            "base %ld KiB, peak %ld KiB (+%ld), end %ld KiB; bound base + %ld KiB\n",
            mb, total, ms, ms ? (double)mb * 1000 / (double)ms : 0.0, slow_bytes, twos,
            closed ? "closed" : "NOT closed", base, peak, peak - base, end, bound);
    ck_assert_msg(closed, "the slow subscriber was not disconnected");
    ck_assert_msg(drops == 1, "client_output_buffer_limit_disconnections is %lld, want 1", drops);
    ck_assert_msg(twos > 0 && twos < total, "publishes counting the slow subscriber: %ld", twos);
    ck_assert_msg(peak - base < bound, "RSS grew by %ld KiB", peak - base);
    close(slow);
    close(fast);
    close(pub);
    free(cmd);
    free(rd.frame);
    free(rd.buf);
    char logpath[sizeof(srv.log)];
    memcpy(logpath, srv.log, sizeof(logpath));
    int lines = log_count(logpath, "overcoming of output buffer limits");
    ck_assert_msg(lines == 1, "%d log lines about the output limit, want 1", lines);
    ck_assert_msg(itest_stop(&srv) == 0, "evbrokerd did not exit cleanly (see its log above)");
}
END_TEST

int main(void)
{
    itest_san_small_quarantine();
    Suite *s = suite_create("slowconsumer");
    TCase *tc = tcase_create("slow_subscriber_dropped_memory_bounded_fast_one_complete");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, slow_subscriber_dropped_memory_bounded_fast_one_complete);
    suite_add_tcase(s, tc);
    return itest_run_suite(s, "slowconsumer");
}
