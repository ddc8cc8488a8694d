/* Unit tests for the command table and dispatcher in-process: scripts of requests and the
 * exact reply bytes a real Redis 7.0.15 sends, run over a client on a socketpair. Every
 * script runs three ways: each request written whole, each written one byte at a time
 * (no reply may appear before the last byte), and all requests pipelined in one write.
 * Also checks COMMAND's self-consistency and state left behind by RESET. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "command.h"
#include "config.h"
#include "dict.h"
#include "pubsub.h"
#include "server.h"
#include "inproc.h"
#include "unit.h"
#include "util.h"

/* Encodes a space-separated argument list as a RESP multibulk; "''" is an empty argument. */
static void encode_request(struct bytes *out, const char *args)
{
    const char *tok[32];
    size_t toklen[32];
    int n = 0;
    char head[32];

    for (const char *p = args; *p;) {
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        ck_assert_int_lt(n, 32);
        tok[n] = p;
        toklen[n] = len == 2 && memcmp(p, "''", 2) == 0 ? 0 : len;
        n++;
        p += len;
        if (*p == ' ')
            p++;
    }
    bytes_add(out, head, (size_t)snprintf(head, sizeof(head), "*%d\r\n", n));
    for (int i = 0; i < n; i++) {
        bytes_add(out, head, (size_t)snprintf(head, sizeof(head), "$%zu\r\n", toklen[i]));
        bytes_add(out, tok[i], toklen[i]);
        bytes_add(out, "\r\n", 2);
    }
}

/* Copies want with "{id}" replaced by the client id. */
static void expand_reply(struct bytes *out, const char *want, uint64_t id)
{
    char num[32];
    int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)id);

    for (const char *p = want; *p;) {
        const char *mark = strstr(p, "{id}");
        size_t len = mark ? (size_t)(mark - p) : strlen(p);
        bytes_add(out, p, len);
        p += len;
        if (mark) {
            bytes_add(out, num, (size_t)n);
            p += 4;
        }
    }
}

/* One request and the exact reply; eof when the server must then close the connection. */
struct step {
    const char *args;
    const char *want;
    int eof;
};

#define MAX_STEPS 40

/* A table row: a sequence of steps on one fresh client. */
struct script {
    const char *name;
    const char *requirepass;
    struct step steps[MAX_STEPS];
};

enum mode { MODE_WHOLE, MODE_BYTES, MODE_PIPELINE };

static const char *const mode_names[] = {"whole", "byte-by-byte", "pipelined"};

/* Asserts that got equals want exactly, naming the script, mode and step. */
static void expect_same(const struct bytes *got, const struct bytes *want, int eof,
                        const char *name, enum mode m, int step)
{
    ck_assert_msg(got->len == want->len &&
                      memcmp(got->p ? got->p : "", want->p ? want->p : "", want->len) == 0,
                  "%s (%s) step %d:\n got  %zu '%.*s'\n want %zu '%.*s'", name, mode_names[m], step,
                  got->len, (int)got->len, got->p ? got->p : "", want->len, (int)want->len,
                  want->p ? want->p : "");
    ck_assert_msg(got->eof == eof, "%s (%s) step %d: eof %d, want %d", name, mode_names[m], step,
                  got->eof, eof);
}

/* Writes one request whole, or byte by byte checking that no reply comes early. */
static void send_request(struct peer *p, const struct bytes *req, enum mode m, const char *name)
{
    if (m != MODE_BYTES) {
        peer_write(p, req->p, req->len);
        return;
    }
    for (size_t i = 0; i < req->len; i++) {
        char c;
        peer_write(p, req->p + i, 1);
        if (i + 1 == req->len)
            break;
        pump();
        ck_assert_msg(read(p->fd, &c, 1) < 0 && errno == EAGAIN,
                      "%s: reply before the request was complete (byte %zu)", name, i);
    }
}

