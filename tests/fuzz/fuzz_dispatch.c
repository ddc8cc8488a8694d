/* libFuzzer harness over the request parser and the command dispatch, in-process: a server
 * built with server_init_loop (no listener), clients on socketpairs whose far ends the harness
 * writes the input into and drains. After each input every client is closed through
 * client_close_async and freed by the loop, and the registries must be empty again.
 * An input whose first byte is below 8 is a mode byte: bit 0 sets requirepass "pw",
 * bit 1 splits the rest between two clients at the second byte's share, bit 2 starts both in
 * RESP3 (HELLO 3). Any other input goes whole to one client without a password. */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
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
#include "log.h"
#include "pubsub.h"
#include "server.h"
#include "util.h"

/* The harness's end of one connection. */
struct peer {
    int fd;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with a message: the fuzzer records the input as a crash. */
static void fuzz_fail(const char *what)
{
    fprintf(stderr, "fuzz_dispatch: %s\n", what);
    abort();
}

/* Builds the registries, the command table and a listener-less loop, once per process. */
static void world_up(void)
{
    static int done;
    struct config cfg;
    uint8_t seed[16];

    if (done)
        return;
    done = 1;
    for (int i = 0; i < 16; i++)
        seed[i] = (uint8_t)(i * 13 + 5);
    log_open(LOG_LEVEL_WARNING + 1, "stderr"); /* quiet: protocol errors are expected */
    config_init(&cfg);
    dict_set_seed(seed);
    pubsub_init();
    command_init();
    if (server_init_loop(&cfg, NULL) < 0)
        fuzz_fail("server_init_loop failed");
    signal(SIGPIPE, SIG_IGN);
}

/* Connects a client over a socketpair; returns the harness's end. */
static struct peer peer_new(void)
{
    int sv[2];
    struct peer p;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        fuzz_fail("socketpair failed");
    client_create(sv[0], 1, NULL);
    p.fd = sv[1];
    return p;
}

/* Reads and discards whatever the daemon sent; returns the byte count. */
static size_t drain(struct peer *p)
{
    char buf[65536];
    size_t total = 0;
    ssize_t n;

    if (p->fd < 0)
        return 0;
    while ((n = read(p->fd, buf, sizeof(buf))) > 0)
        total += (size_t)n;
    return total;
}

/* Runs the loop without blocking until the daemon and the sockets are quiet. */
static void settle(struct peer *peers, int n)
{
    int quiet = 0;

    for (int round = 0; round < 10000 && quiet < 3; round++) {
        event_base_loop(server.base, EVLOOP_NONBLOCK);
        size_t moved = 0;
        for (int i = 0; i < n; i++)
            moved += drain(&peers[i]);
        quiet = moved == 0 ? quiet + 1 : 0;
    }
}

/* Writes len bytes to a peer, running the loop whenever the socket is full. */
static void feed(struct peer *peers, int n, int which, const uint8_t *buf, size_t len)
{
    int stuck = 0;

    while (len > 0 && stuck < 1000) {
        ssize_t w = write(peers[which].fd, buf, len);
        if (w > 0) {
            buf += w;
            len -= (size_t)w;
            stuck = 0;
        } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            return; /* the daemon closed this client (protocol error, QUIT, CLIENT KILL) */
        } else {
            stuck++;
        }
        settle(peers, n);
    }
}

/* Closes every client the daemon still has and lets the loop free them. */
static void close_all(struct peer *peers, int n)
{
    struct client *c;

    TAILQ_FOREACH(c, &server.clients, all_link)
    {
        client_close_async(c, NULL);
    }
    settle(peers, n);
    for (int i = 0; i < n; i++)
        close(peers[i].fd);
    if (server.nclients != 0 || !TAILQ_EMPTY(&server.clients))
        fuzz_fail("clients left after close");
    if (pubsub_count(PUBSUB_CHANNEL) || pubsub_count(PUBSUB_SHARD) || pubsub_numpat())
        fuzz_fail("subscriptions left after every client closed");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char hello3[] = "*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n";
    struct peer peers[2];
    unsigned mode = 0;
    size_t split;
    int n;

    world_up();
    if (size > 0 && data[0] < 8) {
        mode = data[0];
        data++;
        size--;
    }
    free(server.cfg.requirepass);
    server.cfg.requirepass = (mode & 1) ? xstrdup("pw") : NULL;
    n = (mode & 2) ? 2 : 1;
    split = size;
    if (n == 2 && size > 0) {
        split = (size - 1) * data[0] / 255;
        data++;
        size--;
    }
    for (int i = 0; i < n; i++)
        peers[i] = peer_new();
    if (mode & 4) {
        for (int i = 0; i < n; i++)
            feed(peers, n, i, (const uint8_t *)hello3, sizeof(hello3) - 1);
    }
    feed(peers, n, 0, data, split);
    if (n == 2) {
        feed(peers, n, 1, data + split, size - split);
        /* The first client again: replies to what the second one did (messages) drain too. */
        settle(peers, n);
    }
    close_all(peers, n);
    return 0;
}
