/* Glob matching with Redis 7's exact semantics and the pattern index used by PSUBSCRIBE.
 * The matcher keeps every quirk of Redis's stringmatchlen but replaces its recursion with a
 * single backtrack point, so no pattern can cost more than O(patlen * strlen). The index only
 * groups patterns by literal prefix; it never owns the pattern bytes or the data pointers. */
#include "pattern.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "util.h"

/* Redis returns "no match" from the frame entered after the 1001st star group (its recursion
 * depth guard), so a pattern needing more star groups than this before a literal never
 * matches. Kept for byte-for-byte compatibility. */
#define PATTERN_MAX_STAR_GROUPS 1000

/* Lowercases an ASCII letter as tolower does in the C locale Redis runs its matcher in. */
static int pattern_fold(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* Compares two bytes as Redis's literal comparison does, folding case when asked. */
static int pattern_byte_eq(char a, char b, int nocase)
{
    if (nocase)
        return pattern_fold((signed char)a) == pattern_fold((signed char)b);
    return a == b;
}

/* The values a range lo-hi covers, as Redis computes them: bytes are signed chars, the bounds
 * are swapped when reversed, and case is folded only after the swap (so it may be empty). */
static void pattern_range_bounds(char lo, char hi, int nocase, int *start, int *end)
{
    *start = (signed char)lo;
    *end = (signed char)hi;
    if (*start > *end) {
        int t = *start;
        *start = *end;
        *end = t;
    }
    if (nocase) {
        *start = pattern_fold(*start);
        *end = pattern_fold(*end);
    }
}

/* Tests c against the range lo-hi the way Redis does (a literal is a range of one). */
static int pattern_range_has(char lo, char hi, char c, int nocase)
{
    int start, end, ch = (signed char)c;
    pattern_range_bounds(lo, hi, nocase, &start, &end);
    if (nocase)
        ch = pattern_fold(ch);
    return ch >= start && ch <= end;
}

/* Where a bracket set's elements start, past its '[' and any '^' (then *negate is set). */
static size_t pattern_bracket_start(const char *pat, size_t patlen, size_t p, int *negate)
{
    *negate = p + 1 < patlen && pat[p + 1] == '^';
    return p + 1 + (size_t)*negate;
}

enum pattern_elem { PATTERN_ELEM_END, PATTERN_ELEM_ESCAPED, PATTERN_ELEM_RANGE };

/* Reads the bracket-set element at pat[*q] into lo-hi and leaves *q on its last byte. Redis
 * quirks kept: '\' escapes the next byte (compared case-sensitively even with nocase) unless
 * it is the last byte, "a-z" is a range only when the bound after '-' exists, any other byte
 * is a literal (a range of one), and a set never closed by ']' runs to the end of the pattern.
 * At the end, *q is on the ']' or on the pattern's last byte. */
static enum pattern_elem pattern_bracket_elem(const char *pat, size_t patlen, size_t *q, char *lo,
                                              char *hi)
{
    size_t rem = patlen - *q;

    if (rem >= 2 && pat[*q] == '\\') {
        ++*q;
        *lo = *hi = pat[*q];
        return PATTERN_ELEM_ESCAPED;
    }
    if (rem > 0 && pat[*q] == ']')
        return PATTERN_ELEM_END;
    if (rem == 0) {
        --*q;
        return PATTERN_ELEM_END;
    }
    *lo = *hi = pat[*q];
    if (rem >= 3 && pat[*q + 1] == '-') {
        *hi = pat[*q + 2];
        *q += 2;
    }
    return PATTERN_ELEM_RANGE;
}

/* Matches c against the bracket set whose '[' is at pat[p]; sets *next past the set. The
 * parse does not depend on c. */
static int pattern_bracket(const char *pat, size_t patlen, size_t p, char c, int nocase,
                           size_t *next)
{
    int negate, match = 0;
    size_t q = pattern_bracket_start(pat, patlen, p, &negate);
    enum pattern_elem e;
    char lo, hi;

    for (; (e = pattern_bracket_elem(pat, patlen, &q, &lo, &hi)) != PATTERN_ELEM_END; q++)
        if (e == PATTERN_ELEM_ESCAPED ? lo == c : pattern_range_has(lo, hi, c, nocase))
            match = 1;
    *next = q + 1;
    return negate ? !match : match;
}

/* Matches c against the one-byte token at pat[p] (anything but '*'); sets *next past it.
 * A lone '\' at the end of the pattern is a literal backslash. */
static int pattern_token(const char *pat, size_t patlen, size_t p, char c, int nocase, size_t *next)
{
    switch (pat[p]) {
    case '?':
        *next = p + 1;
        return 1;
    case '[':
        return pattern_bracket(pat, patlen, p, c, nocase, next);
    case '\\':
        if (p + 1 < patlen)
            p++;
        break;
    default:
        break;
    }
    *next = p + 1;
    return pattern_byte_eq(pat[p], c, nocase);
}

size_t pattern_anchor_min = 1 << 16;

/* Counts the tokens from pat[p] up to the next star or the end (where *end is set), but
 * stops once it has counted max of them: a segment longer than the string left cannot match,
 * and counting the rest could cost far more than reading the string. A token's extent does
 * not depend on the byte it is matched against, so a dummy byte parses it. */
static size_t pattern_segment(const char *pat, size_t patlen, size_t p, size_t max, size_t *end)
{
    size_t n = 0, next;
    while (p < patlen && pat[p] != '*' && n < max) {
        pattern_token(pat, patlen, p, 0, 0, &next);
        p = next;
        n++;
    }
    *end = p;
    return n;
}

/* Fills set[b] with whether the bracket set at pat[p] matches byte b, parsing it once
 * (pattern_bracket parses it per byte); returns the position past it. */
static size_t pattern_bracket_set(const char *pat, size_t patlen, size_t p, int nocase,
                                  unsigned char set[256])
{
    int cover[257] = {0}; /* +1 where a range starts, -1 past its end, by value + 128 */
    unsigned char exact[256] = {0};
    int negate, start, end;
    size_t q = pattern_bracket_start(pat, patlen, p, &negate);
    enum pattern_elem e;
    char lo, hi;

    for (; (e = pattern_bracket_elem(pat, patlen, &q, &lo, &hi)) != PATTERN_ELEM_END; q++) {
        if (e == PATTERN_ELEM_ESCAPED) {
            exact[(unsigned char)lo] = 1;
            continue;
        }
        pattern_range_bounds(lo, hi, nocase, &start, &end);
        if (start <= end) {
            cover[start + 128]++;
            cover[end + 129]--;
        }
    }
    for (int v = 1; v < 256; v++)
        cover[v] += cover[v - 1];
    for (int b = 0; b < 256; b++) {
        int v = (signed char)b;
        int in = exact[b] || cover[(nocase ? pattern_fold(v) : v) + 128] > 0;
        set[b] = (unsigned char)(negate ? !in : in);
    }
    return q + 1;
}

/* Fills set[b] with whether the token at pat[p] (not '*') matches byte b, as pattern_token
 * answers, at the cost of one parse; returns the position past it. */
static size_t pattern_token_set(const char *pat, size_t patlen, size_t p, int nocase,
                                unsigned char set[256])
{
    if (pat[p] == '[')
        return pattern_bracket_set(pat, patlen, p, nocase, set);
    if (pat[p] == '?') {
        memset(set, 1, 256);
        return p + 1;
    }
    if (pat[p] == '\\' && p + 1 < patlen)
        p++;
    memset(set, 0, 256);
    set[(unsigned char)pat[p]] = 1;
    int f = pattern_fold((signed char)pat[p]);
    if (nocase && f >= 'a' && f <= 'z') {
        set[f] = 1;
        set[f - 'a' + 'A'] = 1;
    }
    return p + 1;
}

/* Most tokens a segment may have for the bit-parallel search: its table takes 32 bytes per
 * token (a bit per token for each of 256 byte values), 64 MiB here. Longer ones fall back to
 * trying each position. */
size_t pattern_segment_max_tokens = (size_t)1 << 21;

/* Finds the leftmost position at or after s where the k tokens from pat[p] to pat[q] (the
 * next star; k <= slen - s) match str, or returns SIZE_MAX. Shift-And over the tokens: bit j
 * of the state says that tokens 0..j match the bytes ending at the current one. Only the
 * words that can hold a set bit are updated, so while no prefix of the segment matches each
 * byte costs one table lookup, and at worst k/64 word operations, where trying each position
 * costs up to k token tests per byte. The table costs a parse of the segment and 32 bytes a
 * token, no more than the string left. */
static size_t pattern_find_segment(const char *pat, size_t patlen, size_t p, size_t q, size_t k,
                                   const char *str, size_t s, size_t slen, int nocase)
{
    size_t next, found = SIZE_MAX;

    if (k > pattern_segment_max_tokens) {
        for (size_t i = s; i + k <= slen && found == SIZE_MAX; i++) {
            size_t t = p, j = i;
            while (t < q && pattern_token(pat, patlen, t, str[j], nocase, &next)) {
                t = next;
                j++;
            }
            if (t == q)
                found = i;
        }
        return found;
    }
    size_t words = (k + 63) / 64, j = 0;
    uint64_t *mask = xcalloc(256 * words, sizeof(*mask)), *state = xcalloc(words, sizeof(*state));
    unsigned char set[256];
    for (size_t t = p; t < q; t = next, j++) {
        next = pattern_token_set(pat, patlen, t, nocase, set);
        for (int b = 0; b < 256; b++)
            if (set[b])
                mask[(size_t)b * words + j / 64] |= (uint64_t)1 << (j % 64);
    }
    const uint64_t last = (uint64_t)1 << ((k - 1) % 64);
    size_t live = 0; /* state[w] is 0 for every w >= live */
    for (size_t i = s; i < slen; i++) {
        const uint64_t *m = mask + (size_t)(unsigned char)str[i] * words;
        if (live == 0 && !(m[0] & 1))
            continue; /* nothing under way, and no start here */
        uint64_t carry = 1;
        size_t top = live < words ? live + 1 : words, new_live = 0;
        for (size_t w = 0; w < top; w++) {
            uint64_t out = state[w] >> 63;
            state[w] = ((state[w] << 1) | carry) & m[w];
            carry = out;
            if (state[w])
                new_live = w + 1;
        }
        live = new_live;
        if (live == words && (state[words - 1] & last)) {
            found = i + 1 - k;
            break;
        }
    }
    free(mask);
    free(state);
    return found;
}

/* Every token but '*' consumes exactly one byte, so the leftmost placement of the tokens
 * between two stars is always the best one: on a mismatch it suffices to let the most
 * recent star swallow one more byte and retry from just after it. Earlier stars never need
 * revisiting, which bounds the work by O(patlen * strlen). Where that product is large
 * (pattern_anchor_min), each star group's tokens are first counted, up to the bytes left: a
 * segment longer than that fails at once, whatever the pattern's length. The tokens after
 * the last star can only match the string's last bytes, one each, so there the star takes
 * the rest at once and the tokens get one try instead of one per byte; the tokens between
 * two stars are found in one pass over the string (pattern_find_segment). Short patterns pay
 * nothing for this. */
int pattern_match(const char *pat, size_t patlen, const char *str, size_t slen, int nocase)
{
    size_t p = 0, s = 0, star_p = 0, star_s = 0, next;
    int have_star = 0, groups = 0, anchored = 0;

    /* Redis never enters its loop for an empty string: only the empty pattern matches it. */
    if (slen == 0)
        return patlen == 0;
    size_t product; /* no division here: this runs for every candidate pattern of a publish */
    int big = __builtin_mul_overflow(patlen, slen, &product) || product >= pattern_anchor_min;
    while (s < slen) {
        if (p < patlen && pat[p] == '*') {
            while (p < patlen && pat[p] == '*')
                p++;
            if (p == patlen)
                return 1;
            if (++groups > PATTERN_MAX_STAR_GROUPS)
                return 0;
            have_star = 1;
            star_p = p;
            star_s = s;
            if (!big)
                continue;
            size_t end, k = pattern_segment(pat, patlen, p, slen - s + 1, &end);
            if (k > slen - s)
                return 0;
            if (end == patlen) { /* the last star: its tokens get exactly the last bytes, once */
                star_s = s = slen - k;
                anchored = 1;
            } else if (__builtin_mul_overflow(slen - s, k, &product) ||
                       product >= pattern_anchor_min) {
                /* A star before another: the first fit of its tokens, where trying each
                 * position could cost more than the search's table. */
                size_t at = pattern_find_segment(pat, patlen, p, end, k, str, s, slen, nocase);
                if (at == SIZE_MAX)
                    return 0;
                star_s = s = at;
            }
            continue;
        }
        if (p < patlen && pattern_token(pat, patlen, p, str[s], nocase, &next)) {
            p = next;
            s++;
            continue;
        }
        if (!have_star || anchored)
            return 0;
        p = star_p;
        s = ++star_s;
    }
    while (p < patlen && pat[p] == '*')
        p++;
    return p == patlen;
}

/* One indexed pattern; the index allocates it and finds it again by the full pattern. */
struct pattern_node {
    const char *pat; /* borrowed from the caller */
    size_t len;
    void *data;
    struct pattern_bucket *bucket;
    size_t pos; /* slot in bucket->nodes, for swap-removal */
};

/* The patterns sharing one literal prefix. */
struct pattern_bucket {
    char *prefix; /* owned copy: the pattern it came from may be removed first */
    size_t len;
    struct pattern_node **nodes;
    size_t count;
    size_t cap;
};

/* How many patterns have a literal prefix of this length. */
struct pattern_plen {
    size_t len;
    size_t count;
};

struct pattern_index {
    struct dict *by_pattern;    /* full pattern -> struct pattern_node */
    struct dict *by_prefix;     /* literal prefix -> struct pattern_bucket */
    struct pattern_plen *plens; /* distinct prefix lengths in use, ascending */
    size_t nplens;
    size_t plens_cap;
};

/* Returns the length of the bytes before the first glob metacharacter. A channel can only
 * match if it starts with exactly these bytes (literals compare case-sensitively). */
static size_t pattern_prefix_len(const char *pat, size_t len)
{
    size_t i = 0;
    while (i < len && pat[i] != '*' && pat[i] != '?' && pat[i] != '[' && pat[i] != '\\')
        i++;
    return i;
}

/* Creates an empty index with its two tables. */
struct pattern_index *pattern_index_new(void)
{
    struct pattern_index *idx = xcalloc(1, sizeof(*idx));
    idx->by_pattern = dict_new();
    idx->by_prefix = dict_new();
    return idx;
}

/* Frees every node and bucket, then the tables; the patterns and data stay the caller's. */
void pattern_index_free(struct pattern_index *idx)
{
    struct dict_iter it;
    void *val;

    if (idx == NULL)
        return;
    dict_iter_init(&it, idx->by_pattern);
    while (dict_iter_next(&it, NULL, NULL, &val))
        free(val);
    dict_iter_init(&it, idx->by_prefix);
    while (dict_iter_next(&it, NULL, NULL, &val)) {
        struct pattern_bucket *b = val;
        free(b->prefix);
        free(b->nodes);
        free(b);
    }
    dict_free(idx->by_pattern);
    dict_free(idx->by_prefix);
    free(idx->plens);
    free(idx);
}

/* Counts one more pattern with a prefix of this length, keeping the lengths sorted. */
static void pattern_plen_add(struct pattern_index *idx, size_t len)
{
    size_t i = 0;
    while (i < idx->nplens && idx->plens[i].len < len)
        i++;
    if (i < idx->nplens && idx->plens[i].len == len) {
        idx->plens[i].count++;
        return;
    }
    if (idx->nplens == idx->plens_cap) {
        idx->plens_cap = idx->plens_cap ? idx->plens_cap * 2 : 8;
        idx->plens = xrealloc(idx->plens, idx->plens_cap * sizeof(*idx->plens));
    }
    memmove(&idx->plens[i + 1], &idx->plens[i], (idx->nplens - i) * sizeof(*idx->plens));
    idx->plens[i].len = len;
    idx->plens[i].count = 1;
    idx->nplens++;
}

/* Counts one pattern fewer with a prefix of this length, dropping the length at zero. */
static void pattern_plen_remove(struct pattern_index *idx, size_t len)
{
    size_t i = 0;
    while (i < idx->nplens && idx->plens[i].len < len)
        i++;
    EVB_ASSERT(i < idx->nplens && idx->plens[i].len == len);
    if (--idx->plens[i].count > 0)
        return;
    idx->nplens--;
    memmove(&idx->plens[i], &idx->plens[i + 1], (idx->nplens - i) * sizeof(*idx->plens));
}

/* Adds the pattern under its literal prefix; adding the same pattern twice is a caller bug. */
void pattern_index_add(struct pattern_index *idx, const char *pat, size_t len, void *data)
{
    struct pattern_node *n = xmalloc(sizeof(*n));
    size_t plen = pattern_prefix_len(pat, len);
    struct pattern_bucket *b = dict_get(idx->by_prefix, pat, plen);

    n->pat = pat;
    n->len = len;
    n->data = data;
    int added = dict_add(idx->by_pattern, pat, len, n);
    EVB_ASSERT(added == 0);
    if (b == NULL) {
        b = xcalloc(1, sizeof(*b));
        b->prefix = xmemdup(pat, plen);
        b->len = plen;
        dict_add(idx->by_prefix, b->prefix, plen, b);
    }
    if (b->count == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 4;
        b->nodes = xrealloc(b->nodes, b->cap * sizeof(*b->nodes));
    }
    n->bucket = b;
    n->pos = b->count;
    b->nodes[b->count++] = n;
    pattern_plen_add(idx, plen);
}

/* Removes the pattern by swapping the bucket's last node into its slot; a pattern that is
 * not indexed is ignored. */
void pattern_index_remove(struct pattern_index *idx, const char *pat, size_t len)
{
    struct pattern_node *n = dict_remove(idx->by_pattern, pat, len);
    struct pattern_bucket *b;

    if (n == NULL)
        return;
    b = n->bucket;
    b->nodes[n->pos] = b->nodes[--b->count];
    b->nodes[n->pos]->pos = n->pos;
    pattern_plen_remove(idx, b->len);
    if (b->count == 0) {
        dict_remove(idx->by_prefix, b->prefix, b->len);
        free(b->prefix);
        free(b->nodes);
        free(b);
    } else if (b->cap > 8 && b->count < b->cap / 4) {
        b->cap /= 2;
        b->nodes = xrealloc(b->nodes, b->cap * sizeof(*b->nodes));
    }
    free(n);
}

/* Returns how many patterns are indexed. */
size_t pattern_index_size(const struct pattern_index *idx)
{
    return dict_size(idx->by_pattern);
}

/* Looks up each prefix of the channel whose length some pattern uses, and runs the matcher
 * only on the patterns filed under it: the cost is one hash per distinct prefix length. */
size_t pattern_index_match(const struct pattern_index *idx, const char *ch, size_t len,
                           void (*fn)(void *data, void *arg), void *arg)
{
    size_t matches = 0;

    for (size_t i = 0; i < idx->nplens && idx->plens[i].len <= len; i++) {
        struct pattern_bucket *b = dict_get(idx->by_prefix, ch, idx->plens[i].len);
        if (b == NULL)
            continue;
        for (size_t j = 0; j < b->count; j++) {
            struct pattern_node *n = b->nodes[j];
            if (pattern_match(n->pat, n->len, ch, len, 0)) {
                fn(n->data, arg);
                matches++;
            }
        }
    }
    return matches;
}
