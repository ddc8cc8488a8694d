/* The bridge to an upstream Redis: local PUBLISH / SPUBLISH go up, upstream messages are
 * delivered locally, upstream subscriptions follow local interest, and the upstream echo of
 * our own forwards is suppressed. The only file that includes hiredis. It never forwards what
 * it received and never touches clients: delivery goes through pubsub.
 *
 * Two connections share one state machine (down -> connecting -> syncing -> up):
 *  - the publish link is a hiredis async context on the server's event base (libevent
 *    adapter); it carries AUTH and PUBLISH / SPUBLISH, plain request and reply.
 *  - the subscribe link is a libevent bufferevent fed to a hiredis reader. hiredis 0.14's
 *    async layer cannot carry it: it knows no SSUBSCRIBE / smessage (an smessage on a context
 *    it thinks unsubscribed hits an assert) and it hands any push that arrives while a regular
 *    reply is pending to that reply's callback. Parsing ourselves routes every push right.
 * Either link failing tears both down; the bridge reconnects with capped exponential backoff
 * and jitter, re-authenticates, resubscribes, then sends what it queued meanwhile. A publish
 * left unanswered for reply_timeout_ms also fails the link (checked once a second: a stopped
 * upstream still has its kernel accept and acknowledge), and an upstream that says it is an
 * evbrokerd is refused: nodes bridged to each other would pass every message around forever. */
#include "bridge.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "bridge_echo.h"
#include "config.h"
#include "dict.h"
#include "log.h"
#include "pattern.h"
#include "pubsub.h"
#include "server.h"
#include "util.h"

enum bridge_state {
    BRIDGE_DOWN,       /* waiting for the next attempt */
    BRIDGE_CONNECTING, /* connecting and authenticating both links */
    BRIDGE_SYNCING,    /* authenticated; resubscriptions await confirmation */
    BRIDGE_UP,         /* in sync: forwards are sent as they come */
};

/* One channel, pattern or shard channel the bridge has (un)subscribed upstream during this
 * link session. It exists while a local subscriber wants it or a command about it awaits its
 * confirmation; only a confirmed, wanted topic predicts echoes (see echo_expect). */
struct up_topic {
    struct echo_list echoes; /* expectations recorded on this topic */
    uint64_t hash;           /* digest of the name, part of every echo key */
    int wanted;              /* a local subscriber needs it */
    int outstanding;         /* (un)subscribe commands sent, not yet confirmed */
    int refused;             /* upstream answered the last subscribe with an error */
    int indexed;             /* in bridge.patterns (patterns only) */
    enum pubsub_kind kind;
    size_t len;
    char name[]; /* NUL-terminated for logs; binary safe through len */
};

/* A forward waiting for the link. */
struct fwd {
    STAILQ_ENTRY(fwd) link;
    enum pubsub_kind kind;
    size_t chlen;
    size_t plen;
    char data[]; /* channel, then payload */
};

static struct bridge {
    int enabled;
    enum bridge_state state;
    char addr[300]; /* "host:port" or the socket path, for logs and INFO */
    int match_all;  /* channels = "*" */
    char **globs;
    size_t nglobs;

    redisAsyncContext *pub; /* NULL while down */
    int pub_ready;          /* connected and authenticated */
    struct bufferevent *sub;
    redisReader *reader;
    int sub_ready;

    /* Topics whose (un)subscribe awaits confirmation, in the order sent (a ring). Each
     * command names one topic and gets exactly one reply, so errors can be attributed. */
    struct up_topic **fifo;
    size_t fifo_head;
    size_t fifo_len;
    size_t fifo_cap;
    long long sub_heard_ms; /* last confirmation, or when the oldest waiting was sent */
    size_t resync_bytes;    /* what the resubscription after connecting queued, until it is
                             * confirmed (SIZE_MAX while it is being queued: no bound yet) */
    long long sub_moved_ms; /* the subscribe link's output last drained, or began to fill */

    struct dict *topics[3];         /* enum pubsub_kind -> (name -> struct up_topic) */
    struct pattern_index *patterns; /* confirmed upstream patterns */

    STAILQ_HEAD(, fwd) queue;
    long long queued;
    long long in_flight;       /* publishes sent, reply not yet received */
    long long queued_bytes;    /* channel and payload bytes of the queue, */
    long long in_flight_bytes; /* and of those in flight: both bound by queue_memory */
    long long heard_ms;        /* last reply, or when the first in flight was sent */

    struct event *retry_ev;
    struct event *timeout_ev;
    struct event *stuck_ev; /* every second: has a publish waited past reply_timeout_ms? */
    struct event *reset_ev;
    int attempts;  /* failed attempts since the link was last up */
    int failing;   /* reset_ev is pending */
    int fail_auth; /* the pending failure is an authentication refusal */
    int ever_up;
    char fail_reason[256];
    char logged_reason[256]; /* last failure logged while retrying, to log it once */
    int logged_refusal;      /* refused (s)subscribe / publish already logged this session */

