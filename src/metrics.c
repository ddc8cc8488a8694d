/* The Prometheus endpoint, the fan-out histogram, the instantaneous-rate sampler and memory
 * figures. The endpoint is evhttp on server.base: a scrape runs in the loop like any other
 * callback, reads the counters and builds one page. Nothing here runs per message except
 * metrics_observe_fanout, which is a few additions. */
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <malloc.h>
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EVB_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define EVB_ASAN 1
#endif
#ifdef EVB_JEMALLOC
#include <jemalloc/jemalloc.h>
#elif defined(EVB_ASAN)
/* From the ASan runtime (gcc ships no header for it). */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "log.h"
#include "pubsub.h"
#include "reply.h"
#include "server.h"
#include "util.h"

#define METRICS_SAMPLE_MS 100

/* Fan-out bucket bounds: nanoseconds, and the same values as Prometheus le labels. */
static const long long hist_bounds_ns[METRICS_HIST_BOUNDS] = {
    1000,   2500,    5000,    10000,   25000,    50000,    100000,   250000,
    500000, 1000000, 2500000, 5000000, 10000000, 25000000, 50000000, 100000000,
};
static const char *const hist_bounds_le[METRICS_HIST_BOUNDS] = {
    "1e-06",  "2.5e-06", "5e-06",  "1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025",
    "0.0005", "0.001",   "0.0025", "0.005", "0.01",    "0.025", "0.05",   "0.1",
};

static struct {
    struct evhttp *http;
    struct evconnlistener *listener; /* the endpoint's; evhttp owns it */
    struct event *sample_ev;
    struct metrics_sampler rates[METRICS_NRATES];
    struct metrics_histogram fanout;
    long long used_memory_peak;
} metrics;

size_t metrics_histogram_bucket(long long ns)
{
    size_t lo = 0, hi = METRICS_HIST_BOUNDS;

    /* The first bound >= ns, by binary search over the sorted bounds. */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (hist_bounds_ns[mid] < ns)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void metrics_histogram_observe(struct metrics_histogram *h, long long ns)
{
    if (ns < 0)
        ns = 0;
    h->buckets[metrics_histogram_bucket(ns)]++;
    h->count++;
    h->sum_ns += (unsigned long long)ns;
}

void metrics_histogram_write(struct evbuffer *out, const char *name, const char *help,
                             const struct metrics_histogram *h)
{
    unsigned long long cumulative = 0;

    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (size_t i = 0; i < METRICS_HIST_BOUNDS; i++) {
        cumulative += h->buckets[i];
        evbuffer_add_printf(out, "%s_bucket{le=\"%s\"} %llu\n", name, hist_bounds_le[i],
                            cumulative);
    }
    cumulative += h->buckets[METRICS_HIST_BOUNDS];
    evbuffer_add_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, cumulative);
    evbuffer_add_printf(out, "%s_sum %llu.%09llu\n%s_count %llu\n", name, h->sum_ns / 1000000000,
                        h->sum_ns % 1000000000, name, h->count);
}

void metrics_sampler_add(struct metrics_sampler *s, long long now_ms, long long value)
{
    if (s->last_ms != 0) {
        long long t = now_ms - s->last_ms;
        s->samples[s->idx] = t > 0 ? (value - s->last_value) * 1000 / t : 0;
        s->idx = (s->idx + 1) % METRICS_SAMPLES;
    }
    s->last_ms = now_ms > 0 ? now_ms : 1;
    s->last_value = value;
}

long long metrics_sampler_rate(const struct metrics_sampler *s)
{
    long long sum = 0;
    for (int i = 0; i < METRICS_SAMPLES; i++)
        sum += s->samples[i];
    return sum / METRICS_SAMPLES;
}

long long metrics_rate(enum metrics_rate which)
{
    return metrics_sampler_rate(&metrics.rates[which]);
}

long long metrics_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void metrics_observe_fanout(long long ns)
{
    metrics_histogram_observe(&metrics.fanout, ns);
}

