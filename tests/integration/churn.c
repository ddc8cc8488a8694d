/* Connection churn against a real evbrokerd: 10,000 connect / subscribe (channels, patterns,
 * shard channels) / disconnect cycles from 8 parallel worker processes, closing in four ways
 * (orderly, reset, before reading, mid-command), while a publisher fans out to the channels
 * and patterns being torn down; each worker keeps its last 100 connections open, so about 800
 * subscribers are live at a time. This runs twice. Afterwards PUBSUB counts are zero, only the
 * publisher remains, the daemon's RSS is near its baseline and the second round added nothing
 * (checked on the normal build; under ASan it is only reported, its allocator keeps freed memory).
 * CHURN_CYCLES scales it. */
#include "itest.h"
#include "itest_mem.h"

/* Timeout of the Check test, seconds; the runner bounds the whole binary as well. */
#define TEST_TIMEOUT 140
#define WORKERS 8
/* Connections each worker keeps open at once (oldest closed first): 800 subscribers live. */
#define HOLD 100
/* How far above the baseline the final RSS may stay (allocator caches, dict tables). */
#define RETURN_SLACK_KIB (8 * 1024)
/* How much a second, identical round may add: its memory must be the first round's, reused. */
#define ROUND_GROWTH_KIB 1024

static struct itest_server srv;

/* Bytes read from one connection, grown as needed. */
struct inbuf {
    char *p;
    size_t len, cap;
};

/* Reads from fd into b until needle is in it; returns 0, or -1 on EOF, error or timeout. */
static int read_until(int fd, struct inbuf *b, const char *needle)
{
    long long deadline = itest_now_ms() + ITEST_TIMEOUT_MS;
    while (memmem(b->p ? b->p : "", b->len, needle, strlen(needle)) == NULL) {
        if (b->cap - b->len < 4096) {
            b->cap = b->cap * 2 + 4096;
            b->p = realloc(b->p, b->cap);
        }
        long long left = deadline - itest_now_ms();
        ssize_t n = itest_read_some(fd, b->p + b->len, b->cap - b->len, left > 0 ? (int)left : 0);
        if (n <= 0)
            return -1;
        b->len += (size_t)n;
    }
    return 0;
}

/* One worker's cycles; returns 0 when every cycle behaved, else 1 after saying why. */
static int worker(int w, long cycles)
{
    static const char pong[] = "*2\r\n$4\r\npong\r\n$0\r\n\r\n";
    char req[512], want[128];
    struct inbuf b = {0};
    int held[HOLD];

    for (long i = 0; i < cycles; i++) {
        if (i >= HOLD)
            close(held[i % HOLD]);
        int fd = itest_connect(srv.port);
        if (fd < 0) {
            fprintf(stderr, "churn: worker %d cycle %ld: connect: %s\n", w, i, strerror(errno));
            return 1;
        }
        int n = snprintf(req, sizeof(req),
                         "SUBSCRIBE c:%d:%ld shared\r\nPSUBSCRIBE p:%d:%ld:* p:*\r\n"
                         "SSUBSCRIBE s:%d:%ld\r\nPING\r\n",
                         w, i, w, i, w, i);
        if (itest_write_all(fd, req, (size_t)n) < 0) {
            fprintf(stderr, "churn: worker %d cycle %ld: write failed\n", w, i);
            return 1;
        }
        switch (i % 4) {
        case 0: /* orderly: every confirmation, then close */
        case 1: /* the same, then a reset instead of a FIN */
            b.len = 0;
            snprintf(want, sizeof(want), "*3\r\n$10\r\npsubscribe\r\n$3\r\np:*\r\n:4\r\n");
            if (read_until(fd, &b, pong) < 0 || memmem(b.p, b.len, want, strlen(want)) == NULL) {
                fprintf(stderr, "churn: worker %d cycle %ld: confirmations missing\n", w, i);
                return 1;
            }
            if (i % 4 == 1) {
                struct linger lg = {1, 0};
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            }
            break;
        case 2: /* gone before reading anything */
            break;
        default: /* gone in the middle of a command */
            itest_send(fd, "*3\r\n$7\r\nPUBLISH\r\n$6\r\nshared\r\n$100\r\nabc");
            break;
        }
        held[i % HOLD] = fd;
    }
    for (long i = cycles > HOLD ? cycles - HOLD : 0; i < cycles; i++)
        close(held[i % HOLD]);
    free(b.p);
    return 0;
}

/* Sends one command line and reads the reply up to and including want; 0 when it matches. */
static int ask(int fd, const char *cmd, const char *want)
{
    struct inbuf b = {0};
    int rc = itest_send(fd, cmd) == 0 ? read_until(fd, &b, want) : -1;
    if (rc == 0 && (b.len != strlen(want) || memcmp(b.p, want, b.len) != 0))
        rc = -1;
    if (rc < 0)
        fprintf(stderr, "churn: '%.*s' got '%.*s', want '%s'\n", (int)strcspn(cmd, "\r"), cmd,
                (int)b.len, b.p ? b.p : "", want);
    free(b.p);
    return rc;
}

/* One round: WORKERS processes of per cycles each while the publisher publishes into the
 * churn; raises *peak with RSS samples. Returns the round's duration in ms. */
