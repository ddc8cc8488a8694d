/* Published frames: a message is encoded once into an immutable, reference-counted frame
 * that every subscriber's output shares. The RESP2 and RESP3 forms differ only in the first
 * byte ('*' or '>'), so one encoding serves both.
 *
 * Small frames are encoded one after another into the frame log, so the frames a subscriber
 * gets in a row form one run of contiguous bytes: the client keeps the run instead of copying
 * each frame into its buffer, and sends it straight from the log. */
#ifndef EVB_MSG_H
#define EVB_MSG_H

#include <stddef.h>

struct evbuffer;
struct resp_block;

/* Frames up to this size (computed before encoding) go to the frame log and are copied into
 * output buffers (cheaper than a reference chain) or sent from the log; larger ones are
 * allocated alone and shared by reference. */
#define MSG_COPY_MAX 2048

/* The log is made of segments of this size, aligned to it, so a pointer into the log finds
 * its segment. A segment lives while it is being filled, or a frame or run in it is held. */
#define MSG_SEG_SIZE (64 * 1024)

struct msg {
    unsigned refcount;
    size_t len;
    char *data; /* RESP2 encoding; data[0] == '*' */
    union {
        char *data3;              /* logged: the RESP3 copy in the RESP3 log, NULL until asked */
        struct resp_block *block; /* encoded in place: the block data lies in, else NULL */
    };
    char own[]; /* the bytes of a large frame, unless encoded in place */
};

/* Whether the frame's bytes are in the frame log: every frame up to MSG_COPY_MAX is. */
static inline int msg_logged(const struct msg *m)
{
    return m->len <= MSG_COPY_MAX;
}

/* Encodes [kind, (pattern,) channel, payload]. kind is "message", "pmessage" or
 * "smessage"; pat is NULL except for pmessage. Returns a frame with one reference,
 * owned by the caller. */
struct msg *msg_new(const char *kind, const char *pat, size_t patlen, const char *ch, size_t chlen,
                    const void *payload, size_t plen);
/* Like msg_new, for a payload that is a big request argument (resp.h): the frame is encoded
 * around the payload where it lies in its block, which the frame then holds; the NUL after the
 * argument becomes the frame's CRLF. Only one frame per block can do that, and only when the
 * header fits the block's headroom; otherwise this copies the payload as msg_new does. */
struct msg *msg_new_in_place(const char *kind, const char *pat, size_t patlen, const char *ch,
                             size_t chlen, struct resp_block *b, size_t plen);
/* Drops a reference; the frame is freed with the last one. */
void msg_unref(struct msg *m);

/* Appends the frame to out in the client's protocol: a copy when small, else a shared
 * reference released when the buffer has sent it. Returns the bytes added. */
size_t msg_append(struct evbuffer *out, struct msg *m, int resp);

/* A logged frame in RESP3 (first byte '>'): copied once into a log of its own, so that the
 * RESP3 frames RESP3 subscribers get in a row are contiguous too. */
const char *msg_data3(struct msg *m);

/* Runs: a run is the bytes [run, run + len) of one log segment, frames queued for one client.
 * msg_run_start holds the segment of data (a logged frame's bytes in either protocol) for a
 * run that begins there; while held, the bytes stay valid after the frames are gone. */
void msg_run_start(const char *data);
/* Whether frame bytes at data follow the run directly, so the run can grow over them. */
static inline int msg_run_continues(const char *run, size_t len, const char *data)
{
    return run + len == data;
}
/* Lets go of a run's segment (run points into it). */
void msg_run_release(const char *run);
/* Appends a run to out and hands its hold over: a copy when small (the hold goes at once),
 * else a reference that holds the segment until the buffer has sent it. Returns 1 when out now
 * holds a segment, 0 when it took a copy. */
int msg_run_to_buffer(struct evbuffer *out, const char *run, size_t len);

/* Frames alive right now (for INFO and leak tests). */
size_t msg_live_count(void);
/* Log segments allocated right now: those being filled (RESP2 and RESP3), idle spares (up to
 * 16), and those still held. */
size_t msg_log_segments(void);
/* Frees the log's segments that nothing holds (the spares, and those being filled unless a
 * frame or run is in them); at exit, and by cron once messages stop. Returns the bytes freed. */
size_t msg_log_release(void);

#endif
