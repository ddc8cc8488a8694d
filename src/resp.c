/* The request parser: turns the bytes a client sends into commands exactly as Redis 7.0's
 * processMultibulkBuffer, processInlineBuffer and sdssplitargs do, quirks included. It is
 * pure (no sockets, no clock), resumes at any byte boundary, and its memory grows only with
 * bytes actually received, never with a length a client merely announces. */
#include "resp.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* What the next byte belongs to. */
enum {
    ST_IDLE,            /* between requests: the next byte picks the request type */
    ST_INLINE,          /* an inline line, up to its '\n' */
    ST_MBULK_COUNT,     /* "*<n>" up to its '\r' */
    ST_MBULK_COUNT_END, /* the byte after that '\r', skipped unchecked as Redis does */
    ST_BULK_COUNT,      /* "$<len>" up to its '\r' */
    ST_BULK_COUNT_END,  /* the byte after that '\r', skipped unchecked */
    ST_BULK_DATA,       /* the payload of an argument */
    ST_BIG_DATA,        /* the payload of an argument of RESP_BIG_ARG bytes or more */
    ST_BULK_END,        /* the two bytes after the payload, skipped unchecked */
    ST_COMMAND,         /* a command was returned and is not released yet */
    ST_ERROR,           /* a protocol error ended the stream */
};

#define ARENA_MIN 256    /* first arena: enough for most publish commands */
#define ARENA_KEEP 16384 /* larger arenas are freed once their request is done */
#define ARGV_MIN 8
#define ARGV_KEEP 64
#define LINE_MIN 128
#define LINE_KEEP 16384

static const struct resp_limits default_limits = {512LL * 1024 * 1024, 0};

/* Starts empty: no heap memory until bytes arrive. */
void resp_parser_init(struct resp_parser *p)
{
    memset(p, 0, sizeof(*p));
    p->state = ST_IDLE;
}

void resp_block_ref(struct resp_block *b)
{
    b->refs++;
}

void resp_block_unref(struct resp_block *b)
{
    EVB_ASSERT(b->refs > 0);
    if (--b->refs == 0)
        free(b);
}

/* Lets go of the blocks of the arguments started so far. */
static void release_blocks(struct resp_parser *p)
{
    for (int i = 0; i < p->argc; i++) {
        if (p->blocks[i] != NULL) {
            resp_block_unref(p->blocks[i]);
            p->blocks[i] = NULL;
        }
    }
    p->block_bytes = 0;
}

/* Frees every buffer, including a request in progress, and leaves the parser reusable. */
void resp_parser_free(struct resp_parser *p)
{
    release_blocks(p);
    free(p->arena);
    free(p->argv);
    free(p->blocks);
    free(p->argvlen);
    free(p->line);
    resp_parser_init(p);
}

/* A struct copy, except that an error text kept in error_buf must point at dst's copy. */
void resp_parser_move(struct resp_parser *dst, struct resp_parser *src)
{
    *dst = *src;
    if (src->error == src->error_buf)
        dst->error = dst->error_buf;
    resp_parser_init(src);
}

/* Consumes n bytes of the caller's buffer for the request in progress. */
static void take(struct resp_parser *p, size_t *pos, size_t n)
{
    *pos += n;
    p->pending += n;
}

/* Ends the stream with a protocol error; text must outlive the parser or be error_buf. */
static enum resp_status fail(struct resp_parser *p, const char *text)
{
    p->state = ST_ERROR;
    p->error = text;
    return RESP_ERROR;
}

/* Frees the buffers one unusual request made large, keeping the small ones for reuse. */
static void trim_buffers(struct resp_parser *p)
{
    if (p->arena_cap > ARENA_KEEP) {
        free(p->arena);
        p->arena = NULL;
        p->arena_cap = 0;
    }
    if (p->argv_cap > ARGV_KEEP) {
        free(p->argv);
        free(p->argvlen);
        free(p->blocks);
        p->argv = NULL;
        p->argvlen = NULL;
        p->blocks = NULL;
        p->argv_cap = 0;
    }
    if (p->line_cap > LINE_KEEP) {
        free(p->line);
        p->line = NULL;
        p->line_cap = 0;
    }
}

/* Forgets the request in progress or just returned, ready for the next one. */
static void request_reset(struct resp_parser *p)
{
    release_blocks(p);
    p->state = ST_IDLE;
    p->stalled = 0;
    p->argc = 0;
    p->multibulk_left = 0;
    p->bulk_left = 0;
    p->line_len = 0;
    p->arena_len = 0;
    p->pending = 0;
    trim_buffers(p);
}