long long metrics_used_memory(void)
{
#ifdef EVB_JEMALLOC
    /* jemalloc replaces malloc, so glibc's mallinfo2 would see nothing: ask jemalloc, after
     * refreshing its cached statistics. */
    uint64_t epoch = 1;
    size_t allocated = 0, sz = sizeof(epoch);
    mallctl("epoch", &epoch, &sz, &epoch, sz);
    sz = sizeof(allocated);
    if (mallctl("stats.allocated", &allocated, &sz, NULL, 0) != 0)
        allocated = 0;
    long long used = (long long)allocated;
#elif defined(EVB_ASAN)
    /* The sanitizer's allocator replaces glibc's too. */
    long long used = (long long)__sanitizer_get_current_allocated_bytes();
#else
    struct mallinfo2 mi = mallinfo2();
    long long used = (long long)(mi.uordblks + mi.hblkhd);
#endif
    if (used > metrics.used_memory_peak)
        metrics.used_memory_peak = used;
    return used;
}

const char *metrics_allocator(void)
{
#ifdef EVB_JEMALLOC
    return "jemalloc-" JEMALLOC_VERSION;
#elif defined(EVB_ASAN)
    return "asan";
#else
    return "libc";
#endif
}

long long metrics_used_memory_peak(void)
{
    long long used = metrics_used_memory();
    return metrics.used_memory_peak > used ? metrics.used_memory_peak : used;
}

long long metrics_rss_bytes(void)
{
    long long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%lld %lld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * sysconf(_SC_PAGESIZE);
}

/* Every 100 ms: one sample per rate, and the memory peak. */
static void metrics_sample_cb(evutil_socket_t fd, short what, void *arg)
{
    long long now = util_mstime();
    const struct stats *s = &server.stats;

    metrics_sampler_add(&metrics.rates[METRICS_RATE_OPS], now, s->commands_processed);
    metrics_sampler_add(&metrics.rates[METRICS_RATE_NET_IN], now, s->net_input_bytes);
    metrics_sampler_add(&metrics.rates[METRICS_RATE_NET_OUT], now, s->net_output_bytes);
    metrics_used_memory();
}

int metrics_parse_listen(const char *spec, char *host, size_t hostlen, int *port)
{
    const char *colon, *h = spec;
    size_t len;
    long long p;
    unsigned char addr[16];

    if (spec[0] == '[') {
        const char *end = strchr(spec, ']');
        if (end == NULL || end[1] != ':')
            return -1;
        h = spec + 1;
        len = (size_t)(end - h);
        colon = end + 1;
    } else {
        colon = strrchr(spec, ':');
        if (colon == NULL)
            return -1;
        len = (size_t)(colon - spec);
    }
    if (len == 0 || len >= hostlen)
        return -1;
    memcpy(host, h, len);
    host[len] = '\0';
    if (inet_pton(spec[0] == '[' ? AF_INET6 : AF_INET, host, addr) != 1)
        return -1;
    if (util_parse_ll(colon + 1, strlen(colon + 1), &p) < 0 || p < 1 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

/* Appends one gauge or counter with its HELP and TYPE lines. */
static void metric(struct evbuffer *out, const char *name, const char *type, const char *help,
                   long long value)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", name, help, name, type, name,
                        value);
}

