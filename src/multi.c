/* Transactions (multi.h): the queue a client fills between MULTI and EXEC, and the three
 * commands. The dispatcher decides what is queued (command_dispatch) and runs each queued
 * command with the checks that still apply at EXEC (command_run_queued). */
#include "multi.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "command.h"
#include "log.h"
#include "reply.h"
#include "server.h"
#include "util.h"

/* One queued command. argv, argvlen and the argument bytes (each followed by a NUL, as the
 * parser leaves them) share one allocation, which argv points to. */
struct multi_cmd {
    const struct command *cmd;
    int argc;
    char **argv;
    size_t *argvlen;
};

struct multi_state {
    struct multi_cmd *cmds;
    int count, cap;
    size_t memory; /* what the queue holds: checked against the limit, shown as multi-mem */
};

static struct multi_state *multi_of(const struct client *c)
{
    return c->ext ? c->ext->multi : NULL;
}

/* Copies c's current arguments into one allocation; *size gets its size. */
static struct multi_cmd multi_copy(const struct client *c, const struct command *cmd, size_t *size)
{
    struct multi_cmd q = {cmd, c->argc, NULL, NULL};
    size_t n = (size_t)c->argc * (sizeof(char *) + sizeof(size_t));

    for (int i = 0; i < c->argc; i++)
        n += c->argvlen[i] + 1;
    q.argv = xmalloc(n);
    q.argvlen = (size_t *)(q.argv + c->argc);
    char *bytes = (char *)(q.argvlen + c->argc);
    for (int i = 0; i < c->argc; i++) {
        q.argv[i] = bytes;
        q.argvlen[i] = c->argvlen[i];
        memcpy(bytes, c->argv[i], c->argvlen[i]);
        bytes[c->argvlen[i]] = '\0';
        bytes += c->argvlen[i] + 1;
    }
    *size = n + sizeof(q);
    return q;
}

void multi_queue(struct client *c, const struct command *cmd)
{
    struct multi_state *m = multi_of(c);
    size_t size;

    if (c->flags & CLIENT_F_MULTI_ERROR) {
        reply_simple(c->reply, "QUEUED"); /* as Redis says, though EXEC will discard it */
        return;
    }
    struct multi_cmd q = multi_copy(c, cmd, &size);
    if ((long long)(m->memory + size) > server.cfg.client_query_buffer_limit) {
        free(q.argv);
        client_close_over_query_limit(c, "queued a transaction past the query buffer limit",
                                      "multi-mem", m->memory);
        return;
    }
    if (m->count == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 8;
        m->cmds = xrealloc(m->cmds, (size_t)m->cap * sizeof(*m->cmds));
    }
    m->cmds[m->count++] = q;
    m->memory += size;
    reply_simple(c->reply, "QUEUED");
}

void multi_flag_error(struct client *c)
{
    if (c->flags & CLIENT_F_MULTI)
        c->flags |= CLIENT_F_MULTI_ERROR;
}

void multi_discard(struct client *c)
{
    struct multi_state *m = multi_of(c);

    c->flags &= ~(CLIENT_F_MULTI | CLIENT_F_MULTI_ERROR);
    if (m == NULL)
        return;
    for (int i = 0; i < m->count; i++)
        free(m->cmds[i].argv);
    free(m->cmds);
    free(m);
    c->ext->multi = NULL;
}

long multi_count(const struct client *c)
{
    const struct multi_state *m = multi_of(c);
    return m ? m->count : -1;
}

size_t multi_memory(const struct client *c)
{
    const struct multi_state *m = multi_of(c);
    return m ? m->memory : 0;
}

void cmd_multi(struct client *c)
{
    if (c->flags & CLIENT_F_MULTI) {
        reply_error(c->reply, "MULTI calls can not be nested");
        return;
    }
    client_ext(c)->multi = xcalloc(1, sizeof(struct multi_state));
    c->flags |= CLIENT_F_MULTI;
    reply_simple(c->reply, "OK");
}

/* WATCH and UNWATCH: evbrokerd keeps no keys, so nothing a transaction watches can change
 * and EXEC always runs it; they reply as Redis does, refusal inside MULTI included (which,
 * as in Redis, does not doom the transaction). */
void cmd_watch(struct client *c)
{
    if (c->flags & CLIENT_F_MULTI)
        reply_error(c->reply, "WATCH inside MULTI is not allowed");
    else
        reply_simple(c->reply, "OK");
}

void cmd_unwatch(struct client *c)
{
    reply_simple(c->reply, "OK");
}

void cmd_discard(struct client *c)
{
    if (!(c->flags & CLIENT_F_MULTI)) {
        reply_error(c->reply, "DISCARD without MULTI");
        return;
    }
    multi_discard(c);
    reply_simple(c->reply, "OK");
}

/* Runs the queue with the client still in its transaction, as Redis does (CLIENT LIST shows
 * flag x, and SSUBSCRIBE refuses), then ends it. Each command replies as it runs, so one
 * that replies more than once (SUBSCRIBE a b) makes the array longer than its count: Redis's
 * bytes exactly. Reading pauses while replies pile up, but EXEC cannot pause halfway: a small
 * queue of commands with big replies (COMMAND DOCS) could queue gigabytes, so a client whose
 * output passes client_query_buffer_limit is closed, the rest of its queue unrun. */
void cmd_exec(struct client *c)
{
    struct multi_state *m = multi_of(c);

    if (!(c->flags & CLIENT_F_MULTI)) {
        reply_error(c->reply, "EXEC without MULTI");
        return;
    }
    if (c->flags & CLIENT_F_MULTI_ERROR) {
        reply_error(c->reply, "-EXECABORT Transaction discarded because of previous errors.");
        multi_discard(c);
        return;
    }
    int argc = c->argc;
    char **argv = c->argv;
    size_t *argvlen = c->argvlen;
    reply_array(c->reply, (size_t)m->count);
    for (int i = 0; i < m->count; i++) {
        c->argc = m->cmds[i].argc;
        c->argv = m->cmds[i].argv;
        c->argvlen = m->cmds[i].argvlen;
        command_run_queued(c, m->cmds[i].cmd);
        if (client_replies_over_limit(c, "queued transaction replies past the query buffer limit"))
            break;
    }
    c->argc = argc;
    c->argv = argv;
    c->argvlen = argvlen;
    multi_discard(c);
}
