/* Reference-counted encoded frames, the frame log that small frames are encoded into, and the
 * hand-off of frames to output buffers. Single-threaded: counts are plain integers. A frame is
 * never modified after msg_new returns. */
#include "msg.h"

#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"
#include "resp.h"
#include "util.h"

/* A log segment: frames encoded back to back. */
struct msg_seg {
    unsigned holds; /* live frames in it, and runs holding it */
    unsigned used;  /* bytes of data filled */
    char data[];
};

#define SEG_ROOM (MSG_SEG_SIZE - sizeof(struct msg_seg))

static size_t msg_live;
/* The segments being filled: RESP2 frames, and the RESP3 copies of those that RESP3 clients
 * get (a separate log, so each protocol's frames stay contiguous for runs). */
static struct msg_seg *log_cur[2];
/* Idle segments kept for reuse: a loop pass that reads a lot fills several while runs hold
 * them until the flush, and allocating them anew each pass churned the allocator. */
#define LOG_SPARES_MAX 16
static struct msg_seg *log_spares[LOG_SPARES_MAX];
static size_t log_nspares;
static size_t log_segments;

static struct msg_seg *seg_of(const char *p)
{
    return (struct msg_seg *)((uintptr_t)p & ~(uintptr_t)(MSG_SEG_SIZE - 1));
}

static struct msg_seg *seg_new(void)
{
    struct msg_seg *s;

    if (log_nspares > 0) {
        s = log_spares[--log_nspares];
    } else {
        s = xaligned_alloc(MSG_SEG_SIZE, MSG_SEG_SIZE);
        log_segments++;
    }
    s->holds = 0;
    s->used = 0;
    return s;
}

/* Drops one hold; a segment no longer filled nor held is kept as a spare, or freed. */
static void seg_drop(struct msg_seg *s)
{
    EVB_ASSERT(s->holds > 0);
    if (--s->holds > 0 || s == log_cur[0] || s == log_cur[1])
        return;
    if (log_nspares < LOG_SPARES_MAX) {
        log_spares[log_nspares++] = s;
    } else {
        free(s);
        log_segments--;
    }
}

/* Where the next frame (len bytes) of log k goes: the end of its current segment, or a fresh
 * one. A full segment that nothing holds is refilled from the start. */
static char *log_reserve(int k, size_t len)
{
    struct msg_seg *cur = log_cur[k];

    if (cur == NULL) {
        cur = log_cur[k] = seg_new();
    } else if (cur->used + len > SEG_ROOM) {
        if (cur->holds == 0)
            cur->used = 0;
        else
            cur = log_cur[k] = seg_new(); /* the old one goes with its last hold */
    }
    return cur->data + cur->used;
}

/* Takes the len bytes just written at log k's end, held by a live frame. */
static void log_commit(int k, size_t len)
{
    log_cur[k]->used += (unsigned)len;
    log_cur[k]->holds++;
}

/* Bytes of a bulk string of n bytes: "$<n>\r\n<bytes>\r\n". */
static size_t bulk_size(size_t n)
{
    size_t digits = 1;
    for (size_t v = n; v >= 10; v /= 10)
        digits++;
    return 1 + digits + 2 + n + 2;
}

/* Bytes of a frame's header: everything before the payload's bytes. */
static size_t header_size(const char *kind, const char *pat, size_t patlen, size_t chlen,
                          size_t plen)
{
    return 4 + bulk_size(strlen(kind)) + (pat ? bulk_size(patlen) : 0) + bulk_size(chlen) +
           bulk_size(plen) - plen - 2;
}

/* Writes a bulk string of n bytes at p; returns the end. */
static char *put_bulk(char *p, const char *s, size_t n)
{
    p += reply_fmt_bulk_header(p, n);
    memcpy(p, s, n);
    memcpy(p + n, "\r\n", 2);
    return p + n + 2;
}

/* Writes the header of a frame at p; returns the end, where the payload goes. */
static char *put_header(char *p, const char *kind, const char *pat, size_t patlen, const char *ch,
                        size_t chlen, size_t plen)
{
    memcpy(p, pat ? "*4\r\n" : "*3\r\n", 4);
    p = put_bulk(p + 4, kind, strlen(kind));
    if (pat)
        p = put_bulk(p, pat, patlen);
    p = put_bulk(p, ch, chlen);
    return p + reply_fmt_bulk_header(p, plen);
}

/* Counts a frame of len bytes at data, with one reference. */
static struct msg *msg_init(struct msg *m, char *data, size_t len)
{
    m->data = data;
    m->data3 = NULL;
    m->len = len;
    m->refcount = 1;
    msg_live++;
    return m;
}