/* Runs a script in one mode on a fresh world; returns nothing, asserts everything. */
static void run_script(const struct script *s, enum mode m)
{
    inproc_up(s->requirepass);
    struct peer p = peer_new(0);
    struct bytes all_req = {0}, all_want = {0};
    int all_eof = 0, n = 0;

    for (const struct step *st = s->steps; st->args; st++, n++) {
        struct bytes req = {0}, want = {0}, got = {0};
        encode_request(&req, st->args);
        expand_reply(&want, st->want, p.id);
        if (m == MODE_PIPELINE) {
            bytes_add(&all_req, req.p, req.len);
            bytes_add(&all_want, want.p ? want.p : "", want.len);
            all_eof |= st->eof;
        } else {
            send_request(&p, &req, m, s->name);
            peer_read(&p, &got);
            expect_same(&got, &want, st->eof, s->name, m, n);
        }
        free(req.p);
        free(want.p);
        free(got.p);
    }
    if (m == MODE_PIPELINE) {
        struct bytes got = {0};
        peer_write(&p, all_req.p, all_req.len);
        peer_read(&p, &got);
        expect_same(&got, &all_want, all_eof, s->name, m, -1);
        free(got.p);
    }
    free(all_req.p);
    free(all_want.p);
    close(p.fd);
    inproc_down();
}

/* Runs a script in all three modes. */
static void run_script_all_modes(const struct script *s)
{
    run_script(s, MODE_WHOLE);
    run_script(s, MODE_BYTES);
    run_script(s, MODE_PIPELINE);
}

#define SUBCTX(cmd)                                                                                \
    "-ERR Can't execute '" cmd "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "  \
    "are allowed in this context\r\n"
#define HELLO_REPLY(head, proto)                                                                   \
    head "$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:" proto  \
         "\r\n$2\r\nid\r\n:{id}\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\n"        \
         "master\r\n$7\r\nmodules\r\n*0\r\n"
#define PUBLISH_INFO2                                                                              \
    "*10\r\n$7\r\npublish\r\n:3\r\n*4\r\n+pubsub\r\n+loading\r\n+stale\r\n+fast\r\n:0\r\n:0\r\n"   \
    ":0\r\n*2\r\n+@pubsub\r\n+@fast\r\n*0\r\n*0\r\n*0\r\n"
#define NUMSUB_INFO2                                                                               \
    "*10\r\n$13\r\npubsub|numsub\r\n:-2\r\n*3\r\n+pubsub\r\n+loading\r\n+stale\r\n:0\r\n:0\r\n"    \
    ":0\r\n*2\r\n+@pubsub\r\n+@slow\r\n*0\r\n*0\r\n*0\r\n"