/* Makes room for need more arena bytes. The argument being stored needs at most most more
 * bytes, which caps the doubling: an announced length alone never costs memory. The arena
 * still grows by half at least, or a command of many small arguments would move it once per
 * argument (quadratic wherever realloc cannot grow in place). */
static void arena_reserve(struct resp_parser *p, size_t need, size_t most)
{
    size_t want, limit;

    if (p->arena_cap - p->arena_len >= need)
        return;
    want = p->arena_cap >= ARENA_MIN / 2 ? p->arena_cap * 2 : ARENA_MIN;
    limit = most > SIZE_MAX - p->arena_len ? SIZE_MAX : p->arena_len + most;
    if (limit < p->arena_cap + p->arena_cap / 2)
        limit = p->arena_cap + p->arena_cap / 2;
    if (limit < ARENA_MIN)
        limit = ARENA_MIN;
    if (want > limit)
        want = limit;
    if (want < p->arena_len + need)
        want = p->arena_len + need;
    p->arena = xrealloc(p->arena, want);
    p->arena_cap = want;
}

/* Starts an argument at arena offset off. Until the command is complete argvlen[i] holds
 * the offset, because the arena may still move; command_ready turns it into the length. */
static void argv_push(struct resp_parser *p, size_t off)
{
    if (p->argc == p->argv_cap) {
        long long cap = p->argv_cap ? 2LL * p->argv_cap : ARGV_MIN;

        if (cap > INT_MAX)
            cap = INT_MAX;
        p->argv = xrealloc(p->argv, (size_t)cap * sizeof(*p->argv));
        p->argvlen = xrealloc(p->argvlen, (size_t)cap * sizeof(*p->argvlen));
        p->blocks = xrealloc(p->blocks, (size_t)cap * sizeof(*p->blocks));
        p->argv_cap = (int)cap;
    }
    p->blocks[p->argc] = NULL;
    p->argvlen[p->argc++] = off;
}

/* Publishes the finished arguments in argv and argvlen. A big argument takes no arena bytes,
 * so an arena argument ends where the next arena argument starts. */
static enum resp_status command_ready(struct resp_parser *p)
{
    size_t end = p->arena_len;

    for (int i = p->argc - 1; i >= 0; i--) {
        size_t off = p->argvlen[i];

        if (p->blocks[i] != NULL) {
            p->argv[i] = p->blocks[i]->data + RESP_ARG_HEADROOM;
            continue; /* argvlen[i] is its length already */
        }
        p->argv[i] = p->arena + off;
        p->argvlen[i] = end - off - 1;
        end = off;
    }
    p->state = ST_COMMAND;
    p->pending = 0;
    return RESP_COMMAND;
}

/* Whether c is a blank for isspace() in the C locale, which Redis runs its parser in. */
static int is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* The value of a hex digit, or -1. */
static int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The byte at i of a line of n bytes, or NUL past its end (sdssplitargs reads a C string). */
static int byte_at(const char *s, size_t n, size_t i)
{
    return i < n ? (unsigned char)s[i] : 0;
}

/* Splits an inline line (no NUL in it) into arguments as sdssplitargs does: blanks separate
 * words, "double quotes" take \n \r \t \b \a \xHH and \<any>, 'single quotes' take only \',
 * a closing quote must be followed by a blank or the end. Returns 0, or -1 on bad quotes. */
