/* One connection: its parser, output buffer, protocol state, subscriptions (kept by
 * pubsub.c), output limits and asynchronous close. A client is never freed inside a
 * callback that may still use it: it is marked closing and the flush pass frees it. */
#ifndef EVB_CLIENT_H
#define EVB_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "resp.h"

struct command;
struct sockaddr;
struct config_user;
struct dict;
struct msg;
struct multi_state;
struct subscription;

#define CLIENT_F_PUBSUB (1u << 0)            /* has a subscription (RESP2 context rule) */
#define CLIENT_F_CLOSE_AFTER_REPLY (1u << 1) /* stop reading, close once output is sent */
#define CLIENT_F_CLOSE_ASAP (1u << 2)        /* close at the next pass, unsent output dropped */
#define CLIENT_F_PENDING_WRITE (1u << 3)     /* on server.pending */
#define CLIENT_F_UNIX (1u << 4)              /* connected over the unix socket */
#define CLIENT_F_AUTHENTICATED (1u << 5)
#define CLIENT_F_REPLY_OFF (1u << 6)  /* CLIENT REPLY OFF */
#define CLIENT_F_REPLY_SKIP (1u << 7) /* the current command's reply is dropped */
#define CLIENT_F_REPLY_SKIP_NEXT (1u << 8)
#define CLIENT_F_WRITE_WAIT (1u << 9)   /* write event armed: the socket is full */
#define CLIENT_F_READ_PAUSED (1u << 10) /* too much output queued: reading waits for a drain */
#define CLIENT_F_BATCHING (1u << 11)    /* on server.batching: output waits for the window */
#define CLIENT_F_TLS (1u << 12)         /* I/O through bev (OpenSSL), not read_ev/write_ev */
#define CLIENT_F_TLS_OPEN (1u << 13)    /* the TLS handshake is done */
/* subs[kind] is a map, not a list (bits 14 to 16, one per enum pubsub_kind). */
#define CLIENT_F_SUBS_MAP(kind) (1u << (14 + (unsigned)(kind)))
#define CLIENT_F_RUN_AFTER_OUT (1u << 17) /* out holds bytes queued before the run */
#define CLIENT_F_OVER_SOFT (1u << 18)     /* over the soft output limit since ext->soft_since_ms */
#define CLIENT_F_OUT_PINS (1u << 19)      /* out may reference frame log segments (runs) */
#define CLIENT_F_MULTI (1u << 20)         /* in a transaction: commands are queued (multi.h) */
#define CLIENT_F_MULTI_ERROR (1u << 21)   /* a command was refused in it: EXEC discards it */
#define CLIENT_F_MONITOR (1u << 22)       /* sent every command run (monitor.h) */
#define CLIENT_F_WRITES_FIRST (1u << 23)  /* paused but not reading: read on (client.c) */

/* Subscription kinds, also the index of client.subs. */
enum pubsub_kind { PUBSUB_CHANNEL = 0, PUBSUB_PATTERN = 1, PUBSUB_SHARD = 2 };

/* A TCP peer's address, packed (the formatted text would cost more than the rest of an idle
 * client); CLIENT LIST, CLIENT KILL and logs format it when they need it. */
struct client_peer {
    uint8_t family; /* AF_INET, AF_INET6, or 0: none (unix clients go by the socket's name) */
    uint16_t port;
    uint8_t ip[16];
};

/* Room for a formatted address: an IPv6 one with its port, or a unix socket path and ":0". */
#define CLIENT_ADDR_LEN 128

/* A client's subscriptions of one kind, kept by pubsub.c: a list threaded through the
 * subscription records while short (NULL when empty), a map (name -> record) when
 * CLIENT_F_SUBS_MAP(kind) is set. */
union client_subs {
    struct subscription *list;
    struct dict *map;
};

/* What few clients use: a login, names, input held while reading is paused. Allocated on first
 * use by client_ext() and kept until the client is freed. */
struct client_ext {
    const struct config_user *user; /* NULL = the default user */
    char *user_name;                /* NULL = default; survives reloads that move users */
    char *name;
    char *lib_name;
    char *lib_ver;
    char *stash; /* input read but not yet run while reading is paused */
    size_t stash_len;
    struct event *pause_ev;    /* while paused: checks that the peer reads (client.c) */
    size_t pause_unread;       /* output it had not read at the last check */
    int pause_stalls;          /* checks in a row since it last read */
    long long soft_since_ms;   /* with CLIENT_F_OVER_SOFT */
    struct multi_state *multi; /* with CLIENT_F_MULTI: the queued commands */
};

/* Every idle connection costs one of these, so it is kept to 256 bytes (a jemalloc size class;
 * client.c asserts it): rarely used fields live in ext, addresses are packed. */
struct client {
    uint64_t id;
    int fd;
    unsigned flags;
    uint8_t resp; /* 2 or 3 */
    uint8_t db;   /* 0 to 15, as SELECT allows */
    struct client_peer peer;
    int argc;                   /* of the command being run, with argv below */
    unsigned last_deliver_pass; /* server.passes when a message was last queued */
    /* The low 32 bits of server.now_us when a message was last queued, for batching and idle
     * shrinking; compared by unsigned difference, so it wraps harmlessly every 71 minutes. */
    uint32_t last_deliver_us;
    /* Frames queued after out, still in the frame log (msg.h): a run, sent from there. Only
     * while the client waits for the flush pass or the batch window (never while its socket
     * is full), so the log is not held for long; anything else queued for the client moves
     * the run into out first. With the fields above, in the first cache line: fan-out reads
     * nothing else of a client that keeps up. */
    uint32_t run_len;
    const char *run;
    struct event *read_ev;  /* plain clients; NULL with TLS */
    struct event *write_ev; /* plain clients, once a write had to wait; NULL with TLS */
    /* TLS clients: owns the SSL and the fd. Output is queued in out like for everyone and
     * moved into the bufferevent's output by client_write; both count as queued output. */
    struct bufferevent *bev;
    struct evbuffer *out;       /* NULL until output comes, and again once idle */
    struct evbuffer *reply;     /* where the running command replies: out, or a discard buffer */
    struct resp_parser *parser; /* only while a request is cut across reads; see client.c */
    struct client_ext *ext;     /* NULL until a rarely used field is set */

