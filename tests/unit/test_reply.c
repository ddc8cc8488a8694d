/* Unit tests for reply.c: the exact bytes of every encoder in RESP2 and RESP3, the error
 * prefix and CR/LF rules, integer edge values, bulk strings of every size class, aggregate
 * headers and verbatim strings. Each test reads the bytes back out of a fresh evbuffer
 * with evbuffer_pullup. */
#include <event2/buffer.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "reply.h"
#include "unit.h"
#include "util.h"

/* Asserts the buffer holds exactly want (wantlen bytes), then empties it. */
static void expect_bytes_at(struct evbuffer *b, const char *want, size_t wantlen, int line)
{
    size_t len = evbuffer_get_length(b);
    const char *got = len ? (const char *)evbuffer_pullup(b, -1) : "";

    ck_assert_msg(len == wantlen && memcmp(got, want, len) == 0,
                  "line %d: got %zu bytes '%.*s', want %zu bytes '%.*s'", line, len, (int)len, got,
                  wantlen, (int)wantlen, want);
    evbuffer_drain(b, len);
}

#define EXPECT(b, lit) expect_bytes_at(b, lit, sizeof(lit) - 1, __LINE__)

START_TEST(simple_string_is_plus_text_crlf)
{
    struct evbuffer *b = evbuffer_new();
    char big[300];

    reply_simple(b, "OK");
    EXPECT(b, "+OK\r\n");
    reply_simple(b, "");
    EXPECT(b, "+\r\n");
    reply_simple(b, "PONG");
    reply_simple(b, "RESET");
    EXPECT(b, "+PONG\r\n+RESET\r\n");
    /* Longer than the encoder's stack buffer. */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    reply_simple(b, big);
    ck_assert_uint_eq(evbuffer_get_length(b), 1 + 299 + 2);
    const char *p = (const char *)evbuffer_pullup(b, -1);
    ck_assert_int_eq(p[0], '+');
    ck_assert_int_eq(memcmp(p + 1, big, 299), 0);
    ck_assert_int_eq(memcmp(p + 300, "\r\n", 2), 0);
    evbuffer_free(b);
}
END_TEST

START_TEST(error_gets_err_prefix_unless_it_starts_with_dash)
{
    struct evbuffer *b = evbuffer_new();

    reply_error(b, "syntax error");
    EXPECT(b, "-ERR syntax error\r\n");
    reply_error(b, "-NOAUTH Authentication required.");
    EXPECT(b, "-NOAUTH Authentication required.\r\n");
    reply_error(b, "-WRONGPASS invalid username-password pair or user is disabled.");
    EXPECT(b, "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    reply_error(b, "NOPROTO lower case is not a code");
    EXPECT(b, "-ERR NOPROTO lower case is not a code\r\n");
    reply_error(b, "");
    EXPECT(b, "-ERR \r\n");
    reply_error(b, "-");
    EXPECT(b, "-\r\n");
    evbuffer_free(b);
}
END_TEST

START_TEST(error_cr_and_lf_become_spaces)
{
    struct evbuffer *b = evbuffer_new();

    reply_error(b, "bad\r\nname");
    EXPECT(b, "-ERR bad  name\r\n");
    reply_error(b, "a\nb\rc");
    EXPECT(b, "-ERR a b c\r\n");
    reply_error(b, "-CODE x\r\n");
    EXPECT(b, "-CODE x  \r\n");
    reply_error(b, "\r\n");
    EXPECT(b, "-ERR   \r\n");
    evbuffer_free(b);
}
END_TEST

START_TEST(errorf_formats_then_applies_error_rules)
{
    struct evbuffer *b = evbuffer_new();

    reply_errorf(b, "unknown subcommand '%s'. Try %s HELP.", "foo", "PUBSUB");
    EXPECT(b, "-ERR unknown subcommand 'foo'. Try PUBSUB HELP.\r\n");
    reply_errorf(b, "-%s %d", "CODE", 42);
    EXPECT(b, "-CODE 42\r\n");
    reply_errorf(b, "%s", "line\nbreak");
    EXPECT(b, "-ERR line break\r\n");
    evbuffer_free(b);
}
END_TEST

/* A snapshot of the error counts by code. */
struct code_counts {
    char code[32][24];
    long long count[32];
    int n;
};

static void collect_code_cb(const char *code, long long count, void *arg)
{
    struct code_counts *cc = arg;
    snprintf(cc->code[cc->n], sizeof(cc->code[0]), "%s", code);
    cc->count[cc->n++] = count;
}

/* INFO errorstats: each error counted under its code, the codes in order. Counts are compared
 * with a snapshot, since under valgrind (CK_FORK=no) earlier tests' errors are counted too. */
START_TEST(errors_are_counted_by_code_in_code_order)
{
    struct evbuffer *out = evbuffer_new();
    struct code_counts before = {0}, after = {0};
    long long total = reply_error_count();
    char got[256] = "";

    reply_error_each(collect_code_cb, &before);
    reply_error(out, "syntax error");
    reply_error(out, "-NOAUTH Authentication required.");
    reply_errorf(out, "-WRONGPASS %s", "invalid username-password pair");
    reply_error(out, "-EXECABORT Transaction discarded because of previous errors.");
    reply_error(out, "-ERR unknown command 'x'");
    reply_error(out, "-NOAUTH again");
    reply_error(out, "-NOPROTO");
    reply_error_each(collect_code_cb, &after);
    for (int i = 0; i < after.n; i++) {
        long long was = 0;
        for (int j = 0; j < before.n; j++)
            if (strcmp(before.code[j], after.code[i]) == 0)
                was = before.count[j];
        if (after.count[i] > was)
            snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s+%lld ", after.code[i],
                     after.count[i] - was);
        if (i > 0)
            ck_assert_int_lt(strcmp(after.code[i - 1], after.code[i]), 0);
    }
    ck_assert_str_eq(got, "ERR+2 EXECABORT+1 NOAUTH+2 NOPROTO+1 WRONGPASS+1 ");
    ck_assert_int_eq(reply_error_count() - total, 7);
    evbuffer_free(out);
}
END_TEST

