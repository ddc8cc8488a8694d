/* Connections: reading and parsing input, running commands, batching output, enforcing
 * the pub/sub output limits and the query-buffer limit, and closing asynchronously.
 * Frees happen only in the server's flush pass, never inside a read or fan-out.
 * Two I/O paths share everything else: plain sockets (read_ev, write_ev, send and recv) and
 * TLS clients on an OpenSSL bufferevent whose callbacks are deferred to the loop. */
#include "client.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "command.h"
#include "log.h"
#include "monitor.h"
#include "msg.h"
#include "multi.h"
#include "pubsub.h"
#include "reply.h"
#include "server.h"
#include "tls.h"
#include "util.h"

/* One read lands here; the parser copies the arguments out (small ones into its arena, big
 * ones into blocks that a frame can then be built around). */
static char client_readbuf[64 * 1024];

/* Input is parsed here unless the client holds a parser of its own: one left mid-request at
 * the end of a read (client_process_input moves the state into it), kept until the client
 * idles. So a client whose requests arrive whole never holds a parser, and idle
 * connections cost no parser memory at all. Busy while its command runs: input processed
 * meanwhile (a resumed client) gets a parser of its own. */
static struct resp_parser client_shared_parser;
static int client_shared_busy;

/* A connection is not written more than this per pass, so one fast reader of a big
 * backlog cannot starve the others. */
size_t client_write_per_pass = 1024 * 1024;
/* Replies queued past this pause reading from the client until they drain below the
 * resume mark: a client that pipelines without reading cannot grow memory without bound. */
#define CLIENT_PAUSE_OUTPUT (1024 * 1024)
#define CLIENT_RESUME_OUTPUT (256 * 1024)
#define CLIENT_PAUSE_CHECK_MS 100
#define CLIENT_PAUSE_STALLS 2
/* A subscriber held for batching is written at once when this much is queued. */
#define CLIENT_BATCH_MAX_BYTES (64 * 1024)
/* Messages this large are never held: one already amortizes a write, and holding them only
 * made 16 KiB fan-out slower (BENCHMARKS.md). */
#define CLIENT_BATCH_MAX_MSG (8 * 1024)
/* How much of a stalled subscriber's output cron copies to release frame log segments. */
#define CLIENT_UNPIN_MAX (4 * 1024 * 1024)
/* One send takes at most this many output chains. */
#define CLIENT_SEND_IOV 128
/* A client pipelining this many commands in one read gets the replies so far sent at once,
 * so it sends more while the rest run instead of waiting for the whole batch: scenario 1
 * (pipeline 64) gained 8 % publishes/s for 2 % more CPU per message (BENCHMARKS.md). */
#define CLIENT_EARLY_REPLY_CMDS 32
/* Reads of a full buffer in one pass before other connections get their turn. */
#define CLIENT_READS_PER_PASS 8
/* Idle this long (nothing read, no message queued, no output pending), a client gives back its
 * parser, output buffer and write event, as Redis frees an idle client's query buffer. */
#define CLIENT_SHRINK_IDLE_MS 2000
/* A TLS connection stops reading from its socket while this much decrypted input waits. */
#define CLIENT_TLS_INPUT_HIGH (256 * 1024)

static void client_read_cb(evutil_socket_t fd, short what, void *arg);
static void client_process_input(struct client *c, const char *buf, size_t len);
static void client_resume_reading(struct client *c);
static void client_write_cb(evutil_socket_t fd, short what, void *arg);
static void client_tls_read_cb(struct bufferevent *bev, void *arg);
static void client_tls_write_cb(struct bufferevent *bev, void *arg);
static void client_tls_event_cb(struct bufferevent *bev, short what, void *arg);
static void client_tls_drain(struct client *c);

/* The output buffer, made when output first comes (and again after cron took an idle client's
 * away). */
static inline struct evbuffer *client_out_buffer(struct client *c)
{
    if (c->out == NULL)
        c->out = evbuffer_new();
    return c->out;
}

static void client_run_to_out(struct client *c);

struct evbuffer *client_output(struct client *c)
{
    if (c->run != NULL)
        client_run_to_out(c);
    return client_out_buffer(c);
}

/* Output queued in out plus, for TLS clients, what the bufferevent has not yet encrypted and
 * sent: the figure output limits, read pausing, the drain and CLIENT LIST go by. */
static inline size_t client_queued(const struct client *c)
{
    size_t n = c->run_len + (c->out ? evbuffer_get_length(c->out) : 0);
    if (c->bev)
        n += evbuffer_get_length(bufferevent_get_output(c->bev));
    return n;
}

/* One allocation class per idle connection: see struct client. */
_Static_assert(sizeof(struct client) <= 256, "struct client outgrew its 256-byte size class");

/* Moves c's run into its output buffer, behind what is there. */
static void client_run_to_out(struct client *c)
{
    if (c->run == NULL)
        return;
    if (msg_run_to_buffer(client_out_buffer(c), c->run, c->run_len))
        c->flags |= CLIENT_F_OUT_PINS;
    c->run = NULL;
    c->run_len = 0;
    c->flags &= ~CLIENT_F_RUN_AFTER_OUT;
}

/* The client that is running a command: frames published to itself are copied into its
 * buffer, in order with its replies, rather than kept as a run. */
static struct client *client_running;
/* The parser that client_running's command came from. */
static struct resp_parser *client_running_parser;

struct client_ext *client_ext(struct client *c)
{
    if (c->ext == NULL)
        c->ext = xcalloc(1, sizeof(*c->ext));
    return c->ext;
}

/* Keeps an IP peer's address packed; anything else is left unknown (family 0). */
static void client_peer_set(struct client_peer *p, const struct sockaddr *sa)
{
    memset(p, 0, sizeof(*p));
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        p->family = AF_INET;
        p->port = ntohs(sin->sin_port);
        memcpy(p->ip, &sin->sin_addr, sizeof(sin->sin_addr));
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        p->family = AF_INET6;
        p->port = ntohs(sin6->sin6_port);
        memcpy(p->ip, &sin6->sin6_addr, sizeof(sin6->sin6_addr));
    }
}