static int split_args(struct resp_parser *p, const char *s, size_t n)
{
    size_t i = 0;

    /* Each word costs at least one byte of the line plus a separator, and its text is no
     * longer than its source: this bounds the output, so the arena cannot move below. */
    arena_reserve(p, n + n / 2 + 1, n + n / 2 + 1);
    for (;;) {
        int inq = 0, insq = 0, done = 0;
        char *out;
        size_t o = 0;

        while (i < n && is_space((unsigned char)s[i]))
            i++;
        if (i >= n)
            return 0;
        argv_push(p, p->arena_len);
        out = p->arena + p->arena_len;
        while (!done) {
            int c = byte_at(s, n, i);

            if (inq) {
                int hi =
                    c == '\\' && byte_at(s, n, i + 1) == 'x' ? hex_value(byte_at(s, n, i + 2)) : -1;
                int lo = hi >= 0 ? hex_value(byte_at(s, n, i + 3)) : -1;

                if (lo >= 0) {
                    out[o++] = (char)(hi * 16 + lo);
                    i += 3;
                } else if (c == '\\' && byte_at(s, n, i + 1)) {
                    i++;
                    switch (s[i]) {
                    case 'n':
                        out[o++] = '\n';
                        break;
                    case 'r':
                        out[o++] = '\r';
                        break;
                    case 't':
                        out[o++] = '\t';
                        break;
                    case 'b':
                        out[o++] = '\b';
                        break;
                    case 'a':
                        out[o++] = '\a';
                        break;
                    default:
                        out[o++] = s[i];
                        break;
                    }
                } else if (c == '"') {
                    if (byte_at(s, n, i + 1) && !is_space(byte_at(s, n, i + 1)))
                        return -1;
                    done = 1;
                } else if (c == 0) {
                    return -1;
                } else {
                    out[o++] = (char)c;
                }
            } else if (insq) {
                if (c == '\\' && byte_at(s, n, i + 1) == '\'') {
                    i++;
                    out[o++] = '\'';
                } else if (c == '\'') {
                    if (byte_at(s, n, i + 1) && !is_space(byte_at(s, n, i + 1)))
                        return -1;
                    done = 1;
                } else if (c == 0) {
                    return -1;
                } else {
                    out[o++] = (char)c;
                }
            } else {
                /* Unlike the blank skipping above, only these end a bare word: a \v or \f
                 * inside one is kept, as in Redis. */
                switch (c) {
                case ' ':
                case '\n':
                case '\r':
                case '\t':
                case 0:
                    done = 1;
                    break;
                case '"':
                    inq = 1;
                    break;
                case '\'':
                    insq = 1;
                    break;
                default:
                    out[o++] = (char)c;
                    break;
                }
            }
            if (i < n)
                i++;
        }
        out[o++] = '\0';
        p->arena_len += o;
    }
}

/* Appends n bytes to the inline line kept across feeds. */
static void line_append(struct resp_parser *p, const char *s, size_t n)
{
    if (p->line_cap - p->line_len < n) {
        size_t want = p->line_cap ? p->line_cap * 2 : LINE_MIN;

        if (want < p->line_len + n)
            want = p->line_len + n;
        p->line = xrealloc(p->line, want);
        p->line_cap = want;
    }
    memcpy(p->line + p->line_len, s, n);
    p->line_len += n;
}

/* Reads an inline request up to its '\n'. Redis finds the '\n' with strchr, so a NUL before
 * it hides it: the request then only ends by growing past RESP_INLINE_MAX. As in Redis, the
 * limit applies only while no '\n' has arrived (so 64 KiB then "\r\n" in one read is a
 * command, the same bytes one at a time are an error); a whole line in the caller's buffer
 * is split in place without being copied. */
static enum resp_status inline_step(struct resp_parser *p, const char *buf, size_t len, size_t *pos)
{
    const char *s = buf + *pos, *nl = NULL, *line;
    size_t avail = len - *pos, n = avail;

    if (!p->stalled) {
        nl = memchr(s, '\n', avail);
        n = nl ? (size_t)(nl - s) : avail;
        if (memchr(s, '\0', n) != NULL) {
            p->stalled = 1;
            nl = NULL;
            n = avail;
        }
    }
    if (nl == NULL && p->line_len + n > RESP_INLINE_MAX) {
        take(p, pos, RESP_INLINE_MAX + 1 - p->line_len);
        return fail(p, "Protocol error: too big inline request");
    }
    if (nl == NULL) {
        if (p->stalled)
            p->line_len += n;
        else
            line_append(p, s, n);
        take(p, pos, n);
        return RESP_INCOMPLETE;
    }
    take(p, pos, n + 1);
    line = s;
    if (p->line_len > 0) {
        line_append(p, s, n);
        line = p->line;
        n = p->line_len;
    }
    if (n > 0 && line[n - 1] == '\r')
        n--;
    if (split_args(p, line, n) < 0)
        return fail(p, "Protocol error: unbalanced quotes in request");
    if (p->argc == 0) {
        request_reset(p);
        return RESP_INCOMPLETE;
    }
    return command_ready(p);
}

/* Reads a count line up to its '\r' as Redis's strchr(querybuf, '\r') does: the '\r' may
 * come after a '\n' or anything else, and a NUL hides every later '\r', so the line can then
 * only grow past the limit. Only the head of the line is kept; line_len counts it all. */