static void metrics_write_page(struct evbuffer *out)
{
    const struct stats *s = &server.stats;
    long long subscribers = 0;
    struct client *c;

    TAILQ_FOREACH(c, &server.clients, all_link)
    subscribers += (c->flags & CLIENT_F_PUBSUB) != 0;
    evbuffer_add_printf(out,
                        "# HELP evbrokerd_build_info Version of evbrokerd and of the Redis "
                        "protocol it reproduces.\n# TYPE evbrokerd_build_info gauge\n"
                        "evbrokerd_build_info{version=\"%s\",redis_compat=\"%s\"} 1\n",
                        EVB_VERSION, EVB_REDIS_COMPAT_VERSION);
    metric(out, "evbrokerd_uptime_seconds", "gauge", "Seconds since the server started.",
           (server.now_ms - server.start_ms) / 1000);
    metric(out, "evbrokerd_connected_clients", "gauge", "Client connections open now.",
           server.nclients);
    metric(out, "evbrokerd_max_clients", "gauge", "Configured maximum of client connections.",
           server.cfg.maxclients);
    metric(out, "evbrokerd_pubsub_clients", "gauge",
           "Clients with at least one subscription (subscribers).", subscribers);
    metric(out, "evbrokerd_pubsub_channels", "gauge", "Channels with at least one subscriber.",
           (long long)pubsub_count(PUBSUB_CHANNEL));
    metric(out, "evbrokerd_pubsub_patterns", "gauge", "Patterns with at least one subscriber.",
           (long long)pubsub_count(PUBSUB_PATTERN));
    metric(out, "evbrokerd_pubsub_shard_channels", "gauge",
           "Shard channels with at least one subscriber.", (long long)pubsub_count(PUBSUB_SHARD));
    metric(out, "evbrokerd_resident_memory_bytes", "gauge", "Resident set size of the process.",
           metrics_rss_bytes());
    metric(out, "evbrokerd_used_memory_bytes", "gauge", "Bytes allocated with malloc.",
           metrics_used_memory());
    metric(out, "evbrokerd_connections_received_total", "counter",
           "Connections accepted under maxclients (protected-mode refusals included, as in "
           "Redis's total_connections_received).",
           s->connections_received);
    metric(out, "evbrokerd_connections_rejected_total", "counter",
           "Connections refused: over maxclients, or by protected mode.", s->rejected_connections);
    metric(out, "evbrokerd_commands_processed_total", "counter", "Commands run.",
           s->commands_processed);
    metric(out, "evbrokerd_messages_published_total", "counter", "PUBLISH and SPUBLISH commands.",
           s->publishes);
    metric(out, "evbrokerd_messages_delivered_total", "counter",
           "Messages queued to subscribers (one per receiving subscription).", s->deliveries);
    metric(out, "evbrokerd_net_input_bytes_total", "counter", "Bytes read from clients.",
           s->net_input_bytes);
    metric(out, "evbrokerd_net_output_bytes_total", "counter", "Bytes written to clients.",
           s->net_output_bytes);
    metric(out, "evbrokerd_output_limit_disconnections_total", "counter",
           "Subscribers disconnected for exceeding the pubsub output limits.",
           s->output_limit_disconnections);
    metric(out, "evbrokerd_query_limit_disconnections_total", "counter",
           "Clients disconnected for exceeding the query buffer limit.",
           s->query_limit_disconnections);
    metric(out, "evbrokerd_protocol_errors_total", "counter",
           "Requests that broke the protocol (the connection is closed).", s->protocol_errors);
    metric(out, "evbrokerd_error_replies_total", "counter", "Error replies sent.",
           reply_error_count());
    metrics_histogram_write(out, "evbrokerd_fanout_duration_seconds",
                            "Time spent delivering one publish to its local subscribers.",
                            &metrics.fanout);
}

/* Sends a reply and frees body. A HEAD reply has GET's headers and no body: libevent 2.1
 * would send the body anyway and leave out Content-Length, which breaks the connection for
 * the next request. */
static void metrics_send(struct evhttp_request *req, int code, const char *reason,
                         const char *content_type, struct evbuffer *body)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);

    evhttp_add_header(headers, "Content-Type", content_type);
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        char len[24];
        snprintf(len, sizeof(len), "%zu", evbuffer_get_length(body));
        evhttp_add_header(headers, "Content-Length", len);
        evhttp_send_reply(req, code, reason, NULL);
    } else {
        evhttp_send_reply(req, code, reason, body);
    }
    evbuffer_free(body);
}

/* Sends a short text reply. */
static void metrics_reply_text(struct evhttp_request *req, int code, const char *reason,
                               const char *text)
{
    struct evbuffer *body = evbuffer_new();
    evbuffer_add(body, text, strlen(text));
    metrics_send(req, code, reason, "text/plain; charset=utf-8", body);
}