/* The local name stays readable until the fd is closed (also after the peer reset it), and
 * the fd lives as long as the client. */
void client_laddr(const struct client *c, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    if (getsockname(c->fd, (struct sockaddr *)&ss, &sl) < 0) {
        snprintf(buf, len, "?:0");
        return;
    }
    util_format_sockaddr((struct sockaddr *)&ss, sl, buf, len);
}

/* A unix client's address is the socket path, as its local name is (Redis shows both). */
void client_addr(const struct client *c, char *buf, size_t len)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (c->peer.family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(c->peer.port);
        memcpy(&sin->sin_addr, c->peer.ip, sizeof(sin->sin_addr));
    } else if (c->peer.family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(c->peer.port);
        memcpy(&sin6->sin6_addr, c->peer.ip, sizeof(sin6->sin6_addr));
    } else {
        client_laddr(c, buf, len);
        return;
    }
    util_format_sockaddr((struct sockaddr *)&ss, sizeof(ss), buf, len);
}

/* What both kinds of connection share: the struct, registered in server.clients. */
static struct client *client_new(int fd, unsigned flags, const struct sockaddr *peer)
{
    struct client *c = xcalloc(1, sizeof(*c));

    c->id = ++server.next_client_id;
    c->fd = fd;
    c->flags = flags;
    c->resp = 2;
    client_peer_set(&c->peer, peer);
    if (server.cfg.requirepass == NULL)
        c->flags |= CLIENT_F_AUTHENTICATED;
    c->ctime_ms = c->last_ms = server.now_ms;
    /* A new subscriber is not busy: no message in the last passes, nor in the window. */
    c->last_deliver_pass = server.passes - 2;
    c->last_deliver_us = (uint32_t)(server.now_us - 10 * 1000000LL);
    c->last_cmd = "NULL";
    TAILQ_INSERT_TAIL(&server.clients, c, all_link);
    server.nclients++;
    return c;
}

struct client *client_create(int fd, int is_unix, const struct sockaddr *peer)
{
    struct client *c = client_new(fd, is_unix ? CLIENT_F_UNIX : 0, peer);

    c->read_ev = event_new(server.base, fd, EV_READ | EV_PERSIST, client_read_cb, c);
    event_add(c->read_ev, NULL);
    return c;
}

/* The bufferevent owns the SSL, which owns the fd (BEV_OPT_CLOSE_ON_FREE): client_free closes
 * nothing itself. Callbacks are deferred to the loop, so none runs inside client_write (which
 * hands output to OpenSSL at once) or inside another client's fan-out. */
struct client *client_create_tls(int fd, const struct sockaddr *peer)
{
    SSL *ssl = tls_new_ssl();
    struct bufferevent *bev =
        bufferevent_openssl_socket_new(server.base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                       BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    EVB_ASSERT(bev != NULL); /* fails only when out of memory */
    struct client *c = client_new(fd, CLIENT_F_TLS, peer);

    c->bev = bev;
    /* A peer that closes TCP without close_notify has just gone, as on a plain socket. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    /* libevent's default of 16 KiB per event would cut a large frame into many loop passes. */
    bufferevent_set_max_single_read(bev, sizeof(client_readbuf));
    bufferevent_set_max_single_write(bev, (ev_ssize_t)client_write_per_pass);
    bufferevent_setwatermark(bev, EV_READ, 0, CLIENT_TLS_INPUT_HIGH);
    bufferevent_setcb(bev, client_tls_read_cb, client_tls_write_cb, client_tls_event_cb, c);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    return c;
}

/* Stops reading from the client (plain: the read event; TLS: the bufferevent's reading). */
static void client_read_disable(struct client *c)
{
    if (c->bev)
        bufferevent_disable(c->bev, EV_READ);
    else
        event_del(c->read_ev);
}

/* Reads from the client again. */
static void client_read_enable(struct client *c)
{
    if (c->bev)
        bufferevent_enable(c->bev, EV_READ);
    else
        event_add(c->read_ev, NULL);
}

/* Reading is left on: a TLS handshake still in progress needs it, and input is ignored once
 * CLIENT_F_CLOSE_AFTER_REPLY is set (a TLS client's stays under the read watermark). */
void client_refuse(struct client *c, const char *text)
{
    evbuffer_add(client_output(c), text, strlen(text));
    c->flags |= CLIENT_F_CLOSE_AFTER_REPLY;
    client_schedule_write(c);
}

void client_close_async(struct client *c, const char *why)
{
    if (c->flags & CLIENT_F_CLOSE_ASAP)
        return;
    c->flags |= CLIENT_F_CLOSE_ASAP;
    if (why) {
        char addr[CLIENT_ADDR_LEN];
        client_addr(c, addr, sizeof(addr));
        log_verbose("Client id=%llu addr=%s closed: %s", (unsigned long long)c->id, addr, why);
    }
    if (c->bev) {
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    } else {
        event_del(c->read_ev);
        if (c->write_ev)
            event_del(c->write_ev);
    }
    TAILQ_INSERT_TAIL(&server.closing, c, closing_link);
    server_schedule_flush();
}

/* Says goodbye with close_notify when the session is healthy (the event callback makes the
 * shutdown quiet after an error or the peer's EOF), then frees the bufferevent, its SSL and
 * the fd. libevent clears the callbacks first, so deferred ones never see the freed client. */
static void client_tls_free(struct bufferevent *bev)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);

    if (ssl && SSL_is_init_finished(ssl))
        SSL_shutdown(ssl); /* one non-blocking attempt; the peer may already be gone */
    ERR_clear_error();
    bufferevent_free(bev);
}

