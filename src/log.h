/* Logging: one line per event, Redis-style prefix, to stderr, syslog or a file.
 * Never called per message on the fan-out path. */
#ifndef EVB_LOG_H
#define EVB_LOG_H

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_VERBOSE, LOG_LEVEL_NOTICE, LOG_LEVEL_WARNING };

/* Parses "debug", "verbose", "notice" or "warning". Returns the level, or -1. */
int log_level_parse(const char *name);
/* The name log_level_parse reads for a level. */
const char *log_level_name(int level);

/* Sets the minimum level and the target: "stderr", "syslog" (in any case) or a file path
 * (appended; opened without waiting for a FIFO's reader). Returns 0, or -1 when the file cannot
 * be opened (log_open_error says why; the previous target and level stay). */
int log_open(int level, const char *target);
const char *log_open_error(void);
/* Changes the minimum level only. */
void log_set_level(int level);
/* Reopens a file target (after logrotate moved it); no-op for stderr and syslog. */
void log_reopen(void);
void log_close(void);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like log_msg for events a client can trigger in bulk (protocol errors, accept errors,
 * output-limit disconnections). Lines are keyed by fmt (the string literal's address): at
 * most LOG_RATELIMIT_BURST of them per LOG_RATELIMIT_WINDOW_MS are written; the rest are
 * counted, and the count is added to the next line written for that fmt. */
void log_ratelimited(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_RATELIMIT_BURST 10
#define LOG_RATELIMIT_WINDOW_MS 10000

/* The rate-limit decision for one key (zeroed to start), pure for tests: returns 1 when a
 * line at now_ms may be written (then *suppressed is the count to report and is reset), 0 when
 * it is counted. */
struct log_ratelimit {
    const char *key;
    long long window_start_ms;
    int written;          /* lines written in the current window */
    long long suppressed; /* lines counted since the last written one */
};
int log_ratelimit_allow(struct log_ratelimit *rl, long long now_ms, long long *suppressed);

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_verbose(...) log_msg(LOG_LEVEL_VERBOSE, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LEVEL_NOTICE, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)

#endif
