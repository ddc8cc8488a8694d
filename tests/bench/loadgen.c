/* Load generator for the fan-out benchmark (issue 5): publishers, subscribers and idle
 * subscribers on one libevent loop against one Redis-protocol server. It measures publish and
 * delivery rates, end-to-end latency, loss, duplicates and reordering, and the server's CPU
 * time and RSS from /proc. It starts no server and prints one key=value line and one human
 * line; it reports its own CPU use so a saturated client is never mistaken for a slow server. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#define HDR_LEN 40                /* payload header: pub(4) target(8) seq(12) ts(16) in hex */
#define SCRATCH_SIZE (1u << 20)   /* shared read buffer; one message must fit */
#define MAX_PAYLOAD (512u * 1024) /* so that a message always fits in the scratch buffer */
#define SUB_BATCH 1000            /* channels per SUBSCRIBE command */
#define CONNECT_WINDOW 256        /* connections being set up at once */
#define HIST_BUCKETS (58 * 128)   /* log-linear latency buckets, under 1% error */

enum role { ROLE_PUB, ROLE_SUB, ROLE_IDLE };
enum phase { PH_SUBS, PH_PUBS, PH_RUN, PH_DRAIN, PH_HOLD, PH_DONE };

/* Command-line options. */
struct opts {
    const char *host;
    const char *port;
    int pubs;
    int subs;
    int channels;
    int patterns;      /* subscribers PSUBSCRIBE instead of SUBSCRIBE */
    int pattern_count; /* targets when patterns are on; 0 means one per subscriber */
    int size;
    int pipeline;
    long long messages; /* total publishes; 0 means run for duration */
    double duration;
    double rate; /* total publishes/s; 0 means as fast as the pipeline allows */
    int tick_us; /* control period; in fixed-rate mode, the spacing of publish bursts */
    int arrival; /* also measure latency to the kernel's receive time of each read */
    int idle;
    double hold;
    int resp3;
    int server_pid;
    double drain_timeout;
    double setup_timeout;
    const char *label;
};

/* One connection: a publisher, an active subscriber or an idle subscriber. */
struct conn {
    int fd;
    enum role role;
    int idx;
    int ready;
    int closed;
    long setup_left; /* replies still expected before the connection is ready */
    struct event *rev;
    struct event *wev;
    char *out;
    size_t out_len, out_off, out_cap;
    char *carry; /* bytes of an incomplete reply kept between reads */
    size_t carry_len, carry_cap;
    /* publisher */
    uint64_t sent, acked, quota;
    int outstanding;
    uint32_t *ring; /* targets of in-flight publishes, in order */
    uint64_t *seq;  /* next sequence number per target */
    /* subscriber */
    uint64_t *expect; /* next expected sequence, per (publisher, slot) */
    uint64_t received, dups, reorders;
};

/* The reply currently parsed: its type and its first elements when it is an aggregate. */
struct elem {
    char type;
    const char *p;
    size_t len;
    long long num;
};

struct reply {
    struct elem top;
    int n;
    struct elem el[4];
};

/* A snapshot of the clocks that frame the measured window. */
struct snap {
    uint64_t wall_ns;
    uint64_t srv_cpu_ns;  /* sum of the server's threads, /proc/PID/task/N/schedstat */
    uint64_t srv_stat_ns; /* utime + stime of /proc/PID/stat, 10 ms ticks */
    uint64_t cli_cpu_ns;
};

static struct opts o = {
    .host = "127.0.0.1",
    .port = "6379",
    .pubs = 1,
    .subs = 1,
    .channels = 1,
    .size = 64,
    .pipeline = 16,
    .tick_us = 1000,
    .hold = 3,
    .drain_timeout = 10,
    .setup_timeout = 120,
    .label = "",
};

static struct event_base *base;
static struct sockaddr_storage addr;
static socklen_t addrlen;
static char *scratch;
static struct conn **pubs, **subs, **idles;
static int nidle_target, nidle_started, nidle_ready, nidle_failed, sub_started, sub_ready;
static int pub_ready_count, inflight, fd_limit;
static int targets, slots;   /* subscription targets; per-subscriber slots */
static int *subs_per_target; /* PUBLISH reply expected per target */
static char **pub_prefix;    /* "*3 $7 PUBLISH $n chan $size" per target */
static size_t *pub_prefix_len;
static char *padding;
static enum phase phase;
static uint64_t t_phase, t_last_progress, t_last_ack, t_last_delivery, deadline_ns;
static uint64_t total_received, total_dups_seen, last_received_mark;
static uint64_t misrouted, bad_payload, reply_mismatch, server_errors, lost_conns;
/* A log-linear histogram of latencies in nanoseconds. */
struct hist {
    uint64_t bucket[HIST_BUCKETS], count, max;
};
/* Publish to the client reading the message, and (with --arrival) publish to its arrival in
 * the subscriber's socket, from the kernel's receive timestamp: the second leaves out the time
 * this one loop takes to get round to that socket among all the others. */
static struct hist lat_hist, arrival_hist;
/* The kernel's receive time of the bytes being parsed, on CLOCK_MONOTONIC; 0 when unknown. */
static uint64_t read_arrival_ns;
static int64_t realtime_minus_monotonic_ns;
static struct snap s0, s1;
static long rss_base_kb, rss_after_kb, rss_held_kb;
static int stop_sending;

/* Prints a message and exits with status 1. */
__attribute__((format(printf, 1, 2))) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

/* malloc that aborts on failure, zeroed. */
static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        die("%s", "out of memory");
    return p;
}

