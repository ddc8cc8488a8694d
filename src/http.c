/* The metrics endpoint's HTTP server (see http.h for its bounds). A connection is a
 * bufferevent that reads at most one request head, answers it, and reads the next only once
 * the answer has left. */
#include "http.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "server.h"
#include "util.h"

struct http_conn {
    struct bufferevent *bev;
    struct event *deadline; /* closes a connection that stalls a request or its response */
    int keep_alive;         /* after the response being written, read the next request */
    int writing;            /* a response is in the output: read nothing meanwhile */
    int served;             /* answered a request: between requests it may give way */
    int lingering;          /* answered for the last time: discarding input until EOF */
    LIST_ENTRY(http_conn) link;
};

static struct {
    struct evconnlistener *listener;
    http_handler_fn *handler;
    LIST_HEAD(, http_conn) conns;
    int nconns;
} http;

static const char *http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

static void http_conn_free(struct http_conn *hc)
{
    LIST_REMOVE(hc, link);
    http.nconns--;
    event_free(hc->deadline);
    bufferevent_free(hc->bev);
    free(hc);
}

static void http_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    http_conn_free(arg);
}

static void http_arm_deadline(struct http_conn *hc)
{
    struct timeval tv = {HTTP_DEADLINE_MS / 1000, (HTTP_DEADLINE_MS % 1000) * 1000};
    evtimer_add(hc->deadline, &tv);
}

/* Queues a response; head_only for HEAD. Reading stops until it has been written. */
static void http_respond(struct http_conn *hc, int minor, int status, const char *ctype,
                         struct evbuffer *body, int head_only, const char *extra)
{
    struct evbuffer *out = bufferevent_get_output(hc->bev);
    char date[64];
    time_t now = time(NULL);
    struct tm tm;

    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&now, &tm));
    evbuffer_add_printf(
        out,
        "HTTP/1.%d %d %s\r\nDate: %s\r\nContent-Type: %s\r\n"
        "Content-Length: %zu\r\n%s%s\r\n",
        minor, status, http_reason(status), date, ctype, body ? evbuffer_get_length(body) : 0,
        hc->keep_alive ? (minor == 0 ? "Connection: keep-alive\r\n" : "") : "Connection: close\r\n",
        extra ? extra : "");
    if (body && !head_only)
        evbuffer_add_buffer(out, body);
    hc->writing = 1;
    bufferevent_disable(hc->bev, EV_READ);
}

/* An error answer, after which the connection closes. */
static void http_refuse(struct http_conn *hc, int minor, int status, const char *extra)
{
    struct evbuffer *body = evbuffer_new();

    evbuffer_add_printf(body, "%s\n", http_reason(status));
    hc->keep_alive = 0;
    http_respond(hc, minor, status, "text/plain; charset=utf-8", body, 0, extra);
    evbuffer_free(body);
}

/* Whether a comma-separated header value lists token, in any case. */
static int http_has_token(const char *val, const char *token)
{
    size_t tlen = strlen(token);

    for (const char *p = val; *p;) {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, " \t,");
        if (n == tlen && strncasecmp(p, token, n) == 0)
            return 1;
        p += n;
    }
    return 0;
}

/* The value of header name in a request head (NUL-terminated, lines end in LF: the CRs are
 * gone), copied into val; 1 if present. */
static int http_header(const char *head, const char *name, char *val, size_t vlen)
{
    size_t nlen = strlen(name);

    for (const char *l = strchr(head, '\n'); l && l[1]; l = strchr(l + 1, '\n')) {
        const char *h = l + 1;
        if (strncasecmp(h, name, nlen) != 0 || h[nlen] != ':')
            continue;
        h += nlen + 1;
        h += strspn(h, " \t");
        size_t n = strcspn(h, "\n");
        while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
            n--;
        snprintf(val, vlen, "%.*s", (int)n, h);
        return 1;
    }
    return 0;
}

