/* Unit tests for the glob matcher and the pattern index. The matcher tables were generated
 * from a real redis-server 7.0.15 (PUBSUB CHANNELS for case-sensitive matching, CONFIG GET
 * for nocase), so every expected value is what Redis's stringmatchlen answers. */
#include "pattern.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "unit.h"
#include "util.h"

struct match_case {
    const char *pat;
    size_t patlen;
    const char *str;
    size_t strlen;
    int expected;
};

/* sizeof keeps embedded NUL bytes part of the pattern or string. */
#define CASE(p, s, e)                                                                              \
    {                                                                                              \
        (p), sizeof(p) - 1, (s), sizeof(s) - 1, (e)                                                \
    }

/* Case-sensitive cases; each expected value was checked against redis-server 7.0.15 by
 * subscribing a client to every string and running PUBSUB CHANNELS with the pattern. */
static const struct match_case match_cases[] = {
    /* empty string and empty pattern */
    CASE("", "", 1),
    CASE("", "a", 0),
    CASE("*", "", 0),
    CASE("**", "", 0),
    CASE("?", "", 0),
    CASE("a", "", 0),
    CASE("[", "", 0),
    CASE("[]", "", 0),
    CASE("\\", "", 0),
    /* literals */
    CASE("abc", "abc", 1),
    CASE("abc", "abd", 0),
    CASE("abc", "ab", 0),
    CASE("abc", "abcd", 0),
    CASE("abc", "ABC", 0),
    CASE("news.sport", "news.sport", 1),
    CASE("]", "]", 1),
    CASE("^", "^", 1),
    CASE("-", "-", 1),
    CASE("a]", "a]", 1),
    CASE("!", "!", 1),
    CASE("a-b", "a-b", 1),
    /* star */
    CASE("*", "x", 1),
    CASE("*", "anything at all", 1),
    CASE("a*", "a", 1),
    CASE("a*", "abc", 1),
    CASE("a*", "ba", 0),
    CASE("*c", "c", 1),
    CASE("*c", "abc", 1),
    CASE("*c", "abcd", 0),
    CASE("a*c", "ac", 1),
    CASE("a*c", "abbbc", 1),
    CASE("a*c", "abcb", 0),
    CASE("a*b*c", "aXbYc", 1),
    CASE("a*b*c", "acb", 0),
    CASE("a*b*c", "abc", 1),
    CASE("***", "x", 1),
    CASE("a**b", "ab", 1),
    CASE("a**b", "aXXb", 1),
    CASE("*a*", "banana", 1),
    CASE("*x*", "banana", 0),
    CASE("news.*", "news.", 1),
    CASE("news.*", "news", 0),
    CASE("news.*", "news.sport", 1),
    CASE("news.*", "newsXsport", 0),
    CASE("*.*", "a.b", 1),
    CASE("*.*", ".", 1),
    CASE("*.*", "ab", 0),
    CASE("*b", "aaaaaaaaab", 1),
    CASE("*b", "aaaaaaaaba", 0),
    /* question mark */
    CASE("?", "a", 1),
    CASE("?", "ab", 0),
    CASE("??", "ab", 1),
    CASE("??", "a", 0),
    CASE("a?c", "abc", 1),
    CASE("a?c", "ac", 0),
    CASE("a?c", "abbc", 0),
    CASE("?*", "a", 1),
    CASE("*?", "a", 1),
    CASE("?*?", "a", 0),
    CASE("?*?", "ab", 1),
    CASE("*?*?", "a", 0),
    CASE("*?*?", "ab", 1),
    CASE("???*", "abc", 1),
    CASE("???*", "ab", 0),
    /* backtracking */
    CASE("*ab", "aab", 1),
    CASE("*aab", "aaab", 1),
    CASE("a*ab", "aab", 1),
    CASE("a*ab", "ab", 0),
    CASE("*a?b", "aaxb", 1),
    CASE("*abc*abc", "abcabcabc", 1),
    CASE("*abc*abd", "abcabcabd", 1),
    CASE("*abc*abd", "abdabc", 0),
    CASE("a*a*a*b", "aaaaab", 1),
    CASE("a*a*a*b", "aaaaa", 0),
    CASE("*?b", "ab", 1),
    CASE("*?b", "b", 0),
    /* brackets */
    CASE("[abc]", "a", 1),
    CASE("[abc]", "c", 1),
    CASE("[abc]", "d", 0),
    CASE("[abc]", "ab", 0),
    CASE("[abc]", "", 0),
    CASE("[^abc]", "d", 1),
    CASE("[^abc]", "a", 0),
    CASE("[^abc]", "dd", 0),
    CASE("[a-c]", "b", 1),
    CASE("[a-c]", "a", 1),
    CASE("[a-c]", "c", 1),
    CASE("[a-c]", "d", 0),
    CASE("[a-c]", "B", 0),
    CASE("[c-a]", "b", 1),
    CASE("[c-a]", "d", 0),
    CASE("[^a-c]", "d", 1),
    CASE("[^a-c]", "b", 0),
    CASE("[^c-a]", "b", 0),
    CASE("[^c-a]", "z", 1),
    CASE("[a-]", "a", 1),
    CASE("[a-]", "-", 0),
    CASE("[a-]", "_", 1),
    CASE("[a-]", "]", 1),
    CASE("[-a]", "-", 1),
    CASE("[-a]", "a", 1),
    CASE("[-a]", "b", 0),
    CASE("[]", "a", 0),
    CASE("[]", "]", 0),
    CASE("[]a]", "a", 0),
    CASE("[]a]", "]a", 0),
    CASE("[]a]", "]", 0),
    CASE("[^]", "a", 1),
    CASE("[^]", "]", 1),
    CASE("[^]a", "xa", 1),
    CASE("[^]a", "a", 0),
    CASE("[a-c-e]", "d", 0),
    CASE("[a-c-e]", "-", 1),
    CASE("[a-c-e]", "e", 1),
    CASE("[a-c-e]", "b", 1),
    CASE("x[a-z]y", "xmy", 1),
    CASE("x[a-z]y", "xMy", 0),
    CASE("[ab]*", "bzz", 1),
    CASE("*[ab]", "zzb", 1),
    CASE("[[]", "[", 1),
    CASE("[[]", "a", 0),
    CASE("[!a]", "!", 1),
    CASE("[!a]", "b", 0),
    CASE("[^^]", "^", 0),
    CASE("[^^]", "a", 1),
    CASE("[*]", "*", 1),
    CASE("[*]", "a", 0),
    CASE("[?]", "?", 1),
    CASE("[?]", "a", 0),
    CASE("[a-a]", "a", 1),
    CASE("[Z-a]", "_", 1),
    CASE("[Z-a]", "A", 0),
    CASE("[a-Z]", "_", 1),
    CASE("[a-Z]", "b", 0),
    CASE("[0-9][0-9]", "42", 1),
    CASE("[0-9][0-9]", "4x", 0),
    /* escapes inside brackets */
    CASE("[\\]]", "]", 1),
    CASE("[\\]]", "\\", 0),
    CASE("[\\]", "\\", 0),
    CASE("[\\]", "]", 1),
    CASE("[\\\\]", "\\", 1),
    CASE("[\\-]", "-", 1),
    CASE("[a\\-z]", "m", 0),
    CASE("[a\\-z]", "-", 1),
    CASE("[a\\-z]", "z", 1),
    CASE("[\\a-z]", "m", 0),
    CASE("[\\a-z]", "-", 1),
    CASE("[\\a-z]", "a", 1),
    CASE("[a-\\z]", "b", 0),
    CASE("[a-\\z]", "\\", 1),
    CASE("[a-\\z]", "z", 1),
    CASE("[a-\\z]", "_", 1),
    CASE("[\\^a]", "^", 1),
    CASE("[\\^a]", "b", 0),
    CASE("[^\\]]", "]", 0),
    CASE("[^\\]]", "a", 1),
    /* unclosed bracket */
    CASE("[", "a", 0),
    CASE("[", "[", 0),
    CASE("[a", "a", 1),
    CASE("[a", "b", 0),
    CASE("[ab", "b", 1),
    CASE("[a", "ab", 0),
    CASE("a[", "ab", 0),
    CASE("a[", "a[", 0),
    CASE("[^", "a", 1),
    CASE("[^", "^", 1),
    CASE("[^", "ab", 0),
    CASE("[^a", "b", 1),
    CASE("[^a", "a", 0),
    CASE("[a-", "a", 1),
    CASE("[a-", "-", 1),
    CASE("[a-", "b", 0),
    CASE("[a-z", "m", 1),
    CASE("[a-z", "z", 1),
    CASE("[a-z", "-", 0),
    CASE("[a-z", "[", 0),
    CASE("[\\", "\\", 1),
    CASE("[\\", "a", 0),
    CASE("[a\\", "\\", 1),
    CASE("[a\\", "a", 1),
    CASE("[*", "*", 1),
    CASE("[*", "x", 0),
    CASE("[*", "xx", 0),
    CASE("[?", "?", 1),
    CASE("[?", "x", 0),
    CASE("[a]b[", "abc", 0),
    CASE("[a]b[", "ab[", 0),
    CASE("*[", "x[", 0),
    CASE("*[a", "xxa", 1),
    CASE("[^", "", 0),
    /* escapes outside brackets */
    CASE("\\*", "*", 1),
    CASE("\\*", "a", 0),
    CASE("\\?", "?", 1),
    CASE("\\?", "a", 0),
    CASE("\\[", "[", 1),
    CASE("\\[a]", "[a]", 1),
    CASE("\\[a]", "a", 0),
    CASE("\\\\", "\\", 1),
    CASE("\\\\", "\\\\", 0),
    CASE("\\a", "a", 1),
    CASE("\\a", "A", 0),
    CASE("\\", "\\", 1),
    CASE("\\", "a", 0),
    CASE("\\", "\\\\", 0),
    CASE("a\\", "a\\", 1),
    CASE("a\\", "a", 0),
    CASE("\\*a", "*a", 1),
    CASE("\\*a", "xa", 0),
    CASE("*\\*", "ab*", 1),
    CASE("*\\*", "ab", 0),
    CASE("\\**", "*abc", 1),
    CASE("\\**", "a*", 0),
    CASE("a\\*b", "a*b", 1),
    CASE("a\\*b", "axb", 0),
    CASE("\\]", "]", 1),
    CASE("\\-", "-", 1),
    CASE("*\\", "x\\", 1),
    CASE("*\\", "x", 0),
    /* bytes above 0x7f and NUL (Redis compares signed chars) */
    CASE("[\x80-\xff]", "\x90", 1),
    CASE("[\x80-\xff]", "a", 0),
    CASE("[a-\x80]", "b", 0),
    CASE("[a-\x80]", "a", 1),
    CASE("[a-\x80]", "\x00", 1),
    CASE("[a-\x80]", "\x90", 1),
    CASE("[\x7f-\x80]", "q", 1),
    CASE("[\x7f-\x80]", "\xc3", 1),
    CASE("[\x01-\xff]", "\x80", 0),
    CASE("[\x01-\xff]", "\xff", 1),
    CASE("[\x01-\xff]", "\x00", 1),
    CASE("[\x01-\xff]", "\x01", 1),
    CASE("[^\x80]", "\x81", 1),
    CASE("\xe2\x82\xac*",
         "\xe2\x82\xac"
         "1",
         1),
    CASE("?", "\xff", 1),
    CASE("a\x00"
         "b",
         "a\x00"
         "b",
         1),
    CASE("a\x00"
         "b",
         "a", 0),
    CASE("a?b",
         "a\x00"
         "b",
         1),
    CASE("*\x00", "x\x00", 1),
    CASE("[\x00]", "\x00", 1),
    CASE("[\x00-a]", "Q", 1),
    CASE("\x00*", "\x00", 1),
};