    /* The command being run, valid during dispatch (argc is above). */
    char **argv;
    size_t *argvlen;
    const struct command *cmd;
    const char *last_cmd; /* full name of the last command, for CLIENT LIST */

    union client_subs subs[3]; /* by enum pubsub_kind */

    long long ctime_ms;
    long long last_ms;

    TAILQ_ENTRY(client) all_link;
    TAILQ_ENTRY(client) pending_link;
    TAILQ_ENTRY(client) closing_link;
    TAILQ_ENTRY(client) batching_link;
};

/* c's extension, allocated (zeroed) on first use. */
struct client_ext *client_ext(struct client *c);

/* The user c is logged in as (NULL = the default user), and its name (NULL = "default"). */
static inline const struct config_user *client_user(const struct client *c)
{
    return c->ext ? c->ext->user : NULL;
}
static inline const char *client_user_name(const struct client *c)
{
    return c->ext ? c->ext->user_name : NULL;
}

/* Takes ownership of a connected, non-blocking socket and starts reading from it; peer (borrowed,
 * NULL for unix clients) is kept packed. Returns the client, registered in server.clients. */
struct client *client_create(int fd, int is_unix, const struct sockaddr *peer);

/* Takes ownership of a socket accepted on the TLS listener: the handshake runs on an OpenSSL
 * bufferevent (tls.h's context), then the client works like any other. */
struct client *client_create_tls(int fd, const struct sockaddr *peer);

/* Formats the client's address as CLIENT LIST's addr= shows it into buf (CLIENT_ADDR_LEN). */
void client_addr(const struct client *c, char *buf, size_t len);
/* Formats the local end as laddr= shows it, from the socket (so not stored per client). */
void client_laddr(const struct client *c, char *buf, size_t len);

/* Sends text (a complete RESP error line, borrowed) and closes the client once it is out;
 * how a TLS connection is refused, since nothing can be said before its handshake. */
void client_refuse(struct client *c, const char *text);

/* Marks the client closing and queues it; the flush pass frees it. Safe anywhere,
 * also during fan-out. why is logged at verbose level (may be NULL). */
void client_close_async(struct client *c, const char *why);

/* Frees a client taken off server.closing. Only the flush pass and shutdown call this. */
void client_free(struct client *c);

/* Queues a published frame (borrowed; referenced if kept) and enforces the pub/sub output
 * limits. The hot path of fan-out. */
void client_deliver(struct client *c, struct msg *m);

/* Queues text (copied) that is no reply to c's own command, such as a MONITOR line, under
 * the pub/sub output limits, and schedules the write. */
void client_send_text(struct client *c, const void *p, size_t len);

/* Puts the client on the pending list if it has output. */
void client_schedule_write(struct client *c);

/* Writes what the socket takes. Called by the flush pass and the write event. */
void client_write(struct client *c);

/* Number of subscriptions of one kind, and of channels plus patterns (Redis's count). */
size_t client_sub_count(const struct client *c, enum pubsub_kind kind);

/* Whether the client must still authenticate before running commands. */
int client_auth_required(const struct client *c);

/* The memory of every connected client, as CLIENT LIST's tot-mem counts it (INFO's
 * mem_clients_normal). */
size_t client_memory_total(void);

/* Appends one CLIENT LIST line (without the newline) describing c. */
void client_describe(const struct client *c, struct evbuffer *out);

/* Closes a timed-out client; one idle long enough gives back its parser, output buffer and
 * write event. Run by cron. Returns about how many bytes were freed. */
size_t client_cron(struct client *c);

/* Most bytes one client is sent per loop pass, so one fast reader of a big backlog does not
 * hold up the others: 1 MiB (tests lower it). */
extern size_t client_write_per_pass;

/* Closes a client past [limits] client_query_buffer_limit (what it held, as CLIENT LIST names
 * it, is field = bytes), logs why, rate-limited, and counts it for INFO. */
void client_close_over_query_limit(struct client *c, const char *what, const char *field,
                                   size_t bytes);

/* The bound on replies a client has not read where reading cannot pause (inside EXEC, or for
 * a client that writes its whole pipeline first): past client_query_buffer_limit it is closed
 * as client_close_over_query_limit does, what saying what it did. Returns 1 if it was. */
int client_replies_over_limit(struct client *c, const char *what);

/* Input bytes held for a request not yet complete (CLIENT LIST qbuf). */
size_t client_input_pending(const struct client *c);
/* While c's command runs: the block argument i lies in when it is a big argument (resp.h),
 * else NULL. A frame built around it ends the NUL after argv[i]. */
struct resp_block *client_arg_block(const struct client *c, int i);

/* The buffer a command's replies go to, made if needed. Frames queued to c before (its run)
 * move in first, so replies follow them. */
struct evbuffer *client_output(struct client *c);

/* Output bytes queued for the client (for TLS clients, also those in the bufferevent). */
size_t client_output_len(const struct client *c);

/* Frees the buffers of the parser that clients share; at exit, after every client is gone. */
void client_release_shared(void);

#endif
