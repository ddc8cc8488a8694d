/* Unit tests for util.c: strict integer parsing with Redis's string2ll rules, size parsing
 * with memtoll units, the case-insensitive name comparison and SipHash-1-2. The SipHash
 * vectors come from an independent implementation that reproduces the published
 * SipHash-2-4 reference vectors when run with 2 and 4 rounds. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "unit.h"
#include "util.h"

/* One util_parse_ll case: input bytes, whether they parse, and the value. */
struct ll_row {
    const char *in;
    size_t len;
    int ok;
    long long want;
};

#define LL_OK(s, v)                                                                                \
    {                                                                                              \
        s, sizeof(s) - 1, 1, v                                                                     \
    }
#define LL_BAD(s)                                                                                  \
    {                                                                                              \
        s, sizeof(s) - 1, 0, 0                                                                     \
    }

static const struct ll_row ll_rows[] = {
    LL_OK("0", 0),
    LL_OK("1", 1),
    LL_OK("-1", -1),
    LL_OK("10", 10),
    LL_OK("123456789", 123456789),
    LL_OK("-987654321", -987654321),
    LL_OK("9223372036854775807", LLONG_MAX),
    LL_OK("-9223372036854775808", LLONG_MIN),
    LL_OK("9223372036854775806", LLONG_MAX - 1),
    LL_OK("-9223372036854775807", LLONG_MIN + 1),
    LL_BAD(""),
    LL_BAD("-"),
    LL_BAD("-0"),
    LL_BAD("00"),
    LL_BAD("01"),
    LL_BAD("-01"),
    LL_BAD("+1"),
    LL_BAD("+0"),
    LL_BAD(" 1"),
    LL_BAD("1 "),
    LL_BAD("1\r\n"),
    LL_BAD("--1"),
    LL_BAD("1-"),
    LL_BAD("1a"),
    LL_BAD("a1"),
    LL_BAD("0x10"),
    LL_BAD("1.0"),
    LL_BAD("1e3"),
    LL_BAD("9223372036854775808"),
    LL_BAD("-9223372036854775809"),
    LL_BAD("18446744073709551615"),
    LL_BAD("18446744073709551616"),
    LL_BAD("99999999999999999999"),
    LL_BAD("-99999999999999999999"),
    LL_BAD("100000000000000000000"),
    LL_BAD("1\0"),
    LL_BAD("\0"),
};

START_TEST(parse_ll_follows_string2ll_rules)
{
    for (size_t i = 0; i < sizeof(ll_rows) / sizeof(ll_rows[0]); i++) {
        const struct ll_row *r = &ll_rows[i];
        long long v = 4242;
        int rc = util_parse_ll(r->in, r->len, &v);
        if (r->ok) {
            ck_assert_msg(rc == 0, "row %zu '%s' rejected", i, r->in);
            ck_assert_msg(v == r->want, "row %zu '%s' gave %lld", i, r->in, v);
        } else {
            ck_assert_msg(rc == -1, "row %zu '%s' accepted as %lld", i, r->in, v);
            ck_assert_msg(v == 4242, "row %zu '%s' changed *out on failure", i, r->in);
        }
    }
}
END_TEST

START_TEST(parse_ll_reads_only_len_bytes)
{
    long long v = 0;

    /* The buffer goes on past len: only the counted bytes matter. */
    ck_assert_int_eq(util_parse_ll("12x", 2, &v), 0);
    ck_assert_int_eq(v, 12);
    ck_assert_int_eq(util_parse_ll("-5 6", 2, &v), 0);
    ck_assert_int_eq(v, -5);
    ck_assert_int_eq(util_parse_ll("0123", 1, &v), 0);
    ck_assert_int_eq(v, 0);
    ck_assert_int_eq(util_parse_ll("7", 0, &v), -1);
    /* Not NUL-terminated at all. */
    char raw[3] = {'4', '2', '7'};
    ck_assert_int_eq(util_parse_ll(raw, 2, &v), 0);
    ck_assert_int_eq(v, 42);
}
END_TEST

START_TEST(parse_ll_round_trips_every_power_of_ten_boundary)
{
    char buf[32];
    long long v;

    for (long long p = 1; p <= LLONG_MAX / 10; p *= 10) {
        long long vals[] = {p, p - 1, -p, -(p - 1), p * 10 - 1};
        for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
            int n = snprintf(buf, sizeof(buf), "%lld", vals[i]);
            ck_assert_int_eq(util_parse_ll(buf, (size_t)n, &v), 0);
            ck_assert(v == vals[i]);
        }
    }
}
END_TEST

/* One util_parse_size case. */
struct size_row {
    const char *in;
    int ok;
    long long want;
};

