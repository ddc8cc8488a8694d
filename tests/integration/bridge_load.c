/* Load and check helper for tests/integration/bridge.sh: subscribes many connections and
 * counts, checks order per publisher, or publishes numbered messages at a given rate.
 * Run without arguments (as the integration runner does with every binary) it does nothing.
 * Payloads are "PUBLISHER:SEQ:padding"; a subscriber reports what it saw on one line. */
#include <hiredis/hiredis.h>

#include "itest.h"

#define LOAD_MAX_PUBLISHERS 64

/* What one subscriber connection saw from each publisher. */
struct load_sub {
    redisContext *c;
    long long received;
    long long order_errors; /* a sequence number at or below one already seen */
    long long gaps;         /* sequence numbers skipped */
    char pub[LOAD_MAX_PUBLISHERS][16];
    long long last[LOAD_MAX_PUBLISHERS];
    int npub;
};

/* Prints how to call the helper. */
static void load_usage(void)
{
    fprintf(stderr,
            "usage: bridge_load sub PORT channel|pattern|shard NAME CONNS EXPECT TIMEOUT_MS READY\n"
            "       bridge_load pub PORT channel|shard CHANNEL COUNT PUBID RATE SIZE\n"
            "sub: EXPECT messages per connection, then 300 ms more to catch duplicates; prints\n"
            "     'received=N min=N max=N order_errors=N gaps=N ms=N'. READY is created once\n"
            "     every connection is subscribed. pub: RATE per second, 0 = pipelined.\n");
}

/* Milliseconds since an arbitrary start. */
static long long load_ms(void)
{
    return itest_now_ms();
}

/* Records one payload: order per publisher. */
static void load_account(struct load_sub *s, const char *payload, size_t len)
{
    char id[16];
    const char *colon = memchr(payload, ':', len);
    size_t idlen;
    long long seq;
    int i;

    s->received++;
    if (colon == NULL || (idlen = (size_t)(colon - payload)) >= sizeof(id))
        return;
    memcpy(id, payload, idlen);
    id[idlen] = '\0';
    seq = strtoll(colon + 1, NULL, 10);
    for (i = 0; i < s->npub && strcmp(s->pub[i], id) != 0; i++)
        ;
    if (i == s->npub) {
        if (s->npub == LOAD_MAX_PUBLISHERS)
            return;
        snprintf(s->pub[s->npub++], sizeof(s->pub[0]), "%s", id);
        s->last[i] = 0;
    }
    if (seq <= s->last[i])
        s->order_errors++;
    else
        s->gaps += seq - s->last[i] - 1;
    if (seq > s->last[i])
        s->last[i] = seq;
}

/* Connects to 127.0.0.1:port or exits. */
static redisContext *load_connect(int port)
{
    struct timeval tv = {10, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);

    if (c == NULL || c->err) {
        fprintf(stderr, "bridge_load: cannot connect to port %d: %s\n", port,
                c ? c->errstr : "out of memory");
        exit(2);
    }
    redisSetTimeout(c, tv);
    return c;
}

/* Reads every whole reply buffered on s, accounting for messages. Returns -1 on error. */
static int load_drain(struct load_sub *s)
{
    void *reply;

    for (;;) {
        redisReply *r;
        if (redisReaderGetReply(s->c->reader, &reply) != REDIS_OK)
            return -1;
        if (reply == NULL)
            return 0;
        r = reply;
        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
            r->element[0]->type == REDIS_REPLY_STRING &&
            strstr(r->element[0]->str, "message") != NULL) {
            redisReply *p = r->element[r->elements - 1];
            load_account(s, p->str, p->len);
        }
        freeReplyObject(r);
    }
}