    long long forwarded;
    long long received;
    long long dropped;
    long long in_doubt; /* forwards in flight when a link was torn down: sent, fate unknown */
    long long reconnects;
    long long suppressed;
    long long refusals;
} br;

static void link_connect(void);
static void link_fail(int auth, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void flush_queue(void);

static const char *const state_names[] = {"down", "connecting", "connecting", "up"};
static const char *const direction_names[] = {"both", "in", "out"};
static const char *const sub_cmds[3] = {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"};
static const char *const unsub_cmds[3] = {"UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"};

/* Names longer than this stay local. The upstream echoes a name in each confirmation and
 * message, and one past its pubsub output limit (32 MB by default) makes it drop the link,
 * which would then resubscribe the same name and be dropped again, for as long as a local
 * client holds it. */
#define BRIDGE_NAME_MAX (1024 * 1024)

/* Tells whether a channel name (or a pattern's text) is bridged by [upstream] channels. */
static int bridged(const char *name, size_t len)
{
    if (len > BRIDGE_NAME_MAX)
        return 0;
    if (br.match_all)
        return 1;
    for (size_t i = 0; i < br.nglobs; i++)
        if (pattern_match(br.globs[i], strlen(br.globs[i]), name, len, 0))
            return 1;
    return 0;
}

/* Whether a topic's upstream subscription is confirmed and still wanted. Only then is a
 * forward sure to come back on it: the confirmation reached us before the PUBLISH left, so
 * Redis holds the subscription when it runs the PUBLISH. */
static int topic_countable(const struct up_topic *t)
{
    return t->wanted && t->outstanding == 0 && !t->refused;
}

/* pattern_index_match callback: an upstream pattern will echo the forward in arg. */
static void echo_pattern_cb(void *data, void *arg)
{
    const uint64_t *h = arg; /* channel digest, payload digest */

    struct up_topic *t = data;

    echo_add(&t->echoes, t->kind, t->hash, h[0], h[1]);
}

/* Records the echoes a forward will produce: one per confirmed upstream subscription that
 * receives it (the channel itself, and for PUBLISH every matching pattern). */
static void echo_expect(enum pubsub_kind kind, const char *ch, size_t chlen, const char *payload,
                        size_t plen)
{
    struct up_topic *t = dict_get(br.topics[kind], ch, chlen);
    int patterns = kind == PUBSUB_CHANNEL && pattern_index_size(br.patterns) > 0;
    uint64_t h[2];

    if ((t == NULL || !topic_countable(t)) && !patterns)
        return;
    h[0] = echo_digest(ch, chlen);
    h[1] = echo_digest(payload, plen);
    if (t != NULL && topic_countable(t))
        echo_add(&t->echoes, kind, t->hash, h[0], h[1]);
    if (patterns)
        pattern_index_match(br.patterns, ch, chlen, echo_pattern_cb, h);
}

/* Creates the upstream record of a topic. */
static struct up_topic *topic_new(enum pubsub_kind kind, const char *name, size_t len)
{
    struct up_topic *t = xcalloc(1, sizeof(*t) + len + 1);

    LIST_INIT(&t->echoes);
    t->kind = kind;
    t->len = len;
    memcpy(t->name, name, len);
    t->hash = echo_digest(name, len);
    dict_add(br.topics[kind], t->name, len, t);
    return t;
}

/* Brings a topic's pattern-index membership up to date and frees it once nothing is
 * wanted or pending. */
static void topic_settle(struct up_topic *t)
{
    int countable = topic_countable(t);

    if (t->kind == PUBSUB_PATTERN && countable != t->indexed) {
        if (countable)
            pattern_index_add(br.patterns, t->name, t->len, t);
        else
            pattern_index_remove(br.patterns, t->name, t->len);
        t->indexed = countable;
    }
    if (!t->wanted && t->outstanding == 0) {
        echo_purge(&t->echoes);
        dict_remove(br.topics[t->kind], t->name, t->len);
        free(t);
    }
}

/* Frees every topic and expectation (the link is gone, so no echo can come). */
static void topics_clear(void)
{
    for (int k = 0; k < 3; k++) {
        struct dict_iter it;
        void *val;
        size_t n = dict_size(br.topics[k]), i = 0;
        struct up_topic **all = xmalloc((n ? n : 1) * sizeof(*all));

        dict_iter_init(&it, br.topics[k]);
        while (dict_iter_next(&it, NULL, NULL, &val))
            all[i++] = val;
        for (i = 0; i < n; i++) {
            all[i]->wanted = 0;
            all[i]->outstanding = 0;
            all[i]->refused = 0;
            topic_settle(all[i]);
        }
        free(all);
    }
    EVB_ASSERT(echo_pending() == 0);
    br.fifo_head = br.fifo_len = 0;
}

/* Appends a topic to the confirmation ring. */
static void fifo_push(struct up_topic *t)
{
    if (br.fifo_len == br.fifo_cap) {
        size_t cap = br.fifo_cap ? br.fifo_cap * 2 : 64;
        struct up_topic **ring = xmalloc(cap * sizeof(*ring));
        for (size_t i = 0; i < br.fifo_len; i++)
            ring[i] = br.fifo[(br.fifo_head + i) % br.fifo_cap];
        free(br.fifo);
        br.fifo = ring;
        br.fifo_cap = cap;
        br.fifo_head = 0;
    }
    br.fifo[(br.fifo_head + br.fifo_len) % br.fifo_cap] = t;
    br.fifo_len++;
}

/* Takes the oldest topic awaiting confirmation, or NULL. */
static struct up_topic *fifo_pop(void)
{
    struct up_topic *t;

    if (br.fifo_len == 0)
        return NULL;
    t = br.fifo[br.fifo_head];
    br.fifo_head = (br.fifo_head + 1) % br.fifo_cap;
    br.fifo_len--;
    return t;
}

/* How long the subscribe link's output may sit without draining, once past queue_memory. */
#define BRIDGE_SUB_STALL_MS 100

/* evbuffer callback on the subscribe link's output: notes when it drains, or starts to fill. */
static void sub_output_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    if (info->n_deleted > 0 || (info->orig_size == 0 && info->n_added > 0))
        br.sub_moved_ms = server.now_ms;
}

/* Writes one command to the subscribe link. */
static void sub_write(int argc, const char **argv, const size_t *lens)
{
    char *cmd;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);

    EVB_ASSERT(len > 0);
    bufferevent_write(br.sub, cmd, (size_t)len);
    redisFreeCommand(cmd);
}