void client_free(struct client *c)
{
    if (c->flags & CLIENT_F_PENDING_WRITE)
        TAILQ_REMOVE(&server.pending, c, pending_link);
    if (c->flags & CLIENT_F_BATCHING)
        TAILQ_REMOVE(&server.batching, c, batching_link);
    TAILQ_REMOVE(&server.clients, c, all_link);
    server.nclients--;
    pubsub_drop_client(c);
    monitor_remove(c);
    if (c->bev) {
        client_tls_free(c->bev);
    } else {
        event_free(c->read_ev);
        if (c->write_ev)
            event_free(c->write_ev);
        close(c->fd);
    }
    if (c->out)
        evbuffer_free(c->out); /* releases shared frames still queued */
    if (c->run)
        msg_run_release(c->run);
    if (c->parser) {
        resp_parser_free(c->parser);
        free(c->parser);
    }
    if (c->ext) {
        multi_discard(c);
        free(c->ext->stash);
        if (c->ext->pause_ev)
            event_free(c->ext->pause_ev);
        free(c->ext->user_name);
        free(c->ext->name);
        free(c->ext->lib_name);
        free(c->ext->lib_ver);
        free(c->ext);
    }
    free(c);
}

void client_close_over_query_limit(struct client *c, const char *what, const char *field,
                                   size_t bytes)
{
    char addr[CLIENT_ADDR_LEN];
    client_addr(c, addr, sizeof(addr));
    log_ratelimited(LOG_LEVEL_WARNING, "Closing client that %s: id=%llu addr=%s %s=%zu", what,
                    (unsigned long long)c->id, addr, field, bytes);
    server.stats.query_limit_disconnections++;
    client_close_async(c, NULL);
}

int client_replies_over_limit(struct client *c, const char *what)
{
    size_t queued = client_queued(c);

    if ((long long)queued <= server.cfg.client_query_buffer_limit)
        return 0;
    client_close_over_query_limit(c, what, "omem", queued);
    return 1;
}

size_t client_input_pending(const struct client *c)
{
    return c->parser ? resp_parser_pending(c->parser) : 0;
}

size_t client_output_len(const struct client *c)
{
    return client_queued(c);
}

void client_schedule_write(struct client *c)
{
    if (c->flags & (CLIENT_F_PENDING_WRITE | CLIENT_F_WRITE_WAIT | CLIENT_F_CLOSE_ASAP))
        return;
    if (c->flags & CLIENT_F_BATCHING) {
        TAILQ_REMOVE(&server.batching, c, batching_link);
        c->flags &= ~CLIENT_F_BATCHING;
    }
    if (c->run_len == 0 && (c->out == NULL || evbuffer_get_length(c->out) == 0) &&
        !(c->flags & CLIENT_F_CLOSE_AFTER_REPLY))
        return;
    c->flags |= CLIENT_F_PENDING_WRITE;
    TAILQ_INSERT_TAIL(&server.pending, c, pending_link);
    server_schedule_flush();
}

/* Like client_schedule_write, for replies to commands: they go to the front of the flush,
 * so a publisher gets its replies (and sends more) before the subscribers are written. */
static void client_schedule_reply(struct client *c)
{
    client_schedule_write(c);
    if ((c->flags & CLIENT_F_PENDING_WRITE) && TAILQ_FIRST(&server.pending) != c) {
        TAILQ_REMOVE(&server.pending, c, pending_link);
        TAILQ_INSERT_HEAD(&server.pending, c, pending_link);
    }
}

/* Applies Redis's pubsub class of client-output-buffer-limit: over the hard limit, or over
 * the soft limit for longer than the window, the subscriber is dropped. */
static void client_check_output_limits(struct client *c, size_t len)
{
    const struct config *cfg = &server.cfg;
    int drop = 0;

    if (cfg->pubsub_hard_limit && len >= (size_t)cfg->pubsub_hard_limit) {
        drop = 1;
    } else if (cfg->pubsub_soft_limit && len >= (size_t)cfg->pubsub_soft_limit) {
        if (!(c->flags & CLIENT_F_OVER_SOFT)) {
            c->flags |= CLIENT_F_OVER_SOFT;
            client_ext(c)->soft_since_ms = server.now_ms;
        } else if (server.now_ms - c->ext->soft_since_ms > cfg->pubsub_soft_seconds * 1000LL) {
            drop = 1;
        }
    } else {
        c->flags &= ~CLIENT_F_OVER_SOFT;
    }
    if (drop) {
        char addr[CLIENT_ADDR_LEN];
        client_addr(c, addr, sizeof(addr));
        log_ratelimited(LOG_LEVEL_WARNING,
                        "Client id=%llu addr=%s scheduled to be closed ASAP for overcoming of "
                        "output buffer limits (omem=%zu)",
                        (unsigned long long)c->id, addr, len);
        server.stats.output_limit_disconnections++;
        client_close_async(c, NULL);
    }
}

void client_send_text(struct client *c, const void *p, size_t len)
{
    if (c->flags & CLIENT_F_CLOSE_ASAP)
        return;
    evbuffer_add(client_output(c), p, len);
    client_check_output_limits(c, client_queued(c));
    if (!(c->flags & CLIENT_F_CLOSE_ASAP))
        client_schedule_write(c);
}