/* realloc that aborts on failure. */
static void *xrealloc(void *p, size_t size)
{
    p = realloc(p, size);
    if (p == NULL)
        die("%s", "out of memory");
    return p;
}

/* CLOCK_MONOTONIC in nanoseconds. */
static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* This process's user + system CPU time in nanoseconds. */
static uint64_t self_cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000u +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000u;
}

/* Sums the on-CPU nanoseconds of every thread of the server (schedstat); 0 if unavailable. */
static uint64_t server_sched_ns(void)
{
    char path[64], line[128];
    uint64_t sum = 0;
    struct dirent *d;
    DIR *dir;

    snprintf(path, sizeof(path), "/proc/%d/task", o.server_pid);
    if ((dir = opendir(path)) == NULL)
        return 0;
    while ((d = readdir(dir)) != NULL) {
        if (d->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/%d/task/%.16s/schedstat", o.server_pid, d->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        if (fgets(line, sizeof(line), f))
            sum += strtoull(line, NULL, 10);
        fclose(f);
    }
    closedir(dir);
    return sum;
}

/* utime + stime of the server from /proc/PID/stat, in nanoseconds; 0 if unavailable. */
static uint64_t server_stat_ns(void)
{
    char path[64], buf[1024];
    unsigned long long ut = 0, st = 0;
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", o.server_pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold blanks */
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (ut + st) * (1000000000ull / (unsigned long long)sysconf(_SC_CLK_TCK));
}

/* The server's resident set size in kB (VmRSS), or 0 if unavailable. */
static long server_rss_kb(void)
{
    char path[64], line[256];
    long kb = 0;
    FILE *f;

    if (o.server_pid <= 0)
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/status", o.server_pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

/* Takes the clocks that start or end the measured window. */
static void snap_take(struct snap *s)
{
    s->wall_ns = now_ns();
    s->srv_cpu_ns = o.server_pid > 0 ? server_sched_ns() : 0;
    s->srv_stat_ns = o.server_pid > 0 ? server_stat_ns() : 0;
    s->cli_cpu_ns = self_cpu_ns();
}

/* Histogram bucket of a latency in nanoseconds. */
static int hist_index(uint64_t v)
{
    if (v < 128)
        return (int)v;
    int e = 63 - __builtin_clzll(v);
    return (e - 6) * 128 + (int)((v >> (e - 7)) & 127);
}

/* Middle value of a histogram bucket. */
static uint64_t hist_value(int i)
{
    if (i < 128)
        return (uint64_t)i;
    int e = i / 128 + 6;
    uint64_t lo = (uint64_t)(128 + i % 128) << (e - 7);
    return lo + ((1ull << (e - 7)) >> 1);
}

/* Counts one latency of v nanoseconds. */
static void hist_add(struct hist *h, uint64_t v)
{
    h->bucket[hist_index(v)]++;
    h->count++;
    if (v > h->max)
        h->max = v;
}

/* Latency at quantile q in microseconds, 0 when nothing was measured. */
static double hist_quantile(const struct hist *h, double q)
{
    uint64_t want = (uint64_t)(q * (double)h->count + 0.5), seen = 0;
    if (h->count == 0)
        return 0;
    if (want < 1)
        want = 1;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= want)
            return (double)hist_value(i) / 1000.0;
    }
    return (double)h->max / 1000.0;
}

/* Writes v as w lowercase hex digits. */
static void hex_put(char *d, uint64_t v, int w)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = w - 1; i >= 0; i--) {
        d[i] = digits[v & 15];
        v >>= 4;
    }
}

/* Reads w hex digits; sets *bad when a character is not a hex digit. */
/* Digit values of '0'-'9' and 'a'-'f'; 0xff for every other byte. Filled by hex_table_init. */
static uint8_t hex_value[256];

static void hex_table_init(void)
{
    memset(hex_value, 0xff, sizeof(hex_value));
    for (int i = 0; i < 10; i++)
        hex_value['0' + i] = (uint8_t)i;
    for (int i = 0; i < 6; i++)
        hex_value['a' + i] = (uint8_t)(10 + i);
}

/* Parses w lowercase hex digits; sets *bad on anything else. A table lookup per digit, with
 * the check folded into one OR: this runs four times per delivered message. */
static uint64_t hex_get(const char *s, int w, int *bad)
{
    uint64_t v = 0;
    unsigned any_bad = 0;
    for (int i = 0; i < w; i++) {
        unsigned d = hex_value[(unsigned char)s[i]];
        any_bad |= d;
        v = v << 4 | (d & 15);
    }
    if (any_bad & 0xf0)
        *bad = 1;
    return v;
}

/* Makes room for n more bytes in a connection's output buffer. */
static char *out_reserve(struct conn *c, size_t n)
{
    if (c->out_off > 0 && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len + n > c->out_cap) {
        if (c->out_off > 0) {
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        while (c->out_len + n > c->out_cap)
            c->out_cap = c->out_cap ? c->out_cap * 2 : 4096;
        c->out = xrealloc(c->out, c->out_cap);
    }
    return c->out + c->out_len;
}

/* Appends a command as a RESP multibulk. */
static void out_command(struct conn *c, int argc, const char **argv)
{
    size_t need = 16;
    for (int i = 0; i < argc; i++)
        need += strlen(argv[i]) + 24;
    char *p = out_reserve(c, need), *start = p;
    p += sprintf(p, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        size_t len = strlen(argv[i]);
        p += sprintf(p, "$%zu\r\n", len);
        memcpy(p, argv[i], len);
        p += len;
        *p++ = '\r';
        *p++ = '\n';
    }
    c->out_len += (size_t)(p - start);
}

/* Marks a connection lost; fatal unless it is an idle subscriber. */
static void conn_lost(struct conn *c, const char *why)
{
    if (c->closed)
        return;
    c->closed = 1;
    event_del(c->rev);
    event_del(c->wev);
    close(c->fd);
    if (c->role == ROLE_IDLE) {
        lost_conns++;
        if (!c->ready) {
            nidle_failed++;
            inflight--;
        }
        return;
    }
    die("connection lost: %s", why);
}

/* Writes as much pending output as the socket takes; waits for writability otherwise. */
static void conn_flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                event_add(c->wev, NULL);
                return;
            }
            conn_lost(c, strerror(errno));
            return;
        }
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
}

