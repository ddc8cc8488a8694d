/* Observability that is not a Redis command: the Prometheus endpoint ([metrics] listen, served
 * by http.c on the server's loop), the fan-out time histogram, the instantaneous rates INFO
 * shows (sampled every 100 ms, as Redis's cron does) and process memory figures. Reads the
 * server's counters; never changes them. */
#ifndef EVB_METRICS_H
#define EVB_METRICS_H

#include <stddef.h>

struct evbuffer;

/* Starts the rate sampler and, when [metrics] listen is set, the HTTP endpoint. Call after
 * the listeners are up. Returns 0, or -1 after logging why (e.g. the address is in use). */
int metrics_start(void);
/* Frees what metrics_start made; safe when it was never called. */
void metrics_stop(void);

/* Splits a listen address "host:port" or "[ipv6]:port" into an IP literal (into host, at
 * least 46 bytes) and a port 1..65535. Returns 0, or -1 when it is not such an address. */
int metrics_parse_listen(const char *spec, char *host, size_t hostlen, int *port);

/* A monotonic clock in nanoseconds, read twice per publish while /metrics is served. */
long long metrics_now_ns(void);
/* Records the time one publish spent fanning out. */
void metrics_observe_fanout(long long ns);

/* Instantaneous rates, averaged over the last 1.6 s: commands per second, and input and
 * output bytes per second. 0 before the sampler has run. */
enum metrics_rate { METRICS_RATE_OPS, METRICS_RATE_NET_IN, METRICS_RATE_NET_OUT, METRICS_NRATES };
long long metrics_rate(enum metrics_rate which);

/* Bytes the allocator has handed out (jemalloc's stats.allocated; ASan's counter in sanitizer
 * builds; glibc's mallinfo2 otherwise), its peak as sampled, and the resident set size (from /proc;
 * 0 when unavailable). */
long long metrics_used_memory(void);
/* The allocator's name for INFO's mem_allocator ("jemalloc-5.3.0...", "asan" or "libc"). */
const char *metrics_allocator(void);
long long metrics_used_memory_peak(void);
/* used_memory when the server had started, before any client. */
long long metrics_used_memory_startup(void);
/* The allocator's bytes handed out, in active pages and resident (jemalloc's stats.allocated,
 * stats.active and stats.resident; elsewhere used memory for the first two and the RSS). */
void metrics_allocator_stats(long long *allocated, long long *active, long long *resident);
long long metrics_rss_bytes(void);

/* Histogram buckets, in nanoseconds (upper bounds, inclusive), with +Inf after the last. */
#define METRICS_HIST_BOUNDS 16
struct metrics_histogram {
    unsigned long long buckets[METRICS_HIST_BOUNDS + 1]; /* per bucket, not cumulative */
    unsigned long long count;
    unsigned long long sum_ns;
};

/* Index of the bucket an observation of ns falls in (METRICS_HIST_BOUNDS for +Inf). */
size_t metrics_histogram_bucket(long long ns);
/* Adds one observation (a negative time counts as 0). */
void metrics_histogram_observe(struct metrics_histogram *h, long long ns);
/* Appends the histogram in the text exposition format, in seconds: HELP, TYPE, cumulative
 * _bucket lines with le labels, _sum and _count. */
void metrics_histogram_write(struct evbuffer *out, const char *name, const char *help,
                             const struct metrics_histogram *h);

/* The rate sampler Redis uses for instantaneous_ops_per_sec: a ring of per-second rates. */
#define METRICS_SAMPLES 16
struct metrics_sampler {
    long long last_ms; /* 0 before the first sample */
    long long last_value;
    long long samples[METRICS_SAMPLES];
    int idx;
};

/* Records the counter's value at now_ms (the first call only sets the baseline). */
void metrics_sampler_add(struct metrics_sampler *s, long long now_ms, long long value);
/* The mean of the ring, per second. */
long long metrics_sampler_rate(const struct metrics_sampler *s);

/* Appends the whole /metrics page. */

#endif
