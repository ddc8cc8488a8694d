/* The event loop and everything process-wide: listeners and accept, the flush pass that
 * writes each client's batched output once per loop pass and frees closing clients, the
 * cron, signals (stop, reload), the pidfile. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "acl.h"
#include "client.h"
#include "http.h"
#include "log.h"
#include "monitor.h"
#include "msg.h"
#include "metrics.h"
#include "notify.h"
#include "pubsub.h"
#include "tls.h"
#include "util.h"

struct server server;

#define SERVER_CRON_MS 100
#define SERVER_MAX_ACCEPTS 1000
/* How long a stopping server keeps sending what subscribers already have queued. */
#define SERVER_DRAIN_MS 2000
/* The adaptive batch window moves between output_batch_us and this fraction of it. */
#define SERVER_BATCH_RANGE 8
/* Fewer holds than this in a cron interval say nothing about whether holding pays. */
#define SERVER_BATCH_MIN_HOLDS 100
/* After holding did not pay, batching stays off this long before it is tried again; each
 * further miss in a row doubles the wait, up to 16 times, since every try holds subscribers
 * for a few hundred milliseconds before it is judged. */
#define SERVER_BATCH_RETRY_MS 5000
#define SERVER_BATCH_BACKOFF_MAX 4

void server_update_time(void)
{
    server.now_us = util_ustime();
    server.now_ms = server.now_us / 1000;
}

/* Ends the batch window: every held subscriber is written in the next flush pass. */
static void server_batch_release(void)
{
    struct client *c;

    server.batch_armed = 0;
    server_update_time();
    while ((c = TAILQ_FIRST(&server.batching)) != NULL) {
        TAILQ_REMOVE(&server.batching, c, batching_link);
        c->flags &= ~CLIENT_F_BATCHING;
        client_schedule_write(c);
    }
}

/* The batch timer fired (the timerfd is readable, or the fallback timer ran out). */
static void server_batch_cb(evutil_socket_t fd, short what, void *arg)
{
    uint64_t expirations;

    if (fd >= 0 && read(fd, &expirations, sizeof(expirations)) < 0 && errno == EAGAIN)
        return; /* not expired after all */
    server_batch_release();
}

void server_batch_client(struct client *c)
{
    long long w = server.batch_window_us;

    c->flags |= CLIENT_F_BATCHING;
    TAILQ_INSERT_TAIL(&server.batching, c, batching_link);
    server.batch_holds++;
    if (server.batch_armed)
        return;
    server.batch_armed = 1;
    if (server.batch_fd < 0) {
        struct timeval tv = {(time_t)(w / 1000000), (suseconds_t)(w % 1000000)};
        evtimer_add(server.batch_ev, &tv);
        return;
    }
    struct itimerspec its = {.it_value = {(time_t)(w / 1000000), (long)(w % 1000000) * 1000L}};
    if (timerfd_settime(server.batch_fd, 0, &its, NULL) < 0)
        server_batch_release(); /* the window cannot be timed: hold nothing */
}

/* Makes the loop and the batch timer: a timerfd of its own, so the window is exact to the
 * microsecond while the rest of the loop keeps libevent's millisecond timeouts. libevent's
 * precise-timer mode would also give microseconds, but it re-arms its timerfd before every
 * epoll_wait, one more system call per loop pass whether or not anything is batched; it is
 * used only without a timerfd, so the fallback timer is not rounded to a coarse clock tick. */
static struct event_base *server_loop_and_batch_timer(void)
{
    struct event_base *base;
    struct event_config *ecfg;

    server.batch_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (server.batch_fd >= 0 && (base = event_base_new()) != NULL) {
        server.batch_ev =
            event_new(base, server.batch_fd, EV_READ | EV_PERSIST, server_batch_cb, NULL);
        if (server.batch_ev && event_add(server.batch_ev, NULL) == 0)
            return base;
        if (server.batch_ev)
            event_free(server.batch_ev);
        server.batch_ev = NULL;
        event_base_free(base);
    }
    if (server.batch_fd >= 0)
        close(server.batch_fd);
    server.batch_fd = -1;
    if ((ecfg = event_config_new()) == NULL)
        return NULL;
    event_config_set_flag(ecfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    base = event_base_new_with_config(ecfg);
    event_config_free(ecfg);
    if (base)
        server.batch_ev = evtimer_new(base, server_batch_cb, NULL);
    return base;
}

void server_schedule_flush(void)
{
    if (server.flush_scheduled)
        return;
    server.flush_scheduled = 1;
    event_active(server.flush_ev, EV_TIMEOUT, 0);
}

/* Runs after the read callbacks of a loop pass: one write per client with output, so many
 * messages for one subscriber leave together; then frees the clients marked closing. */
static void server_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *c;