/* Case-insensitive cases; each expected value was checked against redis-server 7.0.15 with
 * CONFIG GET, whose glob matching runs stringmatchlen with nocase set. */
static const struct match_case nocase_cases[] = {
    CASE("APPENDONLY*", "appendonly", 1),
    CASE("APPENDONLY*", "maxmemory", 0),
    CASE("MaxMemory*", "appendonly", 0),
    CASE("MaxMemory*", "maxmemory", 1),
    CASE("MaxMemory*", "maxmemory-policy", 1),
    CASE("?AXMEMORY", "appendonly", 0),
    CASE("?AXMEMORY", "maxmemory", 1),
    CASE("[A-Z]ppendonly", "appendonly", 1),
    CASE("[A-Z]ppendonly", "maxmemory", 0),
    CASE("[Z-a]ppendonly", "appendonly", 0),
    CASE("[Z-a]ppendonly", "maxmemory", 0),
    CASE("[^Z-a]ppendonly", "appendonly", 1),
    CASE("[^Z-a]ppendonly", "maxmemory", 0),
    CASE("[a-Z]ppendonly*", "appendonly", 0),
    CASE("[a-Z]ppendonly*", "maxmemory", 0),
    CASE("[z-A]ppendonly*", "appendonly", 1),
    CASE("[z-A]ppendonly*", "maxmemory", 0),
    CASE("[\\A]ppendonly", "appendonly", 0),
    CASE("[\\A]ppendonly", "maxmemory", 0),
    CASE("[\\a]ppendonly", "appendonly", 1),
    CASE("[\\a]ppendonly", "maxmemory", 0),
    CASE("\\Appendonly*", "appendonly", 1),
    CASE("\\Appendonly*", "maxmemory", 0),
    CASE("[A-`]ppendonly", "appendonly", 0),
    CASE("[A-`]ppendonly", "maxmemory", 0),
    CASE("[`-a]ppendonly", "appendonly", 1),
    CASE("[`-a]ppendonly", "maxmemory", 0),
    CASE("[b-z]PPENDONLY", "appendonly", 0),
    CASE("[b-z]PPENDONLY", "maxmemory", 0),
    CASE("*-[P-Q]OLICY", "appendonly", 0),
    CASE("*-[P-Q]OLICY", "maxmemory", 0),
    CASE("*-[P-Q]OLICY", "maxmemory-policy", 1),
    CASE("*[^A-L]emory", "appendonly", 0),
    CASE("*[^A-L]emory", "maxmemory", 1),
    CASE("MAX[^\\M]*", "appendonly", 0),
    CASE("MAX[^\\M]*", "maxmemory", 1),
    CASE("MAX[^\\M]*", "maxmemory-policy", 1),
    CASE("*-TTL", "appendonly", 0),
    CASE("*-TTL", "maxmemory", 0),
    CASE("*-TTL", "repl-backlog-ttl", 1),
    CASE("AC[L]*", "appendonly", 0),
    CASE("AC[L]*", "maxmemory", 0),
    CASE("AC[L]*", "aclfile", 1),
};

