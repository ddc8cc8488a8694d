/* MONITOR, as Redis 7.0 prints it: "+<seconds>.<micros> [<db> <addr>] "ARG" "ARG"...", each
 * argument quoted and escaped, fed after the command ran (so a transaction's commands come
 * before its EXEC, and a refused command is not shown). Lines go to each monitor's output
 * under the pub/sub output limits, so a monitor that cannot keep up is dropped like a slow
 * subscriber instead of growing without bound. */
#include "monitor.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "client.h"
#include "command.h"
#include "server.h"
#include "util.h"

/* Bytes of one argument a line shows, and about how long a line grows before the arguments
 * left are only counted: a command of big arguments must not cost every monitor up to four
 * times its size (escapes), nor the loop the time to format it. */
#define MONITOR_ARG_MAX (64 * 1024)
#define MONITOR_LINE_MAX (1024 * 1024)

size_t monitor_count;
static struct client **monitors;
static size_t monitors_cap;
static struct evbuffer *line; /* reused for every line */

void monitor_add(struct client *c)
{
    if (c->flags & CLIENT_F_MONITOR)
        return;
    if (monitor_count == monitors_cap) {
        monitors_cap = monitors_cap ? monitors_cap * 2 : 4;
        monitors = xrealloc(monitors, monitors_cap * sizeof(*monitors));
    }
    monitors[monitor_count++] = c;
    c->flags |= CLIENT_F_MONITOR;
}

void monitor_remove(struct client *c)
{
    if (!(c->flags & CLIENT_F_MONITOR))
        return;
    c->flags &= ~CLIENT_F_MONITOR;
    for (size_t i = 0; i < monitor_count; i++) {
        if (monitors[i] == c) {
            monitors[i] = monitors[--monitor_count];
            return;
        }
    }
}

void monitor_cleanup(void)
{
    free(monitors);
    monitors = NULL;
    monitors_cap = monitor_count = 0;
    if (line)
        evbuffer_free(line);
    line = NULL;
}

/* Appends an argument as Redis quotes it: backslash escapes for \ " \n \r \t \a \b, the
 * printable bytes as they are, \xHH for the rest. */
static void append_quoted(struct evbuffer *b, const char *p, size_t len)
{
    char buf[256];
    size_t n = 0, shown = len < MONITOR_ARG_MAX ? len : MONITOR_ARG_MAX;

    evbuffer_add(b, "\"", 1);
    for (size_t i = 0; i < shown; i++) {
        unsigned char ch = (unsigned char)p[i];
        const char *esc = NULL;
        switch (ch) {
        case '\\':
            esc = "\\\\";
            break;
        case '"':
            esc = "\\\"";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\a':
            esc = "\\a";
            break;
        case '\b':
            esc = "\\b";
            break;
        default:
            break;
        }
        if (n + 4 > sizeof(buf)) {
            evbuffer_add(b, buf, n);
            n = 0;
        }
        if (esc) {
            buf[n++] = esc[0];
            buf[n++] = esc[1];
        } else if (isprint(ch)) {
            buf[n++] = (char)ch;
        } else {
            static const char hex[] = "0123456789abcdef";
            buf[n++] = '\\';
            buf[n++] = 'x';
            buf[n++] = hex[ch >> 4];
            buf[n++] = hex[ch & 15];
        }
    }
    evbuffer_add(b, buf, n);
    evbuffer_add(b, "\"", 1);
    if (shown < len)
        evbuffer_add_printf(b, "...(%zu more bytes)", len - shown);
}

/* Whether argument i is a password Redis would not show: every argument of AUTH, and the two
 * after each AUTH option of HELLO, found by reading its options as HELLO does (a client
 * named "auth" must not move what is hidden). */
static int monitor_redacted(const struct client *c, const struct command *cmd, int i)
{
    if (cmd->proc == cmd_auth)
        return 1;
    if (cmd->proc != cmd_hello)
        return 0;
    for (int j = 2; j < i;) {
        int more = c->argc - j - 1;
        if (strcasecmp(c->argv[j], "auth") == 0 && more >= 2) {
            if (i <= j + 2)
                return 1;
            j += 3;
        } else if (strcasecmp(c->argv[j], "setname") == 0 && more >= 1) {
            j += 2;
        } else {
            return 0;
        }
    }
    return 0;
}

void monitor_feed(const struct client *c, const struct command *cmd)
{
    struct timeval tv;
    char addr[CLIENT_ADDR_LEN];

    if (line == NULL)
        line = evbuffer_new();
    gettimeofday(&tv, NULL);
    if (c->flags & CLIENT_F_UNIX)
        snprintf(addr, sizeof(addr), "unix:%s", server.cfg.unixsocket ? server.cfg.unixsocket : "");
    else
        client_addr(c, addr, sizeof(addr));
    evbuffer_add_printf(line, "+%lld.%06ld [%d %s]", (long long)tv.tv_sec, (long)tv.tv_usec, c->db,
                        addr);
    for (int i = 0; i < c->argc; i++) {
        if (evbuffer_get_length(line) > MONITOR_LINE_MAX) {
            evbuffer_add_printf(line, " ...(%d more arguments)", c->argc - i);
            break;
        }
        evbuffer_add(line, " ", 1);
        if (i > 0 && monitor_redacted(c, cmd, i))
            evbuffer_add(line, "\"(redacted)\"", 12);
        else
            append_quoted(line, c->argv[i], c->argvlen[i]);
    }
    evbuffer_add(line, "\r\n", 2);

    size_t len = evbuffer_get_length(line);
    const char *text = (const char *)evbuffer_pullup(line, -1);
    for (size_t i = 0; i < monitor_count; i++) {
        struct client *m = monitors[i];
        /* Not to one Redis would not write to: replies off or skipped, or closing (QUIT). */
        if (!(m->flags & (CLIENT_F_REPLY_OFF | CLIENT_F_REPLY_SKIP | CLIENT_F_CLOSE_AFTER_REPLY)))
            client_send_text(m, text, len); /* nothing once closing; closes one past its limits */
    }
    evbuffer_drain(line, len);
}