void client_deliver(struct client *c, struct msg *m)
{
    if (c->flags & CLIENT_F_CLOSE_ASAP)
        return;
    /* A small frame right after the client's run in the log (RESP2's, or RESP3's for RESP3
     * clients) extends it: the fast path, which touches nothing but c when the run is all the
     * client has queued. A frame that does not continue the run (it went to a new log
     * segment, or the client has several subscriptions) starts a new one and the old run moves
     * into out. A client whose socket is full, a TLS one, and the one running the publishing
     * command get the frame copied (or referenced) into out instead. */
    const char *d = NULL;
    size_t len;
    if (msg_logged(m) && c != client_running && !(c->flags & (CLIENT_F_TLS | CLIENT_F_WRITE_WAIT)))
        d = c->resp == 2 ? m->data : msg_data3(m);
    if (d != NULL && c->run != NULL && msg_run_continues(c->run, c->run_len, d)) {
        c->run_len += (uint32_t)m->len;
        len = c->flags & CLIENT_F_RUN_AFTER_OUT ? client_queued(c) : c->run_len;
    } else if (d != NULL) {
        client_run_to_out(c);
        size_t before = c->out ? evbuffer_get_length(c->out) : 0;
        if (before > 0)
            c->flags |= CLIENT_F_RUN_AFTER_OUT;
        msg_run_start(d);
        c->run = d;
        c->run_len = (uint32_t)m->len;
        len = before + c->run_len;
    } else {
        msg_append(client_output(c), m, c->resp);
        len = client_queued(c);
    }
    const struct config *cfg = &server.cfg;
    if ((cfg->pubsub_soft_limit && len >= (size_t)cfg->pubsub_soft_limit) ||
        (cfg->pubsub_hard_limit && len >= (size_t)cfg->pubsub_hard_limit) ||
        (c->flags & CLIENT_F_OVER_SOFT)) {
        client_check_output_limits(c, len);
        if (c->flags & CLIENT_F_CLOSE_ASAP)
            return;
    }
    uint32_t since = (uint32_t)server.now_us - c->last_deliver_us;
    unsigned last_pass = c->last_deliver_pass, pass = server.passes;
    c->last_deliver_us = (uint32_t)server.now_us;
    c->last_deliver_pass = pass;
    if (c->flags & CLIENT_F_BATCHING) {
        server.batch_joins++; /* joins are what make holding pay (server_adapt_batching) */
        if (len < CLIENT_BATCH_MAX_BYTES)
            return; /* else written now, with what it holds */
    } else if (c->flags & (CLIENT_F_PENDING_WRITE | CLIENT_F_WRITE_WAIT)) {
        return;
    }
    /* While the loop is saturated, a busy subscriber (another message within the window, or
     * in the previous loop pass when passes are long) waits for the window to end or 64 KiB,
     * so its messages leave in one write and the saved syscalls go to fan-out. One that gets
     * messages rarely gains nothing from waiting and is written at the end of this pass. */
    if (server.batch_engaged && len < CLIENT_BATCH_MAX_BYTES && m->len < CLIENT_BATCH_MAX_MSG &&
        (since < (uint32_t)server.batch_window_us || pass - last_pass <= 1)) {
        server_batch_client(c);
        return;
    }
    client_schedule_write(c);
}

/* TLS output: the whole queue moves into the bufferevent (evbuffer_add_buffer relinks the
 * chains, shared frames included, without copying) and OpenSSL encrypts and writes what the
 * socket takes right away; the rest waits in the bufferevent, whose write callback runs once
 * it is empty. Returns the bytes moved. */
static size_t client_tls_push(struct client *c)
{
    size_t n = c->out ? evbuffer_get_length(c->out) : 0;

    if (n)
        evbuffer_add_buffer(bufferevent_get_output(c->bev), c->out);
    return n;
}

/* Sends the start of c->out: send(2) for one chain, sendmsg(2) for several. The socket calls
 * skip the file layer that write(2) and writev(2) (evbuffer_write) go through: vfs_writev and
 * fdget_pos were 5 % of the server's time in 1,000-subscriber fan-out, send's descriptor lookup
 * is 1.6 %. Sends at most max bytes; returns the bytes sent, or -1 with errno set. */
static ssize_t client_send(struct client *c, size_t max)
{
    struct evbuffer_iovec v[CLIENT_SEND_IOV];
    int n = evbuffer_peek(c->out, (ev_ssize_t)max, NULL, v, CLIENT_SEND_IOV);

    /* The last extent evbuffer_peek gives is a whole chain, which may run past max. */
    if (n <= 1)
        return send(c->fd, v[0].iov_base, v[0].iov_len < max ? v[0].iov_len : max, MSG_NOSIGNAL);
    if (n > CLIENT_SEND_IOV)
        n = CLIENT_SEND_IOV;
    struct iovec iov[CLIENT_SEND_IOV];
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        iov[i].iov_base = v[i].iov_base;
        iov[i].iov_len = v[i].iov_len;
        total += v[i].iov_len;
    }
    if (total > max)
        iov[n - 1].iov_len -= total - max;
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    return sendmsg(c->fd, &mh, MSG_NOSIGNAL);
}

/* Sends c's run straight from the log when nothing is queued before it; what the socket does
 * not take, or a run behind queued output, moves into out. Returns the bytes sent; *full is set
 * when the socket took less than offered, so no further send is tried this pass. */
static size_t client_send_run(struct client *c, int *full)
{
    if (c->out != NULL && evbuffer_get_length(c->out) > 0) {
        client_run_to_out(c); /* out and run leave together in the sends that follow */
        return 0;
    }
    ssize_t n = send(c->fd, c->run, c->run_len, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            client_close_async(c, strerror(errno));
            return 0;
        }
        n = 0;
    } else {
        server.stats.output_writes++;
    }
    if ((size_t)n < c->run_len) {
        *full = 1;
        c->run += n;
        c->run_len -= (uint32_t)n;
        client_run_to_out(c);
    } else {
        msg_run_release(c->run);
        c->run = NULL;
        c->run_len = 0;
    }
    return (size_t)n;
}