/* Copies len bytes into a buffer of exactly that size, so ASan flags any read past the end. */
static char *exact_copy(const char *p, size_t len)
{
    char *q = xmalloc(len);
    if (len > 0)
        memcpy(q, p, len);
    return q;
}

/* Runs a table through pattern_match and reports the first disagreement with Redis. */
static void check_cases(const struct match_case *cases, size_t n, int nocase)
{
    for (size_t i = 0; i < n; i++) {
        const struct match_case *c = &cases[i];
        char *pat = exact_copy(c->pat, c->patlen);
        char *str = exact_copy(c->str, c->strlen);
        int got = pattern_match(pat, c->patlen, str, c->strlen, nocase);
        ck_assert_msg(got == c->expected,
                      "case %zu: pattern \"%.*s\" string \"%.*s\": got %d, want %d", i,
                      (int)c->patlen, c->pat, (int)c->strlen, c->str, got, c->expected);
        free(pat);
        free(str);
    }
}

START_TEST(test_match_agrees_with_redis_table)
{
    check_cases(match_cases, sizeof(match_cases) / sizeof(match_cases[0]), 0);
}
END_TEST

START_TEST(test_match_nocase_agrees_with_redis_table)
{
    check_cases(nocase_cases, sizeof(nocase_cases) / sizeof(nocase_cases[0]), 1);
}
END_TEST

