/* The request parser: RESP multibulk and inline requests, fed bytes and never touching a
 * socket. It owns the bytes of partially received commands, so callers keep no query
 * buffer of their own. Reply encoding lives in reply.c. */
#ifndef EVB_RESP_H
#define EVB_RESP_H

#include <stddef.h>

/* Redis's PROTO_INLINE_MAX_SIZE: the longest inline line or count line without CRLF. */
#define RESP_INLINE_MAX 65536
/* Redis's limits for clients that still have to authenticate. */
#define RESP_UNAUTH_MAX_ARGS 10
#define RESP_UNAUTH_MAX_BULK 16384

/* An argument of RESP_BIG_ARG bytes or more is stored in a reference-counted block of its own
 * instead of the shared arena, with RESP_ARG_HEADROOM spare bytes before it and 2 after: a
 * frame can then be encoded around the bytes where they lie (msg_new_in_place), saving the copy
 * and a large allocation per message. The headroom fits a frame header whose channel name is
 * up to about 200 bytes. */
#define RESP_BIG_ARG 4096
#define RESP_ARG_HEADROOM 256

/* Only frames take references beside the parser's: more than one means a frame was already
 * encoded around the argument, and no second one can be. */
struct resp_block {
    unsigned refs;
    size_t cap;  /* bytes of data */
    char data[]; /* RESP_ARG_HEADROOM spare, the argument, its NUL, one spare byte */
};

/* Keeps a block alive past the command (the parser lets go of it in resp_parser_next). */
void resp_block_ref(struct resp_block *b);
void resp_block_unref(struct resp_block *b);

/* Limits the parser enforces, set by the caller from the configuration. */
struct resp_limits {
    long long max_bulk_len; /* proto_max_bulk_len; Redis's default is 512mb */
    int unauthenticated;    /* apply RESP_UNAUTH_* (requirepass set, not yet authenticated) */
};

enum resp_status {
    RESP_INCOMPLETE, /* every byte was consumed; feed more when it arrives */
    RESP_COMMAND,    /* a command is ready in argc/argv; call resp_parser_next after it */
    RESP_ERROR,      /* protocol error: resp_parser_error() has the text; stop feeding */
};

struct resp_parser {
    /* Valid after RESP_COMMAND until resp_parser_next(). Each argv[i] is followed by a NUL
     * (not counted in argvlen[i]) so handlers may use it as a C string when they must; except
     * a big argument once a frame was built around it (msg_new_in_place), whose NUL became
     * the frame's CR: after PUBLISH's fan-out, its payload goes by length only. */
    int argc;
    char **argv;
    size_t *argvlen;

    /* Private state, see resp.c. */
    int state;                /* what the next byte belongs to */
    int stalled;              /* a NUL hides the end of the current line, as in Redis */
    long long multibulk_left; /* arguments of the multibulk request still to come */
    long long bulk_left;      /* payload, then trailer, bytes of the current argument */
    int argv_cap;             /* slots in argv and argvlen */
    size_t line_len;          /* bytes of the current inline or count line so far */
    char count[24];           /* head of a count line: longer ones are invalid anyway */
    char *line;               /* an inline line that spans feeds */
    size_t line_cap;
    char *arena;                /* the arguments of the request in progress, each NUL-terminated */
    struct resp_block **blocks; /* per argument: its block when big, else NULL (argv_cap) */
    size_t block_bytes;         /* heap bytes of the blocks held */
    size_t arena_len, arena_cap;
    size_t pending; /* bytes received for the request in progress */
    const char *error;
    char error_buf[64];
};

/* Prepares an empty parser. It holds no heap memory until bytes arrive. */
void resp_parser_init(struct resp_parser *p);
/* Frees everything the parser holds, including a command in progress. */
void resp_parser_free(struct resp_parser *p);

/* Feeds len bytes. Returns RESP_COMMAND as soon as one command is complete, with *consumed
 * set to the bytes used (possibly fewer than len: feed the rest after handling it); or
 * RESP_INCOMPLETE with *consumed == len; or RESP_ERROR. Empty requests (blank inline
 * lines, *0, *-1) are skipped with no result, as Redis does. Parsing resumes at any byte
 * boundary, and memory grows only with bytes actually received. */
enum resp_status resp_parser_feed(struct resp_parser *p, const struct resp_limits *lim,
                                  const char *buf, size_t len, size_t *consumed);

/* Moves everything src holds (a request in progress, its buffers, an error) into dst, which
 * must hold nothing, and leaves src empty, as after resp_parser_init. Parsing continues in
 * dst as if it had been src all along. */
void resp_parser_move(struct resp_parser *dst, struct resp_parser *src);

/* The block holding argument i of the command just returned, or NULL when the argument is in
 * the arena (shorter than RESP_BIG_ARG) or there is no such argument. */
struct resp_block *resp_parser_arg_block(const struct resp_parser *p, int i);

/* Releases the arguments of the command just returned (small buffers are kept for reuse). */
void resp_parser_next(struct resp_parser *p);

/* After RESP_ERROR: the Redis text without the "ERR " prefix, e.g.
 * "Protocol error: invalid bulk length". */
const char *resp_parser_error(const struct resp_parser *p);

/* Bytes currently held for input not yet returned as a command (for query-buffer limits
 * and CLIENT LIST qbuf). */
size_t resp_parser_pending(const struct resp_parser *p);

/* Heap bytes the parser holds (argument arena, inline line, argv arrays), for CLIENT LIST. */
size_t resp_parser_memory(const struct resp_parser *p);

/* Whether the parser is between commands (no partial input held). */
int resp_parser_idle(const struct resp_parser *p);

#endif