/* Formats a target's channel (or pattern) name. */
static void target_name(char *buf, size_t size, int t, int pattern)
{
    if (o.patterns)
        snprintf(buf, size, pattern ? "b.%d.*" : "b.%d.x", t);
    else
        snprintf(buf, size, "b.%d", t);
}

/* The target subscriber s owns at slot k, or -1; a subscriber owns t with t % subs == s
 * when there are at least as many targets as subscribers, else target s % targets. */
static int sub_target(int s, int k)
{
    if (targets >= o.subs) {
        long t = (long)k * o.subs + s;
        return t < targets ? (int)t : -1;
    }
    return k == 0 ? s % targets : -1;
}

/* Queues one PUBLISH with a header (publisher, target, sequence, send time) and padding. */
static void pub_queue(struct conn *c)
{
    uint32_t t = (uint32_t)((c->idx + c->sent) % (uint64_t)targets);
    size_t plen = pub_prefix_len[t];
    char *p = out_reserve(c, plen + (size_t)o.size + 2);

    memcpy(p, pub_prefix[t], plen);
    p += plen;
    hex_put(p, (uint64_t)c->idx, 4);
    hex_put(p + 4, t, 8);
    hex_put(p + 12, c->seq[t]++, 12);
    hex_put(p + 24, now_ns(), 16);
    memcpy(p + HDR_LEN, padding, (size_t)o.size - HDR_LEN);
    p[o.size] = '\r';
    p[o.size + 1] = '\n';
    c->out_len += plen + (size_t)o.size + 2;
    c->ring[(c->sent) % (uint64_t)o.pipeline] = t;
    c->sent++;
    c->outstanding++;
}

/* Whether a publisher may send another message now, besides its pipeline window. */
static int pub_may_send(struct conn *c, uint64_t now)
{
    if (phase != PH_RUN || stop_sending || c->closed)
        return 0;
    if (o.messages > 0 && c->sent >= c->quota)
        return 0;
    if (o.messages == 0 && now >= deadline_ns)
        return 0;
    if (o.rate > 0) {
        double due = (double)(now - s0.wall_ns) * (o.rate / o.pubs) / 1e9;
        if ((double)c->sent >= due)
            return 0;
    }
    return 1;
}

/* Fills a publisher's pipeline window (bounded by the rate in fixed-rate mode) and sends. */
static void pub_fill(struct conn *c)
{
    uint64_t now = now_ns();
    int queued = 0;
    while (c->outstanding < o.pipeline && pub_may_send(c, now)) {
        pub_queue(c);
        queued++;
    }
    if (queued)
        conn_flush(c);
}

/* Records one delivered message: latency, and order per (publisher, subscriber, target). */
static void sub_deliver(struct conn *c, const struct elem *pl, uint64_t now)
{
    int bad = 0;
    if (pl->p == NULL || pl->len != (size_t)o.size) {
        bad_payload++;
        return;
    }
    uint64_t p = hex_get(pl->p, 4, &bad), t = hex_get(pl->p + 4, 8, &bad);
    uint64_t seq = hex_get(pl->p + 12, 12, &bad), ts = hex_get(pl->p + 24, 16, &bad);
    if (bad || p >= (uint64_t)o.pubs || t >= (uint64_t)targets) {
        bad_payload++;
        return;
    }
    int slot = targets >= o.subs ? (int)(t / (uint64_t)o.subs) : 0;
    if (sub_target(c->idx, slot) != (int)t) {
        misrouted++;
        return;
    }
    uint64_t *e = &c->expect[p * (uint64_t)slots + (uint64_t)slot];
    if (seq == *e) {
        (*e)++;
    } else if (seq > *e) {
        c->reorders++;
        *e = seq + 1;
    } else {
        c->dups++;
        total_dups_seen++;
    }
    c->received++;
    total_received++;
    t_last_delivery = now;
    hist_add(&lat_hist, now > ts ? now - ts : 0);
    if (read_arrival_ns)
        hist_add(&arrival_hist, read_arrival_ns > ts ? read_arrival_ns - ts : 0);
}

/* Parses a decimal integer from a RESP line. */
static long long parse_ll(const char *p, const char *end)
{
    long long v = 0;
    int neg = p < end && *p == '-';
    for (p += neg; p < end; p++)
        v = v * 10 + (*p - '0');
    return neg ? -v : v;
}

/* Parses one RESP2/RESP3 value at *pp; fills e and, for an aggregate, up to nk kids.
 * Returns 1 when complete (advancing *pp), 0 when more bytes are needed, -1 on error. */
