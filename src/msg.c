/* Reference-counted encoded frames and their hand-off to output buffers. Single-threaded:
 * the count is a plain integer. A frame is never modified after msg_new returns. */
#include "msg.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"
#include "util.h"

static size_t msg_live;

struct msg *msg_new(const char *kind, const char *pat, size_t patlen, const char *ch, size_t chlen,
                    const void *payload, size_t plen)
{
    size_t kindlen = strlen(kind);
    /* Each element costs at most a 24-byte header plus its bytes and CRLF. */
    size_t cap = 4 + (pat ? 4 : 3) * 26 + kindlen + patlen + chlen + plen;
    struct msg *m = xmalloc(sizeof(*m) + cap);
    char *p = m->data;

    memcpy(p, pat ? "*4\r\n" : "*3\r\n", 4);
    p += 4;
    p += reply_fmt_bulk_header(p, kindlen);
    memcpy(p, kind, kindlen);
    p += kindlen;
    memcpy(p, "\r\n", 2);
    p += 2;
    if (pat) {
        p += reply_fmt_bulk_header(p, patlen);
        memcpy(p, pat, patlen);
        p += patlen;
        memcpy(p, "\r\n", 2);
        p += 2;
    }
    p += reply_fmt_bulk_header(p, chlen);
    memcpy(p, ch, chlen);
    p += chlen;
    memcpy(p, "\r\n", 2);
    p += 2;
    p += reply_fmt_bulk_header(p, plen);
    if (plen)
        memcpy(p, payload, plen);
    p += plen;
    memcpy(p, "\r\n", 2);
    p += 2;

    m->len = (size_t)(p - m->data);
    EVB_ASSERT(m->len <= cap);
    m->refcount = 1;
    msg_live++;
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
    if (m->len <= MSG_COPY_MAX) {
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