/* Sends (UN)SUBSCRIBE / P / S for one topic and awaits its confirmation. */
static void topic_send(struct up_topic *t, int subscribe)
{
    const char *argv[2] = {subscribe ? sub_cmds[t->kind] : unsub_cmds[t->kind], t->name};
    size_t lens[2] = {strlen(argv[0]), t->len};

    sub_write(2, argv, lens);
    t->outstanding++;
    if (br.fifo_len == 0)
        br.sub_heard_ms = server.now_ms;
    fifo_push(t);
    /* Churn against an upstream that stopped reading would queue without end: past
     * queue_memory (beyond what the resubscription after connecting queued, which the local
     * subscriptions bound) with nothing written for a while, the link is dropped. One big
     * SUBSCRIBE on a link that drains is not: its bytes are still moving. */
    size_t unsent = evbuffer_get_length(bufferevent_get_output(br.sub));
    if (unsent > br.resync_bytes &&
        (long long)(unsent - br.resync_bytes) > server.cfg.upstream_queue_memory &&
        server.now_ms - br.sub_moved_ms > BRIDGE_SUB_STALL_MS)
        link_fail(0, "%zu bytes of subscription changes unsent: the upstream is not reading",
                  unsent);
}

/* Makes the upstream subscriptions follow a change of local interest. */
static void topic_want(enum pubsub_kind kind, const char *name, size_t len, int wanted)
{
    struct up_topic *t = dict_get(br.topics[kind], name, len);

    if (t == NULL && !wanted)
        return;
    if (t == NULL)
        t = topic_new(kind, name, len);
    if (t->wanted == wanted)
        return;
    t->wanted = wanted;
    topic_send(t, wanted);
    topic_settle(t);
}

/* The link is in sync: send everything queued. */
static void link_synced(void)
{
    br.state = BRIDGE_UP;
    br.resync_bytes = 0;
    flush_queue();
}

/* pubsub_each_channel callback: resubscribes one locally wanted topic after (re)connect. */
static void resubscribe_cb(const char *name, size_t len, void *arg)
{
    enum pubsub_kind kind = *(enum pubsub_kind *)arg;

    if (bridged(name, len))
        topic_want(kind, name, len, 1);
}

/* Both links are authenticated: log it, resubscribe what local subscribers need. */
static void link_check_ready(void)
{
    if (!br.pub_ready || !br.sub_ready || br.state != BRIDGE_CONNECTING)
        return;
    evtimer_del(br.timeout_ev);
    br.state = BRIDGE_SYNCING;
    if (br.ever_up) {
        br.reconnects++;
        log_notice("Upstream link to %s restored", br.addr);
    } else {
        log_notice("Upstream link to %s up", br.addr);
    }
    br.ever_up = 1;
    br.attempts = 0;
    br.logged_reason[0] = '\0';
    br.logged_refusal = 0;
    if (server.cfg.upstream_direction != CONFIG_DIR_OUT) {
        br.resync_bytes = SIZE_MAX;
        for (int k = 0; k < 3; k++) {
            enum pubsub_kind kind = (enum pubsub_kind)k;
            pubsub_each_channel(kind, NULL, 0, resubscribe_cb, &kind);
        }
        br.resync_bytes = evbuffer_get_length(bufferevent_get_output(br.sub));
    }
    if (br.fifo_len == 0)
        link_synced();
}