static enum resp_status count_step(struct resp_parser *p, const char *buf, size_t len, size_t *pos,
                                   int next_state, const char *too_big)
{
    while (*pos < len) {
        char c = buf[*pos];

        take(p, pos, 1);
        if (c == '\r' && !p->stalled) {
            p->state = next_state;
            return RESP_INCOMPLETE;
        }
        if (c == '\0')
            p->stalled = 1;
        if (p->line_len < sizeof(p->count))
            p->count[p->line_len] = c;
        if (++p->line_len > RESP_INLINE_MAX)
            return fail(p, too_big);
    }
    return RESP_INCOMPLETE;
}

/* Parses the number after the count line's type byte with Redis's string2ll rules. */
static int count_value(const struct resp_parser *p, long long *out)
{
    if (p->line_len < 1 || p->line_len > sizeof(p->count))
        return -1;
    return util_parse_ll(p->count + 1, p->line_len - 1, out);
}

/* Checks "*<n>" once the byte after its '\r' arrived. Redis accepts up to INT_MAX arguments
 * and skips a count of zero or less silently. */
static enum resp_status mbulk_count_done(struct resp_parser *p, const struct resp_limits *lim)
{
    long long n;

    if (count_value(p, &n) < 0 || n > INT_MAX)
        return fail(p, "Protocol error: invalid multibulk length");
    if (n > RESP_UNAUTH_MAX_ARGS && lim->unauthenticated)
        return fail(p, "Protocol error: unauthenticated multibulk length");
    if (n <= 0) {
        request_reset(p);
        return RESP_INCOMPLETE;
    }
    p->multibulk_left = n;
    p->line_len = 0;
    p->state = ST_BULK_COUNT;
    return RESP_INCOMPLETE;
}

/* Checks "$<len>" once the byte after its '\r' arrived, and starts the argument. */
static enum resp_status bulk_count_done(struct resp_parser *p, const struct resp_limits *lim)
{
    int first = p->line_len > 0 ? (unsigned char)p->count[0] : '\r';
    long long n;

    if (first != '$') {
        /* Redis's addReplyErrorFormat turns CR and LF into spaces; other bytes go raw. */
        if (first == '\r' || first == '\n')
            first = ' ';
        snprintf(p->error_buf, sizeof(p->error_buf), "Protocol error: expected '$', got '%c'",
                 first);
        return fail(p, p->error_buf);
    }
    if (count_value(p, &n) < 0 || n < 0 || n > lim->max_bulk_len)
        return fail(p, "Protocol error: invalid bulk length");
    if (n > RESP_UNAUTH_MAX_BULK && lim->unauthenticated)
        return fail(p, "Protocol error: unauthenticated bulk length");
    argv_push(p, p->arena_len);
    if (n >= RESP_BIG_ARG) {
        /* Allocated with the first bytes, so an announced length alone costs nothing. Its
         * argvlen is its length (bytes received so far), not an arena offset. */
        p->argvlen[p->argc - 1] = 0;
        p->state = ST_BIG_DATA;
    } else {
        p->state = ST_BULK_DATA;
    }
    p->bulk_left = n;
    p->line_len = 0;
    return RESP_INCOMPLETE;
}

/* Copies payload bytes into the arena, which grows only as they arrive. */
static void bulk_data(struct resp_parser *p, const char *buf, size_t len, size_t *pos)
{
    size_t avail = len - *pos;
    size_t n = (unsigned long long)p->bulk_left < avail ? (size_t)p->bulk_left : avail;
    size_t last = (unsigned long long)p->bulk_left == n;

    arena_reserve(p, n + last, (size_t)p->bulk_left + 1);
    memcpy(p->arena + p->arena_len, buf + *pos, n);
    p->arena_len += n;
    p->bulk_left -= (long long)n;
    take(p, pos, n);
    if (last) {
        p->arena[p->arena_len++] = '\0';
        p->bulk_left = 2;
        p->state = ST_BULK_END;
    }
}

/* Copies payload bytes of a big argument into its block, which grows geometrically with them
 * up to the announced length (it starts at the bytes of the first piece). */
