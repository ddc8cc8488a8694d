/* RESP2/RESP3 reply encoders over evbuffers. Headers are formatted into a small stack
 * buffer and appended with one evbuffer_add, which keeps small replies in one chain. */
#include "reply.h"

#include <event2/buffer.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Formats an unsigned decimal right-aligned at the end of buf; returns its start. */
static char *fmt_u64(char *end, unsigned long long v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

/* Appends "<type><n>\r\n" for a signed count or integer. */
static void reply_header(struct evbuffer *out, char type, long long n)
{
    char buf[32];
    char *end = buf + sizeof(buf) - 2;
    unsigned long long u = n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;
    char *p = fmt_u64(end, u);
    if (n < 0)
        *--p = '-';
    *--p = type;
    end[0] = '\r';
    end[1] = '\n';
    evbuffer_add(out, p, (size_t)(end + 2 - p));
}

size_t reply_fmt_bulk_header(char *dst, size_t len)
{
    char buf[24];
    char *end = buf + sizeof(buf);
    char *p = fmt_u64(end, len);
    size_t n = (size_t)(end - p);
    dst[0] = '$';
    memcpy(dst + 1, p, n);
    dst[n + 1] = '\r';
    dst[n + 2] = '\n';
    return n + 3;
}

void reply_simple(struct evbuffer *out, const char *s)
{
    size_t len = strlen(s);
    char buf[128];
    if (len + 3 <= sizeof(buf)) {
        buf[0] = '+';
        memcpy(buf + 1, s, len);
        memcpy(buf + 1 + len, "\r\n", 2);
        evbuffer_add(out, buf, len + 3);
        return;
    }
    evbuffer_add(out, "+", 1);
    evbuffer_add(out, s, len);
    evbuffer_add(out, "\r\n", 2);
}

/* Every error reply passes through reply_error, so one counter sees them all, and a table
 * counts them by code ("ERR", "NOAUTH"...) for INFO errorstats. The codes come from our own
 * texts, a handful; the table is kept sorted, as Redis lists them, and a code past its room
 * is counted in the total only. */
static long long reply_errors;
#define REPLY_ERROR_CODES 32
static struct {
    char code[24];
    long long count;
} error_codes[REPLY_ERROR_CODES];
static size_t n_error_codes;

long long reply_error_count(void)
{
    return reply_errors;
}

/* Counts err under its code: the word after a leading '-', else ERR (reply_error's prefix). */
static void reply_count_code(const char *err)
{
    char code[sizeof(error_codes[0].code)];
    const char *from = err[0] == '-' ? err + 1 : "ERR";
    size_t len = strcspn(from, " "), i = 0;
    int cmp = 1;

    if (len >= sizeof(code))
        len = sizeof(code) - 1;
    memcpy(code, from, len);
    code[len] = '\0';
    while (i < n_error_codes && (cmp = strcmp(error_codes[i].code, code)) < 0)
        i++;
    if (i < n_error_codes && cmp == 0) {
        error_codes[i].count++;
    } else if (n_error_codes < REPLY_ERROR_CODES) {
        memmove(&error_codes[i + 1], &error_codes[i], (n_error_codes - i) * sizeof(error_codes[0]));
        memcpy(error_codes[i].code, code, len + 1);
        error_codes[i].count = 1;
        n_error_codes++;
    }
}

void reply_error_each(void (*fn)(const char *code, long long count, void *arg), void *arg)
{
    for (size_t i = 0; i < n_error_codes; i++)
        fn(error_codes[i].code, error_codes[i].count, arg);
}

void reply_error(struct evbuffer *out, const char *err)
{
    reply_errors++;
    reply_count_code(err);
    size_t len = strlen(err);
    char *copy = xmemdup(err, len);
    for (size_t i = 0; i < len; i++)
        if (copy[i] == '\r' || copy[i] == '\n')
            copy[i] = ' ';
    if (copy[0] != '-')
        evbuffer_add(out, "-ERR ", 5);
    evbuffer_add(out, copy, len);
    evbuffer_add(out, "\r\n", 2);
    free(copy);
}

void reply_errorf(struct evbuffer *out, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    reply_error(out, buf);
}

void reply_integer(struct evbuffer *out, long long v)
{
    reply_header(out, ':', v);
}

void reply_bulk(struct evbuffer *out, const void *p, size_t len)
{
    char buf[256];
    size_t h = reply_fmt_bulk_header(buf, len);
    if (h + len + 2 <= sizeof(buf)) {
        memcpy(buf + h, p, len);
        memcpy(buf + h + len, "\r\n", 2);
        evbuffer_add(out, buf, h + len + 2);
        return;
    }
    evbuffer_add(out, buf, h);
    evbuffer_add(out, p, len);
    evbuffer_add(out, "\r\n", 2);
}

void reply_bulk_cstr(struct evbuffer *out, const char *s)
{
    reply_bulk(out, s, strlen(s));
}

void reply_bulk_ll(struct evbuffer *out, long long v)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%lld", v);
    reply_bulk(out, buf, (size_t)n);
}

void reply_null(struct evbuffer *out, int resp)
{
    if (resp >= 3)
        evbuffer_add(out, "_\r\n", 3);
    else
        evbuffer_add(out, "$-1\r\n", 5);
}

void reply_array(struct evbuffer *out, size_t n)
{
    reply_header(out, '*', (long long)n);
}

void reply_map(struct evbuffer *out, int resp, size_t pairs)
{
    if (resp >= 3)
        reply_header(out, '%', (long long)pairs);
    else
        reply_header(out, '*', (long long)pairs * 2);
}

void reply_set(struct evbuffer *out, int resp, size_t n)
{
    reply_header(out, resp >= 3 ? '~' : '*', (long long)n);
}

void reply_push(struct evbuffer *out, int resp, size_t n)
{
    reply_header(out, resp >= 3 ? '>' : '*', (long long)n);
}

void reply_verbatim(struct evbuffer *out, int resp, const char *p, size_t len)
{
    if (resp < 3) {
        reply_bulk(out, p, len);
        return;
    }
    reply_header(out, '=', (long long)len + 4);
    evbuffer_add(out, "txt:", 4);
    evbuffer_add(out, p, len);
    evbuffer_add(out, "\r\n", 2);
}

void reply_lines(struct evbuffer *out, const char *const *lines, size_t n)
{
    reply_array(out, n);
    for (size_t i = 0; i < n; i++)
        reply_simple(out, lines[i]);
}