static long long churn_round(int pub, long per, long *published, long *peak)
{
    pid_t kids[WORKERS];
    int failed = 0, done = 0;
    long long t0 = itest_now_ms();

    for (int w = 0; w < WORKERS; w++) {
        kids[w] = fork();
        ck_assert_int_ge(kids[w], 0);
        if (kids[w] == 0)
            _exit(worker(w, per));
    }
    /* Publish into the churn (to channels and patterns coming and going) and sample RSS. */
    while (done < WORKERS && itest_now_ms() - t0 < 60000) {
        char cmd[128], rep[64];
        snprintf(cmd, sizeof(cmd), "PUBLISH %s m%ld\r\n", *published % 2 ? "shared" : "p:x",
                 *published);
        ck_assert_int_eq(itest_send(pub, cmd), 0);
        ssize_t n = itest_read_some(pub, rep, sizeof(rep), ITEST_TIMEOUT_MS);
        ck_assert_msg(n > 0 && rep[0] == ':', "PUBLISH during churn failed");
        (*published)++;
        long r = itest_rss_kib(srv.pid);
        *peak = r > *peak ? r : *peak;
        for (int w = 0; w < WORKERS; w++) {
            int status;
            if (kids[w] > 0 && waitpid(kids[w], &status, WNOHANG) == kids[w]) {
                failed += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                kids[w] = 0;
                done++;
            }
        }
        itest_sleep_ms(1);
    }
    for (int w = 0; w < WORKERS; w++)
        if (kids[w] > 0) {
            kill(kids[w], SIGKILL);
            itest_wait_pid(kids[w], 2000);
            failed++;
        }
    ck_assert_msg(failed == 0, "%d workers failed (see stderr)", failed);
    return itest_now_ms() - t0;
}

/* Waits until only the publisher and INFO's own connection are left; returns that count. */
static long long settle_clients(void)
{
    long long clients = -1;
    for (int i = 0; i < 100; i++) {
        clients = itest_info_field(srv.port, "clients", "connected_clients");
        if (clients == 2)
            break;
        itest_sleep_ms(50);
    }
    return clients;
}

START_TEST(ten_thousand_cycles_leave_nothing_behind)
{
    const char *env = getenv("CHURN_CYCLES");
    long cycles = env ? atol(env) : 10000, per = (cycles + WORKERS - 1) / WORKERS;
    long published = 0;

    ck_assert_msg(itest_evb_start(&srv, 0, NULL) == 0, "evbrokerd did not start");
    int pub = itest_connect(srv.port);
    ck_assert_int_ge(pub, 0);
    ck_assert_int_eq(ask(pub, "PING\r\n", "+PONG\r\n"), 0);
    itest_sleep_ms(100);
    long base = itest_rss_kib(srv.pid), peak = base;
    long long ms = churn_round(pub, per, &published, &peak);
    ck_assert_int_eq(settle_clients(), 2);
    itest_sleep_ms(2500); /* idle parsers give their buffers back after 2 s (client_cron) */
    long mid = itest_rss_kib(srv.pid);
    /* A second round must reuse the memory of the first: growth here would be a leak. */
    long long ms2 = churn_round(pub, per, &published, &peak);

    /* Every closed client must be gone: only the publisher (and INFO's connection) remain. */
    long long clients = settle_clients();
    ck_assert_msg(clients == 2, "connected_clients is %lld after the churn, want 2", clients);
    ck_assert_int_eq(ask(pub, "PUBSUB NUMSUB shared c:0:0 c:7:1\r\n",
                         "*6\r\n$6\r\nshared\r\n:0\r\n$5\r\nc:0:0\r\n:0\r\n$5\r\nc:7:1\r\n:0\r\n"),
                     0);
    ck_assert_int_eq(ask(pub, "PUBSUB NUMPAT\r\n", ":0\r\n"), 0);
    ck_assert_int_eq(ask(pub, "PUBSUB CHANNELS\r\n", "*0\r\n"), 0);
    ck_assert_int_eq(ask(pub, "PUBSUB SHARDCHANNELS\r\n", "*0\r\n"), 0);
    ck_assert_int_eq(ask(pub, "PUBLISH shared x\r\n", ":0\r\n"), 0);
    long long conns = itest_info_field(srv.port, "stats", "total_connections_received");
    itest_sleep_ms(2500);
    long end = itest_rss_kib(srv.pid);
    fprintf(stderr,
            "churn: 2 rounds of %ld cycles (%d workers) in %lld + %lld ms, %ld publishes "
            "meanwhile, %lld connections received; daemon RSS baseline %ld KiB, peak %ld KiB, "
            "after round 1 %ld KiB (+%ld), after round 2 %ld KiB (+%ld)%s\n",
            per * WORKERS, WORKERS, ms, ms2, published, conns, base, peak, mid, mid - base, end,
            end - base, itest_is_san() ? " [sanitizer build: RSS not checked]" : "");
    ck_assert_msg(conns >= 2 * per * WORKERS, "only %lld connections received", conns);
    if (!itest_is_san()) {
        ck_assert_msg(end - base < RETURN_SLACK_KIB, "RSS stayed %ld KiB above the baseline",
                      end - base);
        ck_assert_msg(end - mid < ROUND_GROWTH_KIB, "the second round grew RSS by %ld KiB",
                      end - mid);
    }
    close(pub);
    ck_assert_msg(itest_stop(&srv) == 0, "evbrokerd did not exit cleanly (see its log above)");
}
END_TEST

int main(void)
{
    itest_san_small_quarantine();
    Suite *s = suite_create("churn");
    TCase *tc = tcase_create("ten_thousand_cycles_leave_nothing_behind");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, ten_thousand_cycles_leave_nothing_behind);
    suite_add_tcase(s, tc);
    return itest_run_suite(s, "churn");
}