START_TEST(test_match_folds_case_only_with_nocase)
{
    ck_assert_int_eq(pattern_match("ABC", 3, "abc", 3, 0), 0);
    ck_assert_int_eq(pattern_match("ABC", 3, "abc", 3, 1), 1);
    ck_assert_int_eq(pattern_match("a?C*", 4, "AxcYZ", 5, 1), 1);
    ck_assert_int_eq(pattern_match("[A-C]", 5, "b", 1, 1), 1);
    ck_assert_int_eq(pattern_match("[A-C]", 5, "b", 1, 0), 0);
    /* Only ASCII letters fold, as tolower does in the C locale. */
    ck_assert_int_eq(pattern_match("\xc4", 1, "\xe4", 1, 1), 0);
    /* Outside brackets an escaped letter folds; inside brackets it does not. */
    ck_assert_int_eq(pattern_match("\\A", 2, "a", 1, 1), 1);
    ck_assert_int_eq(pattern_match("[\\A]", 4, "a", 1, 1), 0);
}
END_TEST

START_TEST(test_match_respects_lengths_not_nul_terminators)
{
    /* Only the first byte of each buffer is part of the pattern. */
    ck_assert_int_eq(pattern_match("a*", 1, "ab", 2, 0), 0);
    ck_assert_int_eq(pattern_match("[a]", 1, "a", 1, 0), 0);
    ck_assert_int_eq(pattern_match("\\*", 1, "\\", 1, 0), 1);
    ck_assert_int_eq(pattern_match("[^]", 2, "x", 1, 0), 1);
    ck_assert_int_eq(pattern_match("abc", 3, "abcd", 3, 0), 1);
}
END_TEST

/* Returns a heap buffer holding head, then unit n times, then tail; sets *len. */
static char *repeat(const char *head, const char *unit, size_t n, const char *tail, size_t *len)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *buf = xmalloc(hl + ul * n + tl + 1);
    memcpy(buf, head, hl);
    for (size_t i = 0; i < n; i++)
        memcpy(buf + hl + i * ul, unit, ul);
    memcpy(buf + hl + ul * n, tail, tl + 1);
    *len = hl + ul * n + tl;
    return buf;
}

struct repeat_case {
    const char *pat_head;
    const char *pat_unit;
    size_t pat_n;
    const char *pat_tail;
    const char *str_unit;
    size_t str_n;
    const char *str_tail;
    int expected;
};

/* Long and adversarial inputs. Expected values were checked against redis-server 7.0.15,
 * including its depth guard: a pattern whose 1001st star group is followed by anything
 * else never matches. */
static const struct repeat_case repeat_cases[] = {
    {"", "*?", 50000, "", "x", 100000, "", 0},   {"", "*?", 50000, "", "abc", 1, "", 0},
    {"", "a*", 50000, "b", "a", 100000, "", 0},  {"", "a*", 50000, "b", "a", 99999, "b", 0},
    {"", "a*", 1000, "b", "a", 100000, "", 0},   {"", "a*", 1000, "b", "a", 99999, "b", 1},
    {"*", "a", 200, "b", "a", 20000, "", 0},     {"*", "a", 200, "b", "a", 20000, "b", 1},
    {"", "[a-z]", 20000, "", "q", 20000, "", 1}, {"", "*", 100000, "x", "a", 100000, "x", 1},
    {"", "*a", 1000, "", "a", 100000, "", 1},    {"", "*a", 1000, "b", "a", 100000, "", 0},
    {"", "*a", 1001, "", "a", 100000, "", 0},    {"", "*?", 1000, "", "x", 5000, "", 1},
    {"", "*?", 1000, "*", "x", 5000, "", 1},     {"", "*?", 1000, "*?", "x", 5000, "", 0},
    {"", "?*", 1000, "?", "x", 5000, "", 1},     {"", "?*", 1001, "", "x", 5000, "", 1},
    {"", "?*", 1001, "?", "x", 5000, "", 0},
};

/* Runs repeat cases both ways (case folded and not), naming the table in failures. */
static void check_repeat_cases(const struct repeat_case *cases, size_t n, const char *table)
{
    for (size_t i = 0; i < n; i++) {
        const struct repeat_case *c = &cases[i];
        size_t plen, slen;
        char *pat = repeat(c->pat_head, c->pat_unit, c->pat_n, c->pat_tail, &plen);
        char *str = repeat("", c->str_unit, c->str_n, c->str_tail, &slen);
        for (int nocase = 0; nocase <= 1; nocase++)
            ck_assert_msg(pattern_match(pat, plen, str, slen, nocase) == c->expected,
                          "%s case %zu (nocase %d)", table, i, nocase);
        free(pat);
        free(str);
    }
}