struct msg *msg_new(const char *kind, const char *pat, size_t patlen, const char *ch, size_t chlen,
                    const void *payload, size_t plen)
{
    size_t size = header_size(kind, pat, patlen, chlen, plen) + plen + 2;
    struct msg *m;

    if (size <= MSG_COPY_MAX) {
        m = msg_init(xmalloc(sizeof(*m)), log_reserve(0, size), size);
        log_commit(0, size);
    } else {
        m = xmalloc(sizeof(*m) + size);
        msg_init(m, m->own, size);
    }
    char *p = put_header(m->data, kind, pat, patlen, ch, chlen, plen);
    if (plen)
        memcpy(p, payload, plen);
    memcpy(p + plen, "\r\n", 2);
    EVB_ASSERT(p + plen + 2 == m->data + size);
    return m;
}

struct msg *msg_new_in_place(const char *kind, const char *pat, size_t patlen, const char *ch,
                             size_t chlen, struct resp_block *b, size_t plen)
{
    size_t head = header_size(kind, pat, patlen, chlen, plen);
    char *payload = b->data + RESP_ARG_HEADROOM;

    if (b->refs > 1 || head > RESP_ARG_HEADROOM || head + plen + 2 <= MSG_COPY_MAX)
        return msg_new(kind, pat, patlen, ch, chlen, payload, plen);
    EVB_ASSERT(RESP_ARG_HEADROOM + plen + 2 <= b->cap);
    struct msg *m = msg_init(xmalloc(sizeof(*m)), payload - head, head + plen + 2);
    put_header(m->data, kind, pat, patlen, ch, chlen, plen);
    memcpy(payload + plen, "\r\n", 2);
    resp_block_ref(b);
    m->block = b;
    return m;
}

/* Takes a reference: an output buffer sharing the frame keeps it alive. */
static void msg_ref(struct msg *m)
{
    m->refcount++;
}

void msg_unref(struct msg *m)
{
    EVB_ASSERT(m->refcount > 0);
    if (--m->refcount == 0) {
        msg_live--;
        if (msg_logged(m)) {
            seg_drop(seg_of(m->data));
            if (m->data3)
                seg_drop(seg_of(m->data3));
        } else if (m->block) {
            resp_block_unref(m->block);
        }
        free(m);
    }
}

/* evbuffer cleanup callback: the buffer is done with the shared bytes. */
static void msg_release_cb(const void *data, size_t len, void *arg)
{
    msg_unref(arg);
}

size_t msg_append(struct evbuffer *out, struct msg *m, int resp)
{
    const char *p = m->data;
    size_t len = m->len;

    if (resp >= 3) {
        evbuffer_add(out, ">", 1);
        p++;
        len--;
    }
    if (msg_logged(m)) {
        evbuffer_add(out, p, len);
    } else {
        msg_ref(m);
        if (evbuffer_add_reference(out, p, len, msg_release_cb, m) < 0)
            msg_unref(m);
    }
    return m->len;
}

size_t msg_live_count(void)
{
    return msg_live;
}

const char *msg_data3(struct msg *m)
{
    EVB_ASSERT(msg_logged(m));
    if (m->data3 == NULL) {
        char *p = log_reserve(1, m->len);
        memcpy(p, m->data, m->len);
        p[0] = '>';
        log_commit(1, m->len);
        m->data3 = p;
    }
    return m->data3;
}

void msg_run_start(const char *data)
{
    seg_of(data)->holds++;
}

void msg_run_release(const char *run)
{
    seg_drop(seg_of(run));
}

/* evbuffer cleanup callback: the buffer is done with a run's bytes. */
static void run_release_cb(const void *data, size_t len, void *arg)
{
    msg_run_release(data);
}

int msg_run_to_buffer(struct evbuffer *out, const char *run, size_t len)
{
    if (len > MSG_COPY_MAX && evbuffer_add_reference(out, run, len, run_release_cb, NULL) == 0)
        return 1;
    evbuffer_add(out, run, len);
    msg_run_release(run);
    return 0;
}

size_t msg_log_segments(void)
{
    return log_segments;
}

size_t msg_log_release(void)
{
    size_t freed = 0;

    for (int k = 0; k < 2; k++) {
        if (log_cur[k] != NULL && log_cur[k]->holds == 0) {
            free(log_cur[k]);
            log_cur[k] = NULL;
            freed++;
        }
    }
    while (log_nspares > 0) {
        free(log_spares[--log_nspares]);
        freed++;
    }
    log_segments -= freed;
    return freed * MSG_SEG_SIZE;
}