void client_write(struct client *c)
{
    size_t written = 0;

    if (c->flags & CLIENT_F_CLOSE_ASAP)
        return;
    if (c->bev) {
        written = client_tls_push(c);
    } else {
        int full = 0;
        if (c->run != NULL) {
            written = client_send_run(c, &full);
            if (c->flags & CLIENT_F_CLOSE_ASAP)
                return;
        }
        while (!full && c->out && evbuffer_get_length(c->out) > 0 &&
               written < client_write_per_pass) {
            ssize_t n = client_send(c, client_write_per_pass - written);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                    break;
                client_close_async(c, strerror(errno));
                return;
            }
            if (n == 0)
                break;
            evbuffer_drain(c->out, (size_t)n);
            server.stats.output_writes++;
            written += (size_t)n;
        }
    }
    server.stats.net_output_bytes += (long long)written;
    if ((c->flags & (CLIENT_F_READ_PAUSED | CLIENT_F_WRITES_FIRST)) &&
        client_queued(c) < CLIENT_RESUME_OUTPUT) {
        c->flags &= ~CLIENT_F_WRITES_FIRST; /* it reads now: it may be paused again */
        if (c->flags & CLIENT_F_READ_PAUSED)
            client_resume_reading(c);
    }
    if (c->flags & CLIENT_F_CLOSE_ASAP)
        return;
    /* Output left (the socket is full): wait for it to take more. A TLS client's wait ends
     * in client_tls_write_cb, when the bufferevent has written everything. */
    if (client_queued(c) > 0) {
        if (!(c->flags & CLIENT_F_WRITE_WAIT)) {
            c->flags |= CLIENT_F_WRITE_WAIT;
            /* Made the first time a write waits; cron frees it once the client idles. */
            if (!c->bev && c->write_ev == NULL)
                c->write_ev =
                    event_new(server.base, c->fd, EV_WRITE | EV_PERSIST, client_write_cb, c);
            if (!c->bev)
                event_add(c->write_ev, NULL);
        }
        return;
    }
    c->flags &= ~CLIENT_F_OUT_PINS; /* out is empty */
    if (c->flags & CLIENT_F_WRITE_WAIT) {
        c->flags &= ~CLIENT_F_WRITE_WAIT;
        if (!c->bev)
            event_del(c->write_ev);
    }
    c->flags &= ~CLIENT_F_OVER_SOFT;
    if (c->flags & CLIENT_F_CLOSE_AFTER_REPLY)
        client_close_async(c, NULL);
}

/* The socket can take more: continue a write that filled it. */
static void client_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    server_update_time();
    c->flags &= ~CLIENT_F_WRITE_WAIT;
    event_del(c->write_ev);
    client_write(c);
}

/* Output not yet acknowledged by the peer: c's queue and the socket's send queue. The sum
 * falls only when the peer reads (its ACKs empty the send queue); moving bytes from the
 * queue into the socket leaves it as it is. */
static size_t client_unread(const struct client *c)
{
    int inq = 0;

    if (ioctl(c->fd, SIOCOUTQ, &inq) < 0 || inq < 0)
        inq = 0;
    return client_queued(c) + (size_t)inq;
}

/* A paused client's output was not read at all in CLIENT_PAUSE_STALLS checks
 * CLIENT_PAUSE_CHECK_MS apart: the peer is not reading, most likely because it writes its
 * whole pipeline before reading any reply, as redis-py's pipelines and hiredis's blocking API
 * do. Waiting would deadlock both sides, so it is read like Redis reads everyone, its replies
 * bounded by client_query_buffer_limit instead. A client that is reading, however slowly,
 * stays paused. */
static void client_pause_check_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    struct client_ext *x = c->ext;
    size_t unread = client_unread(c);
    struct timeval tv = {0, CLIENT_PAUSE_CHECK_MS * 1000};

    if (!(c->flags & CLIENT_F_READ_PAUSED) || (c->flags & CLIENT_F_CLOSE_ASAP))
        return;
    if (unread < x->pause_unread) { /* it reads: keep waiting */
        x->pause_unread = unread;
        x->pause_stalls = 0;
        evtimer_add(x->pause_ev, &tv);
        return;
    }
    if (++x->pause_stalls < CLIENT_PAUSE_STALLS) {
        evtimer_add(x->pause_ev, &tv);
        return;
    }
    server_update_time();
    c->flags |= CLIENT_F_WRITES_FIRST;
    client_resume_reading(c);
    server_schedule_flush();
}

/* Stops reading and keeps the input not yet run until the output drains. */
static void client_pause_reading(struct client *c, const char *buf, size_t len)
{
    struct client_ext *x = client_ext(c);
    char *stash = xmalloc(x->stash_len + len);
    /* Unrun input from before (resumed but paused again) stays in front. */
    if (x->stash_len)
        memcpy(stash, x->stash, x->stash_len);
    memcpy(stash + x->stash_len, buf, len);
    free(x->stash);
    x->stash = stash;
    x->stash_len += len;
    c->flags |= CLIENT_F_READ_PAUSED;
    client_read_disable(c);
    if (client_auth_required(c)) /* no benefit of the doubt before AUTH */
        return;
    struct timeval tv = {0, CLIENT_PAUSE_CHECK_MS * 1000};
    if (x->pause_ev == NULL)
        x->pause_ev = evtimer_new(server.base, client_pause_check_cb, c);
    x->pause_unread = client_unread(c);
    x->pause_stalls = 0;
    evtimer_add(x->pause_ev, &tv);
}

/* The output drained: read again, running the stashed input first. */
static void client_resume_reading(struct client *c)
{
    char *stash = c->ext ? c->ext->stash : NULL;
    size_t len = c->ext ? c->ext->stash_len : 0;

    if (c->ext) {
        c->ext->stash = NULL;
        c->ext->stash_len = 0;
    }
    c->flags &= ~CLIENT_F_READ_PAUSED;
    if (c->ext && c->ext->pause_ev)
        evtimer_del(c->ext->pause_ev);
    if (!(c->flags & (CLIENT_F_CLOSE_AFTER_REPLY | CLIENT_F_CLOSE_ASAP)))
        client_read_enable(c);
    if (len)
        client_process_input(c, stash, len);
    free(stash);
    /* A TLS client may have decrypted input waiting that no new read will announce. */
    if (c->bev)
        client_tls_drain(c);
}

/* The parser for c's next bytes: its own, or the shared one when that is free. */
static struct resp_parser *client_parser_take(struct client *c)
{
    if (c->parser)
        return c->parser;
    if (!client_shared_busy) {
        client_shared_busy = 1;
        return &client_shared_parser;
    }
    c->parser = xmalloc(sizeof(*c->parser));
    resp_parser_init(c->parser);
    return c->parser;
}

/* Ends a use of the shared parser: a request left in progress (or an error) moves into a
 * parser of c's own, so the shared one is empty for the next client. */