START_TEST(test_match_pathological_patterns_finish_quickly)
{
    check_repeat_cases(repeat_cases, sizeof(repeat_cases) / sizeof(repeat_cases[0]), "repeat");
}
END_TEST

/* A small deterministic generator for the randomised checks. */
static uint32_t next_rand(uint32_t *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return *seed >> 16;
}

/* Long runs of tokens after a star against long strings: the cost was their product
 * (minutes for these), now it is about their sum. The same shapes at 500 tokens against
 * 2,000 bytes gave the same answers from redis-server 7.0.15. */
static const struct repeat_case tail_cases[] = {
    {"*", "[a-]", 5000, "", "a", 400000, "", 1}, /* an unclosed class: one token */
    {"*", "a", 60000, "b", "a", 400000, "", 0},
    {"*", "a", 60000, "b", "a", 400000, "b", 1},
    {"*", "a", 60000, "b", "a", 30000, "b", 0},
    /* and between two stars: the first fit is found in one pass over the string */
    {"*", "a", 5000, "b*", "a", 200000, "", 0},
    {"*", "a", 5000, "b*", "a", 200000, "b", 1},
    {"*", "a", 5000, "b*?", "a", 200000, "b", 0},
    /* A segment no prefix of which ever matches costs a table lookup a byte (it cost the
     * segment's length / 64 word operations a byte, 55 s for 2 MB against 4 MB), and one
     * longer than the string left fails before its table is built or its tokens counted
     * (a 2 MB segment against 5 KB built 64 MB per call). */
    {"*", "a", 100000, "*x", "b", 400000, "", 0},
    {"*", "[b-z]", 20000, "*x", "a", 400000, "", 0},
    {"*", "a", 2000000, "*x", "a", 5000, "", 0},
    {"*", "[a]", 2000000, "x", "a", 20, "", 0},
    /* mid-sized: long classes between stars against 4 KB cost their product (2 s in Redis) */
    {"*", "[bcdefghijklmnopqrstuvwxyz]", 4001, "*x", "b", 4000, "aaaa", 0},
};

START_TEST(test_match_long_tails_cost_their_length)
{
    check_repeat_cases(tail_cases, sizeof(tail_cases) / sizeof(tail_cases[0]), "tail");
}
END_TEST

/* The shortcuts (the anchored tail, the segment search) change nothing but the time: random
 * patterns and strings over a small alphabet rich in metacharacters agree with them always on
 * and always off. */
START_TEST(test_match_tail_shortcut_agrees_with_plain_search)
{
    static const char pat_chars[] = "ab*?[]^-\\AZz\xe9";
    static const char str_chars[] = "abA-]\\*Zz\xe9\xc9";
    char pat[16], str[24];
    uint32_t seed = 12345;

    for (int i = 0; i < 100000; i++) {
        size_t plen = next_rand(&seed) % sizeof(pat), slen = next_rand(&seed) % sizeof(str);
        for (size_t k = 0; k < plen; k++)
            pat[k] = pat_chars[next_rand(&seed) % (sizeof(pat_chars) - 1)];
        for (size_t k = 0; k < slen; k++)
            str[k] = str_chars[next_rand(&seed) % (sizeof(str_chars) - 1)];
        int nocase = i & 1;
        pattern_anchor_min = 0;
        pattern_segment_max_tokens = i & 2 ? 1 : (size_t)1 << 21; /* half by the fallback */
        int with = pattern_match(pat, plen, str, slen, nocase);
        pattern_anchor_min = SIZE_MAX;
        int without = pattern_match(pat, plen, str, slen, nocase);
        ck_assert_msg(with == without,
                      "'%.*s' vs '%.*s' (nocase %d): %d with the shortcut, %d without", (int)plen,
                      pat, (int)slen, str, nocase, with, without);
    }
    pattern_anchor_min = 1 << 16;
    pattern_segment_max_tokens = (size_t)1 << 21;
}
END_TEST

START_TEST(test_match_star_group_limit_is_1000_like_redis)
{
    size_t plen, slen;
    char *str = repeat("", "a", 1002, "", &slen);
    char *ok = repeat("", "a*", 1000, "a", &plen);
    ck_assert_int_eq(pattern_match(ok, plen, str, slen, 0), 1);
    free(ok);
    char *over = repeat("", "a*", 1001, "a", &plen);
    ck_assert_int_eq(pattern_match(over, plen, str, slen, 0), 0);
    free(over);
    /* A 1001st group that ends the pattern still matches the rest. */
    char *trailing = repeat("", "a*", 1001, "", &plen);
    ck_assert_int_eq(pattern_match(trailing, plen, str, slen, 0), 1);
    free(trailing);
    /* Consecutive stars are one group. */
    char *doubled = repeat("", "a**", 1000, "a", &plen);
    ck_assert_int_eq(pattern_match(doubled, plen, str, slen, 0), 1);
    free(doubled);
    free(str);
}
END_TEST

/* A subscriber as the index sees it: the pattern bytes live inside the data. */
struct sub {
    char pat[32];
    size_t len;
    int hits;
};

/* Counts a delivery on the subscriber and in the caller's total. */
static void count_cb(void *data, void *arg)
{
    struct sub *s = data;
    s->hits++;
    (*(size_t *)arg)++;
}