static const struct size_row size_rows[] = {
    {"0", 1, 0},
    {"1024", 1, 1024},
    {"1b", 1, 1},
    {"1k", 1, 1000},
    {"1kb", 1, 1024},
    {"1K", 1, 1000},
    {"1KB", 1, 1024},
    {"1Kb", 1, 1024},
    {"1kB", 1, 1024},
    {"64k", 1, 64000},
    {"1m", 1, 1000000},
    {"1mb", 1, 1048576},
    {"512mb", 1, 512LL * 1024 * 1024},
    {"3M", 1, 3000000},
    {"2MB", 1, 2097152},
    {"1g", 1, 1000000000LL},
    {"1gb", 1, 1073741824LL},
    {"4GB", 1, 4LL * 1024 * 1024 * 1024},
    {"9223372036854775807", 1, LLONG_MAX},
    {"9223372036854775b", 1, 9223372036854775LL},
    {"9223372036854775k", 1, 9223372036854775000LL},
    {"8589934591gb", 1, 8589934591LL * 1073741824LL},
    {"", 0, 0},
    {"k", 0, 0},
    {"kb", 0, 0},
    {"-1", 0, 0},
    {"-1kb", 0, 0},
    {"+1", 0, 0},
    {" 1", 0, 0},
    {"1 ", 0, 0},
    {"1 kb", 0, 0},
    {"1kbb", 0, 0},
    {"1t", 0, 0},
    {"1tb", 0, 0},
    {"1x", 0, 0},
    {"1bk", 0, 0},
    {"1.5mb", 0, 0},
    {"1kib", 0, 0},
    {"9223372036854775808", 0, 0},
    {"9223372036854776k", 0, 0},
    {"9007199254740992kb", 0, 0},
    {"8589934592gb", 0, 0},
    {"10000000000g", 0, 0},
};

START_TEST(parse_size_accepts_memtoll_units_and_rejects_the_rest)
{
    for (size_t i = 0; i < sizeof(size_rows) / sizeof(size_rows[0]); i++) {
        const struct size_row *r = &size_rows[i];
        long long v = 4242;
        int rc = util_parse_size(r->in, &v);
        if (r->ok) {
            ck_assert_msg(rc == 0, "'%s' rejected", r->in);
            ck_assert_msg(v == r->want, "'%s' gave %lld, want %lld", r->in, v, r->want);
        } else {
            ck_assert_msg(rc == -1, "'%s' accepted as %lld", r->in, v);
        }
    }
}
END_TEST

START_TEST(strcaseeq_compares_whole_names_ignoring_case)
{
    ck_assert_int_eq(util_strcaseeq("ping", "ping", 4), 1);
    ck_assert_int_eq(util_strcaseeq("ping", "PING", 4), 1);
    ck_assert_int_eq(util_strcaseeq("ping", "PiNg", 4), 1);
    ck_assert_int_eq(util_strcaseeq("ping", "PINGX", 4), 1); /* only len bytes count */
    ck_assert_int_eq(util_strcaseeq("ping", "PIN", 3), 0);
    ck_assert_int_eq(util_strcaseeq("ping", "pings", 5), 0);
    ck_assert_int_eq(util_strcaseeq("ping", "pong", 4), 0);
    ck_assert_int_eq(util_strcaseeq("", "", 0), 1);
    ck_assert_int_eq(util_strcaseeq("", "x", 1), 0);
    ck_assert_int_eq(util_strcaseeq("a", "", 0), 0);
    ck_assert_int_eq(util_strcaseeq("ab", "a\0", 2), 0);
    ck_assert_int_eq(util_strcaseeq("a|b", "A|B", 3), 1);
    /* Case folding is ASCII letters only: '@' (0x40) and '`' (0x60) differ. */
    ck_assert_int_eq(util_strcaseeq("@", "`", 1), 0);
    ck_assert_int_eq(util_strcaseeq("\xc0", "\xe0", 1), 0); /* not Latin-1 either */
}
END_TEST

/* Key 00 01 .. 0f, the reference SipHash test key. */
static void reference_key(uint8_t key[16])
{
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
}

START_TEST(siphash_matches_sip12_reference_vectors)
{
    static const struct {
        size_t len;
        uint64_t want;
    } vec[] = {
        {0, 0xcea28b51565c12e2ULL},  {1, 0x94aaf38c34ce7ba6ULL},  {7, 0xf03c4cbcf492b05aULL},
        {8, 0x606845b4d093af74ULL},  {9, 0xe304e78271c74a56ULL},  {15, 0xec8f61bc1c8966a6ULL},
        {16, 0x1311f4dfe747a751ULL}, {63, 0xff6d07afacbad6d9ULL},
    };
    uint8_t key[16], msg[64];

    reference_key(key);
    for (int i = 0; i < 64; i++)
        msg[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        uint64_t h = util_siphash(msg, vec[i].len, key);
        ck_assert_msg(h == vec[i].want, "len %zu: got %016llx want %016llx", vec[i].len,
                      (unsigned long long)h, (unsigned long long)vec[i].want);
    }
    ck_assert(util_siphash("hello", 5, key) == 0xf5496b7e483cca31ULL);
}
END_TEST