static void big_data(struct resp_parser *p, const char *buf, size_t len, size_t *pos)
{
    size_t avail = len - *pos;
    size_t n = (unsigned long long)p->bulk_left < avail ? (size_t)p->bulk_left : avail;
    struct resp_block **slot = &p->blocks[p->argc - 1];
    size_t *got = &p->argvlen[p->argc - 1];
    size_t cap = *slot ? (*slot)->cap - RESP_ARG_HEADROOM - 2 : 0;

    if (*got + n > cap) {
        size_t total = *got + (size_t)p->bulk_left;
        size_t want = cap * 2;

        if (want < *got + n)
            want = *got + n;
        if (want > total)
            want = total;
        size_t bytes = sizeof(struct resp_block) + RESP_ARG_HEADROOM + want + 2;
        struct resp_block *b = xrealloc(*slot, bytes);
        if (*slot == NULL)
            b->refs = 1;
        else
            p->block_bytes -= sizeof(*b) + b->cap;
        b->cap = RESP_ARG_HEADROOM + want + 2;
        p->block_bytes += bytes;
        *slot = b;
    }
    char *arg = (*slot)->data + RESP_ARG_HEADROOM;
    memcpy(arg + *got, buf + *pos, n);
    *got += n;
    p->bulk_left -= (long long)n;
    take(p, pos, n);
    if (p->bulk_left == 0) {
        arg[*got] = '\0';
        p->bulk_left = 2;
        p->state = ST_BULK_END;
    }
}

/* Skips the two bytes after a payload without checking them, as Redis does; the argument
 * counts only once both arrived. */
static enum resp_status bulk_end(struct resp_parser *p, size_t avail, size_t *pos)
{
    size_t n = (unsigned long long)p->bulk_left < avail ? (size_t)p->bulk_left : avail;

    take(p, pos, n);
    p->bulk_left -= (long long)n;
    if (p->bulk_left > 0)
        return RESP_INCOMPLETE;
    if (--p->multibulk_left == 0)
        return command_ready(p);
    p->state = ST_BULK_COUNT;
    return RESP_INCOMPLETE;
}

/* Runs the state machine over buf until a command is complete, an error, or the end. A
 * command still held from the previous call is released first. */
enum resp_status resp_parser_feed(struct resp_parser *p, const struct resp_limits *lim,
                                  const char *buf, size_t len, size_t *consumed)
{
    enum resp_status st = RESP_INCOMPLETE;
    size_t pos = 0;

    if (lim == NULL)
        lim = &default_limits;
    if (p->state == ST_COMMAND)
        resp_parser_next(p);
    if (p->state == ST_ERROR) {
        *consumed = 0;
        return RESP_ERROR;
    }
    while (pos < len && st == RESP_INCOMPLETE) {
        switch (p->state) {
        case ST_IDLE:
            p->state = buf[pos] == '*' ? ST_MBULK_COUNT : ST_INLINE;
            break;
        case ST_INLINE:
            st = inline_step(p, buf, len, &pos);
            break;
        case ST_MBULK_COUNT:
            st = count_step(p, buf, len, &pos, ST_MBULK_COUNT_END,
                            "Protocol error: too big mbulk count string");
            break;
        case ST_MBULK_COUNT_END:
            take(p, &pos, 1);
            st = mbulk_count_done(p, lim);
            break;
        case ST_BULK_COUNT:
            st = count_step(p, buf, len, &pos, ST_BULK_COUNT_END,
                            "Protocol error: too big bulk count string");
            break;
        case ST_BULK_COUNT_END:
            take(p, &pos, 1);
            st = bulk_count_done(p, lim);
            break;
        case ST_BULK_DATA:
            bulk_data(p, buf, len, &pos);
            break;
        case ST_BIG_DATA:
            big_data(p, buf, len, &pos);
            break;
        case ST_BULK_END:
            st = bulk_end(p, len - pos, &pos);
            break;
        default:
            EVB_ASSERT(!"unknown parser state");
        }
    }
    *consumed = pos;
    return st;
}

struct resp_block *resp_parser_arg_block(const struct resp_parser *p, int i)
{
    if (p->state != ST_COMMAND || i < 0 || i >= p->argc)
        return NULL;
    return p->blocks[i];
}

/* Releases the returned command; big buffers go, small ones stay for the next command. */
void resp_parser_next(struct resp_parser *p)
{
    if (p->state == ST_COMMAND)
        request_reset(p);
}

/* The protocol error text, or "" when there was none. */
const char *resp_parser_error(const struct resp_parser *p)
{
    return p->error != NULL ? p->error : "";
}

/* Raw bytes received for the request in progress, like Redis's qbuf for that request. */
size_t resp_parser_pending(const struct resp_parser *p)
{
    return p->pending;
}

size_t resp_parser_memory(const struct resp_parser *p)
{
    return p->arena_cap + p->line_cap + p->block_bytes +
           (size_t)p->argv_cap * (sizeof(*p->argv) + sizeof(*p->argvlen) + sizeof(*p->blocks));
}

/* Whether no request is in progress or held. */
int resp_parser_idle(const struct resp_parser *p)
{
    return p->state == ST_IDLE;
}