/* Logs a refusal by upstream once per link session (they tend to come in floods). */
static void log_refusal(const char *what, const char *err)
{
    br.refusals++;
    if (br.logged_refusal)
        return;
    br.logged_refusal = 1;
    log_warning("Upstream %s refused %s: %s (further refusals are only counted)", br.addr, what,
                err);
}

/* A message from upstream: drop it if it is our own echo, else deliver it locally. */
static void deliver_in(enum pubsub_kind kind, const redisReply *topic, const redisReply *ch,
                       const redisReply *payload)
{
    if (topic->type != REDIS_REPLY_STRING || ch->type != REDIS_REPLY_STRING ||
        payload->type != REDIS_REPLY_STRING)
        return;
    if (echo_take(kind, topic->str, topic->len, ch->str, ch->len, payload->str, payload->len)) {
        br.suppressed++;
        return;
    }
    if (server.cfg.upstream_direction == CONFIG_DIR_OUT || !bridged(ch->str, ch->len))
        return;
    br.received++;
    if (kind == PUBSUB_PATTERN)
        pubsub_deliver_pattern(topic->str, topic->len, ch->str, ch->len, payload->str,
                               payload->len);
    else
        pubsub_deliver_channel(kind, ch->str, ch->len, payload->str, payload->len);
}

/* A (un)subscribe confirmation or refusal for the oldest pending command. */
static void sub_confirm(const redisReply *r, enum pubsub_kind kind, int subscribe)
{
    struct up_topic *t = fifo_pop();

    if (t == NULL || (r != NULL && (t->kind != kind || r->element[1]->type != REDIS_REPLY_STRING ||
                                    r->element[1]->len != t->len ||
                                    memcmp(r->element[1]->str, t->name, t->len) != 0))) {
        link_fail(0, "subscribe link out of step (unexpected '%s' confirmation)",
                  r ? r->element[0]->str : "error");
        return;
    }
    t->outstanding--;
    br.sub_heard_ms = server.now_ms;
    if (r == NULL) {
        t->refused = 1;
    } else if (subscribe) {
        t->refused = 0;
    } else {
        /* An echo of a publish Redis ran before this UNSUBSCRIBE came before this reply on
         * the same connection; any expectation left on the topic is stale. */
        echo_purge(&t->echoes);
    }
    topic_settle(t);
    if (br.state == BRIDGE_SYNCING && br.fifo_len == 0)
        link_synced();
}