/* Fills in a subscriber for a NUL-terminated pattern. */
static void sub_init(struct sub *s, const char *pat)
{
    s->len = strlen(pat);
    ck_assert_uint_lt(s->len, sizeof(s->pat));
    memcpy(s->pat, pat, s->len + 1);
    s->hits = 0;
}

/* Publishes to a NUL-terminated channel after clearing the hit counters. */
static size_t publish(struct pattern_index *idx, struct sub *subs, size_t n, const char *ch)
{
    size_t calls = 0;
    for (size_t i = 0; i < n; i++)
        subs[i].hits = 0;
    size_t matches = pattern_index_match(idx, ch, strlen(ch), count_cb, &calls);
    ck_assert_uint_eq(matches, calls);
    return matches;
}

/* Asserts that publishing to ch reaches exactly the subscribers pattern_match accepts among
 * those currently indexed. */
static void expect_linear(struct pattern_index *idx, struct sub *subs, const int *in, size_t n,
                          const char *ch, size_t chlen)
{
    size_t calls = 0, want = 0;
    for (size_t i = 0; i < n; i++)
        subs[i].hits = 0;
    size_t got = pattern_index_match(idx, ch, chlen, count_cb, &calls);
    for (size_t i = 0; i < n; i++) {
        int m = in[i] && pattern_match(subs[i].pat, subs[i].len, ch, chlen, 0);
        /* Assert only on failure: each Check assertion costs a message to the runner. */
        if (subs[i].hits != m)
            ck_abort_msg("pattern \"%.*s\" channel \"%.*s\": %d deliveries, want %d",
                         (int)subs[i].len, subs[i].pat, (int)chlen, ch, subs[i].hits, m);
        want += (size_t)m;
    }
    ck_assert_uint_eq(got, want);
    ck_assert_uint_eq(calls, want);
}

START_TEST(test_index_delivers_to_matching_patterns_only)
{
    static const char *pats[] = {"news.*", "news.sport", "*", "n?ws.*", "news.[st]*", "weather.*"};
    struct sub subs[6];
    struct pattern_index *idx = pattern_index_new();
    for (size_t i = 0; i < 6; i++) {
        sub_init(&subs[i], pats[i]);
        pattern_index_add(idx, subs[i].pat, subs[i].len, &subs[i]);
    }
    ck_assert_uint_eq(pattern_index_size(idx), 6);

    ck_assert_uint_eq(publish(idx, subs, 6, "news.sport"), 5);
    ck_assert_int_eq(subs[5].hits, 0);
    ck_assert_uint_eq(publish(idx, subs, 6, "news.tech"), 4);
    ck_assert_int_eq(subs[1].hits, 0);
    ck_assert_uint_eq(publish(idx, subs, 6, "nows.x"), 2);
    ck_assert_int_eq(subs[2].hits, 1);
    ck_assert_int_eq(subs[3].hits, 1);
    ck_assert_uint_eq(publish(idx, subs, 6, "weather.today"), 2);
    ck_assert_uint_eq(publish(idx, subs, 6, "new"), 1);
    ck_assert_uint_eq(publish(idx, subs, 6, "news"), 1);
    pattern_index_free(idx);
}
END_TEST

START_TEST(test_index_shared_prefix_survives_swap_removal)
{
    static const char *pats[] = {"foo.*", "foo.?", "foo.[ab]", "foo.b*", "foo.\\*"};
    struct sub subs[5];
    int in[5] = {1, 1, 1, 1, 1};
    struct pattern_index *idx = pattern_index_new();
    for (size_t i = 0; i < 5; i++) {
        sub_init(&subs[i], pats[i]);
        pattern_index_add(idx, subs[i].pat, subs[i].len, &subs[i]);
    }
    expect_linear(idx, subs, in, 5, "foo.b", 5);
    /* Remove from the middle, the front and the back of the shared bucket. */
    static const size_t order[] = {2, 0, 4, 1, 3};
    for (size_t k = 0; k < 5; k++) {
        pattern_index_remove(idx, subs[order[k]].pat, subs[order[k]].len);
        in[order[k]] = 0;
        ck_assert_uint_eq(pattern_index_size(idx), 4 - k);
        expect_linear(idx, subs, in, 5, "foo.b", 5);
        expect_linear(idx, subs, in, 5, "foo.*", 5);
        expect_linear(idx, subs, in, 5, "foo.bar", 7);
    }
    ck_assert_uint_eq(publish(idx, subs, 5, "foo.b"), 0);
    pattern_index_free(idx);
}
END_TEST

START_TEST(test_index_empty_prefix_patterns_are_always_candidates)
{
    static const char *pats[] = {"*", "*x", "?", "[a]*", "", "**"};
    struct sub subs[6];
    int in[6] = {1, 1, 1, 1, 1, 1};
    struct pattern_index *idx = pattern_index_new();
    for (size_t i = 0; i < 6; i++) {
        sub_init(&subs[i], pats[i]);
        pattern_index_add(idx, subs[i].pat, subs[i].len, &subs[i]);
    }
    ck_assert_uint_eq(publish(idx, subs, 6, "ax"), 4);
    ck_assert_uint_eq(publish(idx, subs, 6, "b"), 3);
    /* Like Redis, the empty channel matches only the empty pattern, not even "*". */
    ck_assert_uint_eq(publish(idx, subs, 6, ""), 1);
    ck_assert_int_eq(subs[4].hits, 1);
    expect_linear(idx, subs, in, 6, "a", 1);
    expect_linear(idx, subs, in, 6, "zzzzx", 5);
    pattern_index_free(idx);
}
END_TEST