static int resp_value(const char **pp, const char *end, struct elem *e, struct elem *kids, int nk,
                      int depth)
{
    const char *p = *pp, *nl;
    if (p >= end)
        return 0;
    if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
        return 0;
    if (nl == p || nl[-1] != '\r' || depth > 16)
        return -1;
    const char *ls = p + 1, *le = nl - 1;
    e->type = *p;
    e->p = ls;
    e->len = (size_t)(le - ls);
    e->num = 0;
    switch (*p) {
    case '+':
    case '-':
    case ':':
    case '_':
    case '#':
    case ',':
    case '(':
        e->num = *p == ':' ? parse_ll(ls, le) : 0;
        *pp = nl + 1;
        return 1;
    case '$':
    case '=':
    case '!': {
        long long len = parse_ll(ls, le);
        if (len < 0) {
            e->p = NULL;
            e->len = 0;
            *pp = nl + 1;
            return 1;
        }
        if (end - (nl + 1) < len + 2)
            return 0;
        if (nl[1 + len] != '\r' || nl[2 + len] != '\n')
            return -1; /* the frame is malformed: integrity checks must see it */
        e->p = nl + 1;
        e->len = (size_t)len;
        *pp = nl + 1 + len + 2;
        return 1;
    }
    case '*':
    case '>':
    case '~':
    case '%':
    case '|': {
        long long n = parse_ll(ls, le), i;
        const char *q = nl + 1;
        struct elem tmp;
        if (*p == '%' || *p == '|')
            n *= 2;
        e->num = n;
        for (i = 0; i < n; i++) {
            struct elem *k = i < nk ? &kids[i] : &tmp;
            int rc = resp_value(&q, end, k, NULL, 0, depth + 1);
            if (rc <= 0)
                return rc;
        }
        if (*p == '|') { /* an attribute precedes the real value */
            *pp = q;
            return resp_value(pp, end, e, kids, nk, depth);
        }
        *pp = q;
        return 1;
    }
    default:
        return -1;
    }
}

/* Whether an element is the bulk string s. */
static int elem_is(const struct elem *e, const char *s)
{
    size_t n = strlen(s);
    return e->p && e->len == n && memcmp(e->p, s, n) == 0;
}

/* A connection finished its setup replies. */
static void conn_ready(struct conn *c)
{
    c->ready = 1;
    t_last_progress = now_ns();
    if (c->role == ROLE_PUB) {
        pub_ready_count++;
    } else if (c->role == ROLE_SUB) {
        sub_ready++;
        inflight--;
    } else {
        nidle_ready++;
        inflight--;
    }
}

/* Handles one complete reply on a connection. */
static void conn_reply(struct conn *c, const struct reply *r, uint64_t now)
{
    char t = r->top.type;
    if (t == '-') {
        if (server_errors++ == 0)
            fprintf(stderr, "loadgen: server error: %.*s\n", (int)r->top.len, r->top.p);
        if (!c->ready)
            die("%s", "setup failed");
    }
    if ((t == '*' || t == '>') && r->n >= 3 && r->top.num >= 3) {
        const struct elem *k = &r->el[0];
        if (r->top.num == 3 && (elem_is(k, "message") || elem_is(k, "smessage"))) {
            sub_deliver(c, &r->el[2], now);
            return;
        }
        if (r->top.num == 4 && elem_is(k, "pmessage")) {
            sub_deliver(c, &r->el[3], now);
            return;
        }
    }
    if (!c->ready) {
        if (--c->setup_left == 0)
            conn_ready(c);
        return;
    }
    if (c->role == ROLE_PUB && (t == ':' || t == '-')) {
        uint32_t tg = c->ring[c->acked % (uint64_t)o.pipeline];
        if (t == ':' && r->top.num != subs_per_target[tg])
            reply_mismatch++;
        c->acked++;
        c->outstanding--;
        t_last_ack = now;
    }
}

/* Keeps the unparsed tail of the scratch buffer for the next read. */
static void conn_keep(struct conn *c, const char *p, size_t n)
{
    if (n > c->carry_cap) {
        c->carry_cap = n < 256 ? 256 : n;
        c->carry = xrealloc(c->carry, c->carry_cap);
    }
    memcpy(c->carry, p, n);
    c->carry_len = n;
}

/* Reads what the socket has; with --arrival, a subscriber's read also takes the kernel's
 * receive time of the last bytes read (TCP gives one per read) into read_arrival_ns. */
static ssize_t conn_recv(struct conn *c, char *buf, size_t len)
{
    read_arrival_ns = 0;
    if (c->role != ROLE_SUB || !o.arrival)
        return read(c->fd, buf, len);
    union {
        char buf[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } control;
    struct iovec iov = {buf, len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof(control.buf);
    ssize_t n = recvmsg(c->fd, &msg, 0);
    for (struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL; cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
            int64_t rt = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
            read_arrival_ns = (uint64_t)(rt - realtime_minus_monotonic_ns);
        }
    }
    return n;
}

/* Socket readable: read once into the scratch buffer after the kept tail, parse every reply. */
static void conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    size_t have = c->carry_len;
    if (have)
        memcpy(scratch, c->carry, have);
    ssize_t n = conn_recv(c, scratch + have, SCRATCH_SIZE - have);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_lost(c, n == 0 ? "closed by server" : strerror(errno));
        return;
    }
    if (n < 0)
        return;
    uint64_t now = now_ns();
    const char *p = scratch, *end = scratch + have + n;
    while (p < end) {
        struct reply r;
        const char *q = p;
        r.n = 0;
        int rc = resp_value(&q, end, &r.top, r.el, 4, 0);
        if (rc < 0)
            die("%s", "protocol error in server reply");
        if (rc == 0)
            break;
        if (r.top.type == '*' || r.top.type == '>' || r.top.type == '~')
            r.n = r.top.num < 4 ? (int)r.top.num : 4;
        conn_reply(c, &r, now);
        p = q;
        if (c->closed)
            return;
    }
    if ((size_t)(end - p) >= SCRATCH_SIZE)
        die("%s", "reply larger than the read buffer");
    conn_keep(c, p, (size_t)(end - p));
    if (c->role == ROLE_PUB && c->ready && o.rate == 0)
        pub_fill(c);
}