START_TEST(integers_in_decimal_including_extremes)
{
    static const struct {
        long long v;
        const char *want;
    } rows[] = {
        {0, ":0\r\n"},
        {1, ":1\r\n"},
        {-1, ":-1\r\n"},
        {9, ":9\r\n"},
        {10, ":10\r\n"},
        {-10, ":-10\r\n"},
        {1234567890123LL, ":1234567890123\r\n"},
        {LLONG_MAX, ":9223372036854775807\r\n"},
        {LLONG_MIN, ":-9223372036854775808\r\n"},
        {LLONG_MIN + 1, ":-9223372036854775807\r\n"},
    };
    struct evbuffer *b = evbuffer_new();

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        reply_integer(b, rows[i].v);
        expect_bytes_at(b, rows[i].want, strlen(rows[i].want), __LINE__);
    }
    evbuffer_free(b);
}
END_TEST

START_TEST(bulk_strings_empty_binary_and_large)
{
    struct evbuffer *b = evbuffer_new();

    reply_bulk(b, "", 0);
    EXPECT(b, "$0\r\n\r\n");
    reply_bulk(b, "hello", 5);
    EXPECT(b, "$5\r\nhello\r\n");
    reply_bulk(b, "a\0b\r\nc", 6);
    EXPECT(b, "$6\r\na\0b\r\nc\r\n");
    reply_bulk_cstr(b, "abc");
    EXPECT(b, "$3\r\nabc\r\n");
    reply_bulk_cstr(b, "");
    EXPECT(b, "$0\r\n\r\n");

    /* Sizes around the encoder's 256-byte stack buffer and well past it. */
    static const size_t sizes[] = {249, 250, 251, 252, 253, 256, 257, 1000, 70000};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t n = sizes[s];
        char *data = xmalloc(n), head[32];
        for (size_t i = 0; i < n; i++)
            data[i] = (char)(i * 7 + s);
        reply_bulk(b, data, n);
        int h = snprintf(head, sizeof(head), "$%zu\r\n", n);
        ck_assert_uint_eq(evbuffer_get_length(b), (size_t)h + n + 2);
        const char *p = (const char *)evbuffer_pullup(b, -1);
        ck_assert_int_eq(memcmp(p, head, (size_t)h), 0);
        ck_assert_msg(memcmp(p + h, data, n) == 0, "payload of %zu bytes differs", n);
        ck_assert_int_eq(memcmp(p + h + n, "\r\n", 2), 0);
        evbuffer_drain(b, evbuffer_get_length(b));
        free(data);
    }
    evbuffer_free(b);
}
END_TEST

START_TEST(bulk_ll_is_a_decimal_bulk_string)
{
    struct evbuffer *b = evbuffer_new();

    reply_bulk_ll(b, 0);
    EXPECT(b, "$1\r\n0\r\n");
    reply_bulk_ll(b, 1700000000);
    EXPECT(b, "$10\r\n1700000000\r\n");
    reply_bulk_ll(b, -42);
    EXPECT(b, "$3\r\n-42\r\n");
    reply_bulk_ll(b, LLONG_MIN);
    EXPECT(b, "$20\r\n-9223372036854775808\r\n");
    evbuffer_free(b);
}
END_TEST

START_TEST(nulls_differ_by_protocol)
{
    struct evbuffer *b = evbuffer_new();

    reply_null(b, 2);
    EXPECT(b, "$-1\r\n");
    reply_null(b, 3);
    EXPECT(b, "_\r\n");
    evbuffer_free(b);
}
END_TEST

