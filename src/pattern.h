/* Redis-compatible glob matching and the pattern index that lets a publish test only the
 * patterns that can match its channel. Pure: no I/O, no knowledge of clients. */
#ifndef EVB_PATTERN_H
#define EVB_PATTERN_H

#include <stddef.h>

/* Matches str against the glob pat exactly as Redis 7's stringmatchlen does ('*', '?',
 * '[...]', '[^...]', ranges in either order, '\' escapes, an unclosed '['), in time bounded
 * by O(patlen * slen) whatever the pattern. Returns 1 on a match, 0 otherwise. */
int pattern_match(const char *pat, size_t patlen, const char *str, size_t slen, int nocase);

/* pattern_match counts a star group's tokens (anchoring the last group at the string's end)
 * only when patlen * slen reaches this (65,536), and searches a group between stars
 * bit-parallel when the string left times its tokens does; tests set it to 0 and to SIZE_MAX
 * to compare both ways. */
extern size_t pattern_anchor_min;
/* Longest run of tokens between stars searched bit-parallel (2 Mi); longer ones are tried at
 * each position. Tests lower it to run the fallback. */
extern size_t pattern_segment_max_tokens;

struct pattern_index;

/* Creates an empty index. Caller frees with pattern_index_free. */
struct pattern_index *pattern_index_new(void);
/* Frees the index, not the patterns' data. */
void pattern_index_free(struct pattern_index *idx);

/* Adds a pattern with an opaque data pointer. The pattern bytes are borrowed and must stay
 * valid until it is removed (keep them inside data). A pattern is added at most once (asserted). */
void pattern_index_add(struct pattern_index *idx, const char *pat, size_t len, void *data);
/* Removes a pattern previously added; a pattern that is not indexed is ignored. */
void pattern_index_remove(struct pattern_index *idx, const char *pat, size_t len);
size_t pattern_index_size(const struct pattern_index *idx);

/* Calls fn(data, arg) once for every indexed pattern that matches the channel, in no
 * particular order; the index must not change meanwhile. Returns the number of matches. */
size_t pattern_index_match(const struct pattern_index *idx, const char *ch, size_t len,
                           void (*fn)(void *data, void *arg), void *arg);

#endif