    server.flush_scheduled = 0;
    server.passes++;
    while ((c = TAILQ_FIRST(&server.pending)) != NULL) {
        TAILQ_REMOVE(&server.pending, c, pending_link);
        c->flags &= ~CLIENT_F_PENDING_WRITE;
        client_write(c);
    }
    while ((c = TAILQ_FIRST(&server.closing)) != NULL) {
        TAILQ_REMOVE(&server.closing, c, closing_link);
        client_free(c);
    }
}

/* Re-enables accepting after a pause for descriptor exhaustion. */
static void server_resume_accept_cb(evutil_socket_t fd, short what, void *arg)
{
    for (int i = 0; i < server.nlisteners; i++)
        event_add(server.listeners[i].ev, NULL);
    http_accept_enable(1);
}

int server_accept_exhausted(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

void server_pause_accept(void)
{
    static long long last_log_ms;
    struct timeval tv = {0, 100 * 1000};

    if (server.now_ms - last_log_ms > 10000) {
        log_warning("Out of file descriptors accepting connections; pausing accept (%s)",
                    strerror(errno));
        last_log_ms = server.now_ms;
    }
    for (int i = 0; i < server.nlisteners; i++)
        event_del(server.listeners[i].ev);
    http_accept_enable(0);
    if (server.resume_ev == NULL)
        server.resume_ev = evtimer_new(server.base, server_resume_accept_cb, NULL);
    evtimer_add(server.resume_ev, &tv);
}

/* Protected mode's refusal; "-DENIED" is what clients look for, the rest explains. */
#define SERVER_DENIED_TEXT                                                                         \
    "-DENIED evbrokerd is running in protected mode because protected mode is enabled and no "     \
    "password is set for the default user. In this mode connections are only accepted from the "   \
    "loopback interface. If you want to connect from external computers, either set a password "   \
    "([security] requirepass) or, if the broker is not reachable from the internet, set "          \
    "[security] protected_mode = no in the configuration file and reload it (SIGHUP).\r\n"

/* Refuses a connection with an error line (maxclients, protected mode); err is NULL on the
 * TLS port, where plain text before the handshake would only be noise to the client. */
static void server_reject(int fd, const char *err)
{
    if (err) {
        ssize_t ignored = write(fd, err, strlen(err));
        (void)ignored;
    }
    close(fd);
    server.stats.rejected_connections++;
}

/* A listener is readable: accept what is waiting (bounded per call). */
static void server_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    struct listener *l = arg;

    server_update_time();
    for (int i = 0; i < SERVER_MAX_ACCEPTS; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (server_accept_exhausted(errno))
                server_pause_accept();
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                     errno != ECONNABORTED)
                log_ratelimited(LOG_LEVEL_WARNING, "accept: %s", strerror(errno));
            return;
        }
        if (server.nclients >= server.cfg.maxclients) {
            /* As Redis does on its TLS port: closed, no handshake spent on it. */
            server_reject(fd, l->is_tls ? NULL : "-ERR max number of clients reached\r\n");
            continue;
        }
        int denied = !l->is_unix && server.cfg.protected_mode && server.cfg.requirepass == NULL &&
                     !util_sockaddr_is_loopback((struct sockaddr *)&ss);
        if (denied && !l->is_tls) {
            server_reject(fd, SERVER_DENIED_TEXT);
            continue;
        }
        if (!denied) /* Redis counts a refusal only in rejected_connections */
            server.stats.connections_received++;
        if (!l->is_unix) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            if (server.cfg.tcp_keepalive > 0) {
                int idle = server.cfg.tcp_keepalive, intvl = idle / 3 ? idle / 3 : 1, cnt = 3;
                setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
                setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
                setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
                setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
            }
        }
        /* A unix client's address is its socket's name, read when it is shown. */
        const struct sockaddr *peer = l->is_unix ? NULL : (const struct sockaddr *)&ss;
        if (!l->is_tls) {
            client_create(fd, l->is_unix, peer);
            continue;
        }
        struct client *c = client_create_tls(fd, peer);
        if (denied) {
            /* The explanation goes out over TLS once the handshake is done, as in Redis. */
            client_refuse(c, SERVER_DENIED_TEXT);
            server.stats.rejected_connections++;
        }
    }
}