static void client_parser_release(struct client *c, struct resp_parser *p)
{
    if (p != &client_shared_parser)
        return;
    client_shared_busy = 0;
    if (resp_parser_idle(p))
        return;
    EVB_ASSERT(c->parser == NULL); /* a client's input is never processed re-entrantly */
    c->parser = xmalloc(sizeof(*c->parser));
    resp_parser_move(c->parser, p);
}

/* Feeds bytes to the parser and runs each complete command, in order. */
static void client_process_input(struct client *c, const char *buf, size_t len)
{
    struct resp_limits lim;
    struct resp_parser *p = client_parser_take(c);
    unsigned ncmds = 0;

    while (len > 0 && !(c->flags & (CLIENT_F_CLOSE_AFTER_REPLY | CLIENT_F_CLOSE_ASAP))) {
        size_t used = 0;
        if (client_queued(c) > CLIENT_PAUSE_OUTPUT) {
            if (!(c->flags & CLIENT_F_WRITES_FIRST)) {
                client_pause_reading(c, buf, len);
                break;
            }
            if (client_replies_over_limit(c, "did not read its replies past the query buffer "
                                             "limit"))
                break;
        }
        lim.max_bulk_len = server.cfg.proto_max_bulk_len;
        lim.unauthenticated = client_auth_required(c);
        enum resp_status st = resp_parser_feed(p, &lim, buf, len, &used);
        buf += used;
        len -= used;
        if (st == RESP_COMMAND) {
            c->argc = p->argc;
            c->argv = p->argv;
            c->argvlen = p->argvlen;
            struct client *outer = client_running;
            struct resp_parser *outer_parser = client_running_parser;
            client_running = c;
            client_running_parser = p;
            command_dispatch(c);
            /* Subscribers and monitors are held to the pubsub limits for every byte they are
             * sent, replies included, as Redis counts them (a RESP3 subscriber's COMMAND DOCS
             * queued 724 MB past a 32 MB hard limit). */
            if ((c->flags & (CLIENT_F_PUBSUB | CLIENT_F_MONITOR)) &&
                !(c->flags & CLIENT_F_CLOSE_ASAP))
                client_check_output_limits(c, client_queued(c));
            client_running = outer;
            client_running_parser = outer_parser;
            c->argc = 0;
            c->argv = NULL;
            c->argvlen = NULL;
            resp_parser_next(p);
            if (++ncmds % CLIENT_EARLY_REPLY_CMDS == 0 && c->bev == NULL &&
                !(c->flags &
                  (CLIENT_F_READ_PAUSED | CLIENT_F_WRITE_WAIT | CLIENT_F_CLOSE_AFTER_REPLY)))
                client_write(c);
        } else if (st == RESP_ERROR) {
            char addr[CLIENT_ADDR_LEN];
            client_addr(c, addr, sizeof(addr));
            server.stats.protocol_errors++;
            reply_error(client_output(c), resp_parser_error(p));
            log_ratelimited(LOG_LEVEL_VERBOSE, "Protocol error (%s) from client id=%llu addr=%s",
                            resp_parser_error(p), (unsigned long long)c->id, addr);
            c->flags |= CLIENT_F_CLOSE_AFTER_REPLY;
        } else if ((long long)resp_parser_pending(p) > server.cfg.client_query_buffer_limit) {
            client_close_over_query_limit(c, "reached max query buffer length", "qbuf",
                                          resp_parser_pending(p));
        }
    }
    client_parser_release(c, p);
    if (c->flags & CLIENT_F_CLOSE_AFTER_REPLY)
        client_read_disable(c);
    client_schedule_reply(c);
}

struct resp_block *client_arg_block(const struct client *c, int i)
{
    if (c != client_running || client_running_parser == NULL || i >= c->argc)
        return NULL;
    struct resp_block *b = resp_parser_arg_block(client_running_parser, i);
    /* Only if argv[i] still is that argument (nothing rewrote argv on the way). */
    return b != NULL && c->argv[i] == b->data + RESP_ARG_HEADROOM ? b : NULL;
}

/* The socket has bytes (or EOF). */
static void client_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    const unsigned stop = CLIENT_F_READ_PAUSED | CLIENT_F_CLOSE_AFTER_REPLY | CLIENT_F_CLOSE_ASAP;

    /* A full buffer means the peer is pipelining: keep reading (up to a bound, for fairness)
     * so one pass fans out more messages and each subscriber gets them in fewer writes. */
    for (int i = 0; i < CLIENT_READS_PER_PASS; i++) {
        ssize_t n = recv(fd, client_readbuf, sizeof(client_readbuf), 0);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                return;
            client_close_async(c, n == 0 ? "connection closed by peer" : strerror(errno));
            return;
        }
        server_update_time();
        c->last_ms = server.now_ms;
        server.stats.net_input_bytes += n;
        server.stats.input_reads++;
        client_process_input(c, client_readbuf, (size_t)n);
        if ((size_t)n < sizeof(client_readbuf) || (c->flags & stop))
            return;
    }
}

/* Runs the decrypted input of a TLS client through the parser, a buffer at a time, until it
 * is used up or the client stops reading (paused, closing). */
static void client_tls_drain(struct client *c)
{
    const unsigned stop = CLIENT_F_READ_PAUSED | CLIENT_F_CLOSE_AFTER_REPLY | CLIENT_F_CLOSE_ASAP;
    struct evbuffer *in = bufferevent_get_input(c->bev);

    while (evbuffer_get_length(in) > 0 && !(c->flags & stop)) {
        int n = evbuffer_remove(in, client_readbuf, sizeof(client_readbuf));
        if (n <= 0)
            break;
        server.stats.net_input_bytes += n;
        client_process_input(c, client_readbuf, (size_t)n);
    }
}

/* The bufferevent decrypted input. */
static void client_tls_read_cb(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;

    server_update_time();
    c->last_ms = server.now_ms;
    server.stats.input_reads++;
    client_tls_drain(c);
}

