/* Connection commands: PING, ECHO, QUIT, RESET, SELECT, AUTH, HELLO and CLIENT. Texts and
 * reply shapes follow Redis 7 (CLIENT SETINFO follows 7.2, which clients send on connect). */
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acl.h"
#include "client.h"
#include "config.h"
#include "command.h"
#include "monitor.h"
#include "multi.h"
#include "pubsub.h"
#include "reply.h"
#include "server.h"
#include "util.h"

#define SYNTAX_ERR "syntax error"
#define WRONGPASS "-WRONGPASS invalid username-password pair or user is disabled."

void cmd_ping(struct client *c)
{
    if (c->argc > 2) {
        reply_errorf(c->reply, "wrong number of arguments for '%s' command", "ping");
        return;
    }
    if ((c->flags & CLIENT_F_PUBSUB) && c->resp == 2) {
        reply_array(c->reply, 2);
        reply_bulk(c->reply, "pong", 4);
        reply_bulk(c->reply, c->argc == 2 ? c->argv[1] : "", c->argc == 2 ? c->argvlen[1] : 0);
    } else if (c->argc == 2) {
        reply_bulk(c->reply, c->argv[1], c->argvlen[1]);
    } else {
        reply_simple(c->reply, "PONG");
    }
}

void cmd_echo(struct client *c)
{
    reply_bulk(c->reply, c->argv[1], c->argvlen[1]);
}

void cmd_quit(struct client *c)
{
    reply_simple(c->reply, "OK");
    c->flags |= CLIENT_F_CLOSE_AFTER_REPLY;
}

void cmd_reset(struct client *c)
{
    multi_discard(c);
    pubsub_drop_client(c);
    monitor_remove(c);
    c->resp = 2;
    c->db = 0;
    /* A SKIP already in force still drops this reply, as in Redis. */
    c->flags &= ~(CLIENT_F_REPLY_OFF | CLIENT_F_REPLY_SKIP_NEXT);
    if (server.cfg.requirepass)
        c->flags &= ~CLIENT_F_AUTHENTICATED;
    if (c->ext) {
        c->ext->user = NULL;
        free(c->ext->user_name);
        c->ext->user_name = NULL;
        free(c->ext->name);
        c->ext->name = NULL;
    }
    if (!(c->flags & CLIENT_F_REPLY_SKIP))
        c->reply = client_output(c);
    reply_simple(c->reply, "RESET");
}

void cmd_select(struct client *c)
{
    long long db;
    if (util_parse_ll(c->argv[1], c->argvlen[1], &db) < 0) {
        reply_error(c->reply, "value is not an integer or out of range");
        return;
    }
    if (db < -2147483648LL || db > 2147483647LL) {
        reply_error(c->reply,
                    "value is out of range, value must between -2147483648 and 2147483647");
        return;
    }
    if (db < 0 || db > 15) {
        reply_error(c->reply, "DB index is out of range");
        return;
    }
    c->db = (int)db;
    reply_simple(c->reply, "OK");
}

/* Authenticates c as user (NULL = default). Returns 1 on success, 0 after WRONGPASS. */
static int client_login(struct client *c, const char *user, size_t ulen, const char *pass,
                        size_t plen)
{
    const struct config_user *u;
    if (acl_authenticate(&server.cfg, user, ulen, pass, plen, &u) != ACL_AUTH_OK) {
        reply_error(c->reply, WRONGPASS);
        return 0;
    }
    if (u || c->ext) {
        struct client_ext *x = client_ext(c);
        x->user = u;
        free(x->user_name);
        x->user_name = u ? xstrdup(u->name) : NULL;
    }
    c->flags |= CLIENT_F_AUTHENTICATED;
    return 1;
}

void cmd_auth(struct client *c)
{
    if (c->argc > 3) {
        reply_error(c->reply, SYNTAX_ERR);
        return;
    }
    if (c->argc == 2 && server.cfg.requirepass == NULL) {
        reply_error(c->reply, "AUTH <password> called without any password configured for the "
                              "default user. Are you sure your configuration is correct?");
        return;
    }
    int ok = c->argc == 2 ? client_login(c, NULL, 0, c->argv[1], c->argvlen[1])
                          : client_login(c, c->argv[1], c->argvlen[1], c->argv[2], c->argvlen[2]);
    if (ok)
        reply_simple(c->reply, "OK");
}