START_TEST(test_index_escape_ends_the_literal_prefix)
{
    static const char *pats[] = {"\\*news", "n\\*", "\\?", "ab\\c*", "\\"};
    struct sub subs[5];
    int in[5] = {1, 1, 1, 1, 1};
    struct pattern_index *idx = pattern_index_new();
    for (size_t i = 0; i < 5; i++) {
        sub_init(&subs[i], pats[i]);
        pattern_index_add(idx, subs[i].pat, subs[i].len, &subs[i]);
    }
    ck_assert_uint_eq(publish(idx, subs, 5, "*news"), 1);
    ck_assert_int_eq(subs[0].hits, 1);
    ck_assert_uint_eq(publish(idx, subs, 5, "xnews"), 0);
    ck_assert_uint_eq(publish(idx, subs, 5, "n*"), 1);
    ck_assert_uint_eq(publish(idx, subs, 5, "nx"), 0);
    ck_assert_uint_eq(publish(idx, subs, 5, "?"), 1);
    ck_assert_uint_eq(publish(idx, subs, 5, "abc-d"), 1);
    ck_assert_uint_eq(publish(idx, subs, 5, "\\"), 1);
    ck_assert_int_eq(subs[4].hits, 1);
    static const char *chans[] = {"*news", "n*", "?", "x", "abc", "ab\\c", "\\", "\\\\"};
    for (size_t i = 0; i < sizeof(chans) / sizeof(chans[0]); i++)
        expect_linear(idx, subs, in, 5, chans[i], strlen(chans[i]));
    pattern_index_free(idx);
}
END_TEST

START_TEST(test_index_remove_then_readd_uses_new_data)
{
    struct sub a, b;
    sub_init(&a, "chat.*");
    sub_init(&b, "chat.*");
    struct pattern_index *idx = pattern_index_new();
    pattern_index_add(idx, a.pat, a.len, &a);
    pattern_index_remove(idx, a.pat, a.len);
    ck_assert_uint_eq(pattern_index_size(idx), 0);
    pattern_index_add(idx, b.pat, b.len, &b);
    size_t calls = 0;
    ck_assert_uint_eq(pattern_index_match(idx, "chat.1", 6, count_cb, &calls), 1);
    ck_assert_int_eq(a.hits, 0);
    ck_assert_int_eq(b.hits, 1);
    /* Removing looks the pattern up by its bytes, not by its address. */
    pattern_index_remove(idx, "chat.*", 6);
    ck_assert_uint_eq(pattern_index_match(idx, "chat.1", 6, count_cb, &calls), 0);
    pattern_index_add(idx, a.pat, a.len, &a);
    ck_assert_uint_eq(pattern_index_match(idx, "chat.1", 6, count_cb, &calls), 1);
    ck_assert_int_eq(a.hits, 1);
    pattern_index_free(idx);
}
END_TEST

START_TEST(test_index_remove_of_unknown_pattern_is_ignored)
{
    struct sub a;
    sub_init(&a, "x*");
    struct pattern_index *idx = pattern_index_new();
    pattern_index_remove(idx, "x*", 2);
    pattern_index_add(idx, a.pat, a.len, &a);
    pattern_index_remove(idx, "x", 1);
    pattern_index_remove(idx, "x**", 3);
    ck_assert_uint_eq(pattern_index_size(idx), 1);
    size_t calls = 0;
    ck_assert_uint_eq(pattern_index_match(idx, "xy", 2, count_cb, &calls), 1);
    pattern_index_free(idx);
}
END_TEST

START_TEST(test_index_keeps_binary_patterns)
{
    struct sub a = {.pat = "a\0b*", .len = 4}, b = {.pat = "a\0c*", .len = 4};
    struct pattern_index *idx = pattern_index_new();
    pattern_index_add(idx, a.pat, a.len, &a);
    pattern_index_add(idx, b.pat, b.len, &b);
    size_t calls = 0;
    ck_assert_uint_eq(pattern_index_match(idx, "a\0bzz", 5, count_cb, &calls), 1);
    ck_assert_int_eq(a.hits, 1);
    ck_assert_int_eq(b.hits, 0);
    ck_assert_uint_eq(pattern_index_match(idx, "a", 1, count_cb, &calls), 0);
    pattern_index_free(idx);
}
END_TEST

#define MANY 10000