/* Handles one reply read from the subscribe link. */
static void sub_reply(const redisReply *r)
{
    static const struct {
        const char *name;
        enum pubsub_kind kind;
        int subscribe;
    } confirms[] = {
        {"subscribe", PUBSUB_CHANNEL, 1},  {"unsubscribe", PUBSUB_CHANNEL, 0},
        {"psubscribe", PUBSUB_PATTERN, 1}, {"punsubscribe", PUBSUB_PATTERN, 0},
        {"ssubscribe", PUBSUB_SHARD, 1},   {"sunsubscribe", PUBSUB_SHARD, 0},
    };
    const char *type;

    if (!br.sub_ready) { /* the reply to AUTH */
        if (r->type == REDIS_REPLY_ERROR) {
            link_fail(1, "%s", r->str);
        } else {
            br.sub_ready = 1;
            link_check_ready();
        }
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        log_refusal("a subscription", r->str);
        sub_confirm(NULL, PUBSUB_CHANNEL, 1);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return;
    type = r->element[0]->str;
    if (strcmp(type, "message") == 0)
        deliver_in(PUBSUB_CHANNEL, r->element[1], r->element[1], r->element[2]);
    else if (strcmp(type, "smessage") == 0)
        deliver_in(PUBSUB_SHARD, r->element[1], r->element[1], r->element[2]);
    else if (strcmp(type, "pmessage") == 0 && r->elements == 4)
        deliver_in(PUBSUB_PATTERN, r->element[1], r->element[2], r->element[3]);
    else
        for (size_t i = 0; i < sizeof(confirms) / sizeof(confirms[0]); i++)
            if (strcmp(type, confirms[i].name) == 0)
                sub_confirm(r, confirms[i].kind, confirms[i].subscribe);
}

/* bufferevent read callback: feeds the hiredis reader and handles each whole reply. */
static void sub_read_cb(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_iovec vec[8];
    int n = evbuffer_peek(in, -1, NULL, vec, 8);
    size_t fed = 0;
    void *reply;

    server_update_time(); /* deliveries go by the clock (output batching) */
    for (int i = 0; i < n && i < 8; i++) {
        redisReaderFeed(br.reader, vec[i].iov_base, vec[i].iov_len);
        fed += vec[i].iov_len;
    }
    evbuffer_drain(in, fed);
    while (!br.failing) {
        if (redisReaderGetReply(br.reader, &reply) != REDIS_OK) {
            link_fail(0, "protocol error on the subscribe link: %s", br.reader->errstr);
            return;
        }
        if (reply == NULL)
            break;
        sub_reply(reply);
        freeReplyObject(reply);
    }
    if (evbuffer_get_length(in) > 0 && !br.failing)
        sub_read_cb(bev, arg); /* more than 8 chunks were waiting */
}

/* bufferevent event callback: connected, or the subscribe link failed. */
static void sub_event_cb(struct bufferevent *bev, short what, void *arg)
{
    if (what & BEV_EVENT_CONNECTED) {
        evutil_socket_t fd = bufferevent_getfd(bev);
        int one = 1;
        if (server.cfg.upstream_unixsocket == NULL) {
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        }
        if (server.cfg.upstream_password != NULL) {
            const char *user = server.cfg.upstream_user, *pass = server.cfg.upstream_password;
            const char *argv[3] = {"AUTH", user != NULL ? user : pass, pass};
            size_t lens[3] = {4, strlen(argv[1]), strlen(pass)};
            sub_write(user != NULL ? 3 : 2, argv, lens);
        } else {
            br.sub_ready = 1;
            link_check_ready();
        }
        return;
    }
    if (what & BEV_EVENT_EOF)
        link_fail(0, "subscribe link closed by upstream");
    else
        link_fail(0, "subscribe link: %s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

/* Opens the subscribe link. Returns 0, or -1 after link_fail. */
static int sub_connect(void)
{
    struct sockaddr_storage ss;
    socklen_t sslen;

    memset(&ss, 0, sizeof(ss));
    if (server.cfg.upstream_unixsocket != NULL) {
        struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
        sun->sun_family = AF_UNIX;
        snprintf(sun->sun_path, sizeof(sun->sun_path), "%s", server.cfg.upstream_unixsocket);
        sslen = sizeof(*sun);
    } else {
        struct addrinfo hints, *ai = NULL;
        char port[16];
        int rc;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        snprintf(port, sizeof(port), "%d", server.cfg.upstream_port);
        /* Blocking, like hiredis's own connect; an address literal resolves at once. */
        rc = getaddrinfo(server.cfg.upstream_host, port, &hints, &ai);
        if (rc != 0 || ai == NULL) {
            link_fail(0, "cannot resolve %s: %s", server.cfg.upstream_host, gai_strerror(rc));
            return -1;
        }
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        sslen = ai->ai_addrlen;
        freeaddrinfo(ai);
    }
    br.reader = redisReaderCreate();
    br.sub = bufferevent_socket_new(server.base, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(br.sub, sub_read_cb, NULL, sub_event_cb, NULL);
    evbuffer_add_cb(bufferevent_get_output(br.sub), sub_output_cb, NULL);
    if (bufferevent_socket_connect(br.sub, (struct sockaddr *)&ss, (int)sslen) < 0) {
        link_fail(0, "subscribe link: %s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        return -1;
    }
    bufferevent_enable(br.sub, EV_READ | EV_WRITE);
    return 0;
}

/* hiredis callback for a PUBLISH / SPUBLISH reply. */
static void pub_reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    redisReply *r = reply;

    if (ac != br.pub || r == NULL)
        return; /* a context being freed flushes its callbacks with NULL */
    br.in_flight--;
    br.in_flight_bytes -= (long long)(uintptr_t)privdata;
    br.heard_ms = server.now_ms;
    if (r->type == REDIS_REPLY_ERROR) {
        br.dropped++;
        log_refusal("a publish", r->str);
    }
    if (br.state == BRIDGE_UP && !STAILQ_EMPTY(&br.queue))
        flush_queue();
}

/* hiredis callback for INFO server on the publish link: an evbrokerd upstream is refused
 * (a node bridged to itself or to a node bridged back would loop every message). An error
 * (INFO renamed away) is taken as a Redis. */
static void pub_info_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    redisReply *r = reply;

    if (ac != br.pub || r == NULL)
        return;
    if ((r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) &&
        strstr(r->str, "\r\nevbrokerd_version:") != NULL) {
        link_fail(0, "it is an evbrokerd, not a Redis server: nodes bridged to each other (or to "
                     "themselves) would pass every message around forever");
        return;
    }
    br.pub_ready = 1;
    link_check_ready();
}

/* Asks the upstream what it is; pub_info_cb goes on. */
static void pub_identify(void)
{
    redisAsyncCommand(br.pub, pub_info_cb, NULL, "INFO server");
}

/* hiredis callback for the publish link's AUTH. */
static void pub_auth_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    redisReply *r = reply;

    if (ac != br.pub || r == NULL)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        link_fail(1, "%s", r->str);
        return;
    }
    pub_identify();
}

/* hiredis connect callback of the publish link: authenticate, or fail the link. */
static void pub_connect_cb(const redisAsyncContext *ac, int status)
{
    if (ac != br.pub)
        return;
    if (status != REDIS_OK) {
        br.pub = NULL; /* hiredis frees the context after this callback */
        link_fail(0, "%s", ac->errstr);
        return;
    }
    if (server.cfg.upstream_password == NULL) {
        pub_identify();
    } else if (server.cfg.upstream_user != NULL) {
        redisAsyncCommand(br.pub, pub_auth_cb, NULL, "AUTH %s %s", server.cfg.upstream_user,
                          server.cfg.upstream_password);
    } else {
        redisAsyncCommand(br.pub, pub_auth_cb, NULL, "AUTH %s", server.cfg.upstream_password);
    }
}

/* hiredis disconnect callback of the publish link. */
static void pub_disconnect_cb(const redisAsyncContext *ac, int status)
{
    if (ac != br.pub)
        return;    /* our own teardown */
    br.pub = NULL; /* hiredis frees the context after this callback */
    link_fail(0, "publish link: %s", status == REDIS_OK ? "closed" : ac->errstr);
}

/* Opens the publish link. Returns 0, or -1 after link_fail. */
static int pub_connect(void)
{
    redisAsyncContext *ac;

    if (server.cfg.upstream_unixsocket != NULL)
        ac = redisAsyncConnectUnix(server.cfg.upstream_unixsocket);
    else
        ac = redisAsyncConnect(server.cfg.upstream_host, server.cfg.upstream_port);
    if (ac == NULL) {
        link_fail(0, "cannot allocate a hiredis context");
        return -1;
    }
    if (ac->err) {
        link_fail(0, "%s", ac->errstr);
        redisAsyncFree(ac);
        return -1;
    }
    if (server.cfg.upstream_unixsocket == NULL)
        redisEnableKeepAlive(&ac->c);
    redisLibeventAttach(ac, server.base);
    redisAsyncSetConnectCallback(ac, pub_connect_cb);
    redisAsyncSetDisconnectCallback(ac, pub_disconnect_cb);
    br.pub = ac;
    return 0;
}

/* Sends one forward upstream and records the echoes it will produce. */
static void fwd_send(enum pubsub_kind kind, const char *ch, size_t chlen, const char *payload,
                     size_t plen)
{
    const char *argv[3] = {kind == PUBSUB_SHARD ? "SPUBLISH" : "PUBLISH", ch, payload};
    size_t lens[3] = {strlen(argv[0]), chlen, plen};
    void *size = (void *)(uintptr_t)(chlen + plen); /* comes back to pub_reply_cb */

    if (redisAsyncCommandArgv(br.pub, pub_reply_cb, size, 3, argv, lens) != REDIS_OK) {
        br.dropped++;
        return;
    }
    if (br.in_flight == 0)
        br.heard_ms = server.now_ms; /* the reply timeout counts from here */
    br.in_flight++;
    br.in_flight_bytes += (long long)(chlen + plen);
    br.forwarded++;
    if (server.cfg.upstream_direction == CONFIG_DIR_BOTH)
        echo_expect(kind, ch, chlen, payload, plen);
}

/* Sends queued forwards while the link is up and the in-flight bound allows. */
static void flush_queue(void)
{
    struct fwd *f;

    while (br.state == BRIDGE_UP && br.in_flight < server.cfg.upstream_queue_limit &&
           (f = STAILQ_FIRST(&br.queue)) != NULL) {
        STAILQ_REMOVE_HEAD(&br.queue, link);
        br.queued--;
        br.queued_bytes -= (long long)(f->chlen + f->plen);
        fwd_send(f->kind, f->data, f->chlen, f->data + f->chlen, f->plen);
        free(f);
    }
}

/* Closes both links and forgets the session's subscriptions and expectations. Forwards
 * still queued stay queued; those awaiting a reply are in doubt and forgotten. */
static void link_teardown(void)
{
    evtimer_del(br.timeout_ev);
    if (br.pub != NULL) {
        redisAsyncContext *ac = br.pub;
        br.pub = NULL; /* makes every callback the free runs ignore it */
        redisAsyncFree(ac);
    }
    if (br.sub != NULL) {
        bufferevent_free(br.sub);
        br.sub = NULL;
    }
    if (br.reader != NULL) {
        redisReaderFree(br.reader);
        br.reader = NULL;
    }
    br.pub_ready = br.sub_ready = 0;
    br.resync_bytes = 0;
    br.in_doubt += br.in_flight;
    br.in_flight = br.in_flight_bytes = 0;
    topics_clear();
}

/* Marks the link failed; the teardown runs from the loop (reset_cb), never inside a hiredis
 * or bufferevent callback that may still use the objects. */
static void link_fail(int auth, const char *fmt, ...)
{
    va_list ap;

    if (br.failing || !br.enabled)
        return;
    br.failing = 1;
    br.fail_auth = auth;
    va_start(ap, fmt);
    vsnprintf(br.fail_reason, sizeof(br.fail_reason), fmt, ap);
    va_end(ap);
    event_active(br.reset_ev, EV_TIMEOUT, 1);
}

/* Delay before the next attempt: min doubling per failure up to max, jittered to [d/2, d]. */
static long long backoff_ms(void)
{
    long long d = server.cfg.upstream_reconnect_min_ms;
    uint32_t r;

    for (int i = 0; i < br.attempts && d < server.cfg.upstream_reconnect_max_ms; i++)
        d *= 2;
    if (d > server.cfg.upstream_reconnect_max_ms)
        d = server.cfg.upstream_reconnect_max_ms;
    util_random_bytes(&r, sizeof(r));
    return d / 2 + (long long)(r % (uint32_t)(d / 2 + 1));
}

/* Loop callback after a failure: tear down, log the change once, schedule the retry. */
static void reset_cb(evutil_socket_t fd, short what, void *arg)
{
    int was_connected = br.state == BRIDGE_SYNCING || br.state == BRIDGE_UP;
    long long delay;
    struct timeval tv;

    link_teardown();
    br.failing = 0;
    br.state = BRIDGE_DOWN;
    if (was_connected) {
        log_warning("Upstream link to %s lost: %s; reconnecting", br.addr, br.fail_reason);
        snprintf(br.logged_reason, sizeof(br.logged_reason), "%s", br.fail_reason);
    } else if (strcmp(br.logged_reason, br.fail_reason) != 0) {
        /* Redis's texts end in a full stop; the line goes on after it */
        int n = (int)strlen(br.fail_reason);
        n -= n > 0 && br.fail_reason[n - 1] == '.';
        if (br.fail_auth)
            log_warning("Upstream %s refused authentication: %.*s; retrying (logged again only "
                        "when the reason changes)",
                        br.addr, n, br.fail_reason);
        else
            log_warning("Upstream %s unavailable: %.*s; retrying (logged again only when the "
                        "reason changes)",
                        br.addr, n, br.fail_reason);
        snprintf(br.logged_reason, sizeof(br.logged_reason), "%s", br.fail_reason);
    } else {
        log_verbose("Upstream %s still unavailable: %s", br.addr, br.fail_reason);
    }
    delay = backoff_ms();
    br.attempts++;
    tv.tv_sec = (time_t)(delay / 1000);
    tv.tv_usec = (suseconds_t)(delay % 1000) * 1000;
    evtimer_add(br.retry_ev, &tv);
}

/* Retry timer: the next attempt. */
static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    link_connect();
}