START_TEST(aggregate_headers_in_resp2_and_resp3)
{
    struct evbuffer *b = evbuffer_new();

    reply_array(b, 0);
    EXPECT(b, "*0\r\n");
    reply_array(b, 3);
    EXPECT(b, "*3\r\n");
    reply_array(b, 1234567);
    EXPECT(b, "*1234567\r\n");

    reply_map(b, 2, 7);
    EXPECT(b, "*14\r\n");
    reply_map(b, 3, 7);
    EXPECT(b, "%7\r\n");
    reply_map(b, 2, 0);
    EXPECT(b, "*0\r\n");
    reply_map(b, 3, 0);
    EXPECT(b, "%0\r\n");

    reply_set(b, 2, 4);
    EXPECT(b, "*4\r\n");
    reply_set(b, 3, 4);
    EXPECT(b, "~4\r\n");
    reply_set(b, 3, 0);
    EXPECT(b, "~0\r\n");

    reply_push(b, 2, 3);
    EXPECT(b, "*3\r\n");
    reply_push(b, 3, 3);
    EXPECT(b, ">3\r\n");
    reply_push(b, 3, 10);
    EXPECT(b, ">10\r\n");
    evbuffer_free(b);
}
END_TEST

START_TEST(verbatim_is_txt_in_resp3_and_bulk_in_resp2)
{
    struct evbuffer *b = evbuffer_new();

    reply_verbatim(b, 3, "Some string", 11);
    EXPECT(b, "=15\r\ntxt:Some string\r\n");
    reply_verbatim(b, 2, "Some string", 11);
    EXPECT(b, "$11\r\nSome string\r\n");
    reply_verbatim(b, 3, "", 0);
    EXPECT(b, "=4\r\ntxt:\r\n");
    reply_verbatim(b, 2, "", 0);
    EXPECT(b, "$0\r\n\r\n");
    reply_verbatim(b, 3, "a\r\nb\n", 5);
    EXPECT(b, "=9\r\ntxt:a\r\nb\n\r\n");
    evbuffer_free(b);
}
END_TEST

START_TEST(fmt_bulk_header_writes_dollar_len_crlf)
{
    static const struct {
        size_t len;
        const char *want;
    } rows[] = {
        {0, "$0\r\n"},
        {9, "$9\r\n"},
        {10, "$10\r\n"},
        {256, "$256\r\n"},
        {4294967296ULL, "$4294967296\r\n"},
        {SIZE_MAX, "$18446744073709551615\r\n"},
    };
    char dst[32];

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        memset(dst, '#', sizeof(dst));
        size_t n = reply_fmt_bulk_header(dst, rows[i].len);
        ck_assert_uint_eq(n, strlen(rows[i].want));
        ck_assert_int_eq(memcmp(dst, rows[i].want, n), 0);
        ck_assert_int_eq(dst[n], '#'); /* nothing written past the header */
    }
}
END_TEST

START_TEST(replies_append_in_order)
{
    struct evbuffer *b = evbuffer_new();

    reply_array(b, 3);
    reply_bulk_cstr(b, "subscribe");
    reply_bulk(b, "ch", 2);
    reply_integer(b, 1);
    EXPECT(b, "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
    evbuffer_free(b);
}
END_TEST

/* The suite: scalars, bulk strings, aggregates. */
static Suite *reply_suite(void)
{
    Suite *s = suite_create("reply");
    TCase *scalars = tcase_create("scalars");
    TCase *aggr = tcase_create("aggregates");

    tcase_add_test(scalars, simple_string_is_plus_text_crlf);
    tcase_add_test(scalars, error_gets_err_prefix_unless_it_starts_with_dash);
    tcase_add_test(scalars, error_cr_and_lf_become_spaces);
    tcase_add_test(scalars, errorf_formats_then_applies_error_rules);
    tcase_add_test(scalars, errors_are_counted_by_code_in_code_order);
    tcase_add_test(scalars, integers_in_decimal_including_extremes);
    tcase_add_test(scalars, bulk_strings_empty_binary_and_large);
    tcase_add_test(scalars, bulk_ll_is_a_decimal_bulk_string);
    tcase_add_test(scalars, nulls_differ_by_protocol);
    tcase_add_test(scalars, fmt_bulk_header_writes_dollar_len_crlf);
    suite_add_tcase(s, scalars);

    tcase_add_test(aggr, aggregate_headers_in_resp2_and_resp3);
    tcase_add_test(aggr, verbatim_is_txt_in_resp3_and_bulk_in_resp2);
    tcase_add_test(aggr, replies_append_in_order);
    suite_add_tcase(s, aggr);
    return s;
}

UNIT_MAIN(reply_suite)
