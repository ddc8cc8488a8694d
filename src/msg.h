/* Published frames: a message is encoded once into an immutable, reference-counted frame
 * that every subscriber's output shares. The RESP2 and RESP3 forms differ only in the first
 * byte ('*' or '>'), so one encoding serves both. */
#ifndef EVB_MSG_H
#define EVB_MSG_H

#include <stddef.h>

struct evbuffer;

/* Frames up to this size are copied into the output buffer (cheaper than a reference
 * chain); larger ones are shared by reference. */
#define MSG_COPY_MAX 2048

struct msg {
    unsigned refcount;
    size_t len;
    char data[]; /* RESP2 encoding; data[0] == '*' */
};

/* Encodes [kind, (pattern,) channel, payload]. kind is "message", "pmessage" or
 * "smessage"; pat is NULL except for pmessage. Returns a frame with one reference,
 * owned by the caller. */
struct msg *msg_new(const char *kind, const char *pat, size_t patlen, const char *ch, size_t chlen,
                    const void *payload, size_t plen);
/* Drops a reference; the frame is freed with the last one. */
void msg_unref(struct msg *m);

/* Appends the frame to out in the client's protocol: a copy when small, else a shared
 * reference released when the buffer has sent it. Returns the bytes added. */
size_t msg_append(struct evbuffer *out, struct msg *m, int resp);

/* Frames alive right now (for INFO and leak tests). */
size_t msg_live_count(void);

#endif