/* Checks a name for CLIENT SETNAME / SETINFO: printable ASCII without spaces. */
static int valid_client_attr(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < '!' || s[i] > '~')
            return 0;
    return 1;
}

/* Sets or clears (empty value) one of the client's string attributes. */
static void set_attr(char **dst, const char *s, size_t len)
{
    free(*dst);
    *dst = len ? xmemdup(s, len) : NULL;
}

void cmd_hello(struct client *c)
{
    long long ver = c->resp;
    const char *user = NULL, *pass = NULL, *name = NULL;
    size_t ulen = 0, plen = 0, nlen = 0;
    int i = 2;

    if (c->argc >= 2) {
        if (util_parse_ll(c->argv[1], c->argvlen[1], &ver) < 0) {
            reply_error(c->reply, "Protocol version is not an integer or out of range");
            return;
        }
        if (ver < 2 || ver > 3) {
            reply_error(c->reply, "-NOPROTO unsupported protocol version");
            return;
        }
    }
    for (; i < c->argc; i++) {
        int more = c->argc - i - 1;
        if (strcasecmp(c->argv[i], "AUTH") == 0 && more >= 2) {
            user = c->argv[i + 1];
            ulen = c->argvlen[i + 1];
            pass = c->argv[i + 2];
            plen = c->argvlen[i + 2];
            i += 2;
        } else if (strcasecmp(c->argv[i], "SETNAME") == 0 && more >= 1) {
            name = c->argv[i + 1];
            nlen = c->argvlen[i + 1];
            i += 1;
            if (!valid_client_attr(name, nlen)) { /* checked where it stands, as Redis does */
                reply_error(c->reply,
                            "Client names cannot contain spaces, newlines or special characters.");
                return;
            }
        } else {
            reply_errorf(c->reply, "Syntax error in HELLO option '%s'", c->argv[i]);
            return;
        }
    }
    if (user && !client_login(c, user, ulen, pass, plen))
        return;
    if (client_auth_required(c)) {
        reply_error(c->reply, "-NOAUTH HELLO must be called with the client already "
                              "authenticated, otherwise the HELLO AUTH <user> <pass> option can "
                              "be used to authenticate the client and select the RESP protocol "
                              "version at the same time");
        return;
    }
    if (name)
        set_attr(&client_ext(c)->name, name, nlen);
    c->resp = (int)ver;
    reply_map(c->reply, c->resp, 7);
    reply_bulk_cstr(c->reply, "server");
    reply_bulk_cstr(c->reply, "redis");
    reply_bulk_cstr(c->reply, "version");
    reply_bulk_cstr(c->reply, EVB_REDIS_COMPAT_VERSION);
    reply_bulk_cstr(c->reply, "proto");
    reply_integer(c->reply, c->resp);
    reply_bulk_cstr(c->reply, "id");
    reply_integer(c->reply, (long long)c->id);
    reply_bulk_cstr(c->reply, "mode");
    reply_bulk_cstr(c->reply, "standalone");
    reply_bulk_cstr(c->reply, "role");
    reply_bulk_cstr(c->reply, "master");
    reply_bulk_cstr(c->reply, "modules");
    reply_array(c->reply, 0);
}

void cmd_client_id(struct client *c)
{
    reply_integer(c->reply, (long long)c->id);
}

void cmd_client_setname(struct client *c)
{
    if (!valid_client_attr(c->argv[2], c->argvlen[2])) {
        reply_error(c->reply,
                    "Client names cannot contain spaces, newlines or special characters.");
        return;
    }
    set_attr(&client_ext(c)->name, c->argv[2], c->argvlen[2]);
    reply_simple(c->reply, "OK");
}

void cmd_client_getname(struct client *c)
{
    if (c->ext && c->ext->name)
        reply_bulk_cstr(c->reply, c->ext->name);
    else
        reply_null(c->reply, c->resp);
}

