/* A small HTTP/1.0 and 1.1 server for the metrics endpoint, on the server's loop. It serves
 * GET and HEAD of a handful of paths and nothing else, so every resource it holds is bounded:
 * HTTP_MAX_CONNS connections (beyond, the oldest kept-alive connection waiting between
 * requests is closed, or else the newcomer is answered 503 and closed), a request head of at most
 * HTTP_MAX_HEAD bytes (no request may have a body), one request at a time per connection
 * (reading stops while a response is being written), and HTTP_DEADLINE_MS for a request to
 * arrive whole and its response to leave (then, after a last answer, HTTP_LINGER_MS to close
 * in order). libevent's evhttp read on while a response waited,
 * so one client that never read could grow the daemon by gigabytes. */
#ifndef EVB_HTTP_H
#define EVB_HTTP_H

#include <stddef.h>

struct evbuffer;
struct event_base;

#define HTTP_MAX_CONNS 64
#define HTTP_MAX_HEAD 8192
#define HTTP_DEADLINE_MS 10000
#define HTTP_LINGER_MS 500 /* after a last answer, input is read and dropped this long */

/* What a handler answers for a path (the query string is cut off): a status, a content type
 * and a body (the server adds the headers, and sends no body for HEAD). */
struct http_response {
    int status;
    const char *content_type;
    struct evbuffer *body;
};
typedef void http_handler_fn(const char *path, struct http_response *r);

/* Listens on "IP:PORT" or "[IPv6]:PORT" and serves requests with fn. Returns 0, or -1 after
 * logging why. */
int http_listen(struct event_base *base, const char *spec, http_handler_fn *fn);
/* Stops (0) or resumes (1) accepting: descriptor exhaustion (server_pause_accept). */
void http_accept_enable(int on);
/* Closes the listener and every connection. */
void http_stop(void);
/* Connections open now. */
int http_connections(void);

#endif