/* Every row's bytes were captured from redis-server 7.0.15 with the same requests. */
static const struct script scripts[] = {
    {"unknown command",
     NULL,
     {
         {"NOSUCH a", "-ERR unknown command 'NOSUCH', with args beginning with: 'a' \r\n"},
         {"nosuch", "-ERR unknown command 'nosuch', with args beginning with: \r\n"},
         {"nosuch foo bar",
          "-ERR unknown command 'nosuch', with args beginning with: 'foo' 'bar' \r\n"},
         {"bad\r\nname arg\nx",
          "-ERR unknown command 'bad  name', with args beginning with: 'arg x' \r\n"},
         {"ping", "+PONG\r\n"},
     }},
    {"wrong arity",
     NULL,
     {
         {"publish a", "-ERR wrong number of arguments for 'publish' command\r\n"},
         {"echo", "-ERR wrong number of arguments for 'echo' command\r\n"},
         {"select", "-ERR wrong number of arguments for 'select' command\r\n"},
         {"ping a b", "-ERR wrong number of arguments for 'ping' command\r\n"},
         {"pubsub", "-ERR wrong number of arguments for 'pubsub' command\r\n"},
         {"pubsub numpat x", "-ERR wrong number of arguments for 'pubsub|numpat' command\r\n"},
         {"client reply", "-ERR wrong number of arguments for 'client|reply' command\r\n"},
         {"command count x", "-ERR wrong number of arguments for 'command|count' command\r\n"},
         {"pubsub numsub", "*0\r\n"},
         {"pubsub numsub a b", "*4\r\n$1\r\na\r\n:0\r\n$1\r\nb\r\n:0\r\n"},
         {"pubsub numpat", ":0\r\n"},
         {"echo ''", "$0\r\n\r\n"},
     }},
    {"unknown subcommand",
     NULL,
     {
         {"pubsub foo", "-ERR unknown subcommand 'foo'. Try PUBSUB HELP.\r\n"},
         {"PUBSUB FOO", "-ERR unknown subcommand 'FOO'. Try PUBSUB HELP.\r\n"},
         {"pubsub bad\r\nsub", "-ERR unknown subcommand 'bad  sub'. Try PUBSUB HELP.\r\n"},
         {"pubsub channels a b", "-ERR unknown subcommand or wrong number of arguments for "
                                 "'channels'. Try PUBSUB HELP.\r\n"},
         {"client reply bogus", "-ERR syntax error\r\n"},
     }},
    {"noauth",
     "s3cret",
     {
         {"ping", "-NOAUTH Authentication required.\r\n"},
         {"nosuch a", "-ERR unknown command 'nosuch', with args beginning with: 'a' \r\n"},
         {"publish a", "-ERR wrong number of arguments for 'publish' command\r\n"},
         {"publish a b", "-NOAUTH Authentication required.\r\n"},
         {"subscribe a", "-NOAUTH Authentication required.\r\n"},
         {"auth bad", "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
         {"ping", "-NOAUTH Authentication required.\r\n"},
         {"auth s3cret", "+OK\r\n"},
         {"ping", "+PONG\r\n"},
     }},
    {"subscribed context in resp2",
     NULL,
     {
         {"subscribe ch", "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"},
         {"ping", "*2\r\n$4\r\npong\r\n$0\r\n\r\n"},
         {"ping hi", "*2\r\n$4\r\npong\r\n$2\r\nhi\r\n"},
         {"echo x", SUBCTX("echo")},
         {"pubsub numpat", SUBCTX("pubsub|numpat")},
         {"publish ch m", SUBCTX("publish")},
         {"spublish s hi", SUBCTX("spublish")},
         {"client reply on", SUBCTX("client|reply")},
         {"nosuch", "-ERR unknown command 'nosuch', with args beginning with: \r\n"},
         {"unsubscribe", "*3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:0\r\n"},
         {"unsubscribe", "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"},
         {"echo x", "$1\r\nx\r\n"},
         {"psubscribe p*", "*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:1\r\n"},
         {"punsubscribe", "*3\r\n$12\r\npunsubscribe\r\n$2\r\np*\r\n:0\r\n"},
         {"ssubscribe s1", "*3\r\n$10\r\nssubscribe\r\n$2\r\ns1\r\n:1\r\n"},
         {"sunsubscribe", "*3\r\n$12\r\nsunsubscribe\r\n$2\r\ns1\r\n:0\r\n"},
         {"subscribe a b", "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"
                           "*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"},
         {"unsubscribe b zz", "*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n"
                              "*3\r\n$11\r\nunsubscribe\r\n$2\r\nzz\r\n:1\r\n"},
         {"punsubscribe", "*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:1\r\n"},
         {"sunsubscribe q", "*3\r\n$12\r\nsunsubscribe\r\n$1\r\nq\r\n:0\r\n"},
         {"reset", "+RESET\r\n"},
         {"quit", "+OK\r\n", 1},
     }},
    {"ping forms",
     NULL,
     {
         {"ping", "+PONG\r\n"},
         {"PING", "+PONG\r\n"},
         {"ping hi", "$2\r\nhi\r\n"},
         {"ping ''", "$0\r\n\r\n"},
         {"ping a b", "-ERR wrong number of arguments for 'ping' command\r\n"},
     }},
    {"hello",
     NULL,
     {
         {"hello 3", HELLO_REPLY("%7\r\n", "3")},
         {"hello", HELLO_REPLY("%7\r\n", "3")},
         {"hello 4", "-NOPROTO unsupported protocol version\r\n"},
         {"hello 1", "-NOPROTO unsupported protocol version\r\n"},
         {"hello x", "-ERR Protocol version is not an integer or out of range\r\n"},
         {"hello 2", HELLO_REPLY("*14\r\n", "2")},
         {"hello", HELLO_REPLY("*14\r\n", "2")},
     }},
    {"resp3 subscriptions are pushes and allow any command",
     NULL,
     {
         {"hello 3", HELLO_REPLY("%7\r\n", "3")},
         {"subscribe ch", ">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"},
         {"psubscribe p*", ">3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:2\r\n"},
         {"ssubscribe s", ">3\r\n$10\r\nssubscribe\r\n$1\r\ns\r\n:1\r\n"},
         {"ping", "+PONG\r\n"},
         {"ping x", "$1\r\nx\r\n"},
         {"echo x", "$1\r\nx\r\n"},
         {"unsubscribe nosuch", ">3\r\n$11\r\nunsubscribe\r\n$6\r\nnosuch\r\n:2\r\n"},
         {"reset", "+RESET\r\n"},
         {"ping", "+PONG\r\n"},
         {"pubsub numsub ch", "*2\r\n$2\r\nch\r\n:0\r\n"},
         {"pubsub numpat", ":0\r\n"},
         {"hello", HELLO_REPLY("*14\r\n", "2")},
     }},
    {"select range",
     NULL,
     {
         {"select 0", "+OK\r\n"},
         {"select 15", "+OK\r\n"},
         {"select 16", "-ERR DB index is out of range\r\n"},
         {"select -1", "-ERR DB index is out of range\r\n"},
         {"select x", "-ERR value is not an integer or out of range\r\n"},
         {"select 1.5", "-ERR value is not an integer or out of range\r\n"},
     }},
    {"client reply off skip on",
     NULL,
     {
         {"client reply skip", ""},
         {"echo skipped", ""},
         {"echo shown", "$5\r\nshown\r\n"},
         {"client reply skip", ""},
         {"nosuch", ""},
         {"ping", "+PONG\r\n"},
         {"client reply off", ""},
         {"echo off1", ""},
         {"ping", ""},
         {"client reply skip", ""},
         {"ping", ""},
         {"client reply on", "+OK\r\n"},
         {"echo on", "$2\r\non\r\n"},
     }},
    {"quit closes after its reply",
     NULL,
     {
         {"ping", "+PONG\r\n"},
         {"quit", "+OK\r\n", 1},
     }},
    {"quit with arguments still closes",
     NULL,
     {
         {"quit extra", "+OK\r\n", 1},
     }},
    {"command info",
     NULL,
     {
         {"command info publish", "*1\r\n" PUBLISH_INFO2},
         {"command info pubsub|numsub", "*1\r\n" NUMSUB_INFO2},
         {"command info PUBSUB|NUMSUB", "*1\r\n" NUMSUB_INFO2},
         {"command info nosuch", "*1\r\n$-1\r\n"},
         {"command info publish nosuch", "*2\r\n" PUBLISH_INFO2 "$-1\r\n"},
         {"command info pubsub|nosuch", "*1\r\n$-1\r\n"},
     }},
};

START_TEST(scripts_match_redis_bytes)
{
    const struct script *s = &scripts[_i];
    run_script_all_modes(s);
}
END_TEST

START_TEST(unknown_command_text_is_truncated_like_redis)
{
    /* Redis keeps 128 bytes of the name and stops adding arguments past 128 bytes. */
    struct bytes args = {0}, want = {0};
    char x[201], a[101], b[101];

    memset(x, 'x', 200);
    x[200] = '\0';
    memset(a, 'a', 100);
    a[100] = '\0';
    memset(b, 'b', 100);
    b[100] = '\0';
    bytes_add(&args, x, 200);
    bytes_add(&args, " ", 1);
    bytes_add(&args, a, 100);
    bytes_add(&args, " ", 1);
    bytes_add(&args, b, 100);
    bytes_add(&args, " c", 2);
    bytes_add(&want, "-ERR unknown command '", 22);
    bytes_add(&want, x, 128);
    bytes_add(&want, "', with args beginning with: '", 30);
    bytes_add(&want, a, 100);
    bytes_add(&want, "' '", 3);
    bytes_add(&want, b, 25);
    bytes_add(&want, "' \r\n", 4);

    struct script s = {"long unknown command", NULL, {{args.p, want.p, 0}}};
    run_script_all_modes(&s);
    free(args.p);
    free(want.p);
}
END_TEST

START_TEST(hello_noauth_text_matches_redis_7_0_15)
{
    static const struct script s = {
        "hello before auth",
        "s3cret",
        {
            {"hello 3", "-NOAUTH HELLO must be called with the client already authenticated, "
                        "otherwise the HELLO AUTH <user> <pass> option can be used to "
                        "authenticate the client and select the RESP protocol version at the "
                        "same time\r\n"},
            {"hello 3 auth default s3cret", HELLO_REPLY("%7\r\n", "3")},
        }};
    run_script_all_modes(&s);
}
END_TEST

START_TEST(hello_auth_option_authenticates)
{
    static const struct script s = {
        "hello auth",
        "s3cret",
        {
            {"hello 3 auth default bad",
             "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
            {"ping", "-NOAUTH Authentication required.\r\n"},
            {"hello 3 auth default s3cret", HELLO_REPLY("%7\r\n", "3")},
            {"ping", "+PONG\r\n"},
        }};
    run_script_all_modes(&s);
}
END_TEST

START_TEST(select_out_of_int_range_text_matches_redis)
{
    static const struct script s = {
        "select beyond int",
        NULL,
        {
            {"select 99999999999",
             "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n"},
        }};
    run_script_all_modes(&s);
}
END_TEST

START_TEST(command_info_resp3_uses_sets_like_redis)
{
    static const struct script s = {
        "command info resp3",
        NULL,
        {
            {"hello 3", HELLO_REPLY("%7\r\n", "3")},
            {"command info publish nosuch",
             "*2\r\n*10\r\n$7\r\npublish\r\n:3\r\n~4\r\n+pubsub\r\n+loading\r\n+stale\r\n+fast\r\n"
             ":0\r\n:0\r\n:0\r\n~2\r\n+@pubsub\r\n+@fast\r\n~0\r\n~0\r\n~0\r\n_\r\n"},
        }};
    run_script_all_modes(&s);
}
END_TEST

/* Skips one RESP value at *pos in buf; returns -1 on malformed or truncated input. */
static int resp_skip(const char *buf, size_t len, size_t *pos, long long *count)
{
    if (*pos >= len)
        return -1;
    char type = buf[*pos];
    const char *eol = memchr(buf + *pos, '\r', len - *pos);
    if (eol == NULL || (size_t)(eol - buf) + 1 >= len || eol[1] != '\n')
        return -1;
    long long n = 0;
    size_t hdr = (size_t)(eol - buf) - *pos - 1;
    if (type == '*' || type == '~' || type == '%' || type == '>' || type == '$' || type == '=' ||
        type == ':') {
        if (util_parse_ll(buf + *pos + 1, hdr, &n) < 0)
            return -1;
    }
    *pos = (size_t)(eol - buf) + 2;
    if (count)
        *count = n;
    switch (type) {
    case '+':
    case '-':
    case ':':
    case '_':
        return 0;
    case '$':
    case '=':
        if (n < 0)
            return 0;
        if (*pos + (size_t)n + 2 > len)
            return -1;
        *pos += (size_t)n + 2;
        return 0;
    case '%':
        n *= 2;
        /* fall through */
    case '*':
    case '~':
    case '>':
        for (long long i = 0; i < n; i++)
            if (resp_skip(buf, len, pos, NULL) < 0)
                return -1;
        return 0;
    default:
        return -1;
    }
}

/* Sends one request on p and returns the reply bytes (caller frees). */
static struct bytes call(struct peer *p, const char *args)
{
    struct bytes req = {0}, got = {0};
    encode_request(&req, args);
    peer_write(p, req.p, req.len);
    peer_read(p, &got);
    free(req.p);
    return got;
}

/* Counts the top-level elements of an array reply, checking it parses to the end. */
static long long array_elements(const struct bytes *b)
{
    size_t pos = 0;
    long long n = 0;

    ck_assert_uint_gt(b->len, 0);
    ck_assert_int_eq(b->p[0], '*');
    ck_assert_int_eq(resp_skip(b->p, b->len, &pos, &n), 0);
    ck_assert_uint_eq(pos, b->len);
    return n;
}

START_TEST(command_count_equals_entries_of_command)
{
    inproc_up(NULL);
    struct peer p = peer_new(0);
    char want[32];

    for (int resp = 2; resp <= 3; resp++) {
        if (resp == 3)
            free(call(&p, "hello 3").p);
        struct bytes all = call(&p, "command");
        struct bytes cnt = call(&p, "command count");
        struct bytes info = call(&p, "command info");
        long long n = array_elements(&all);
        snprintf(want, sizeof(want), ":%lld\r\n", n);
        ck_assert_str_eq(cnt.p, want);
        ck_assert_int_eq(n, (long long)command_count());
        ck_assert_int_gt(n, 10);
        /* COMMAND INFO without names is COMMAND. */
        ck_assert_uint_eq(info.len, all.len);
        ck_assert_int_eq(memcmp(info.p, all.p, all.len), 0);
        free(all.p);
        free(cnt.p);
        free(info.p);
    }
    inproc_down();
}
END_TEST

/* command_each callback: checks each command's COMMAND INFO entry has Redis's shape. */
static void info_shape_cb(const struct command *cmd, void *arg)
{
    struct evbuffer *b = evbuffer_new();
    int *n = arg;

    command_reply_info(b, 2, cmd);
    size_t len = evbuffer_get_length(b), pos = 0;
    const char *p = (const char *)evbuffer_pullup(b, -1);
    long long elems = 0;
    ck_assert_int_eq(resp_skip(p, len, &pos, &elems), 0);
    ck_assert_uint_eq(pos, len);
    ck_assert_int_eq(elems, 10);
    char head[64];
    int h = snprintf(head, sizeof(head), "*10\r\n$%zu\r\n%s\r\n:%d\r\n", strlen(cmd->fullname),
                     cmd->fullname, cmd->arity);
    ck_assert_int_eq(memcmp(p, head, (size_t)h), 0);
    ck_assert_ptr_eq(command_lookup(cmd->name, strlen(cmd->name)), cmd);
    /* Any case, and not a prefix or extension of the name. */
    size_t nl = strlen(cmd->name);
    char upper[40], longer[41];
    for (size_t i = 0; i <= nl; i++)
        upper[i] =
            (char)(cmd->name[i] >= 'a' && cmd->name[i] <= 'z' ? cmd->name[i] - 32 : cmd->name[i]);
    ck_assert_ptr_eq(command_lookup(upper, nl), cmd);
    snprintf(longer, sizeof(longer), "%sx", cmd->name);
    ck_assert_ptr_null(command_lookup(longer, nl + 1));
    ck_assert_ptr_ne(command_lookup(cmd->name, nl - 1), cmd);
    evbuffer_free(b);
    (*n)++;
}

START_TEST(command_info_entries_have_ten_elements)
{
    int n = 0;
    inproc_up(NULL);
    command_each(info_shape_cb, &n);
    ck_assert_int_eq(n, (int)command_count());
    ck_assert_ptr_null(command_lookup("", 0));
    ck_assert_ptr_null(command_lookup("_ping", 5));
    ck_assert_ptr_null(command_lookup("zzz", 3));
    ck_assert_ptr_nonnull(command_lookup("PubSub|NumSub", 13));
    inproc_down();
}
END_TEST

START_TEST(reset_returns_to_resp2_and_drops_subscriptions)
{
    inproc_up(NULL);
    struct peer p = peer_new(0), pub = peer_new(0);
    struct bytes r;

    free(call(&p, "hello 3").p);
    free(call(&p, "subscribe ch").p);
    free(call(&p, "psubscribe p*").p);
    free(call(&p, "ssubscribe s").p);
    free(call(&p, "client setname me").p);
    free(call(&p, "select 3").p);
    ck_assert_uint_eq(pubsub_numsub(PUBSUB_CHANNEL, "ch", 2), 1);
    ck_assert_uint_eq(pubsub_numpat(), 1);
    r = call(&p, "reset");
    ck_assert_str_eq(r.p, "+RESET\r\n");
    free(r.p);
    ck_assert_int_eq(p.c->resp, 2);
    ck_assert_int_eq(p.c->db, 0);
    ck_assert_ptr_null(p.c->ext ? p.c->ext->name : NULL);
    ck_assert_uint_eq(p.c->flags & CLIENT_F_PUBSUB, 0);
    ck_assert_uint_eq(pubsub_numsub(PUBSUB_CHANNEL, "ch", 2), 0);
    ck_assert_uint_eq(pubsub_numsub(PUBSUB_SHARD, "s", 1), 0);
    ck_assert_uint_eq(pubsub_numpat(), 0);
    ck_assert_uint_eq(pubsub_count(PUBSUB_CHANNEL), 0);
    r = call(&pub, "publish ch x");
    ck_assert_str_eq(r.p, ":0\r\n");
    free(r.p);
    r = call(&p, "client getname");
    ck_assert_str_eq(r.p, "$-1\r\n");
    free(r.p);
    inproc_down();
}
END_TEST

START_TEST(publish_through_dispatcher_counts_and_delivers)
{
    inproc_up(NULL);
    struct peer sub = peer_new(0), sub3 = peer_new(0), pub = peer_new(0);
    struct bytes r;

    r = call(&sub, "subscribe news.it");
    ck_assert_str_eq(r.p, "*3\r\n$9\r\nsubscribe\r\n$7\r\nnews.it\r\n:1\r\n");
    free(r.p);
    r = call(&sub, "psubscribe news.* n*");
    ck_assert_str_eq(r.p, "*3\r\n$10\r\npsubscribe\r\n$6\r\nnews.*\r\n:2\r\n"
                          "*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:3\r\n");
    free(r.p);
    free(call(&sub3, "hello 3").p);
    free(call(&sub3, "subscribe news.it").p);
    r = call(&pub, "publish news.it ciao");
    ck_assert_str_eq(r.p, ":4\r\n");
    free(r.p);
    r = call(&sub3, "ping");
    ck_assert_str_eq(r.p, ">3\r\n$7\r\nmessage\r\n$7\r\nnews.it\r\n$4\r\nciao\r\n+PONG\r\n");
    free(r.p);
    r = call(&pub, "spublish news.it ciao");
    ck_assert_str_eq(r.p, ":0\r\n");
    free(r.p);
    r = call(&pub, "pubsub numsub news.it");
    ck_assert_str_eq(r.p, "*2\r\n$7\r\nnews.it\r\n:2\r\n");
    free(r.p);
    r = call(&pub, "pubsub numpat");
    ck_assert_str_eq(r.p, ":2\r\n");
    free(r.p);
    inproc_down();
}
END_TEST

/* The suite: the Redis-verified scripts, then COMMAND and state checks. */
static Suite *command_suite(void)
{
    Suite *s = suite_create("command");
    TCase *tables = tcase_create("scripts");
    TCase *texts = tcase_create("texts");
    TCase *state = tcase_create("state");

    tcase_set_timeout(tables, 60);
    tcase_add_loop_test(tables, scripts_match_redis_bytes, 0,
                        (int)(sizeof(scripts) / sizeof(scripts[0])));
    tcase_add_test(tables, unknown_command_text_is_truncated_like_redis);
    tcase_add_test(tables, hello_auth_option_authenticates);
    suite_add_tcase(s, tables);

    /* Texts where evbrokerd's bytes were found to differ from Redis 7.0.15. */
    tcase_set_timeout(texts, 60);
    tcase_add_test(texts, hello_noauth_text_matches_redis_7_0_15);
    tcase_add_test(texts, select_out_of_int_range_text_matches_redis);
    tcase_add_test(texts, command_info_resp3_uses_sets_like_redis);
    suite_add_tcase(s, texts);

    tcase_set_timeout(state, 60);
    tcase_add_test(state, command_count_equals_entries_of_command);
    tcase_add_test(state, command_info_entries_have_ten_elements);
    tcase_add_test(state, reset_returns_to_resp2_and_drops_subscriptions);
    tcase_add_test(state, publish_through_dispatcher_counts_and_delivers);
    suite_add_tcase(s, state);
    return s;
}

UNIT_MAIN(command_suite)