/* Adds a listening socket to the loop. */
static void server_add_listener(int fd, int is_unix, int is_tls, const char *addr)
{
    struct listener *l = &server.listeners[server.nlisteners++];
    l->fd = fd;
    l->is_unix = is_unix;
    l->is_tls = is_tls;
    snprintf(l->addr, sizeof(l->addr), "%s", addr);
    l->ev = event_new(server.base, fd, EV_READ | EV_PERSIST, server_accept_cb, l);
    event_add(l->ev, NULL);
}

/* Binds one TCP address on port (plain or TLS). Returns 0, 1 when an optional address was
 * skipped, or -1. */
static int server_listen_tcp(const char *spec, int port, int is_tls)
{
    int optional = spec[0] == '-';
    const char *ip = optional ? spec + 1 : spec;
    struct sockaddr_storage ss;
    socklen_t sl;
    int one = 1, fd;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        sl = sizeof(*sin);
    } else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        sl = sizeof(*sin6);
    } else {
        log_warning("bind: '%s' is not an IP address", ip);
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, server.cfg.tcp_backlog) < 0)
        goto fail;
    server_add_listener(fd, 0, is_tls, ip);
    log_notice("Listening on %s%s%s:%d%s", strchr(ip, ':') ? "[" : "", ip,
               strchr(ip, ':') ? "]" : "", port, is_tls ? " (TLS)" : "");
    return 0;
