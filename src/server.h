/* The process-wide server: event base, listeners, the client lists, the flush step that
 * writes batched output once per loop pass, the cron, signals, shutdown and reload. */
#ifndef EVB_SERVER_H
#define EVB_SERVER_H

#include <stdint.h>
#include <sys/queue.h>

#include "config.h"

struct client;
TAILQ_HEAD(client_list, client);

/* Counters for INFO; only ever incremented. */
struct stats {
    long long connections_received;
    long long rejected_connections;
    long long commands_processed;
    long long net_input_bytes;
    long long net_output_bytes;
    long long publishes;      /* PUBLISH and SPUBLISH commands */
    long long deliveries;     /* frames queued to subscribers */
    long long output_writes;  /* write system calls that sent output (plain sockets) */
    long long input_reads;    /* reads that brought input (INFO's total_reads_processed) */
    long long batch_declines; /* times batching let go because holding did not pay */
    long long output_limit_disconnections;
    long long query_limit_disconnections;
    long long protocol_errors;
};

struct listener {
    int fd;
    int is_unix;
    int is_tls; /* clients speak TLS (the [tls] port) */
    struct event *ev;
    char addr[108]; /* an IP or a unix socket path (sun_path size) */
};

/* Every bind address on the TCP port and on the TLS port, and the unix socket. */
#define SERVER_MAX_LISTENERS (2 * CONFIG_MAX_BIND + 1)

struct server {
    struct event_base *base;
    struct config cfg;
    const char *config_path;     /* NULL when running on built-in defaults */
    const char *cli_port;        /* --port and --bind (NULL when not given): each reload */
    const char *cli_bind;        /* applies them over the file again, as the start did */
    struct client_list clients;  /* every connection */
    struct client_list pending;  /* clients with output to flush this pass */
    struct client_list closing;  /* clients to free this pass */
    struct client_list batching; /* subscribers whose output waits for the batch timer */
    struct event *flush_ev;
    int flush_scheduled;
    unsigned passes; /* flush passes run, wrapping */
    struct event *cron_ev;
    struct event *drain_ev; /* while stopping: waits for queued output */
    struct event *batch_ev; /* moves the batching list to pending when its window ends */
    int batch_fd;           /* its timerfd, -1 when it is a libevent timer */
    int batch_armed;
    int batch_engaged;           /* the loop is busy enough that subscriber output is batched */
    int batch_window_us;         /* the current window, adapted to the load */
    int load_pct;                /* share of the last cron interval the loop was busy */
    int load_fd;                 /* /proc/thread-self/schedstat, -1 if unreadable */
    long long load_wait_ns;      /* last runqueue wait read from schedstat (it only grows) */
    long long load_busy_ns;      /* its running + runnable time at the last sample */
    long long load_sample_us;    /* when that sample was taken */
    long long load_low_since_ms; /* load below half the engage mark since; 0 when not */
    long long batch_holds;       /* subscribers held since the last cron interval */
    long long batch_joins;       /* messages that joined a held subscriber's output since */
    long long batch_retry_ms;    /* holding did not pay: do not engage before this time */
    int batch_backoff;           /* misses in a row: the next wait is the retry time << this */
    struct event *resume_ev;     /* re-enables accept after descriptor exhaustion */
    struct event *signal_evs[4];
    struct listener listeners[SERVER_MAX_LISTENERS];
    int nlisteners;
    int port;     /* the TCP port actually bound */
    int tls_port; /* the TLS port bound, 0 without TLS */
    uint64_t next_client_id;
    long long nclients;
    long long start_ms;   /* now_ms at start (monotonic, for uptimes) */
    long long start_unix; /* Unix time at start (LASTSAVE, INFO rdb_last_save_time) */
    long long now_ms;     /* monotonic, refreshed each loop pass */
    long long now_us;     /* the same in microseconds */
    struct stats stats;
    int shutting_down;
    int pidfile_written;
};

extern struct server server;

/* Sets up the loop, listeners and signals with cfg (taken over: the server frees it).
 * Returns 0, or -1 after logging why (e.g. the port is in use). */
int server_init(struct config *cfg, const char *config_path);
/* The loop, lists, flush pass, cron and signals without any listener: what server_init
 * does first, and what in-process tests use with clients on socketpairs. */
int server_init_loop(struct config *cfg, const char *config_path);
/* Runs the loop until shutdown; returns the process exit status. */
int server_run(void);
/* Frees everything server_init made. */
void server_cleanup(void);

/* Asks for one flush pass after the current callbacks (writes pending output, frees
 * closing clients). Cheap to call often. */
void server_schedule_flush(void);

/* Holds a subscriber's output until the batch window ends (see client_deliver). */
void server_batch_client(struct client *c);

/* Adaptive batching, run by the cron with the share of the last interval (percent) the loop
 * was busy. Batching engages at [server] output_batch_load percent; while engaged the window
 * doubles each interval the loop stays that busy (up to output_batch_us) and halves each one it
 * is not (down to an eighth of it), settling on the shortest window that keeps up with the
 * load; it lets go after a second below half the mark. It also lets go when holding does not
 * pay: when the interval's held subscribers would have got fewer than two messages each in a
 * full window (batch_holds and batch_joins), as with many channels that each get a message now
 * and then; holding them only added latency. It is tried again after 5 s, and each miss in a
 * row doubles that wait, up to 80 s. */
void server_adapt_batching(int load_pct);

/* Applies --port and --bind (server.cli_port, cli_bind) over a loaded file. Returns 0, or -1
 * after logging why one is not valid. */
int server_apply_cli(struct config *cfg);

/* Descriptors kept beyond maxclients (Redis's reserve; the metrics endpoint's connections come
 * on top): see server_fit_maxclients. */
#define SERVER_RESERVED_FDS 32

/* Out of descriptors (errno says why): stops accepting on every listener, the metrics
 * endpoint's too, for 100 ms, and logs it once per episode; connected clients keep being
 * served. A listener that stayed readable would otherwise spin the loop. */
void server_pause_accept(void);
/* Whether accept's errno means descriptors or memory ran out (then pause, not retry). */
int server_accept_exhausted(int err);

/* Refreshes server.now_ms. */
void server_update_time(void);

#endif