/* Every second: a publish or a subscription change waiting longer than reply_timeout_ms
 * means the upstream is stuck (stopped, or its host gone without a reset); reconnecting
 * frees what waits on it. */
static void stuck_cb(evutil_socket_t fd, short what, void *arg)
{
    long long timeout = server.cfg.upstream_reply_timeout_ms;

    server_update_time();
    if (br.state == BRIDGE_UP && br.in_flight > 0 && server.now_ms - br.heard_ms > timeout)
        link_fail(0, "no reply to a publish for %lld ms", server.now_ms - br.heard_ms);
    else if ((br.state == BRIDGE_UP || br.state == BRIDGE_SYNCING) && br.fifo_len > 0 &&
             server.now_ms - br.sub_heard_ms > timeout)
        link_fail(0, "no reply to a subscription for %lld ms", server.now_ms - br.sub_heard_ms);
}

/* Connect timer: the attempt took too long. */
static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    link_fail(0, "no connection and authentication within %d ms",
              server.cfg.upstream_connect_timeout_ms);
}

/* Starts one attempt on both links, bounded by connect_timeout_ms. */
static void link_connect(void)
{
    struct timeval tv = {server.cfg.upstream_connect_timeout_ms / 1000,
                         (server.cfg.upstream_connect_timeout_ms % 1000) * 1000};

    br.state = BRIDGE_CONNECTING;
    evtimer_add(br.timeout_ev, &tv);
    if (pub_connect() < 0)
        return;
    sub_connect();
}