/* The bufferevent wrote all it held: continue a write that filled the socket. */
static void client_tls_write_cb(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;

    if (!(c->flags & CLIENT_F_WRITE_WAIT))
        return;
    server_update_time();
    c->flags &= ~CLIENT_F_WRITE_WAIT;
    client_write(c);
}

/* Handshake done, or the connection ended: EOF, a socket error or a TLS failure (such as a
 * refused client certificate), logged at verbose level with OpenSSL's reason. */
static void client_tls_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct client *c = arg;
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    char why[320], reason[256];
    unsigned long err, e;

    if (what & BEV_EVENT_CONNECTED) {
        char addr[CLIENT_ADDR_LEN];
        client_addr(c, addr, sizeof(addr));
        c->flags |= CLIENT_F_TLS_OPEN;
        log_debug("Client id=%llu addr=%s: %s handshake done, cipher %s", (unsigned long long)c->id,
                  addr, SSL_get_version(ssl), SSL_get_cipher_name(ssl));
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    /* libevent keeps SSL_get_error() codes (library 0) and OpenSSL's queue, and hands them out
     * newest first: the oldest library error is the cause. */
    err = 0;
    while ((e = bufferevent_get_openssl_error(bev)) != 0)
        if (ERR_GET_LIB(e) != 0)
            err = e;
    ERR_clear_error();
    SSL_set_quiet_shutdown(ssl, 1); /* nothing more is sent on a failed or closed session */
    if (what & BEV_EVENT_EOF)
        snprintf(why, sizeof(why), "connection closed by peer");
    else if (err) {
        tls_error_text(err, reason, sizeof(reason));
        snprintf(why, sizeof(why), "TLS %s: %s",
                 (c->flags & CLIENT_F_TLS_OPEN) ? "error" : "handshake failed", reason);
    } else
        snprintf(why, sizeof(why), "TLS connection error");
    client_close_async(c, why);
}

size_t client_sub_count(const struct client *c, enum pubsub_kind kind)
{
    return pubsub_client_count(c, kind);
}

int client_auth_required(const struct client *c)
{
    return server.cfg.requirepass != NULL && !(c->flags & CLIENT_F_AUTHENTICATED);
}

/* What libevent spends per output buffer and per chain of it, for tot-mem (not exported). */
#define CLIENT_EVBUFFER_OVERHEAD 128
#define CLIENT_CHAIN_OVERHEAD 64

/* Bytes c's own parser holds, its buffers and itself; 0 while it has none. */
static size_t client_parser_memory(const struct client *c)
{
    return c->parser ? sizeof(*c->parser) + resp_parser_memory(c->parser) : 0;
}

/* A fair estimate of the bytes one client holds: itself, the events and output buffer it has
 * right now, its parser, subscriptions, and its extension with stashed input and strings. */
static size_t client_memory(const struct client *c, size_t omem, size_t oll)
{
    size_t n = sizeof(*c) + omem + oll * CLIENT_CHAIN_OVERHEAD + client_parser_memory(c) +
               pubsub_client_memory(c);
    n += (size_t)((c->read_ev != NULL) + (c->write_ev != NULL)) * event_get_struct_event_size();
    if (c->out)
        n += CLIENT_EVBUFFER_OVERHEAD;
    if (c->ext) {
        const char *strs[] = {c->ext->name, c->ext->lib_name, c->ext->lib_ver};
        n += sizeof(*c->ext) + c->ext->stash_len + multi_memory(c);
        for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
            n += strs[i] ? strlen(strs[i]) + 1 : 0;
    }
    return n;
}

/* The number of chains holding c's queued output (CLIENT LIST's oll). */
static size_t client_output_chains(const struct client *c)
{
    size_t oll = c->out && evbuffer_get_length(c->out)
                     ? (size_t)evbuffer_peek(c->out, -1, NULL, NULL, 0)
                     : 0;
    if (c->bev && evbuffer_get_length(bufferevent_get_output(c->bev)))
        oll += (size_t)evbuffer_peek(bufferevent_get_output(c->bev), -1, NULL, NULL, 0);
    return oll;
}

size_t client_memory_total(void)
{
    struct client *c;
    size_t n = 0;

    TAILQ_FOREACH(c, &server.clients, all_link)
    {
        n += client_memory(c, client_queued(c), client_output_chains(c));
    }
    return n;
}

void client_describe(const struct client *c, struct evbuffer *out)
{
    char flags[8], *f = flags;
    if (c->flags & CLIENT_F_MONITOR)
        *f++ = 'O';
    if (c->flags & CLIENT_F_PUBSUB)
        *f++ = 'P';
    if (c->flags & CLIENT_F_MULTI)
        *f++ = 'x';
    if (c->flags & CLIENT_F_CLOSE_AFTER_REPLY)
        *f++ = 'c';
    if (c->flags & CLIENT_F_CLOSE_ASAP)
        *f++ = 'A';
    if (c->flags & CLIENT_F_UNIX)
        *f++ = 'U';
    if (f == flags)
        *f++ = 'N';
    *f = '\0';
    /* omem is every queued output byte (libevent has no fixed reply buffer, so obl, rbs and
     * rbp are 0); oll is the number of chains holding them. */
    size_t omem = client_queued(c);
    size_t oll = client_output_chains(c);
    size_t qbuf = client_input_pending(c);
    size_t pmem = c->parser ? resp_parser_memory(c->parser) : 0;
    size_t argv_mem = 0;
    char addr[CLIENT_ADDR_LEN], laddr[CLIENT_ADDR_LEN];
    const char *name = c->ext ? c->ext->name : NULL;
    const char *lib_name = c->ext ? c->ext->lib_name : NULL;
    const char *lib_ver = c->ext ? c->ext->lib_ver : NULL;
    client_addr(c, addr, sizeof(addr));
    client_laddr(c, laddr, sizeof(laddr));
    for (int i = 0; c->argv && i < c->argc; i++)
        argv_mem += c->argvlen[i] + 1;
    int reading =
        !(c->flags & (CLIENT_F_READ_PAUSED | CLIENT_F_CLOSE_AFTER_REPLY | CLIENT_F_CLOSE_ASAP));
    evbuffer_add_printf(
        out,
        "id=%llu addr=%s laddr=%s fd=%d name=%s age=%lld idle=%lld flags=%s db=%d sub=%zu "
        "psub=%zu ssub=%zu multi=%ld qbuf=%zu qbuf-free=%zu argv-mem=%zu multi-mem=%zu rbs=0 "
        "rbp=0 obl=0 oll=%zu omem=%zu tot-mem=%zu events=%s%s cmd=%s user=%s redir=-1 resp=%d "
        "lib-name=%s lib-ver=%s",
        (unsigned long long)c->id, addr, laddr, c->fd, name ? name : "",
        (server.now_ms - c->ctime_ms) / 1000, (server.now_ms - c->last_ms) / 1000, flags, c->db,
        client_sub_count(c, PUBSUB_CHANNEL), client_sub_count(c, PUBSUB_PATTERN),
        client_sub_count(c, PUBSUB_SHARD), multi_count(c), qbuf, pmem > qbuf ? pmem - qbuf : 0,
        argv_mem, multi_memory(c), oll, omem, client_memory(c, omem, oll), reading ? "r" : "",
        (c->flags & CLIENT_F_WRITE_WAIT) ? "w" : "", c->last_cmd,
        client_user_name(c) ? client_user_name(c) : "default", c->resp, lib_name ? lib_name : "",
        lib_ver ? lib_ver : "");
}