fail:
    if (optional && (errno == EADDRNOTAVAIL || errno == EAFNOSUPPORT)) {
        log_notice("Skipping optional address %s: %s", ip, strerror(errno));
        if (fd >= 0)
            close(fd);
        return 1;
    }
    int v6 = strchr(ip, ':') != NULL;
    log_warning("Could not listen on %s%s%s:%d%s: %s%s", v6 ? "[" : "", ip, v6 ? "]" : "", port,
                is_tls ? " (TLS)" : "", strerror(errno),
                errno == EADDRNOTAVAIL || errno == EAFNOSUPPORT
                    ? " (a '-' before the address in [server] bind skips it when unavailable)"
                    : "");
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Binds the unix socket, replacing a stale file. Returns 0 or -1. */
static int server_listen_unix(const char *path)
{
    struct sockaddr_un sun;
    int fd;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        log_warning("unixsocket path too long: %s", path);
        return -1;
    }
    strcpy(sun.sun_path, path);
    unlink(path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        listen(fd, server.cfg.tcp_backlog) < 0) {
        log_warning("Could not listen on unix socket %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (server.cfg.unixsocketperm)
        chmod(path, (mode_t)server.cfg.unixsocketperm);
    server_add_listener(fd, 1, 0, path);
    log_notice("Listening on unix socket %s", path);
    return 0;
}

/* Closes the listeners (at shutdown) and removes the unix socket file. */
static void server_close_listeners(void)
{
    for (int i = 0; i < server.nlisteners; i++) {
        struct listener *l = &server.listeners[i];
        event_free(l->ev);
        close(l->fd);
        if (l->is_unix)
            unlink(l->addr);
    }
    server.nlisteners = 0;
}

/* Idle clients freeing this much in one cron pass make it return free pages to the system. */
#define SERVER_RELEASE_MIN (64 * 1024)
/* Busiest the loop may be (per cent of the last cron interval) for cron to let the allocator
 * decay its aged free pages. */
#define SERVER_DECAY_LOAD_MAX 50

/* Time the loop thread spent running (exact, from its CPU clock) plus waiting for a CPU (from
 * schedstat, when the kernel keeps it), in ns: both mean the loop had work, so on a shared
 * machine a starved but busy loop still counts as busy. */
static long long server_busy_ns(void)
{
    char buf[96];
    unsigned long long run, wait = 0;
    struct timespec ts;

    if (server.load_fd >= 0) {
        ssize_t n = pread(server.load_fd, buf, sizeof(buf) - 1, 0);
        if (n > 0) {
            buf[n] = '\0';
            if (sscanf(buf, "%llu %llu", &run, &wait) != 2)
                wait = 0;
        }
        if (n <= 0 || wait == 0) {
            /* Unreadable, or not kept by this kernel: CPU time alone from now on. */
            close(server.load_fd);
            server.load_fd = -1;
            wait = 0;
        } else {
            server.load_wait_ns = (long long)wait;
        }
    }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec + server.load_wait_ns;
}

void server_adapt_batching(int load_pct)
{
    int mark = server.cfg.output_batch_load, max = server.cfg.output_batch_us;
    int min = max / SERVER_BATCH_RANGE > 0 ? max / SERVER_BATCH_RANGE : max;
    long long holds = server.batch_holds, joins = server.batch_joins;
    int judged = server.batch_engaged && holds >= SERVER_BATCH_MIN_HOLDS;
    /* Messages join a held subscriber in proportion to the window: scaled to the longest one,
     * fewer than one per hold means most held writes would still carry one message. Below the
     * mark the window only shrinks, so what holding gives now is all it will: under one join
     * per two holds, it costs more than it saves. */
    int missed = judged && (joins * max < holds * (long long)server.batch_window_us ||
                            (load_pct < mark && 2 * joins < holds));

    server.batch_holds = server.batch_joins = 0;
    server.load_pct = load_pct;
    if (judged && !missed)
        server.batch_backoff = 0; /* holding paid: the next miss waits the least again */
    if (max == 0) {
        server.batch_engaged = 0;
    } else if (mark == 0) {
        server.batch_engaged = 1;
        server.batch_window_us = max;
    } else if (missed) {
        server.batch_engaged = 0;
        server.batch_retry_ms = server.now_ms + (SERVER_BATCH_RETRY_MS << server.batch_backoff);
        if (server.batch_backoff < SERVER_BATCH_BACKOFF_MAX)
            server.batch_backoff++;
        server.stats.batch_declines++;
    } else if (load_pct >= mark) {
        if (server.batch_engaged || server.now_ms >= server.batch_retry_ms) {
            server.batch_window_us = server.batch_engaged ? server.batch_window_us * 2 : min;
            server.batch_engaged = 1;
            server.load_low_since_ms = 0;
        }
    } else if (server.batch_engaged) {
        server.batch_window_us /= 2;
        if (load_pct >= mark / 2)
            server.load_low_since_ms = 0;
        else if (server.load_low_since_ms == 0)
            server.load_low_since_ms = server.now_ms;
        else if (server.now_ms - server.load_low_since_ms >= 1000)
            server.batch_engaged = 0;
    }
    if (server.batch_window_us > max)
        server.batch_window_us = max;
    if (server.batch_window_us < min)
        server.batch_window_us = min;
}

/* Samples how busy the loop was since the last cron tick and adapts batching to it. */
static void server_update_load(void)
{
    long long busy = server_busy_ns();
    long long span_us = server.now_us - server.load_sample_us;

    if (span_us <= 0)
        return;
    long long pct = (busy - server.load_busy_ns) / 10 / span_us;
    pct = pct < 0 ? 0 : pct > 100 ? 100 : pct;
    server.load_busy_ns = busy;
    server.load_sample_us = server.now_us;
    server_adapt_batching((int)pct);
}

/* Periodic work: the load sample, client timeouts and idle-buffer shrinking. */
static void server_cron_cb(evutil_socket_t fd, short what, void *arg)
{
    static long long last_clients_ms, last_deliveries;
    struct client *c, *next;

    server_update_time();
    server_update_load();
    if (server.now_ms - last_clients_ms < 1000)
        return;
    last_clients_ms = server.now_ms;
    size_t released = 0;
    for (c = TAILQ_FIRST(&server.clients); c != NULL; c = next) {
        next = TAILQ_NEXT(c, all_link);
        if (!(c->flags & CLIENT_F_CLOSE_ASAP))
            released += client_cron(c);
    }
    /* No message for a second: the frame log's idle segments go too. */
    if (server.stats.deliveries == last_deliveries)
        released += msg_log_release();
    last_deliveries = server.stats.deliveries;
    /* Many clients went idle at once: give their pages back now rather than keep them.
     * Otherwise the allocator may give back the pages that aged, unless the loop is busy:
     * then it does so itself as it allocates, and purging would only fault them in again. */
    if (released >= SERVER_RELEASE_MIN)
        util_release_free_memory();
    else if (server.load_pct < SERVER_DECAY_LOAD_MAX)
        util_decay_free_memory();
}

/* While stopping: ends the loop once every queued byte is sent or the drain time is up. */
static void server_drain_cb(evutil_socket_t fd, short what, void *arg)
{
    static long long deadline;
    struct client *c;
    int busy = 0;

    server_update_time();
    if (deadline == 0)
        deadline = server.now_ms + SERVER_DRAIN_MS;
    TAILQ_FOREACH(c, &server.clients, all_link)
    if (!(c->flags & CLIENT_F_CLOSE_ASAP) && client_output_len(c) > 0)
        busy = 1;
    if (!busy || server.now_ms >= deadline)
        event_base_loopbreak(server.base);
}

/* SIGTERM / SIGINT: stop accepting, let queued output drain briefly, then leave the loop. */
static void server_stop(int sig)
{
    struct timeval tv = {0, 20 * 1000};

    if (server.shutting_down)
        return;
    server.shutting_down = 1;
    log_notice("Received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    notify_send("STOPPING=1\nSTATUS=Shutting down");
    server_close_listeners();
    server.drain_ev = event_new(server.base, -1, EV_PERSIST, server_drain_cb, NULL);
    event_add(server.drain_ev, &tv);
}

/* config_load report callback for reloads: each problem goes to the log. */
static void server_log_problem(const char *problem, void *arg)
{
    log_warning("%s", problem);
}

/* Takes a string value from the fresh configuration. */
static void take_string(char **dst, char **src)
{
    free(*dst);
    *dst = *src;
    *src = NULL;
}

/* After a reload changed users or permissions: disconnects clients whose user is gone or
 * disabled, or who hold a subscription they may no longer have. */
static void server_recheck_clients(void)
{
    struct client *c;
    TAILQ_FOREACH(c, &server.clients, all_link)
    {
        if (c->flags & CLIENT_F_CLOSE_ASAP)
            continue;
        if (acl_recheck_client(c, &server.cfg) < 0) {
            char addr[CLIENT_ADDR_LEN];
            client_addr(c, addr, sizeof(addr));
            log_notice("Disconnecting client id=%llu addr=%s user=%s: access revoked by reload",
                       (unsigned long long)c->id, addr,
                       client_user_name(c) ? client_user_name(c) : "default");
            if (c->ext)
                c->ext->user = NULL; /* its old user is about to be freed */
            client_close_async(c, NULL);
        }
    }
}

/* Redis's rule: maxclients needs as many descriptors plus 32 for the listeners, the log, the
 * bridge and a connection being refused, and here HTTP_MAX_CONNS more for the metrics endpoint
 * when it listens. Raises the soft limit as far as the hard one allows, and lowers maxclients
 * to what fits, so that a client beyond it gets "max number of clients reached" instead of
 * waiting in the backlog of a loop that cannot accept. Returns -1 when even the reserve does
 * not fit. */
static int server_fit_maxclients(struct config *cfg)
{
    struct rlimit rl;
    int reserve = SERVER_RESERVED_FDS + (cfg->metrics_listen ? HTTP_MAX_CONNS : 0);
    rlim_t need = (rlim_t)cfg->maxclients + (rlim_t)reserve;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
        return 0;
    rlim_t was = rl.rlim_cur;
    rlim_t want = need < rl.rlim_max ? need : rl.rlim_max;
    if (want > rl.rlim_cur) {
        struct rlimit raised = {want, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            rl.rlim_cur = want;
    }
    if (rl.rlim_cur >= need) {
        log_notice("Raised the open files limit from %llu to %llu for maxclients %d",
                   (unsigned long long)was, (unsigned long long)rl.rlim_cur, cfg->maxclients);
        return 0;
    }
    if (rl.rlim_cur <= (rlim_t)reserve) {
        log_warning("The open files limit (%llu) is too low to start: at least %d are needed "
                    "(ulimit -n, or LimitNOFILE= in the unit)",
                    (unsigned long long)rl.rlim_cur, reserve + 1);
        return -1;
    }
    int fit = (int)(rl.rlim_cur - (rlim_t)reserve);
    log_warning("maxclients %d needs %llu open files but the limit is %llu: maxclients reduced "
                "to %d (raise ulimit -n, or LimitNOFILE= in the unit)",
                cfg->maxclients, (unsigned long long)need, (unsigned long long)rl.rlim_cur, fit);
    cfg->maxclients = fit;
    return 0;
}

/* Whether two optional strings differ (NULL = unset). */
static int str_changed(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/* Rebuilds the TLS context when a [tls] setting or one of its files changed (a renewed
 * certificate usually keeps its path), for new connections; when that fails, the running
 * context and settings stay. */
static void server_reload_tls(struct config *cur, struct config *fresh)
{
    /* Unchanged: keep the context, and with it the session cache (every log rotation
     * sends a SIGHUP; resumed sessions should survive it). */
    if (cur->tls_auth_clients == fresh->tls_auth_clients &&
        !str_changed(cur->tls_cert_file, fresh->tls_cert_file) &&
        !str_changed(cur->tls_key_file, fresh->tls_key_file) &&
        !str_changed(cur->tls_ca_cert_file, fresh->tls_ca_cert_file) &&
        !str_changed(cur->tls_ciphers, fresh->tls_ciphers) &&
        !str_changed(cur->tls_ciphersuites, fresh->tls_ciphersuites) && !tls_files_changed(fresh))
        return;
    if (tls_init(fresh) < 0) {
        log_warning("[tls] reload failed; new TLS connections keep the previous certificate "
                    "and settings");
        return;
    }
    cur->tls_auth_clients = fresh->tls_auth_clients;
    take_string(&cur->tls_cert_file, &fresh->tls_cert_file);
    take_string(&cur->tls_key_file, &fresh->tls_key_file);
    take_string(&cur->tls_ca_cert_file, &fresh->tls_ca_cert_file);
    take_string(&cur->tls_ciphers, &fresh->tls_ciphers);
    take_string(&cur->tls_ciphersuites, &fresh->tls_ciphersuites);
    log_notice("[tls] certificate, key, CAs and settings reloaded for new connections");
}

/* Swaps the reloadable keys in and logs the ones that need a restart. */
static void server_apply_reload(struct config *fresh)
{
    struct config *cur = &server.cfg;
    int same_bind = cur->nbind == fresh->nbind;

    for (int i = 0; same_bind && i < cur->nbind; i++)
        same_bind = strcmp(cur->bind[i], fresh->bind[i]) == 0;
    if (!same_bind || cur->port != fresh->port || cur->tcp_backlog != fresh->tcp_backlog ||
        cur->unixsocketperm != fresh->unixsocketperm ||
        (cur->unixsocket == NULL) != (fresh->unixsocket == NULL) ||
        (cur->unixsocket && strcmp(cur->unixsocket, fresh->unixsocket) != 0) ||
        (cur->pidfile == NULL) != (fresh->pidfile == NULL) ||
        (cur->pidfile && strcmp(cur->pidfile, fresh->pidfile) != 0))
        log_warning("Listener or pidfile settings changed: they take effect after a restart");
    if (cur->tls_port != fresh->tls_port)
        log_warning("[tls] port changed: it takes effect after a restart");
    if (server.tls_port > 0 && fresh->tls_port > 0)
        server_reload_tls(cur, fresh);
    if (str_changed(cur->metrics_listen, fresh->metrics_listen))
        log_warning("[metrics] listen changed: it takes effect after a restart");
    if (str_changed(cur->upstream_host, fresh->upstream_host) ||
        cur->upstream_port != fresh->upstream_port ||
        str_changed(cur->upstream_unixsocket, fresh->upstream_unixsocket) ||
        str_changed(cur->upstream_user, fresh->upstream_user) ||
        str_changed(cur->upstream_password, fresh->upstream_password) ||
        cur->upstream_connect_timeout_ms != fresh->upstream_connect_timeout_ms ||
        cur->upstream_reconnect_min_ms != fresh->upstream_reconnect_min_ms ||
        cur->upstream_reconnect_max_ms != fresh->upstream_reconnect_max_ms ||
        str_changed(cur->upstream_channels, fresh->upstream_channels) ||
        cur->upstream_direction != fresh->upstream_direction ||
        cur->upstream_queue_limit != fresh->upstream_queue_limit ||
        cur->upstream_queue_memory != fresh->upstream_queue_memory ||
        cur->upstream_reply_timeout_ms != fresh->upstream_reply_timeout_ms)
        log_warning("[upstream] settings changed: they take effect after a restart");
    if (log_open(fresh->log_level, fresh->log_target) == 0) {
        take_string(&cur->log_target, &fresh->log_target);
    } else {
        log_warning("[log] target %s cannot be opened (%s); logging stays on %s", fresh->log_target,
                    log_open_error(), cur->log_target ? cur->log_target : "stderr");
        log_set_level(fresh->log_level);
    }
    cur->log_level = fresh->log_level;
    cur->maxclients = fresh->maxclients;
    server_fit_maxclients(cur);
    cur->timeout = fresh->timeout;
    cur->tls_handshake_timeout_ms = fresh->tls_handshake_timeout_ms;
    cur->tcp_keepalive = fresh->tcp_keepalive;
    cur->proto_max_bulk_len = fresh->proto_max_bulk_len;
    cur->client_query_buffer_limit = fresh->client_query_buffer_limit;
    cur->pubsub_hard_limit = fresh->pubsub_hard_limit;
    cur->pubsub_soft_limit = fresh->pubsub_soft_limit;
    cur->pubsub_soft_seconds = fresh->pubsub_soft_seconds;
    cur->output_batch_us = fresh->output_batch_us;
    cur->output_batch_load = fresh->output_batch_load;
    take_string(&cur->requirepass, &fresh->requirepass);
    cur->protected_mode = fresh->protected_mode;
    /* Swap the users: clients are re-pointed at the new ones before the old are freed. */
    struct config_user *users = cur->users;
    int nusers = cur->nusers;
    cur->users = fresh->users;
    cur->nusers = fresh->nusers;
    fresh->users = users;
    fresh->nusers = nusers;
    server_recheck_clients();
}

int server_apply_cli(struct config *cfg)
{
    const char *flags[] = {"port", "bind"}, *values[] = {server.cli_port, server.cli_bind};
    char err[256];

    for (int i = 0; i < 2; i++) {
        if (values[i] && config_set(cfg, "server", flags[i], values[i], err, sizeof(err)) < 0) {
            log_warning("--%s %s: %s", flags[i], values[i], err);
            return -1;
        }
    }
    return 0;
}

/* SIGHUP: re-read the file; apply the reloadable keys when it is entirely valid. */
static void server_reload(void)
{
    struct config fresh;

    if (server.config_path == NULL) {
        log_notice("SIGHUP: no configuration file to reload");
        log_reopen();
        return;
    }
    notify_send("RELOADING=1\nSTATUS=Reloading configuration");
    log_reopen();
    config_init(&fresh);
    if (config_load(&fresh, server.config_path, server_log_problem, NULL) != 0 ||
        server_apply_cli(&fresh) < 0) {
        log_warning("Reload of %s failed; keeping the running configuration", server.config_path);
        config_free(&fresh);
    } else {
        server_apply_reload(&fresh);
        config_free(&fresh);
        log_notice("Configuration reloaded from %s", server.config_path);
    }
    notify_send("READY=1\nSTATUS=Serving");
}

/* Signal events run inside the loop, so their work is ordinary code. */
static void server_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    server_update_time();
    if (sig == SIGHUP)
        server_reload();
    else
        server_stop((int)sig);
}

/* Writes the pidfile if one is configured. */
static void server_write_pidfile(void)
{
    if (server.cfg.pidfile == NULL)
        return;
    FILE *f = fopen(server.cfg.pidfile, "w");
    if (f == NULL) {
        log_warning("Cannot write pidfile %s: %s", server.cfg.pidfile, strerror(errno));
        return;
    }
    fprintf(f, "%d\n", (int)getpid());
    fclose(f);
    server.pidfile_written = 1;
}

int server_init_loop(struct config *cfg, const char *config_path)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    const char *cli_port = server.cli_port, *cli_bind = server.cli_bind;

    memset(&server, 0, sizeof(server));
    server.cli_port = cli_port; /* main set them before */
    server.cli_bind = cli_bind;
    server.batch_fd = -1;
    server.cfg = *cfg;
    server.config_path = config_path;
    TAILQ_INIT(&server.clients);
    TAILQ_INIT(&server.pending);
    TAILQ_INIT(&server.closing);
    TAILQ_INIT(&server.batching);
    server_update_time();
    server.start_ms = server.now_ms;
    server.start_unix = (long long)time(NULL);
    server.load_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    server.load_busy_ns = server_busy_ns();
    server.load_sample_us = server.now_us;
    server.batch_engaged = server.cfg.output_batch_us > 0 && server.cfg.output_batch_load == 0;
    server.batch_window_us = server.cfg.output_batch_us;
    server.base = server_loop_and_batch_timer();
    if (server.base == NULL || server.batch_ev == NULL) {
        log_warning("Cannot create the event base");
        return -1;
    }
    signal(SIGPIPE, SIG_IGN);
    server.flush_ev = event_new(server.base, -1, 0, server_flush_cb, NULL);
    server.cron_ev = event_new(server.base, -1, EV_PERSIST, server_cron_cb, NULL);
    struct timeval tv = {0, SERVER_CRON_MS * 1000};
    event_add(server.cron_ev, &tv);
    for (int i = 0; i < 3; i++) {
        server.signal_evs[i] = evsignal_new(server.base, sigs[i], server_signal_cb, NULL);
        event_add(server.signal_evs[i], NULL);
    }
    return 0;
}

int server_init(struct config *cfg, const char *config_path)
{
    if (server_init_loop(cfg, config_path) < 0 || server_fit_maxclients(&server.cfg) < 0)
        return -1;
    if (server.cfg.port > 0) {
        for (int i = 0; i < server.cfg.nbind; i++)
            if (server_listen_tcp(server.cfg.bind[i], server.cfg.port, 0) < 0)
                return -1;
    }
    if (server.cfg.tls_port > 0) {
        if (tls_init(&server.cfg) < 0)
            return -1;
        for (int i = 0; i < server.cfg.nbind; i++)
            if (server_listen_tcp(server.cfg.bind[i], server.cfg.tls_port, 1) < 0)
                return -1;
        server.tls_port = server.cfg.tls_port;
    }
    if (server.cfg.unixsocket && server_listen_unix(server.cfg.unixsocket) < 0)
        return -1;
    if (server.nlisteners == 0) {
        log_warning("No address to listen on (port 0, no TLS port and no unixsocket, or every "
                    "bind address skipped)");
        return -1;
    }
    server.port = server.cfg.port;
    if (metrics_start() < 0)
        return -1;
    server_write_pidfile();
    return 0;
}

int server_run(void)
{
    char status[128];
    log_notice("Ready to accept connections");
    snprintf(status, sizeof(status), "READY=1\nSTATUS=Serving on port %d, %d listener(s)",
             server.port, server.nlisteners);
    notify_send(status);
    event_base_dispatch(server.base);
    log_notice("evbrokerd is now ready to exit, bye bye...");
    return 0;
}

void server_cleanup(void)
{
    struct client *c;

    while ((c = TAILQ_FIRST(&server.clients)) != NULL) {
        if (c->flags & CLIENT_F_CLOSE_ASAP)
            TAILQ_REMOVE(&server.closing, c, closing_link);
        client_free(c);
    }
    client_release_shared();
    monitor_cleanup();
    msg_log_release();
    /* A freed TLS bufferevent is finalized by a deferred callback: give the loop one pass so
     * it runs before the base goes away (the loop may have been left before it could). */
    if (server.base)
        event_base_loop(server.base, EVLOOP_NONBLOCK);
    server_close_listeners();
    if (server.cfg.pidfile && server.pidfile_written)
        unlink(server.cfg.pidfile);
    for (int i = 0; i < 3; i++)
        if (server.signal_evs[i])
            event_free(server.signal_evs[i]);
    if (server.drain_ev)
        event_free(server.drain_ev);
    if (server.resume_ev)
        event_free(server.resume_ev);
    if (server.flush_ev)
        event_free(server.flush_ev);
    if (server.batch_ev)
        event_free(server.batch_ev);
    if (server.batch_fd >= 0)
        close(server.batch_fd);
    server.batch_fd = -1;
    if (server.load_fd >= 0)
        close(server.load_fd);
    if (server.cron_ev)
        event_free(server.cron_ev);
    metrics_stop();
    tls_cleanup();
    if (server.base)
        event_base_free(server.base);
    server.base = NULL;
    config_free(&server.cfg);
}