/* The sub mode: see load_usage. */
static int load_sub_main(int port, const char *kind, const char *name, int conns, long long expect,
                         long long timeout_ms, const char *ready)
{
    const char *cmd = strcmp(kind, "pattern") == 0 ? "PSUBSCRIBE"
                      : strcmp(kind, "shard") == 0 ? "SSUBSCRIBE"
                                                   : "SUBSCRIBE";
    struct load_sub *subs = calloc((size_t)conns, sizeof(*subs));
    struct pollfd *pfd = calloc((size_t)conns, sizeof(*pfd));
    long long start, deadline, done_at = -1, first = -1, last = -1, total = 0, min = -1, max = 0;
    long long order = 0, gaps = 0;
    FILE *f;

    for (int i = 0; i < conns; i++) {
        redisReply *r;
        subs[i].c = load_connect(port);
        r = redisCommand(subs[i].c, "%s %s", cmd, name);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
            fprintf(stderr, "bridge_load: %s %s failed\n", cmd, name);
            return 2;
        }
        freeReplyObject(r);
        pfd[i].fd = subs[i].c->fd;
        pfd[i].events = POLLIN;
    }
    f = fopen(ready, "w");
    if (f != NULL)
        fclose(f);
    start = load_ms();
    deadline = start + timeout_ms;
    for (;;) {
        long long now = load_ms(), all_done = 1, wait;
        for (int i = 0; i < conns; i++)
            all_done &= subs[i].received >= expect;
        if (all_done && done_at < 0)
            done_at = now;
        if ((done_at >= 0 && now >= done_at + 300) || now >= deadline)
            break;
        wait = (done_at >= 0 ? done_at + 300 : deadline) - now;
        if (poll(pfd, (nfds_t)conns, (int)(wait > 100 ? 100 : wait)) <= 0)
            continue;
        for (int i = 0; i < conns; i++) {
            long long before = subs[i].received;
            if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (redisBufferRead(subs[i].c) != REDIS_OK || load_drain(&subs[i]) < 0) {
                fprintf(stderr, "bridge_load: connection %d failed\n", i);
                pfd[i].fd = -1;
                continue;
            }
            if (subs[i].received > before) {
                if (first < 0)
                    first = load_ms();
                last = load_ms();
            }
        }
    }
    for (int i = 0; i < conns; i++) {
        total += subs[i].received;
        order += subs[i].order_errors;
        gaps += subs[i].gaps;
        if (min < 0 || subs[i].received < min)
            min = subs[i].received;
        if (subs[i].received > max)
            max = subs[i].received;
        redisFree(subs[i].c);
    }
    printf("received=%lld min=%lld max=%lld order_errors=%lld gaps=%lld ms=%lld\n", total, min, max,
           order, gaps, first >= 0 ? last - first : 0);
    free(subs);
    free(pfd);
    return 0;
}

/* The pub mode: see load_usage. */
static int load_pub_main(int port, const char *kind, const char *ch, long long count,
                         const char *id, long long rate, size_t size)
{
    const char *cmd = strcmp(kind, "shard") == 0 ? "SPUBLISH" : "PUBLISH";
    redisContext *c = load_connect(port);
    char *payload = malloc(size + 64);
    long long start = load_ms(), pending = 0;
    void *reply;

    for (long long i = 1; i <= count; i++) {
        int len = snprintf(payload, 64, "%s:%lld:", id, i);
        const char *argv[3] = {cmd, ch, payload};
        size_t lens[3] = {strlen(cmd), strlen(ch), (size_t)len};
        if ((size_t)len < size) {
            memset(payload + len, 'x', size - (size_t)len);
            lens[2] = size;
        }
        redisAppendCommandArgv(c, 3, argv, lens);
        pending++;
        if (rate > 0) {
            long long due = start + i * 1000 / rate;
            while (pending > 0) {
                if (redisGetReply(c, &reply) != REDIS_OK)
                    return 2;
                freeReplyObject(reply);
                pending--;
            }
            while (load_ms() < due)
                itest_sleep_ms(1);
        } else if (pending == 256 || i == count) {
            while (pending > 0) {
                if (redisGetReply(c, &reply) != REDIS_OK)
                    return 2;
                freeReplyObject(reply);
                pending--;
            }
        }
    }
    printf("sent=%lld ms=%lld\n", count, load_ms() - start);
    free(payload);
    redisFree(c);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 1)
        return 0; /* run by the integration runner: only bridge.sh drives this helper */
    if (argc == 9 && strcmp(argv[1], "sub") == 0)
        return load_sub_main(atoi(argv[2]), argv[3], argv[4], atoi(argv[5]), atoll(argv[6]),
                             atoll(argv[7]), argv[8]);
    if (argc == 9 && strcmp(argv[1], "pub") == 0)
        return load_pub_main(atoi(argv[2]), argv[3], argv[4], atoll(argv[5]), argv[6],
                             atoll(argv[7]), (size_t)atoll(argv[8]));
    load_usage();
    return 2;
}
