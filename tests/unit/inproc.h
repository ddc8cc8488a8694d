/* In-process test peers for the suites that drive real clients: each client sits on one end
 * of a socketpair, the test holds the other, and the loop is pumped by hand. The server is
 * built with inproc_up, or inproc_start for suites that need other settings. */
#ifndef EVB_INPROC_H
#define EVB_INPROC_H

#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "command.h"
#include "config.h"
#include "dict.h"
#include "pubsub.h"
#include "server.h"
#include "util.h"

/* Starts the registries, the command table and a listener-less loop on cfg (which the loop
 * takes over). */
static inline void inproc_start(struct config *cfg)
{
    uint8_t seed[16];

    for (int i = 0; i < 16; i++)
        seed[i] = (uint8_t)(i * 31 + 7);
    memset(&server, 0, sizeof(server));
    dict_set_seed(seed);
    pubsub_init();
    command_init();
    ck_assert_int_eq(server_init_loop(cfg, NULL), 0);
}

/* inproc_start with the default configuration, requirepass set when not NULL; replies are
 * readable right after a pass. */
static inline void inproc_up(const char *requirepass)
{
    struct config cfg;

    config_init(&cfg);
    cfg.output_batch_us = 0;
    if (requirepass)
        cfg.requirepass = xstrdup(requirepass);
    inproc_start(&cfg);
}

/* Frees every client, the loop and the registries. */
static inline void inproc_down(void)
{
    server_cleanup();
    pubsub_cleanup();
}

/* The test's end of one connection. The client pointer is valid until the daemon frees it. */
struct peer {
    struct client *c;
    uint64_t id;
    int fd;
};

/* Bytes read from a peer, kept NUL-terminated for messages. */
struct bytes {
    char *p;
    size_t len, cap;
    int eof;
};

/* Connects a new client over a socketpair; sndbuf > 0 shrinks the daemon's send buffer. */
static inline struct peer peer_new(int sndbuf)
{
    int sv[2];
    struct peer p;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    if (sndbuf > 0)
        ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
    p.c = client_create(sv[0], 0, NULL);
    ck_assert_ptr_nonnull(p.c);
    p.id = p.c->id;
    p.fd = sv[1];
    return p;
}

/* Runs the loop a few non-blocking passes: reads, dispatch, flush and frees happen. */
static inline void pump(void)
{
    for (int i = 0; i < 4; i++)
        event_base_loop(server.base, EVLOOP_NONBLOCK);
}

/* Appends n bytes to b. */
static inline void bytes_add(struct bytes *b, const void *p, size_t n)
{
    if (b->cap - b->len < n + 1) {
        b->cap = (b->cap + n + 1) * 2;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* Pumps the loop and reads the peer until nothing more arrives (or EOF), into b. */
static inline void peer_read(struct peer *p, struct bytes *b)
{
    char buf[65536];
    int quiet = 0;

    for (int round = 0; round < 200 && quiet < 3 && !b->eof; round++) {
        pump();
        size_t before = b->len;
        for (;;) {
            ssize_t n = read(p->fd, buf, sizeof(buf));
            if (n > 0) {
                bytes_add(b, buf, (size_t)n);
                continue;
            }
            if (n == 0)
                b->eof = 1;
            else
                ck_assert_msg(errno == EAGAIN || errno == EWOULDBLOCK, "read: %s", strerror(errno));
            break;
        }
        quiet = b->len == before ? quiet + 1 : 0;
    }
}

/* Writes all of buf to the peer (the socket buffer is far larger than any request here). */
static inline void peer_write(struct peer *p, const char *buf, size_t len)
{
    ck_assert_int_eq(write(p->fd, buf, len), (ssize_t)len);
}

#endif