/* GET /metrics: the page in the text exposition format 0.0.4. */
static void metrics_http_metrics_cb(struct evhttp_request *req, void *arg)
{
    struct evbuffer *body = evbuffer_new();

    server_update_time();
    metrics_write_page(body);
    metrics_send(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body);
}

/* GET /healthz: 200 while serving, 503 once shutting down. */
static void metrics_http_healthz_cb(struct evhttp_request *req, void *arg)
{
    if (server.shutting_down)
        metrics_reply_text(req, 503, "Service Unavailable", "shutting down\n");
    else
        metrics_reply_text(req, 200, "OK", "ok\n");
}

/* Any other path. */
static void metrics_http_other_cb(struct evhttp_request *req, void *arg)
{
    metrics_reply_text(req, 404, "Not Found", "not found\n");
}

void metrics_accept_enable(int on)
{
    if (metrics.listener == NULL)
        return;
    if (on)
        evconnlistener_enable(metrics.listener);
    else
        evconnlistener_disable(metrics.listener);
}

/* accept failed for a reason other than a retry: without this libevent logs a warning and
 * the still-readable socket calls it again at once, for as long as a connection waits. */
static void metrics_accept_error_cb(struct evconnlistener *lev, void *arg)
{
    int err = EVUTIL_SOCKET_ERROR();

    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        server_pause_accept();
        return;
    }
    log_ratelimited(LOG_LEVEL_WARNING, "metrics accept: %s", strerror(err));
}

/* Binds the HTTP endpoint on [metrics] listen. */
static int metrics_listen(const char *spec)
{
    char host[INET6_ADDRSTRLEN];
    int port;
    struct sockaddr_storage ss;
    int sslen = (int)sizeof(ss);

    if (metrics_parse_listen(spec, host, sizeof(host), &port) < 0 ||
        evutil_parse_sockaddr_port(spec, (struct sockaddr *)&ss, &sslen) < 0) {
        log_warning("[metrics] listen: '%s' is not IP:PORT or [IPv6]:PORT", spec);
        return -1;
    }
    metrics.listener = evconnlistener_new_bind(
        server.base, NULL, NULL, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
        128, (struct sockaddr *)&ss, sslen);
    if (metrics.listener == NULL) {
        log_warning("Could not listen for metrics on %s: %s", spec, strerror(errno));
        return -1;
    }
    evconnlistener_set_error_cb(metrics.listener, metrics_accept_error_cb);
    metrics.http = evhttp_new(server.base);
    evhttp_set_allowed_methods(metrics.http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_max_headers_size(metrics.http, 8192);
    evhttp_set_max_body_size(metrics.http, 0);
    evhttp_set_timeout(metrics.http, 10);
    evhttp_set_cb(metrics.http, "/metrics", metrics_http_metrics_cb, NULL);
    evhttp_set_cb(metrics.http, "/healthz", metrics_http_healthz_cb, NULL);
    evhttp_set_gencb(metrics.http, metrics_http_other_cb, NULL);
    if (evhttp_bind_listener(metrics.http, metrics.listener) == NULL) {
        evconnlistener_free(metrics.listener);
        metrics.listener = NULL;
        log_warning("Could not serve metrics on %s", spec);
        return -1;
    }
    log_notice("Metrics on http://%s/metrics", spec);
    return 0;
}

int metrics_start(void)
{
    struct timeval tv = {0, METRICS_SAMPLE_MS * 1000};

    metrics.sample_ev = event_new(server.base, -1, EV_PERSIST, metrics_sample_cb, NULL);
    event_add(metrics.sample_ev, &tv);
    if (server.cfg.metrics_listen != NULL)
        return metrics_listen(server.cfg.metrics_listen);
    return 0;
}

void metrics_stop(void)
{
    if (metrics.http)
        evhttp_free(metrics.http);
    if (metrics.sample_ev)
        event_free(metrics.sample_ev);
    memset(&metrics, 0, sizeof(metrics));
}