/* Answers one complete request head (NUL-terminated, CRs removed). */
static void http_handle(struct http_conn *hc, char *head)
{
    char method[16], target[HTTP_MAX_HEAD], version[16], val[128];
    int minor;

    if (sscanf(head, "%15s %8191s %15s", method, target, version) != 3 ||
        strncmp(version, "HTTP/", 5) != 0) {
        http_refuse(hc, 1, 400, NULL);
        return;
    }
    if (strcmp(version, "HTTP/1.0") != 0 && strcmp(version, "HTTP/1.1") != 0) {
        http_refuse(hc, 1, 505, NULL);
        return;
    }
    minor = version[7] - '0';
    int head_only = strcmp(method, "HEAD") == 0;
    if (!head_only && strcmp(method, "GET") != 0) {
        http_refuse(hc, minor, 405, "Allow: GET, HEAD\r\n");
        return;
    }
    /* No request here has a body; reading one would be reading without bound. */
    if ((http_header(head, "Content-Length", val, sizeof(val)) && strcmp(val, "0") != 0) ||
        http_header(head, "Transfer-Encoding", val, sizeof(val))) {
        http_refuse(hc, minor, 413, NULL);
        return;
    }
    int has_conn = http_header(head, "Connection", val, sizeof(val));
    hc->keep_alive = minor == 1 ? !(has_conn && http_has_token(val, "close"))
                                : has_conn && http_has_token(val, "keep-alive");
    target[strcspn(target, "?#")] = '\0';
    char *path = target;
    if (strncasecmp(path, "http://", 7) == 0) /* the absolute form a proxy would send */
        path = strchr(path + 7, '/') ? strchr(path + 7, '/') : "/";

    struct http_response r = {404, "text/plain; charset=utf-8", evbuffer_new()};
    http.handler(path, &r);
    if (r.status == 404 && evbuffer_get_length(r.body) == 0)
        evbuffer_add_printf(r.body, "not found\n");
    http_respond(hc, minor, r.status, r.content_type, r.body, head_only, NULL);
    evbuffer_free(r.body);
}

/* Takes the next request head from the input when it is whole. */
static void http_read_cb(struct bufferevent *bev, void *arg)
{
    struct http_conn *hc = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    if (hc->lingering) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    if (hc->writing)
        return;
    /* The head ends at an empty line; lines end in CRLF, or in LF alone as many clients
     * are forgiven for. */
    struct evbuffer_ptr crlf = evbuffer_search(in, "\n\r\n", 3, NULL);
    struct evbuffer_ptr lf = evbuffer_search(in, "\n\n", 2, NULL);
    ssize_t len = -1;
    if (crlf.pos >= 0 && (lf.pos < 0 || crlf.pos < lf.pos))
        len = crlf.pos + 3;
    else if (lf.pos >= 0)
        len = lf.pos + 2;
    if (len < 0 ? evbuffer_get_length(in) >= HTTP_MAX_HEAD : len > HTTP_MAX_HEAD) {
        http_refuse(hc, 1, 431, NULL);
        return;
    }
    if (len < 0)
        return;
    char head[HTTP_MAX_HEAD + 1];
    evbuffer_remove(in, head, (size_t)len);
    size_t n = 0;
    for (ssize_t i = 0; i < len; i++) /* CRs out: the parser splits lines at LF */
        if (head[i] != '\r')
            head[n++] = head[i];
    head[n] = '\0';
    http_handle(hc, head);
}

/* The response has left: close, or read the next request (which may be waiting already). */
static void http_write_cb(struct bufferevent *bev, void *arg)
{
    struct http_conn *hc = arg;

    if (!hc->writing)
        return;
    hc->writing = 0;
    hc->served = 1;
    if (!hc->keep_alive) {
        /* Closing with input unread would make the kernel send a reset, which may discard the
         * answer on its way: end our side, and read and drop what still comes until the peer
         * closes, for at most HTTP_LINGER_MS. */
        struct timeval tv = {0, HTTP_LINGER_MS * 1000};
        hc->lingering = 1;
        shutdown(bufferevent_getfd(bev), SHUT_WR);
        evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
        bufferevent_setwatermark(bev, EV_READ, 0, 0);
        bufferevent_enable(bev, EV_READ);
        evtimer_add(hc->deadline, &tv);
        return;
    }
    http_arm_deadline(hc);
    bufferevent_enable(bev, EV_READ);
    http_read_cb(bev, hc);
}