/* Splits [upstream] channels into globs. */
static void globs_parse(const char *list)
{
    char *copy = xstrdup(list), *save = NULL;

    for (char *t = strtok_r(copy, " \t", &save); t != NULL; t = strtok_r(NULL, " \t", &save)) {
        br.globs = xrealloc(br.globs, (br.nglobs + 1) * sizeof(*br.globs));
        br.globs[br.nglobs++] = xstrdup(t);
        if (strcmp(t, "*") == 0)
            br.match_all = 1;
    }
    free(copy);
}

int bridge_start(void)
{
    const struct config *cfg = &server.cfg;

    if (cfg->upstream_host == NULL && cfg->upstream_unixsocket == NULL)
        return 0;
    /* config_load refused a file whose keys do not fit together (config_check_upstream) */
    memset(&br, 0, sizeof(br));
    br.enabled = 1;
    if (cfg->upstream_unixsocket != NULL)
        snprintf(br.addr, sizeof(br.addr), "%s", cfg->upstream_unixsocket);
    else
        snprintf(br.addr, sizeof(br.addr), "%s:%d", cfg->upstream_host, cfg->upstream_port);
    globs_parse(cfg->upstream_channels);
    echo_init((size_t)cfg->upstream_queue_limit * 4 + 4096);
    for (int k = 0; k < 3; k++)
        br.topics[k] = dict_new();
    br.patterns = pattern_index_new();
    STAILQ_INIT(&br.queue);
    br.retry_ev = evtimer_new(server.base, retry_cb, NULL);
    br.timeout_ev = evtimer_new(server.base, timeout_cb, NULL);
    br.reset_ev = event_new(server.base, -1, 0, reset_cb, NULL);
    br.stuck_ev = event_new(server.base, -1, EV_PERSIST, stuck_cb, NULL);
    struct timeval second = {1, 0};
    evtimer_add(br.stuck_ev, &second);
    log_notice("Bridging to upstream Redis %s (direction %s, channels '%s', hiredis %d.%d.%d)",
               br.addr, direction_names[cfg->upstream_direction], cfg->upstream_channels,
               HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    link_connect();
    return 0;
}

void bridge_stop(void)
{
    struct fwd *f;

    if (!br.enabled)
        return;
    link_teardown();
    br.enabled = 0;
    event_free(br.retry_ev);
    event_free(br.timeout_ev);
    event_free(br.reset_ev);
    event_free(br.stuck_ev);
    while ((f = STAILQ_FIRST(&br.queue)) != NULL) {
        STAILQ_REMOVE_HEAD(&br.queue, link);
        free(f);
    }
    for (int k = 0; k < 3; k++)
        dict_free(br.topics[k]);
    pattern_index_free(br.patterns);
    echo_cleanup();
    for (size_t i = 0; i < br.nglobs; i++)
        free(br.globs[i]);
    free(br.globs);
    free(br.fifo);
    memset(&br, 0, sizeof(br));
}

void bridge_interest(enum pubsub_kind kind, const char *name, size_t len, int added)
{
    if (!br.enabled || server.cfg.upstream_direction == CONFIG_DIR_OUT || br.failing ||
        (br.state != BRIDGE_SYNCING && br.state != BRIDGE_UP) || !bridged(name, len))
        return; /* while down, the resubscription after connecting covers it */
    topic_want(kind, name, len, added);
}

void bridge_forward(enum pubsub_kind kind, const char *ch, size_t chlen, const char *payload,
                    size_t plen)
{
    struct fwd *f;
    long long held = br.queued_bytes + br.in_flight_bytes;

    if (!br.enabled || server.cfg.upstream_direction == CONFIG_DIR_IN || !bridged(ch, chlen))
        return;
    /* Over either bound it is dropped; one publish bigger than queue_memory alone still goes
     * when nothing else waits, so memory stays within the bound or that one message. */
    if (br.queued + br.in_flight >= server.cfg.upstream_queue_limit ||
        (held > 0 && held + (long long)(chlen + plen) > server.cfg.upstream_queue_memory)) {
        br.dropped++;
        return;
    }
    if (br.state == BRIDGE_UP && !br.failing && STAILQ_EMPTY(&br.queue)) {
        fwd_send(kind, ch, chlen, payload, plen);
        return;
    }
    f = xmalloc(sizeof(*f) + chlen + plen);
    f->kind = kind;
    f->chlen = chlen;
    f->plen = plen;
    memcpy(f->data, ch, chlen);
    memcpy(f->data + chlen, payload, plen);
    STAILQ_INSERT_TAIL(&br.queue, f, link);
    br.queued++;
    br.queued_bytes += (long long)(chlen + plen);
}

/* Counts the confirmed upstream subscriptions of one kind. */
static size_t upstream_count(enum pubsub_kind kind)
{
    struct dict_iter it;
    void *val;
    size_t n = 0;

    dict_iter_init(&it, br.topics[kind]);
    while (dict_iter_next(&it, NULL, NULL, &val))
        n += topic_countable(val);
    return n;
}

void bridge_info(struct evbuffer *out)
{
    if (!br.enabled)
        return;
    evbuffer_add_printf(
        out,
        "# Bridge\r\nbridge_link:%s\r\nbridge_upstream:%s\r\nbridge_direction:%s\r\n"
        "bridge_forwarded:%lld\r\nbridge_received:%lld\r\nbridge_dropped:%lld\r\n"
        "bridge_in_doubt:%lld\r\n"
        "bridge_queued:%lld\r\nbridge_in_flight:%lld\r\nbridge_queue_bytes:%lld\r\n"
        "bridge_reconnects:%lld\r\n"
        "bridge_upstream_channels:%zu\r\nbridge_upstream_patterns:%zu\r\n"
        "bridge_upstream_shard_channels:%zu\r\nbridge_echoes_suppressed:%lld\r\n"
        "bridge_echoes_pending:%zu\r\nbridge_echo_overflow:%lld\r\nbridge_refusals:%lld\r\n"
        "bridge_last_error:%s\r\n",
        state_names[br.state], br.addr, direction_names[server.cfg.upstream_direction],
        br.forwarded, br.received, br.dropped, br.in_doubt, br.queued, br.in_flight,
        br.queued_bytes + br.in_flight_bytes, br.reconnects, upstream_count(PUBSUB_CHANNEL),
        upstream_count(PUBSUB_PATTERN), upstream_count(PUBSUB_SHARD), br.suppressed, echo_pending(),
        echo_overflows(), br.refusals, br.logged_reason);
}