void cmd_client_setinfo(struct client *c)
{
    char **dst;
    if (strcasecmp(c->argv[2], "lib-name") == 0) {
        dst = &client_ext(c)->lib_name;
    } else if (strcasecmp(c->argv[2], "lib-ver") == 0) {
        dst = &client_ext(c)->lib_ver;
    } else {
        reply_errorf(c->reply, "Unrecognized option '%s'", c->argv[2]);
        return;
    }
    if (!valid_client_attr(c->argv[3], c->argvlen[3])) { /* names the attribute as written */
        reply_errorf(c->reply, "%s cannot contain spaces, newlines or special characters.",
                     c->argv[2]);
        return;
    }
    set_attr(dst, c->argv[3], c->argvlen[3]);
    reply_simple(c->reply, "OK");
}

void cmd_client_info(struct client *c)
{
    struct evbuffer *b = evbuffer_new();
    client_describe(c, b);
    evbuffer_add(b, "\n", 1);
    size_t len = evbuffer_get_length(b);
    reply_verbatim(c->reply, c->resp, (const char *)evbuffer_pullup(b, -1), len);
    evbuffer_free(b);
}

/* Whether a client is of a CLIENT LIST / KILL type. Returns -1 for an unknown type. */
static int client_is_type(const struct client *c, const char *type)
{
    if (strcasecmp(type, "pubsub") == 0)
        return (c->flags & CLIENT_F_PUBSUB) != 0;
    if (strcasecmp(type, "normal") == 0)
        return (c->flags & CLIENT_F_PUBSUB) == 0;
    if (strcasecmp(type, "master") == 0 || strcasecmp(type, "replica") == 0 ||
        strcasecmp(type, "slave") == 0)
        return 0;
    return -1;
}

void cmd_client_list(struct client *c)
{
    const char *type = NULL;
    long long *ids = NULL;
    int nids = 0;

    if (c->argc == 4 && strcasecmp(c->argv[2], "type") == 0) {
        type = c->argv[3];
        if (client_is_type(c, type) < 0) {
            reply_errorf(c->reply, "Unknown client type '%s'", type);
            return;
        }
    } else if (c->argc >= 4 && strcasecmp(c->argv[2], "id") == 0) {
        ids = xmalloc(sizeof(*ids) * (size_t)(c->argc - 3));
        for (int i = 3; i < c->argc; i++, nids++) {
            if (util_parse_ll(c->argv[i], c->argvlen[i], &ids[nids]) < 0) {
                reply_error(c->reply, "Invalid client ID");
                free(ids);
                return;
            }
        }
    } else if (c->argc != 2) {
        reply_error(c->reply, SYNTAX_ERR);
        return;
    }
    struct evbuffer *b = evbuffer_new();
    struct client *o;
    /* With IDs, Redis lists in their order, repeats, and skips the ones not connected. The
     * client list is in ID order (clients are appended as they are numbered), so each ID is
     * found by binary search in an array of it: IDs times clients was 37 s for 300,000 IDs. */
    struct client **byid = NULL;
    size_t n = 0;
    if (nids) {
        byid = xmalloc(sizeof(*byid) * (size_t)server.nclients);
        TAILQ_FOREACH(o, &server.clients, all_link)
        {
            byid[n++] = o;
        }
    }
    for (int i = 0; i < nids; i++) {
        size_t lo = 0, hi = n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (byid[mid]->id < (uint64_t)ids[i])
                lo = mid + 1;
            else
                hi = mid;
        }
        if (ids[i] > 0 && lo < n && byid[lo]->id == (uint64_t)ids[i]) {
            client_describe(byid[lo], b);
            evbuffer_add(b, "\n", 1);
        }
    }
    free(byid);
    TAILQ_FOREACH(o, &server.clients, all_link)
    {
        if (ids || (type && client_is_type(o, type) != 1))
            continue;
        client_describe(o, b);
        evbuffer_add(b, "\n", 1);
    }
    size_t len = evbuffer_get_length(b);
    reply_verbatim(c->reply, c->resp, len ? (const char *)evbuffer_pullup(b, -1) : "", len);
    evbuffer_free(b);
    free(ids);
}

