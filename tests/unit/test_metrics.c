/* Unit tests for the pure parts of metrics.c: histogram buckets and their exposition, the
 * instantaneous-rate sampler, and the [metrics] listen address parser. */
#include <event2/buffer.h>
#include <string.h>

#include "metrics.h"
#include "unit.h"

/* Copies an evbuffer into a NUL-terminated string (caller frees). */
static char *buffer_text(struct evbuffer *b)
{
    size_t len = evbuffer_get_length(b);
    char *s = malloc(len + 1);
    evbuffer_copyout(b, s, len);
    s[len] = '\0';
    return s;
}

START_TEST(test_bucket_bounds_are_inclusive)
{
    ck_assert_uint_eq(metrics_histogram_bucket(0), 0);
    ck_assert_uint_eq(metrics_histogram_bucket(1000), 0);
    ck_assert_uint_eq(metrics_histogram_bucket(1001), 1);
    ck_assert_uint_eq(metrics_histogram_bucket(2500), 1);
    ck_assert_uint_eq(metrics_histogram_bucket(2501), 2);
    ck_assert_uint_eq(metrics_histogram_bucket(1000000), 9);
    ck_assert_uint_eq(metrics_histogram_bucket(100000000), METRICS_HIST_BOUNDS - 1);
    ck_assert_uint_eq(metrics_histogram_bucket(100000001), METRICS_HIST_BOUNDS);
    ck_assert_uint_eq(metrics_histogram_bucket(1LL << 62), METRICS_HIST_BOUNDS);
}
END_TEST

START_TEST(test_observe_counts_sums_and_clamps_negative_times)
{
    struct metrics_histogram h;
    memset(&h, 0, sizeof(h));
    metrics_histogram_observe(&h, 500);
    metrics_histogram_observe(&h, 3000);
    metrics_histogram_observe(&h, -5);
    metrics_histogram_observe(&h, 2000000000);
    ck_assert_uint_eq(h.count, 4);
    ck_assert_uint_eq(h.sum_ns, 2000003500ULL);
    ck_assert_uint_eq(h.buckets[0], 2);
    ck_assert_uint_eq(h.buckets[2], 1);
    ck_assert_uint_eq(h.buckets[METRICS_HIST_BOUNDS], 1);
}
END_TEST

START_TEST(test_histogram_exposition_is_cumulative_in_seconds)
{
    struct metrics_histogram h;
    struct evbuffer *b = evbuffer_new();
    memset(&h, 0, sizeof(h));
    metrics_histogram_observe(&h, 800);
    metrics_histogram_observe(&h, 4000);
    metrics_histogram_observe(&h, 1500000);
    metrics_histogram_observe(&h, 300000000);
    metrics_histogram_write(b, "x_seconds", "Help text.", &h);
    char *s = buffer_text(b);
    ck_assert_ptr_nonnull(strstr(s, "# HELP x_seconds Help text.\n# TYPE x_seconds histogram\n"));
    ck_assert_ptr_nonnull(strstr(s, "\nx_seconds_bucket{le=\"1e-06\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(s, "\nx_seconds_bucket{le=\"5e-06\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(s, "\nx_seconds_bucket{le=\"0.001\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(s, "\nx_seconds_bucket{le=\"0.0025\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(s, "\nx_seconds_bucket{le=\"0.1\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(s, "\nx_seconds_bucket{le=\"+Inf\"} 4\n"));
    ck_assert_ptr_nonnull(strstr(s, "\nx_seconds_sum 0.301504800\nx_seconds_count 4\n"));
    /* One line per bound, +Inf, sum and count, after HELP and TYPE. */
    size_t lines = 0;
    for (const char *p = s; *p; p++)
        lines += *p == '\n';
    ck_assert_uint_eq(lines, 2 + METRICS_HIST_BOUNDS + 1 + 2);
    free(s);
    evbuffer_free(b);
}
END_TEST

START_TEST(test_sampler_averages_per_second_rates_over_the_ring)
{
    struct metrics_sampler s;
    memset(&s, 0, sizeof(s));
    metrics_sampler_add(&s, 1000, 50); /* baseline only */
    ck_assert_int_eq(metrics_sampler_rate(&s), 0);
    for (int i = 1; i <= METRICS_SAMPLES; i++)
        metrics_sampler_add(&s, 1000 + i * 100, 50 + i * 10); /* 10 per 100 ms */
    ck_assert_int_eq(metrics_sampler_rate(&s), 100);
    /* Half the ring at 0/s: the mean halves. */
    for (int i = 1; i <= METRICS_SAMPLES / 2; i++)
        metrics_sampler_add(&s, 2600 + i * 100, 50 + METRICS_SAMPLES * 10);
    ck_assert_int_eq(metrics_sampler_rate(&s), 50);
    /* No time passed: a zero sample rather than a division by zero. */
    metrics_sampler_add(&s, 3400, 1000000);
    ck_assert_int_ge(metrics_sampler_rate(&s), 0);
}
END_TEST

START_TEST(test_listen_address_forms)
{
    char host[64];
    int port = 0;
    ck_assert_int_eq(metrics_parse_listen("127.0.0.1:9121", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_int_eq(port, 9121);
    ck_assert_int_eq(metrics_parse_listen("[::1]:65535", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(port, 65535);
    ck_assert_int_eq(metrics_parse_listen("0.0.0.0:1", host, sizeof(host), &port), 0);

    static const char *const bad[] = {
        "",          "9121",         "127.0.0.1",     "127.0.0.1:",  "127.0.0.1:0",
        ":9121",     "localhost:91", "::1:9121",      "[::1]9121",   "[::1:9121",
        "[]:9121",   "[1.2.3.4]:91", "1.2.3.4:65536", "1.2.3.4:+80", "1.2.3.4:080",
        "1.2.3.4:8x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(metrics_parse_listen(bad[i], host, sizeof(host), &port) < 0, "'%s' accepted",
                      bad[i]);
    /* A host that does not fit the caller's buffer is refused, not cut. */
    ck_assert_int_lt(metrics_parse_listen("[2001:db8::1]:80", host, 8, &port), 0);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_bucket_bounds_are_inclusive);
    tcase_add_test(tc, test_observe_counts_sums_and_clamps_negative_times);
    tcase_add_test(tc, test_histogram_exposition_is_cumulative_in_seconds);
    tcase_add_test(tc, test_sampler_averages_per_second_rates_over_the_ring);
    tcase_add_test(tc, test_listen_address_forms);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(metrics_suite)