/* Replaces the first bytes of c's output (up to CLIENT_UNPIN_MAX) by a copy, releasing what
 * they referenced: frame log segments, large frames. */
static void client_unpin_output(struct client *c)
{
    size_t len = evbuffer_get_length(c->out);
    ev_ssize_t n = (ev_ssize_t)(len < CLIENT_UNPIN_MAX ? len : CLIENT_UNPIN_MAX);
    int nvec = evbuffer_peek(c->out, n, NULL, NULL, 0);
    struct evbuffer_iovec *v = xmalloc((size_t)(nvec > 0 ? nvec : 1) * sizeof(*v));
    struct evbuffer *copy = evbuffer_new();

    nvec = evbuffer_peek(c->out, n, NULL, v, nvec);
    for (int i = 0; i < nvec && n > 0; i++) {
        size_t take = v[i].iov_len < (size_t)n ? v[i].iov_len : (size_t)n;
        evbuffer_add(copy, v[i].iov_base, take);
        n -= (ev_ssize_t)take;
    }
    free(v);
    evbuffer_drain(c->out, evbuffer_get_length(copy));
    evbuffer_prepend_buffer(c->out, copy); /* moves the chains back in front, no copy */
    evbuffer_free(copy);
    c->flags &= ~CLIENT_F_OUT_PINS;
}

size_t client_cron(struct client *c)
{
    const unsigned busy = CLIENT_F_PENDING_WRITE | CLIENT_F_WRITE_WAIT | CLIENT_F_BATCHING |
                          CLIENT_F_CLOSE_AFTER_REPLY | CLIENT_F_CLOSE_ASAP;
    size_t released = 0;
    long long idle = server.now_ms - c->last_ms;
    int timeout = server.cfg.timeout;

    /* A subscriber whose socket stayed full until this tick may be stalled for good: what its
     * output references in the frame log is copied, so it holds no 64 KiB segment for a tail
     * of a few KiB, and its memory is what the output limits count. References are only made
     * before the socket fills (no run starts while it is full), so they sit in the first
     * bytes: those queued in one pass. */
    if ((c->flags & (CLIENT_F_OUT_PINS | CLIENT_F_WRITE_WAIT)) ==
            (CLIENT_F_OUT_PINS | CLIENT_F_WRITE_WAIT) &&
        c->out != NULL) {
        client_unpin_output(c);
    }

    /* A connection that never finishes its TLS handshake would hold a descriptor and a client
     * slot for nothing, whatever [server] timeout says: the cheapest way to fill maxclients. */
    if ((c->flags & (CLIENT_F_TLS | CLIENT_F_TLS_OPEN)) == CLIENT_F_TLS &&
        server.now_ms - c->ctime_ms > server.cfg.tls_handshake_timeout_ms) {
        char why[96];
        snprintf(why, sizeof(why), "TLS handshake not done within %d ms",
                 server.cfg.tls_handshake_timeout_ms);
        SSL_set_quiet_shutdown(bufferevent_openssl_get_ssl(c->bev), 1);
        client_close_async(c, why);
        return 0;
    }
    if (timeout > 0 && !(c->flags & CLIENT_F_PUBSUB) && idle > timeout * 1000LL) {
        char addr[CLIENT_ADDR_LEN];
        client_addr(c, addr, sizeof(addr));
        log_verbose("Closing idle client id=%llu addr=%s", (unsigned long long)c->id, addr);
        client_close_async(c, NULL);
        return 0;
    }
    if (idle <= CLIENT_SHRINK_IDLE_MS ||
        (uint32_t)server.now_us - c->last_deliver_us <= CLIENT_SHRINK_IDLE_MS * 1000u ||
        (c->flags & busy))
        return 0;
    if (c->parser && resp_parser_idle(c->parser)) {
        released += client_parser_memory(c);
        resp_parser_free(c->parser);
        free(c->parser);
        c->parser = NULL;
    }
    /* Not on the write path: a busy subscriber keeps its buffer, only idle ones give it up. */
    if (c->out && evbuffer_get_length(c->out) == 0) {
        released += CLIENT_EVBUFFER_OVERHEAD;
        if (c->reply == c->out)
            c->reply = NULL; /* set again before the next command runs */
        evbuffer_free(c->out);
        c->out = NULL;
    }
    if (c->write_ev) {
        released += event_get_struct_event_size();
        event_free(c->write_ev);
        c->write_ev = NULL;
    }
    return released;
}

void client_release_shared(void)
{
    if (!client_shared_busy)
        resp_parser_free(&client_shared_parser);
}