/* Closes a client for CLIENT KILL: itself after this reply, any other at once. */
/* Whether o's address (local: its laddr) is text; formatted here, clients keep no text. */
static int addr_matches(const struct client *o, int local, const char *text)
{
    char buf[CLIENT_ADDR_LEN];

    if (local)
        client_laddr(o, buf, sizeof(buf));
    else
        client_addr(o, buf, sizeof(buf));
    return strcmp(buf, text) == 0;
}

static void kill_client(struct client *self, struct client *victim)
{
    if (victim == self)
        self->flags |= CLIENT_F_CLOSE_AFTER_REPLY;
    else
        client_close_async(victim, "killed by CLIENT KILL");
}

void cmd_client_kill(struct client *c)
{
    struct client *o;

    if (c->argc == 3) { /* old form: CLIENT KILL addr:port */
        TAILQ_FOREACH(o, &server.clients, all_link)
        if (addr_matches(o, 0, c->argv[2]) && !(o->flags & CLIENT_F_CLOSE_ASAP)) {
            kill_client(c, o);
            reply_simple(c->reply, "OK");
            return;
        }
        reply_error(c->reply, "No such client");
        return;
    }
    long long id = 0;
    const char *addr = NULL, *laddr = NULL, *type = NULL, *user = NULL;
    int skipme = 1;
    if (c->argc % 2 != 0) {
        reply_error(c->reply, SYNTAX_ERR);
        return;
    }
    for (int i = 2; i < c->argc; i += 2) {
        const char *k = c->argv[i], *v = c->argv[i + 1];
        if (strcasecmp(k, "id") == 0) {
            if (util_parse_ll(v, c->argvlen[i + 1], &id) < 0 || id <= 0) {
                reply_error(c->reply, "client-id should be greater than 0");
                return;
            }
        } else if (strcasecmp(k, "addr") == 0) {
            addr = v;
        } else if (strcasecmp(k, "laddr") == 0) {
            laddr = v;
        } else if (strcasecmp(k, "type") == 0) {
            type = v;
            if (client_is_type(c, type) < 0) {
                reply_errorf(c->reply, "Unknown client type '%s'", type);
                return;
            }
        } else if (strcasecmp(k, "skipme") == 0) {
            if (strcasecmp(v, "yes") == 0)
                skipme = 1;
            else if (strcasecmp(v, "no") == 0)
                skipme = 0;
            else {
                reply_error(c->reply, SYNTAX_ERR);
                return;
            }
        } else if (strcasecmp(k, "user") == 0) {
            if (strcmp(v, "default") != 0 && acl_find_user(&server.cfg, v) == NULL) {
                reply_errorf(c->reply, "No such user '%s'", v);
                return;
            }
            user = v;
        } else {
            reply_error(c->reply, SYNTAX_ERR);
            return;
        }
    }
    long long killed = 0;
    TAILQ_FOREACH(o, &server.clients, all_link)
    {
        if (o->flags & CLIENT_F_CLOSE_ASAP)
            continue;
        if ((id && o->id != (uint64_t)id) || (addr && !addr_matches(o, 0, addr)) ||
            (laddr && !addr_matches(o, 1, laddr)) || (type && client_is_type(o, type) != 1) ||
            (user && strcmp(client_user_name(o) ? client_user_name(o) : "default", user) != 0) ||
            (skipme && o == c))
            continue;
        kill_client(c, o);
        killed++;
    }
    reply_integer(c->reply, killed);
}

void cmd_client_reply(struct client *c)
{
    const char *mode = c->argv[2];
    if (strcasecmp(mode, "on") == 0) {
        c->flags &= ~(CLIENT_F_REPLY_OFF | CLIENT_F_REPLY_SKIP | CLIENT_F_REPLY_SKIP_NEXT);
        c->reply = client_output(c);
        reply_simple(c->reply, "OK");
    } else if (strcasecmp(mode, "off") == 0) {
        c->flags |= CLIENT_F_REPLY_OFF;
    } else if (strcasecmp(mode, "skip") == 0) {
        if (!(c->flags & CLIENT_F_REPLY_OFF))
            c->flags |= CLIENT_F_REPLY_SKIP_NEXT;
    } else {
        reply_error(c->reply, SYNTAX_ERR);
    }
}