START_TEST(test_index_many_patterns_each_publish_matches_one)
{
    struct sub *subs = xcalloc(MANY, sizeof(*subs));
    struct pattern_index *idx = pattern_index_new();
    char ch[32];
    for (size_t i = 0; i < MANY; i++) {
        subs[i].len = (size_t)snprintf(subs[i].pat, sizeof(subs[i].pat), "room.%zu.*", i);
        pattern_index_add(idx, subs[i].pat, subs[i].len, &subs[i]);
    }
    ck_assert_uint_eq(pattern_index_size(idx), MANY);
    /* 10,000 publishes over 10,000 patterns: a linear scan would run 10^8 matches. */
    size_t wrong = 0;
    for (size_t i = 0; i < MANY; i++) {
        size_t calls = 0;
        int n = snprintf(ch, sizeof(ch), "room.%zu.msg", i);
        size_t got = pattern_index_match(idx, ch, (size_t)n, count_cb, &calls);
        wrong += got != 1 || calls != 1 || subs[i].hits != 1;
    }
    ck_assert_uint_eq(wrong, 0);
    for (size_t i = 1; i < MANY; i += 2)
        pattern_index_remove(idx, subs[i].pat, subs[i].len);
    ck_assert_uint_eq(pattern_index_size(idx), MANY / 2);
    for (size_t i = 0; i < MANY; i++) {
        size_t calls = 0;
        int n = snprintf(ch, sizeof(ch), "room.%zu.msg", i);
        size_t got = pattern_index_match(idx, ch, (size_t)n, count_cb, &calls);
        wrong += got != (i % 2 == 0) || subs[i].hits != 1 + (i % 2 == 0);
    }
    ck_assert_uint_eq(wrong, 0);
    pattern_index_free(idx);
    free(subs);
}
END_TEST

/* A small deterministic generator, so failures reproduce. */
static uint32_t rng_next(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

#define RANDOM_SUBS 400

START_TEST(test_index_agrees_with_linear_scan_on_random_patterns)
{
    static const char pat_alpha[] = "ab.*?[]^-\\";
    static const char ch_alpha[] = "ab.*?[]^-\\c";
    struct sub *subs = xcalloc(RANDOM_SUBS, sizeof(*subs));
    int *in = xcalloc(RANDOM_SUBS, sizeof(*in));
    struct pattern_index *idx = pattern_index_new();
    uint32_t rng = 12345;
    char ch[8];

    for (size_t i = 0; i < RANDOM_SUBS; i++) {
        /* Regenerate until the pattern is new: each pattern is added at most once. */
        for (;;) {
            size_t len = rng_next(&rng) % 7;
            for (size_t k = 0; k < len; k++)
                subs[i].pat[k] = pat_alpha[rng_next(&rng) % (sizeof(pat_alpha) - 1)];
            subs[i].len = len;
            size_t j = 0;
            while (j < i && (subs[j].len != len || memcmp(subs[j].pat, subs[i].pat, len) != 0))
                j++;
            if (j == i)
                break;
        }
        pattern_index_add(idx, subs[i].pat, subs[i].len, &subs[i]);
        in[i] = 1;
    }
    for (int round = 0; round < 2000; round++) {
        size_t len = rng_next(&rng) % 6;
        for (size_t k = 0; k < len; k++)
            ch[k] = ch_alpha[rng_next(&rng) % (sizeof(ch_alpha) - 1)];
        expect_linear(idx, subs, in, RANDOM_SUBS, ch, len);
        /* Churn: toggle one subscription every few rounds. */
        if (round % 3 == 0) {
            size_t i = rng_next(&rng) % RANDOM_SUBS;
            if (in[i])
                pattern_index_remove(idx, subs[i].pat, subs[i].len);
            else
                pattern_index_add(idx, subs[i].pat, subs[i].len, &subs[i]);
            in[i] = !in[i];
        }
    }
    pattern_index_free(idx);
    free(in);
    free(subs);
}
END_TEST

/* Builds the suite; the dict seed is fixed so runs are reproducible. */
static Suite *pattern_suite(void)
{
    static const uint8_t seed[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    dict_set_seed(seed);

    Suite *s = suite_create("pattern");
    TCase *m = tcase_create("match");
    tcase_add_test(m, test_match_agrees_with_redis_table);
    tcase_add_test(m, test_match_nocase_agrees_with_redis_table);
    tcase_add_test(m, test_match_folds_case_only_with_nocase);
    tcase_add_test(m, test_match_respects_lengths_not_nul_terminators);
    tcase_add_test(m, test_match_pathological_patterns_finish_quickly);
    tcase_add_test(m, test_match_star_group_limit_is_1000_like_redis);
    tcase_add_test(m, test_match_long_tails_cost_their_length);
    tcase_add_test(m, test_match_tail_shortcut_agrees_with_plain_search);
    suite_add_tcase(s, m);

    TCase *ix = tcase_create("index");
    tcase_add_test(ix, test_index_delivers_to_matching_patterns_only);
    tcase_add_test(ix, test_index_shared_prefix_survives_swap_removal);
    tcase_add_test(ix, test_index_empty_prefix_patterns_are_always_candidates);
    tcase_add_test(ix, test_index_escape_ends_the_literal_prefix);
    tcase_add_test(ix, test_index_remove_then_readd_uses_new_data);
    tcase_add_test(ix, test_index_remove_of_unknown_pattern_is_ignored);
    tcase_add_test(ix, test_index_keeps_binary_patterns);
    tcase_add_test(ix, test_index_many_patterns_each_publish_matches_one);
    tcase_add_test(ix, test_index_agrees_with_linear_scan_on_random_patterns);
    suite_add_tcase(s, ix);
    return s;
}

UNIT_MAIN(pattern_suite)
