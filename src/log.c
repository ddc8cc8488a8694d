/* Log output with Redis's line format ("pid:M 22 Nov 2026 01:02:03.456 * text").
 * Owns the log file handle; the level filter is checked before any formatting. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static int log_min_level = LOG_LEVEL_NOTICE;
static FILE *log_file; /* NULL means stderr */
static char *log_path; /* set for a file target */
static int log_to_syslog;

static const char *const level_names[] = {"debug", "verbose", "notice", "warning"};

int log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

const char *log_level_name(int level)
{
    return level_names[level];
}

/* Why the last log_file_open failed. */
static const char *log_open_why = "";

const char *log_open_error(void)
{
    return log_open_why;
}

/* Opens a log file for appending without blocking: open(2) of a FIFO with no reader waits
 * for one, which held the loop at SIGHUP. With O_NONBLOCK it fails at once instead, while a
 * FIFO or pipe that has a reader (/dev/stdout under Docker) opens as before. */
static FILE *log_file_open(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644);
    if (fd < 0) {
        log_open_why = errno == ENXIO ? "a FIFO with no reader" : strerror(errno);
        return NULL;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK); /* writes block, as stderr's do */
    FILE *f = fdopen(fd, "a");
    if (f == NULL) {
        log_open_why = strerror(errno);
        close(fd);
        return NULL;
    }
    setvbuf(f, NULL, _IOLBF, 0);
    return f;
}

int log_open(int level, const char *target)
{
    FILE *f = NULL;
    int sys = 0;

    if (target == NULL || strcasecmp(target, "stderr") == 0 || target[0] == '\0') {
        /* stderr */
    } else if (strcasecmp(target, "syslog") == 0) {
        sys = 1;
    } else if ((f = log_file_open(target)) == NULL) {
        return -1;
    }
    log_close();
    log_min_level = level;
    log_file = f;
    if (f)
        log_path = xstrdup(target);
    log_to_syslog = sys;
    if (sys)
        openlog("evbrokerd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    return 0;
}

void log_reopen(void)
{
    if (log_path == NULL)
        return;
    FILE *f = log_file_open(log_path);
    if (f == NULL) {
        log_warning("cannot reopen log file %s (%s), keeping the old handle", log_path,
                    log_open_why);
        return;
    }
    fclose(log_file);
    log_file = f;
}

void log_set_level(int level)
{
    log_min_level = level;
}

void log_close(void)
{
    if (log_file)
        fclose(log_file);
    log_file = NULL;
    free(log_path);
    log_path = NULL;
    if (log_to_syslog)
        closelog();
    log_to_syslog = 0;
}

/* Writes one formatted line to the current target. */
static void log_write(int level, const char *text)
{
    static const char marks[] = ".-*#";
    static const int syslog_prio[] = {LOG_DEBUG, LOG_INFO, LOG_NOTICE, LOG_WARNING};

    if (log_to_syslog) {
        syslog(syslog_prio[level], "%s", text);
        return;
    }
    struct timeval tv;
    struct tm tm;
    char when[64];
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(when, sizeof(when), "%d %b %Y %H:%M:%S", &tm);
    snprintf(when + n, sizeof(when) - n, ".%03d", (int)(tv.tv_usec / 1000));
    fprintf(log_file ? log_file : stderr, "%d:M %s %c %s\n", (int)getpid(), when, marks[level],
            text);
}

void log_msg(int level, const char *fmt, ...)
{
    char text[1024];
    va_list ap;

    if (level < log_min_level)
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    log_write(level, text);
}

/* A window starts with the first line after the previous one ended (a zeroed struct has
 * none yet); within it the first LOG_RATELIMIT_BURST lines pass. */
int log_ratelimit_allow(struct log_ratelimit *rl, long long now_ms, long long *suppressed)
{
    if (rl->written == 0 || now_ms - rl->window_start_ms >= LOG_RATELIMIT_WINDOW_MS ||
        now_ms < rl->window_start_ms) {
        rl->window_start_ms = now_ms;
        rl->written = 0;
    }
    if (rl->written >= LOG_RATELIMIT_BURST) {
        rl->suppressed++;
        return 0;
    }
    rl->written++;
    *suppressed = rl->suppressed;
    rl->suppressed = 0;
    return 1;
}

/* Rate-limit state per format string; a new key takes the slot idle the longest. */
#define LOG_RATELIMIT_SLOTS 16
static struct log_ratelimit log_rl_slots[LOG_RATELIMIT_SLOTS];

/* Finds or claims the slot of a key. */
static struct log_ratelimit *log_ratelimit_slot(const char *key)
{
    struct log_ratelimit *oldest = &log_rl_slots[0];

    for (int i = 0; i < LOG_RATELIMIT_SLOTS; i++) {
        struct log_ratelimit *rl = &log_rl_slots[i];
        if (rl->key == key)
            return rl;
        if (rl->key == NULL || rl->window_start_ms < oldest->window_start_ms)
            oldest = rl;
    }
    memset(oldest, 0, sizeof(*oldest));
    oldest->key = key;
    return oldest;
}

void log_ratelimited(int level, const char *fmt, ...)
{
    char text[1024];
    long long suppressed;
    va_list ap;

    if (level < log_min_level)
        return;
    if (!log_ratelimit_allow(log_ratelimit_slot(fmt), util_mstime(), &suppressed))
        return;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (suppressed > 0 && n >= 0 && (size_t)n < sizeof(text))
        snprintf(text + n, sizeof(text) - (size_t)n, " (%lld similar lines suppressed)",
                 suppressed);
    log_write(level, text);
}