/* Socket writable: completes a connect, then flushes pending output. */
static void conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
        conn_lost(c, strerror(err));
        return;
    }
    conn_flush(c);
}

/* Opens a connection and queues its setup commands; returns NULL when out of descriptors. */
static struct conn *conn_open(enum role role, int idx)
{
    int one = 1;
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE)
            return NULL;
        die("socket: %s", strerror(errno));
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (role == ROLE_SUB && o.arrival)
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&addr, addrlen) < 0 && errno != EINPROGRESS)
        die("connect: %s", strerror(errno));
    struct conn *c = xcalloc(1, sizeof(*c));
    c->fd = fd;
    c->role = role;
    c->idx = idx;
    c->rev = event_new(base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
    c->wev = event_new(base, fd, EV_WRITE, conn_write_cb, c);
    if (o.resp3) {
        const char *hello[] = {"HELLO", "3"};
        out_command(c, 2, hello);
        c->setup_left++;
    }
    if (role == ROLE_PUB) {
        const char *ping[] = {"PING"};
        out_command(c, 1, ping);
        c->setup_left++;
        c->quota = (uint64_t)(o.messages / o.pubs + (idx < o.messages % o.pubs ? 1 : 0));
        c->ring = xcalloc((size_t)o.pipeline, sizeof(*c->ring));
        c->seq = xcalloc((size_t)targets, sizeof(*c->seq));
    } else if (role == ROLE_IDLE) {
        char name[32];
        const char *sub[] = {"SUBSCRIBE", name};
        snprintf(name, sizeof(name), "idle.%d", idx);
        out_command(c, 2, sub);
        c->setup_left++;
    } else {
        const char *argv[SUB_BATCH + 1];
        char *names = xcalloc(SUB_BATCH, 32);
        int k = 0, t, n = 0;
        c->expect = xcalloc((size_t)o.pubs * (size_t)slots, sizeof(*c->expect));
        argv[0] = o.patterns ? "PSUBSCRIBE" : "SUBSCRIBE";
        while ((t = sub_target(idx, k++)) >= 0) {
            target_name(names + 32 * n, 32, t, 1);
            argv[n + 1] = names + 32 * n;
            n++;
            c->setup_left++;
            if (n == SUB_BATCH) {
                out_command(c, n + 1, argv);
                n = 0;
            }
        }
        if (n > 0)
            out_command(c, n + 1, argv);
        free(names);
    }
    event_add(c->rev, NULL);
    event_add(c->wev, NULL); /* fires when the connect completes */
    return c;
}

/* Starts subscriber and idle connections, keeping at most CONNECT_WINDOW being set up. */
static void connect_pump(void)
{
    while (inflight < CONNECT_WINDOW && sub_started < o.subs) {
        subs[sub_started] = conn_open(ROLE_SUB, sub_started);
        if (subs[sub_started] == NULL)
            die("%s", "out of file descriptors for subscribers");
        sub_started++;
        inflight++;
    }
    while (inflight < CONNECT_WINDOW && nidle_started < nidle_target) {
        struct conn *c = conn_open(ROLE_IDLE, nidle_started);
        if (c == NULL) {
            nidle_target = nidle_started; /* no descriptors left: hold what we have */
            break;
        }
        idles[nidle_started++] = c;
        inflight++;
    }
}

/* Sum of per-target publish counts times subscribers per target. */
static uint64_t expected_deliveries(void)
{
    uint64_t sum = 0;
    for (int p = 0; p < o.pubs; p++)
        for (int t = 0; t < targets; t++)
            sum += pubs[p]->seq[t] * (uint64_t)subs_per_target[t];
    return sum;
}

/* Moves to a new phase and remembers when. */
static void phase_set(enum phase p)
{
    phase = p;
    t_phase = now_ns();
    t_last_progress = t_phase;
}

