/* The Prometheus endpoint, the fan-out histogram, the instantaneous-rate sampler and memory
 * figures. The endpoint is http.c's server on server.base: a scrape runs in the loop like any other
 * callback, reads the counters and builds one page. Nothing here runs per message except
 * metrics_observe_fanout, which is a few additions. */
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
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
#include "http.h"
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
    struct event *sample_ev;
    struct metrics_sampler rates[METRICS_NRATES];
    struct metrics_histogram fanout;
    long long used_memory_peak;
    long long used_memory_startup; /* when metrics_start ran */
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
    /* jemalloc replaces malloc, so glibc's mallinfo2 would see nothing: ask jemalloc. */
    long long used, active, resident;
    metrics_allocator_stats(&used, &active, &resident);
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

void metrics_allocator_stats(long long *allocated, long long *active, long long *resident)
{
#ifdef EVB_JEMALLOC
    /* The statistics are cached: the epoch write refreshes them. */
    uint64_t epoch = 1;
    size_t v[3] = {0, 0, 0}, sz = sizeof(epoch);
    const char *names[3] = {"stats.allocated", "stats.active", "stats.resident"};
    mallctl("epoch", &epoch, &sz, &epoch, sz);
    for (int i = 0; i < 3; i++) {
        sz = sizeof(v[i]);
        if (mallctl(names[i], &v[i], &sz, NULL, 0) != 0)
            v[i] = 0;
    }
    *allocated = (long long)v[0];
    *active = (long long)v[1];
    *resident = (long long)v[2];
#else
    /* Other allocators tell only what they handed out: the resident set stands for the rest. */
    *allocated = *active = metrics_used_memory();
    *resident = metrics_rss_bytes();
#endif
}

long long metrics_used_memory_startup(void)
{
    return metrics.used_memory_startup;
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
           "Connections accepted (not those refused over maxclients or by protected mode).",
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

/* The endpoint's paths: the page in the text exposition format 0.0.4, and a health check that
 * answers 503 once the daemon is shutting down. Other paths get the server's 404. */
static void metrics_http(const char *path, struct http_response *r)
{
    if (strcmp(path, "/metrics") == 0) {
        server_update_time();
        metrics_write_page(r->body);
        r->status = 200;
        r->content_type = "text/plain; version=0.0.4; charset=utf-8";
    } else if (strcmp(path, "/healthz") == 0) {
        r->status = server.shutting_down ? 503 : 200;
        evbuffer_add_printf(r->body, "%s", server.shutting_down ? "shutting down\n" : "ok\n");
    }
}

int metrics_start(void)
{
    struct timeval tv = {0, METRICS_SAMPLE_MS * 1000};

    metrics.sample_ev = event_new(server.base, -1, EV_PERSIST, metrics_sample_cb, NULL);
    event_add(metrics.sample_ev, &tv);
    metrics.used_memory_startup = metrics_used_memory();
    if (server.cfg.metrics_listen == NULL)
        return 0;
    if (http_listen(server.base, server.cfg.metrics_listen, metrics_http) < 0)
        return -1;
    log_notice("Metrics on http://%s/metrics", server.cfg.metrics_listen);
    return 0;
}

void metrics_stop(void)
{
    http_stop();
    if (metrics.sample_ev)
        event_free(metrics.sample_ev);
    memset(&metrics, 0, sizeof(metrics));
}