START_TEST(siphash_is_stable_and_depends_on_key_and_every_byte)
{
    uint8_t k1[16], k2[16];
    char buf[40];

    reference_key(k1);
    memcpy(k2, k1, 16);
    k2[15] ^= 0x80;
    memset(buf, 'a', sizeof(buf));
    for (size_t len = 0; len <= sizeof(buf); len++) {
        uint64_t h = util_siphash(buf, len, k1);
        ck_assert(h == util_siphash(buf, len, k1));
        ck_assert(h != util_siphash(buf, len, k2));
        /* Only len bytes are read: the byte after them does not matter. */
        if (len < sizeof(buf)) {
            char save = buf[len];
            buf[len] = 'z';
            ck_assert(h == util_siphash(buf, len, k1));
            buf[len] = save;
        }
        /* Flipping any one byte inside changes the hash. */
        for (size_t i = 0; i < len; i++) {
            buf[i] ^= 1;
            ck_assert(h != util_siphash(buf, len, k1));
            buf[i] ^= 1;
        }
        /* Lengths are part of the hash: "aa" and "a" differ, also NUL padding. */
        if (len > 0)
            ck_assert(h != util_siphash(buf, len - 1, k1));
    }
    ck_assert(util_siphash("a\0", 2, k1) != util_siphash("a", 1, k1));
}
END_TEST

START_TEST(xmemdup_copies_and_terminates)
{
    char *p = xmemdup("a\0b", 3);
    ck_assert_int_eq(memcmp(p, "a\0b", 3), 0);
    ck_assert_int_eq(p[3], '\0');
    free(p);
    p = xmemdup(NULL, 0);
    ck_assert_int_eq(p[0], '\0');
    free(p);
}
END_TEST

/* Builds a socket address from an IPv4 or IPv6 literal. */
static struct sockaddr_storage addr_of(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
        ss.ss_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
        ss.ss_family = AF_INET6;
    else
        ck_abort_msg("bad literal %s", ip);
    return ss;
}

START_TEST(loopback_is_judged_like_redis_protected_mode)
{
    static const struct {
        const char *ip;
        int local;
    } rows[] = {
        {"127.0.0.1", 1}, {"::1", 1},         {"::ffff:127.0.0.1", 1}, {"127.0.0.2", 0},
        {"10.0.0.1", 0},  {"0.0.0.0", 0},     {"::ffff:127.0.0.2", 0}, {"fe80::1", 0},
        {"::", 0},        {"192.168.1.1", 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct sockaddr_storage ss = addr_of(rows[i].ip);
        ck_assert_msg(util_sockaddr_is_loopback((struct sockaddr *)&ss) == rows[i].local, "%s",
                      rows[i].ip);
    }
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    ck_assert_int_eq(util_sockaddr_is_loopback((struct sockaddr *)&sun), 1);
}
END_TEST

START_TEST(sha256_matches_a_known_digest)
{
    static const unsigned char want[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                           0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                           0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                           0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    unsigned char got[32];
    util_sha256("abc", 3, got); /* FIPS 180-2's "abc" example */
    ck_assert_mem_eq(got, want, 32);
}
END_TEST

/* The suite: parsing, comparison, hashing. */
static Suite *util_suite(void)
{
    Suite *s = suite_create("util");
    TCase *parse = tcase_create("parse");
    TCase *hash = tcase_create("hash");

    tcase_add_test(parse, parse_ll_follows_string2ll_rules);
    tcase_add_test(parse, parse_ll_reads_only_len_bytes);
    tcase_add_test(parse, parse_ll_round_trips_every_power_of_ten_boundary);
    tcase_add_test(parse, parse_size_accepts_memtoll_units_and_rejects_the_rest);
    tcase_add_test(parse, strcaseeq_compares_whole_names_ignoring_case);
    tcase_add_test(parse, xmemdup_copies_and_terminates);
    suite_add_tcase(s, parse);

    tcase_add_test(hash, siphash_matches_sip12_reference_vectors);
    tcase_add_test(hash, siphash_is_stable_and_depends_on_key_and_every_byte);
    tcase_add_test(hash, sha256_matches_a_known_digest);
    tcase_add_test(parse, loopback_is_judged_like_redis_protected_mode);
    suite_add_tcase(s, hash);
    return s;
}

UNIT_MAIN(util_suite)