void cmd_client_no_evict(struct client *c)
{
    /* evbrokerd evicts no client for memory (output limits are another matter), so the flag
     * changes nothing; the value is still checked. */
    if (strcasecmp(c->argv[2], "on") != 0 && strcasecmp(c->argv[2], "off") != 0) {
        reply_error(c->reply, "syntax error");
        return;
    }
    reply_simple(c->reply, "OK");
}

/* Client-side caching tracks keys, and there are none: tracking can only be off. */
void cmd_client_tracking(struct client *c)
{
    if (strcasecmp(c->argv[2], "on") == 0) {
        reply_error(c->reply, "client-side caching is not supported: evbrokerd stores no keys");
        return;
    }
    if (strcasecmp(c->argv[2], "off") != 0 || c->argc > 3) {
        reply_error(c->reply, "syntax error");
        return;
    }
    reply_simple(c->reply, "OK");
}

void cmd_client_trackinginfo(struct client *c)
{
    reply_map(c->reply, c->resp, 3);
    reply_bulk_cstr(c->reply, "flags");
    reply_set(c->reply, c->resp, 1);
    reply_bulk_cstr(c->reply, "off");
    reply_bulk_cstr(c->reply, "redirect");
    reply_integer(c->reply, -1);
    reply_bulk_cstr(c->reply, "prefixes");
    reply_array(c->reply, 0);
}

void cmd_client_getredir(struct client *c)
{
    reply_integer(c->reply, -1); /* tracking is off */
}

/* No command blocks here, so no client is ever unblocked; the arguments are still checked, in
 * Redis's order. */
void cmd_client_unblock(struct client *c)
{
    long long id;

    if (c->argc > 4) {
        reply_error(c->reply, "unknown subcommand or wrong number of arguments for 'UNBLOCK'. "
                              "Try CLIENT HELP.");
        return;
    }
    if (c->argc == 4 && strcasecmp(c->argv[3], "timeout") != 0 &&
        strcasecmp(c->argv[3], "error") != 0) {
        reply_error(c->reply, "CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
        return;
    }
    if (util_parse_ll(c->argv[2], c->argvlen[2], &id) < 0) {
        reply_error(c->reply, "value is not an integer or out of range");
        return;
    }
    reply_integer(c->reply, 0);
}

void cmd_client_help(struct client *c)
{
    static const char *const lines[] = {
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GETNAME",
        "    Return the name of this connection.",
        "GETREDIR",
        "    Return -1: tracking is always off (evbrokerd stores no keys to track).",
        "ID",
        "    Return the ID of this connection.",
        "INFO",
        "    Describe this connection in CLIENT LIST form.",
        "KILL <ip:port> | <option> <value> [<option> <value> ...]",
        "    Close connections. Options: ID, ADDR, LADDR, TYPE, USER, SKIPME.",
        "LIST [TYPE (NORMAL|PUBSUB)] [ID <id> ...]",
        "    Describe the open connections, one line each.",
        "NO-EVICT (ON|OFF)",
        "    Accepted; evbrokerd evicts no client for memory.",
        "REPLY (ON|OFF|SKIP)",
        "    Turn replies to this connection on or off, or skip the next one.",
        "SETINFO (LIB-NAME|LIB-VER) <value>",
        "    Record the client library's name or version.",
        "SETNAME <name>",
        "    Name this connection.",
        "TRACKING OFF",
        "    Accepted; client-side caching (ON) is not supported: there are no keys.",
        "TRACKINGINFO",
        "    Describe this connection's tracking (always off).",
        "UNBLOCK <id> [TIMEOUT|ERROR]",
        "    Return 0: no command blocks in evbrokerd.",
        "HELP",
        "    Print this help.",
    };
    reply_lines(c->reply, lines, sizeof(lines) / sizeof(lines[0]));
}