/* Periodic control: phase changes, deadlines, fixed-rate sending, drain detection. */
static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    uint64_t expirations;
    if (read(fd, &expirations, sizeof(expirations)) < 0 && errno == EAGAIN)
        return;
    uint64_t now = now_ns();
    double since_progress = (double)(now - t_last_progress) / 1e9;

    switch (phase) {
    case PH_SUBS:
        connect_pump();
        if (sub_ready == o.subs && nidle_ready + nidle_failed == nidle_target &&
            nidle_started == nidle_target) {
            if (o.idle > 0) {
                rss_after_kb = server_rss_kb();
                phase_set(PH_HOLD);
            } else {
                for (int i = 0; i < o.pubs; i++)
                    if ((pubs[i] = conn_open(ROLE_PUB, i)) == NULL)
                        die("%s", "out of file descriptors for publishers");
                phase_set(PH_PUBS);
            }
        } else if (since_progress > o.setup_timeout / 4 ||
                   (double)(now - t_phase) / 1e9 > o.setup_timeout) {
            if (o.idle == 0)
                die("%s", "subscribers did not all become ready in time");
            fprintf(stderr, "loadgen: setup stalled at %d of %d idle subscribers\n", nidle_ready,
                    nidle_target);
            nidle_target = nidle_started;
            rss_after_kb = server_rss_kb();
            phase_set(PH_HOLD);
        }
        break;
    case PH_PUBS:
        if (pub_ready_count == o.pubs) {
            snap_take(&s0);
            deadline_ns = s0.wall_ns + (uint64_t)(o.duration * 1e9);
            t_last_ack = t_last_delivery = s0.wall_ns;
            phase_set(PH_RUN);
            for (int i = 0; i < o.pubs; i++)
                pub_fill(pubs[i]);
        } else if ((double)(now - t_phase) / 1e9 > o.setup_timeout) {
            die("%s", "publishers did not connect in time");
        }
        break;
    case PH_RUN: {
        int busy = 0;
        if (o.messages == 0 && now >= deadline_ns)
            stop_sending = 1;
        for (int i = 0; i < o.pubs; i++) {
            struct conn *c = pubs[i];
            if (o.rate > 0 || c->outstanding == 0)
                pub_fill(c);
            if (c->outstanding > 0 || pub_may_send(c, now) || (o.messages == 0 && !stop_sending) ||
                (o.messages > 0 && c->sent < c->quota))
                busy = 1;
        }
        if (!busy) {
            last_received_mark = total_received;
            phase_set(PH_DRAIN);
        }
        break;
    }
    case PH_DRAIN:
        if (total_received != last_received_mark) {
            last_received_mark = total_received;
            t_last_progress = now;
        }
        if (total_received - total_dups_seen >= expected_deliveries() ||
            since_progress > o.drain_timeout) {
            snap_take(&s1);
            phase_set(PH_DONE);
            event_base_loopbreak(base);
        }
        break;
    case PH_HOLD:
        if ((double)(now - t_phase) / 1e9 >= o.hold) {
            rss_held_kb = server_rss_kb();
            snap_take(&s1);
            phase_set(PH_DONE);
            event_base_loopbreak(base);
        }
        break;
    case PH_DONE:
        break;
    }
}

/* Prints the machine-readable result line and the human summary. */
static int report(void)
{
    if (o.idle > 0) {
        int alive = 0;
        for (int i = 0; i < nidle_started; i++)
            alive += idles[i]->ready && !idles[i]->closed;
        long delta = rss_held_kb - rss_base_kb;
        double per = nidle_ready > 0 ? (double)delta * 1024.0 / nidle_ready : 0;
        int held = alive == nidle_ready && nidle_ready > 0;
        printf("RESULT label=%s mode=idle idle_requested=%d idle_connected=%d idle_failed=%d "
               "idle_alive=%d client_fd_limit=%d held=%d rss_base_kb=%ld rss_after_kb=%ld "
               "rss_held_kb=%ld rss_per_conn_b=%.0f hold_s=%.1f\n",
               o.label, o.idle, nidle_ready, o.idle - nidle_ready, alive, fd_limit, held,
               rss_base_kb, rss_after_kb, rss_held_kb, per, o.hold);
        printf("idle: %d of %d subscribers connected and %s for %.1f s; server RSS %ld -> %ld kB, "
               "%.0f bytes per connection\n",
               nidle_ready, o.idle, held ? "held" : "NOT held", o.hold, rss_base_kb, rss_held_kb,
               per);
        return held && nidle_ready == o.idle ? 0 : 2;
    }
    uint64_t publishes = 0, acked = 0, dups = 0, reord = 0;
    for (int i = 0; i < o.pubs; i++) {
        publishes += pubs[i]->sent;
        acked += pubs[i]->acked;
    }
    for (int i = 0; i < o.subs; i++) {
        dups += subs[i]->dups;
        reord += subs[i]->reorders;
    }
    uint64_t expected = expected_deliveries();
    uint64_t unique = total_received - dups;
    uint64_t lost = expected > unique ? expected - unique : 0;
    double pub_s = (double)(t_last_ack - s0.wall_ns) / 1e9;
    double del_s = (double)(t_last_delivery - s0.wall_ns) / 1e9;
    double wall_s = (double)(s1.wall_ns - s0.wall_ns) / 1e9;
    double srv_us = (double)(s1.srv_cpu_ns - s0.srv_cpu_ns) / 1e3;
    double srv_stat_us = (double)(s1.srv_stat_ns - s0.srv_stat_ns) / 1e3;
    double cli_pct = wall_s > 0 ? (double)(s1.cli_cpu_ns - s0.cli_cpu_ns) / 1e9 / wall_s * 100 : 0;
    double pub_rate = pub_s > 0 ? (double)acked / pub_s : 0;
    double del_rate = del_s > 0 ? (double)total_received / del_s : 0;
    double us_del = total_received ? srv_us / (double)total_received : 0;
    double us_pub = publishes ? srv_us / (double)publishes : 0;
    int saturated = cli_pct >= 90.0;
    int ok = lost == 0 && dups == 0 && reord == 0 && misrouted == 0 && bad_payload == 0 &&
             reply_mismatch == 0 && server_errors == 0;

    printf("RESULT label=%s mode=run resp=%d pubs=%d subs=%d targets=%d patterns=%d size=%d "
           "pipeline=%d rate=%.0f publishes=%llu publishes_per_s=%.0f deliveries=%llu "
           "expected=%llu deliveries_per_s=%.0f lost=%llu dups=%llu reordered=%llu "
           "misrouted=%llu bad=%llu reply_mismatch=%llu errors=%llu lat_p50_us=%.1f "
           "lat_p90_us=%.1f lat_p99_us=%.1f lat_p999_us=%.1f lat_max_us=%.1f arr_p50_us=%.1f "
           "arr_p99_us=%.1f arr_p999_us=%.1f srv_cpu_us=%.0f "
           "srv_cpu_stat_us=%.0f srv_cpu_us_per_delivery=%.4f srv_cpu_us_per_publish=%.4f "
           "srv_cpu_pct=%.1f srv_rss_kb=%ld cli_cpu_pct=%.1f client_saturated=%d pub_window_s=%.3f "
           "wall_s=%.3f integrity=%s\n",
           o.label, o.resp3 ? 3 : 2, o.pubs, o.subs, targets, o.patterns, o.size, o.pipeline,
           o.rate, (unsigned long long)publishes, pub_rate, (unsigned long long)total_received,
           (unsigned long long)expected, del_rate, (unsigned long long)lost,
           (unsigned long long)dups, (unsigned long long)reord, (unsigned long long)misrouted,
           (unsigned long long)bad_payload, (unsigned long long)reply_mismatch,
           (unsigned long long)server_errors, hist_quantile(&lat_hist, 0.5),
           hist_quantile(&lat_hist, 0.9), hist_quantile(&lat_hist, 0.99),
           hist_quantile(&lat_hist, 0.999), (double)lat_hist.max / 1000.0,
           hist_quantile(&arrival_hist, 0.5), hist_quantile(&arrival_hist, 0.99),
           hist_quantile(&arrival_hist, 0.999), srv_us, srv_stat_us, us_del, us_pub,
           wall_s > 0 ? srv_us / 1e4 / wall_s : 0, server_rss_kb(), cli_pct, saturated, pub_s,
           wall_s, ok ? "ok" : "FAIL");
    printf("%s: %.0f publishes/s, %.0f deliveries/s, p50 %.1f us p99 %.1f us, server %.3f us "
           "CPU/delivery, client CPU %.0f%%%s, lost %llu dup %llu reordered %llu -> %s\n",
           o.label[0] ? o.label : "run", pub_rate, del_rate, hist_quantile(&lat_hist, 0.5),
           hist_quantile(&lat_hist, 0.99), us_del, cli_pct, saturated ? " (CLIENT SATURATED)" : "",
           (unsigned long long)lost, (unsigned long long)dups, (unsigned long long)reord,
           ok ? "ok" : "FAIL");
    return ok ? 0 : 2;
}

