/* Reply encoding: RESP2 and RESP3 values appended to a libevent output buffer. Pure apart
 * from the buffer; functions whose bytes depend on the protocol take it as `resp` (2 or 3).
 * Errors go through reply_error so every one gets Redis's "-ERR " prefix rule. */
#ifndef EVB_REPLY_H
#define EVB_REPLY_H

#include <stddef.h>

struct evbuffer;

/* "+s\r\n". s must hold no CR or LF. */
void reply_simple(struct evbuffer *out, const char *s);
/* An error. A text starting with '-' is sent as is ("-NOAUTH ..."), anything else gets
 * "-ERR " in front. CR and LF inside become spaces, as Redis does. */
void reply_error(struct evbuffer *out, const char *err);
/* Error replies encoded since start (INFO total_error_replies). */
long long reply_error_count(void);
/* Calls fn for each error code seen ("ERR", "NOAUTH"...) with its count, in code order. */
void reply_error_each(void (*fn)(const char *code, long long count, void *arg), void *arg);
/* reply_error with printf formatting. */
void reply_errorf(struct evbuffer *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ":v\r\n". */
void reply_integer(struct evbuffer *out, long long v);
/* "$len\r\n<bytes>\r\n". */
void reply_bulk(struct evbuffer *out, const void *p, size_t len);
/* A bulk string of a C string. */
void reply_bulk_cstr(struct evbuffer *out, const char *s);
/* A bulk string of a decimal integer (used in RESP2 forms of counts inside strings). */
void reply_bulk_ll(struct evbuffer *out, long long v);
/* The null bulk: "$-1\r\n" in RESP2, "_\r\n" in RESP3. */
void reply_null(struct evbuffer *out, int resp);
/* Aggregate headers. Maps count pairs ("%n" in RESP3, "*2n" in RESP2); sets are "~n" or "*n";
 * pushes are ">n" or "*n". */
void reply_array(struct evbuffer *out, size_t n);
void reply_map(struct evbuffer *out, int resp, size_t pairs);
void reply_set(struct evbuffer *out, int resp, size_t n);
void reply_push(struct evbuffer *out, int resp, size_t n);
/* Text for a person: a verbatim string "=len\r\ntxt:..." in RESP3, a bulk string in RESP2. */
void reply_verbatim(struct evbuffer *out, int resp, const char *p, size_t len);

/* An array of simple strings, one per line (HELP replies). */
void reply_lines(struct evbuffer *out, const char *const *lines, size_t n);

/* Writes "$<len>\r\n" into dst (at least 24 bytes) and returns the bytes written. */
size_t reply_fmt_bulk_header(char *dst, size_t len);

#endif