static void http_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct http_conn *hc = arg;

    if (hc->lingering) { /* the peer closed too, or failed: done */
        http_conn_free(hc);
        return;
    }
    /* A client that sent its request and shut down its side still gets the answer. */
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
        hc->keep_alive = 0;
        if (!hc->writing)
            http_read_cb(bev, hc);
        if (hc->writing)
            return;
    }
    http_conn_free(hc);
}

static void http_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                           int salen, void *arg)
{
    if (http.nconns >= HTTP_MAX_CONNS) {
        /* Kept-alive connections between requests give way, the oldest first, so that
         * clients that only hold connections open cannot lock scrapes out. */
        struct http_conn *idle = NULL, *hc;
        LIST_FOREACH(hc, &http.conns, link)
        {
            if (!hc->writing && hc->served &&
                evbuffer_get_length(bufferevent_get_input(hc->bev)) == 0)
                idle = hc; /* the list is newest first: the last one is the oldest */
        }
        if (idle)
            http_conn_free(idle);
    }
    if (http.nconns >= HTTP_MAX_CONNS) {
        static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                   "Connection: close\r\n\r\n";
        ssize_t ignored = write(fd, busy, sizeof(busy) - 1);
        (void)ignored;
        close(fd);
        return;
    }
    struct http_conn *hc = xcalloc(1, sizeof(*hc));
    hc->bev = bufferevent_socket_new(evconnlistener_get_base(lev), fd, BEV_OPT_CLOSE_ON_FREE);
    hc->deadline = evtimer_new(evconnlistener_get_base(lev), http_deadline_cb, hc);
    if (hc->bev == NULL || hc->deadline == NULL) {
        if (hc->bev)
            bufferevent_free(hc->bev);
        else
            close(fd);
        if (hc->deadline)
            event_free(hc->deadline);
        free(hc);
        return;
    }
    LIST_INSERT_HEAD(&http.conns, hc, link);
    http.nconns++;
    /* Stop reading once a head could be whole: what follows waits in the kernel. */
    bufferevent_setwatermark(hc->bev, EV_READ, 0, HTTP_MAX_HEAD);
    bufferevent_setcb(hc->bev, http_read_cb, http_write_cb, http_event_cb, hc);
    bufferevent_enable(hc->bev, EV_READ | EV_WRITE);
    http_arm_deadline(hc);
}

/* accept failed for a reason other than a retry: without this libevent logs a warning and
 * the still-readable socket calls it again at once, for as long as a connection waits. */
static void http_accept_error_cb(struct evconnlistener *lev, void *arg)
{
    int err = EVUTIL_SOCKET_ERROR();

    if (server_accept_exhausted(err)) {
        server_pause_accept();
        return;
    }
    log_ratelimited(LOG_LEVEL_WARNING, "metrics accept: %s", strerror(err));
}

int http_listen(struct event_base *base, const char *spec, http_handler_fn *fn)
{
    struct sockaddr_storage ss;
    int sslen = (int)sizeof(ss);

    if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)&ss, &sslen) < 0) {
        log_warning("[metrics] listen: '%s' is not IP:PORT or [IPv6]:PORT", spec);
        return -1;
    }
    http.handler = fn;
    LIST_INIT(&http.conns);
    http.listener =
        evconnlistener_new_bind(base, http_accept_cb, NULL,
                                LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                128, (struct sockaddr *)&ss, sslen);
    if (http.listener == NULL) {
        log_warning("Could not listen for metrics on %s: %s", spec, strerror(errno));
        return -1;
    }
    evconnlistener_set_error_cb(http.listener, http_accept_error_cb);
    return 0;
}

void http_accept_enable(int on)
{
    if (http.listener == NULL)
        return;
    if (on)
        evconnlistener_enable(http.listener);
    else
        evconnlistener_disable(http.listener);
}

void http_stop(void)
{
    while (!LIST_EMPTY(&http.conns))
        http_conn_free(LIST_FIRST(&http.conns));
    if (http.listener)
        evconnlistener_free(http.listener);
    memset(&http, 0, sizeof(http));
}

int http_connections(void)
{
    return http.nconns;
}