/* Prints usage. */
static void usage(FILE *f)
{
    fprintf(f,
            "Usage: loadgen [options]\n"
            "  --host H --port P        server (127.0.0.1:6379)\n"
            "  -P, --publishers N       publisher connections (1)\n"
            "  -S, --subscribers M      subscriber connections (1)\n"
            "  -C, --channels C         channels; publishes go round robin over them (1)\n"
            "  --patterns               each subscriber PSUBSCRIBEs its own pattern(s)\n"
            "  --pattern-count K        K patterns installed, each publish matches exactly one\n"
            "  -s, --size BYTES         payload size, at least %d (64)\n"
            "  -d, --pipeline D         in-flight publishes per publisher (16)\n"
            "  -n, --messages N         total publishes (default: run for --duration)\n"
            "  -t, --duration SEC       publishing time when -n is not given (5)\n"
            "  -r, --rate R             fixed total publishes/s across publishers\n"
            "  --tick-us US             control tick; fixed-rate bursts are rate*US/1e6 (1000)\n"
            "  --arrival                also report latency to arrival in the subscriber's\n"
            "                           socket (turns on receive timestamps for every packet\n"
            "                           on the host, a small cost the servers then pay)\n"
            "  --idle-subscribers K     connect K idle subscribers, measure RSS, hold\n"
            "  --hold SEC               how long idle subscribers are held (3)\n"
            "  --resp3                  HELLO 3 on every connection\n"
            "  --server-pid PID         read the server's CPU time and RSS from /proc\n"
            "  --drain-timeout SEC      give up waiting for deliveries after SEC idle (10)\n"
            "  --setup-timeout SEC      connection setup limit (120)\n"
            "  --label TEXT             copied into the result line\n",
            HDR_LEN);
}

/* Parses the command line into o; exits on bad input. */
static void parse_args(int argc, char **argv)
{
    static const struct option lo[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"publishers", required_argument, NULL, 'P'},
        {"subscribers", required_argument, NULL, 'S'},
        {"channels", required_argument, NULL, 'C'},
        {"patterns", no_argument, NULL, 'x'},
        {"pattern-count", required_argument, NULL, 'K'},
        {"size", required_argument, NULL, 's'},
        {"pipeline", required_argument, NULL, 'd'},
        {"messages", required_argument, NULL, 'n'},
        {"duration", required_argument, NULL, 't'},
        {"rate", required_argument, NULL, 'r'},
        {"tick-us", required_argument, NULL, 'k'},
        {"arrival", no_argument, NULL, 'a'},
        {"idle-subscribers", required_argument, NULL, 'I'},
        {"hold", required_argument, NULL, 'o'},
        {"resp3", no_argument, NULL, '3'},
        {"server-pid", required_argument, NULL, 'X'},
        {"drain-timeout", required_argument, NULL, 'D'},
        {"setup-timeout", required_argument, NULL, 'T'},
        {"label", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "P:S:C:s:d:n:t:r:h", lo, NULL)) != -1) {
        switch (c) {
        case 'H':
            o.host = optarg;
            break;
        case 'p':
            o.port = optarg;
            break;
        case 'P':
            o.pubs = atoi(optarg);
            break;
        case 'S':
            o.subs = atoi(optarg);
            break;
        case 'C':
            o.channels = atoi(optarg);
            break;
        case 'x':
            o.patterns = 1;
            break;
        case 'K':
            o.patterns = 1;
            o.pattern_count = atoi(optarg);
            break;
        case 's':
            o.size = atoi(optarg);
            break;
        case 'd':
            o.pipeline = atoi(optarg);
            break;
        case 'n':
            o.messages = atoll(optarg);
            break;
        case 't':
            o.duration = atof(optarg);
            break;
        case 'r':
            o.rate = atof(optarg);
            break;
        case 'k':
            o.tick_us = atoi(optarg);
            break;
        case 'a':
            o.arrival = 1;
            break;
        case 'I':
            o.idle = atoi(optarg);
            break;
        case 'o':
            o.hold = atof(optarg);
            break;
        case '3':
            o.resp3 = 1;
            break;
        case 'X':
            o.server_pid = atoi(optarg);
            break;
        case 'D':
            o.drain_timeout = atof(optarg);
            break;
        case 'T':
            o.setup_timeout = atof(optarg);
            break;
        case 'L':
            o.label = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(64);
        }
    }
    if (o.messages == 0 && o.duration <= 0)
        o.duration = 5;
    if (o.pubs < 1 || o.subs < 0 || o.channels < 1 || o.pipeline < 1 || o.pattern_count < 0 ||
        o.size < HDR_LEN || o.size > (int)MAX_PAYLOAD || o.idle < 0 || o.pubs > 0xffff ||
        o.tick_us < 10 || o.tick_us > 1000000)
        die("%s", "bad option value (see --help)");
}

/* Resolves the server address once. */
static void resolve(void)
{
    struct addrinfo hints = {0}, *res;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(o.host, o.port, &hints, &res);
    if (rc != 0)
        die("resolve: %s", gai_strerror(rc));
    memcpy(&addr, res->ai_addr, res->ai_addrlen);
    addrlen = res->ai_addrlen;
    freeaddrinfo(res);
}

/* Raises the descriptor limit to the hard limit and remembers it. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    fd_limit = rl.rlim_cur > 10000000 ? 10000000 : (int)rl.rlim_cur;
}

/* Precomputes the PUBLISH prefix of every target, the padding, and the fan-out per target. */
static void prepare(void)
{
    char name[32];
    targets = o.patterns ? (o.pattern_count ? o.pattern_count : (o.subs ? o.subs : 1)) : o.channels;
    slots = o.subs > 0 && targets >= o.subs ? (targets + o.subs - 1) / o.subs : 1;
    subs_per_target = xcalloc((size_t)targets, sizeof(*subs_per_target));
    for (int s = 0; s < o.subs; s++)
        for (int k = 0, t; (t = sub_target(s, k)) >= 0; k++)
            subs_per_target[t]++;
    pub_prefix = xcalloc((size_t)targets, sizeof(*pub_prefix));
    pub_prefix_len = xcalloc((size_t)targets, sizeof(*pub_prefix_len));
    for (int t = 0; t < targets; t++) {
        target_name(name, sizeof(name), t, 0);
        pub_prefix[t] = xcalloc(1, 64);
        pub_prefix_len[t] =
            (size_t)snprintf(pub_prefix[t], 64, "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$%d\r\n",
                             strlen(name), name, o.size);
    }
    padding = xcalloc(1, (size_t)o.size);
    memset(padding, 'x', (size_t)o.size);
    scratch = xcalloc(1, SCRATCH_SIZE);
}

/* Starts the control tick on a periodic timerfd: libevent's own timers follow a coarse clock
 * that advances once per kernel tick (4 ms at HZ=250), which would make fixed-rate bursts four
 * times larger on such hosts than on others. */
static void tick_start(void)
{
    struct timespec period = {o.tick_us / 1000000, o.tick_us % 1000000 * 1000L};
    struct itimerspec its = {period, period};
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0 || timerfd_settime(fd, 0, &its, NULL) < 0)
        die("timerfd: %s", strerror(errno));
    struct event *tick = event_new(base, fd, EV_READ | EV_PERSIST, tick_cb, NULL);
    if (tick == NULL || event_add(tick, NULL) < 0)
        die("%s", "tick event failed");
}

/* The kernel stamps received data on CLOCK_REALTIME, payloads carry CLOCK_MONOTONIC: the
 * offset between them, read once (a run is seconds long, far too short for them to drift). */
static void clock_offset_init(void)
{
    struct timespec rt0, mono, rt1;
    clock_gettime(CLOCK_REALTIME, &rt0);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &rt1);
    int64_t rt = ((int64_t)rt0.tv_sec * 1000000000 + rt0.tv_nsec) / 2 +
                 ((int64_t)rt1.tv_sec * 1000000000 + rt1.tv_nsec) / 2;
    realtime_minus_monotonic_ns = rt - ((int64_t)mono.tv_sec * 1000000000 + mono.tv_nsec);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    resolve();
    if (o.idle > 0) {
        o.subs = 0; /* idle mode measures idle connections only */
        nidle_target = o.idle < fd_limit - 64 ? o.idle : fd_limit - 64;
        if (nidle_target < o.idle)
            fprintf(stderr, "loadgen: descriptor limit %d: trying %d of %d idle subscribers\n",
                    fd_limit, nidle_target, o.idle);
        idles = xcalloc((size_t)nidle_target, sizeof(*idles));
        rss_base_kb = server_rss_kb();
    }
    hex_table_init();
    clock_offset_init();
    prepare();
    subs = xcalloc((size_t)o.subs, sizeof(*subs));
    pubs = xcalloc((size_t)o.pubs, sizeof(*pubs));
    if ((base = event_base_new()) == NULL)
        die("%s", "event_base_new failed");
    tick_start();
    phase_set(PH_SUBS);
    snap_take(&s0);
    connect_pump();
    event_base_dispatch(base);
    return report();
}
