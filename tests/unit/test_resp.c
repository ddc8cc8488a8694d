/* Unit tests for the request parser. Every expectation was checked against a real Redis
 * 7.0.15; each table row is fed whole, split in two at every byte boundary and one byte at a
 * time, and must give the same trace of commands, error and leftover state. */
#include "resp.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One table row: input bytes and the trace they must produce (see trace_*). */
struct row {
    const char *name;
    const char *in;
    size_t len;
    const char *want;
    int unauth;         /* apply the unauthenticated limits */
    long long max_bulk; /* proto_max_bulk_len, 0 for Redis's default 512mb */
};

#define IN(s) s, sizeof(s) - 1
/* Check's ck_assert reports every pass through a pipe: too slow for the split loops. */
#define REQUIRE(e) ((e) ? (void)0 : ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #e))
#define DEFAULT_MAX_BULK (512LL * 1024 * 1024)
/* Rows longer than this are split at sampled boundaries only, to keep the suite quick. */
#define FULL_SPLIT_MAX 20000

/* What a run produced: "[a|b]" per command (bytes outside printable ASCII and "%|[]" as
 * %HH), "!text" for an error, and "~" when input was left partially parsed. */
struct trace {
    char *s;
    size_t len, cap;
};

/* Appends n bytes to the trace. */
static void trace_add(struct trace *t, const char *s, size_t n)
{
    if (t->cap - t->len < n + 1) {
        t->cap = (t->cap + n + 1) * 2;
        t->s = realloc(t->s, t->cap);
        REQUIRE(t->s != NULL);
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

/* Appends one argument byte, encoded. */
static void trace_byte(struct trace *t, unsigned char c)
{
    char hex[4];

    if (c >= 0x20 && c < 0x7f && c != '%' && c != '|' && c != '[' && c != ']') {
        trace_add(t, (const char *)&c, 1);
        return;
    }
    snprintf(hex, sizeof(hex), "%%%02X", c);
    trace_add(t, hex, 3);
}

/* Appends the command the parser just returned, checking each argument's terminator. */
static void trace_command(struct trace *t, const struct resp_parser *p)
{
    REQUIRE(p->argc > 0);
    trace_add(t, "[", 1);
    for (int i = 0; i < p->argc; i++) {
        REQUIRE(p->argv[i][p->argvlen[i]] == '\0');
        if (i > 0)
            trace_add(t, "|", 1);
        for (size_t j = 0; j < p->argvlen[i]; j++)
            trace_byte(t, (unsigned char)p->argv[i][j]);
    }
    trace_add(t, "]", 1);
}

/* Feeds one piece, handling every command in it. Returns -1 once an error was traced. */
static int feed_piece(struct resp_parser *p, const struct resp_limits *lim, const char *buf,
                      size_t len, struct trace *t)
{
    size_t off = 0;

    do {
        size_t used = 0;
        enum resp_status st = resp_parser_feed(p, lim, buf + off, len - off, &used);

        REQUIRE(used <= len - off);
        off += used;
        if (st == RESP_ERROR) {
            trace_add(t, "!", 1);
            trace_add(t, resp_parser_error(p), strlen(resp_parser_error(p)));
            /* The error is sticky. */
            REQUIRE(resp_parser_feed(p, lim, "x", 1, &used) == RESP_ERROR);
            REQUIRE(used == 0);
            return -1;
        }
        if (st == RESP_COMMAND) {
            REQUIRE(used > 0);
            REQUIRE(resp_parser_pending(p) == 0);
            trace_command(t, p);
            resp_parser_next(p);
            REQUIRE(resp_parser_idle(p));
            continue;
        }
        REQUIRE(off == len);
    } while (off < len);
    return 0;
}

/* Feeds the row's first cut bytes, then the rest in pieces of step bytes; returns the
 * trace, which the caller frees. */
static char *run_row(const struct row *r, size_t cut, size_t step)
{
    struct resp_limits lim = {r->max_bulk ? r->max_bulk : DEFAULT_MAX_BULK, r->unauth};
    struct resp_parser p;
    struct trace t = {NULL, 0, 0};
    size_t off = cut;

    trace_add(&t, "", 0);
    resp_parser_init(&p);
    if (feed_piece(&p, &lim, r->in, cut, &t) == 0) {
        while (off < r->len) {
            size_t n = r->len - off < step ? r->len - off : step;

            if (feed_piece(&p, &lim, r->in + off, n, &t) < 0)
                break;
            off += n;
        }
        if (off >= r->len && !resp_parser_idle(&p))
            trace_add(&t, "~", 1);
        if (resp_parser_idle(&p))
            REQUIRE(resp_parser_pending(&p) == 0);
    }
    resp_parser_free(&p);
    return t.s;
}

/* Checks one split of a row against its expected trace. */
static void check_split(const struct row *r, size_t cut, size_t step)
{
    char *got = run_row(r, cut, step);

    if (strcmp(got, r->want) != 0)
        ck_abort_msg("row '%s' cut %zu step %zu: got '%.200s' want '%.200s'", r->name, cut, step,
                     got, r->want);
    free(got);
}

/* Checks a row fed whole, split in two at every byte boundary (sampled for long rows) and
 * one byte at a time. */
static void check_row(const struct row *r)
{
    size_t stride = r->len > FULL_SPLIT_MAX ? 997 : 1;

    check_split(r, r->len, SIZE_MAX);
    for (size_t cut = 0; cut <= r->len; cut++) {
        if (stride > 1 && cut > 300 && cut + 300 < r->len && cut % stride != 0)
            continue;
        check_split(r, cut, SIZE_MAX);
    }
    check_split(r, 0, 1);
}

static const struct row multibulk_rows[] = {
    {"ping", IN("*1\r\n$4\r\nPING\r\n"), "[PING]", 0, 0},
    {"publish", IN("*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$5\r\nhello\r\n"), "[PUBLISH|ch|hello]", 0,
     0},
    {"pipelined with inline", IN("*1\r\n$4\r\nPING\r\nPING\r\n*1\r\n$1\r\nx\r\n\nECHO y\n"),
     "[PING][PING][x][ECHO|y]", 0, 0},
    {"empty arguments", IN("*3\r\n$0\r\n\r\n$0\r\n\r\n$1\r\nx\r\n"), "[||x]", 0, 0},
    {"binary payload with CR LF NUL", IN("*2\r\n$4\r\nECHO\r\n$8\r\na\0\r\n\n\r\nb\r\n"),
     "[ECHO|a%00%0D%0A%0A%0D%0Ab]", 0, 0},
    {"payload trailer is not checked", IN("*1\r\n$4\r\nPINGxy*1\r\n$4\r\nPING\0\0"), "[PING][PING]",
     0, 0},
    {"byte after count CR is not checked", IN("*1\rX$4\rYPING\r\n"), "[PING]", 0, 0},
    {"count line ends at CR only", IN("*1\n$4\r\n"), "!Protocol error: invalid multibulk length", 0,
     0},
    {"star zero and minus one skipped", IN("*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n"), "[PING]", 0, 0},
    {"star zero alone", IN("*0\r\n"), "", 0, 0},
    {"star llong min skipped", IN("*-9223372036854775808\r\n"), "", 0, 0},
    {"incomplete payload", IN("*1\r\n$4\r\nPI"), "~", 0, 0},
    {"incomplete trailer", IN("*1\r\n$4\r\nPING\r"), "~", 0, 0},
    {"count needs the byte after CR", IN("*1\r"), "~", 0, 0},
    {"count INT_MAX accepted", IN("*2147483647\r\n"), "~", 0, 0},
    {"count over INT_MAX", IN("*2147483648\r\n"), "!Protocol error: invalid multibulk length", 0,
     0},
    {"count not a number", IN("*abc\r\n"), "!Protocol error: invalid multibulk length", 0, 0},
    {"count minus zero", IN("*-0\r\n"), "!Protocol error: invalid multibulk length", 0, 0},
    {"count leading zero", IN("*01\r\n"), "!Protocol error: invalid multibulk length", 0, 0},
    {"count plus sign", IN("*+1\r\n"), "!Protocol error: invalid multibulk length", 0, 0},
    {"count empty", IN("*\r\n"), "!Protocol error: invalid multibulk length", 0, 0},
    {"count with space", IN("*1 \r\n"), "!Protocol error: invalid multibulk length", 0, 0},
    {"count overflows", IN("*9223372036854775808\r\n"), "!Protocol error: invalid multibulk length",
     0, 0},
    {"count 21 chars", IN("*100000000000000000000\r\n"),
     "!Protocol error: invalid multibulk length", 0, 0},
    {"expected dollar", IN("*1\r\nX\r\n"), "!Protocol error: expected '$', got 'X'", 0, 0},
    {"expected dollar got CR", IN("*1\r\n\r\r\n"), "!Protocol error: expected '$', got ' '", 0, 0},
    {"expected dollar got LF", IN("*1\r\n\n\r\n"), "!Protocol error: expected '$', got ' '", 0, 0},
    {"expected dollar got raw byte", IN("*1\r\n\xff\r\n"),
     "!Protocol error: expected '$', got '\xff'", 0, 0},
    {"expected dollar after an argument", IN("*2\r\n$1\r\na\r\n:1\r\n"),
     "!Protocol error: expected '$', got ':'", 0, 0},
    {"expected dollar waits for CR", IN("*1\r\nX"), "~", 0, 0},
    {"expected dollar waits for byte after CR", IN("*1\r\nX\r"), "~", 0, 0},
    {"bulk negative", IN("*1\r\n$-1\r\n"), "!Protocol error: invalid bulk length", 0, 0},
    {"bulk not a number", IN("*1\r\n$abc\r\n"), "!Protocol error: invalid bulk length", 0, 0},
    {"bulk empty", IN("*1\r\n$\r\n"), "!Protocol error: invalid bulk length", 0, 0},
    {"bulk leading zero", IN("*1\r\n$01\r\n"), "!Protocol error: invalid bulk length", 0, 0},
    {"bulk over 512mb", IN("*1\r\n$536870913\r\n"), "!Protocol error: invalid bulk length", 0, 0},
    {"bulk 512mb accepted", IN("*1\r\n$536870912\r\n"), "~", 0, 0},
    {"bulk over configured max", IN("*1\r\n$11\r\n"), "!Protocol error: invalid bulk length", 0,
     10},
    {"bulk at configured max", IN("*1\r\n$10\r\n0123456789\r\n"), "[0123456789]", 0, 10},
    {"NUL hides the count CR", IN("*1\0\r\n$4\r\nPING\r\n"), "~", 0, 0},
    {"NUL hides the bulk count CR", IN("*1\r\n$4\0\r\nPING\r\n"), "~", 0, 0},
    {"NUL after count CR is skipped", IN("*1\r\0$4\r\nPING\r\n"), "[PING]", 0, 0},
};

static const struct row unauth_rows[] = {
    {"unauth 10 args", IN("*10\r\n"), "~", 1, 0},
    {"unauth 11 args", IN("*11\r\n"), "!Protocol error: unauthenticated multibulk length", 1, 0},
    {"unauth waits for byte after CR", IN("*11\r"), "~", 1, 0},
    {"unauth invalid count first", IN("*2147483648\r\n"),
     "!Protocol error: invalid multibulk length", 1, 0},
    {"unauth negative count skipped", IN("*-1\r\n*1\r\n$4\r\nAUTH\r\n"), "[AUTH]", 1, 0},
    {"unauth bulk 16384", IN("*1\r\n$16384\r\n"), "~", 1, 0},
    {"unauth bulk 16385", IN("*1\r\n$16385\r\n"), "!Protocol error: unauthenticated bulk length", 1,
     0},
    {"unauth invalid bulk first", IN("*1\r\n$-1\r\n"), "!Protocol error: invalid bulk length", 1,
     0},
    {"unauth inline has no limit", IN("AUTH a b c d e f g h i j k\r\n"),
     "[AUTH|a|b|c|d|e|f|g|h|i|j|k]", 1, 0},
    {"11 args when authenticated", IN("*11\r\n"), "~", 0, 0},
};

static const struct row inline_rows[] = {
    {"inline LF", IN("PING\n"), "[PING]", 0, 0},
    {"inline CRLF", IN("PING\r\n"), "[PING]", 0, 0},
    {"inline strips one CR only", IN("PING\r\r\n"), "[PING]", 0, 0},
    {"inline blanks", IN(" SET  a\tb \r\n"), "[SET|a|b]", 0, 0},
    {"blank lines skipped", IN("\r\n\n  \t\r\n\r\r\nPING\r\n"), "[PING]", 0, 0},
    {"blank line alone", IN("\r\n"), "", 0, 0},
    {"inline incomplete", IN("PING"), "~", 0, 0},
    {"dollar line is inline", IN("$4\r\n"), "[$4]", 0, 0},
    {"empty double quotes", IN("\"\"\r\n"), "[]", 0, 0},
    {"empty single quotes", IN("'' x\r\n"), "[|x]", 0, 0},
    {"double quote escapes", IN("ECHO \"a\\x41\\x4g\\n\\r\\t\\b\\a\\\\\\\"\\z\" x\r\n"),
     "[ECHO|aAx4g%0A%0D%09%08%07\\\"z|x]", 0, 0},
    {"hex escape case", IN("\"\\x7F\\xfF\\x00\"\n"), "[%7F%FF%00]", 0, 0},
    {"short hex escape", IN("\"\\x4\"\n"), "[x4]", 0, 0},
    {"bad hex escape", IN("\"\\xZZ\"\n"), "[xZZ]", 0, 0},
    {"single quote escapes", IN("'a\\'b\\n\\\"'\r\n"), "[a'b\\n\\\"]", 0, 0},
    {"quotes inside a word", IN("ECHO a\"b c\"\r\n"), "[ECHO|ab c]", 0, 0},
    {"quote at word end", IN("a\"b\"\r\n"), "[ab]", 0, 0},
    {"closing quote then VT", IN("\"a\"\vb\r\n"), "[a|b]", 0, 0},
    {"closing quote then CR", IN("\"a\"\r\r\n"), "[a]", 0, 0},
    {"closing quote then FF", IN("\"a\"\f\n"), "[a]", 0, 0},
    {"VT inside a word", IN("a\vb\r\n"), "[a%0Bb]", 0, 0},
    {"VT and FF as leading blanks", IN("\v a \f\r\n"), "[a]", 0, 0},
    {"CR inside a line", IN("a\rb\r\n"), "[a|b]", 0, 0},
    {"high bytes", IN("\xff\x80 \x01\r\n"), "[%FF%80|%01]", 0, 0},
    {"unterminated double quote", IN("ECHO \"a\r\n"),
     "!Protocol error: unbalanced quotes in request", 0, 0},
    {"unterminated single quote", IN("ECHO 'a\n"), "!Protocol error: unbalanced quotes in request",
     0, 0},
    {"text after double quote", IN("ECHO \"a\"b\r\n"),
     "!Protocol error: unbalanced quotes in request", 0, 0},
    {"text after single quote", IN("a'b c'd\r\n"), "!Protocol error: unbalanced quotes in request",
     0, 0},
    {"escaped closing double quote", IN("\"a\\\"\n"),
     "!Protocol error: unbalanced quotes in request", 0, 0},
    {"escaped closing single quote", IN("'a\\'\n"), "!Protocol error: unbalanced quotes in request",
     0, 0},
    {"backslash at end", IN("\"\\\n"), "!Protocol error: unbalanced quotes in request", 0, 0},
    {"hex escape at end", IN("\"\\x\n"), "!Protocol error: unbalanced quotes in request", 0, 0},
    {"single quote backslash backslash", IN("'\\\\'\n"),
     "!Protocol error: unbalanced quotes in request", 0, 0},
    {"commands before an error run", IN("PING\r\nECHO \"a\r\nPING\r\n"),
     "[PING]!Protocol error: unbalanced quotes in request", 0, 0},
    {"NUL hides the LF", IN("PING\0\r\nPING\r\n"), "~", 0, 0},
    {"NUL first", IN("\0\n"), "~", 0, 0},
};

/* Runs every row of a table. */
static void check_rows(const struct row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check_row(&rows[i]);
}

START_TEST(multibulk_table_matches_redis)
{
    check_rows(multibulk_rows, sizeof(multibulk_rows) / sizeof(multibulk_rows[0]));
}
END_TEST

START_TEST(unauthenticated_limits_match_redis)
{
    check_rows(unauth_rows, sizeof(unauth_rows) / sizeof(unauth_rows[0]));
}
END_TEST

START_TEST(inline_table_matches_redis)
{
    check_rows(inline_rows, sizeof(inline_rows) / sizeof(inline_rows[0]));
}
END_TEST

/* A growable byte buffer for generated rows. */
struct gen {
    char *s;
    size_t len, cap;
};

/* Appends n bytes to a generated buffer. */
static void gen_add(struct gen *g, const void *s, size_t n)
{
    if (g->cap - g->len < n + 1) {
        g->cap = (g->cap + n + 1) * 2;
        g->s = realloc(g->s, g->cap);
        ck_assert_ptr_nonnull(g->s);
    }
    memcpy(g->s + g->len, s, n);
    g->len += n;
    g->s[g->len] = '\0';
}

/* Appends a NUL-terminated string to a generated buffer. */
static void gen_str(struct gen *g, const char *s)
{
    gen_add(g, s, strlen(s));
}

/* Appends c repeated n times. */
static void gen_fill(struct gen *g, char c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gen_add(g, &c, 1);
}

/* Checks a generated row; frees both buffers. */
static void check_gen(const char *name, struct gen *in, struct gen *want)
{
    struct row r = {name, in->s, in->len, want->s ? want->s : "", 0, 0};

    check_row(&r);
    free(in->s);
    free(want->s);
    memset(in, 0, sizeof(*in));
    memset(want, 0, sizeof(*want));
}

START_TEST(pipelined_thousand_commands)
{
    struct gen in = {0}, want = {0};
    char buf[64];

    for (int i = 0; i < 1000; i++) {
        if (i % 2 == 0)
            snprintf(buf, sizeof(buf), "*2\r\n$4\r\nECHO\r\n$3\r\n%03d\r\n", i);
        else
            snprintf(buf, sizeof(buf), "ECHO %03d\n", i);
        gen_str(&in, buf);
        snprintf(buf, sizeof(buf), "[ECHO|%03d]", i);
        gen_str(&want, buf);
    }
    check_gen("1000 pipelined", &in, &want);
}
END_TEST

START_TEST(binary_arguments_all_byte_values)
{
    struct gen in = {0}, want = {0};
    char hex[8];

    /* The same 256 bytes as a bulk payload and as an inline "\xHH" string. */
    gen_str(&in, "*2\r\n$4\r\nECHO\r\n$256\r\n");
    for (int c = 0; c < 256; c++) {
        char b = (char)c;

        gen_add(&in, &b, 1);
    }
    gen_str(&in, "\r\nECHO \"");
    for (int c = 0; c < 256; c++) {
        snprintf(hex, sizeof(hex), "\\x%02x", c);
        gen_str(&in, hex);
    }
    gen_str(&in, "\"\r\n");
    for (int k = 0; k < 2; k++) {
        gen_str(&want, "[ECHO|");
        for (int c = 0; c < 256; c++) {
            if (c >= 0x20 && c < 0x7f && c != '%' && c != '|' && c != '[' && c != ']') {
                hex[0] = (char)c;
                hex[1] = '\0';
            } else {
                snprintf(hex, sizeof(hex), "%%%02X", c);
            }
            gen_str(&want, hex);
        }
        gen_str(&want, "]");
    }
    check_gen("all byte values", &in, &want);
}
END_TEST

START_TEST(count_lines_limited_like_redis)
{
    struct gen in = {0}, want = {0};

    /* A count line may hold 65536 bytes before its CR (the type byte included). */
    gen_str(&in, "*");
    gen_fill(&in, '1', 65535);
    gen_str(&want, "~");
    check_gen("mbulk count at limit", &in, &want);

    gen_str(&in, "*");
    gen_fill(&in, '1', 65536);
    gen_str(&want, "!Protocol error: too big mbulk count string");
    check_gen("mbulk count over limit", &in, &want);

    gen_str(&in, "*");
    gen_fill(&in, '1', 65535);
    gen_str(&in, "\r\n");
    gen_str(&want, "!Protocol error: invalid multibulk length");
    check_gen("mbulk count at limit ended", &in, &want);

    gen_str(&in, "*1\r\n$");
    gen_fill(&in, '1', 65535);
    gen_str(&want, "~");
    check_gen("bulk count at limit", &in, &want);

    gen_str(&in, "*1\r\n$");
    gen_fill(&in, '1', 65536);
    gen_str(&want, "!Protocol error: too big bulk count string");
    check_gen("bulk count over limit", &in, &want);

    gen_str(&in, "*1\r\n$");
    gen_fill(&in, '1', 65535);
    gen_str(&in, "\r\n");
    gen_str(&want, "!Protocol error: invalid bulk length");
    check_gen("bulk count at limit ended", &in, &want);

    /* After a NUL the CR is never found: only the size limit ends the request. */
    gen_add(&in, "*1", 3);
    gen_fill(&in, '\r', 65533);
    gen_str(&want, "~");
    check_gen("NUL count at limit", &in, &want);

    gen_add(&in, "*1\r\n$4", 7);
    gen_fill(&in, '\n', 65534);
    gen_str(&want, "!Protocol error: too big bulk count string");
    check_gen("NUL bulk count over limit", &in, &want);
}
END_TEST

START_TEST(inline_lines_limited_like_redis)
{
    struct gen in = {0}, want = {0};

    gen_fill(&in, 'x', 65536);
    gen_str(&want, "~");
    check_gen("inline at limit", &in, &want);

    gen_fill(&in, 'x', 65537);
    gen_str(&want, "!Protocol error: too big inline request");
    check_gen("inline over limit", &in, &want);

    gen_fill(&in, 'x', 65536);
    gen_str(&in, "\n");
    gen_str(&want, "[");
    gen_fill(&want, 'x', 65536);
    gen_str(&want, "]");
    check_gen("inline at limit ended", &in, &want);

    /* A CR with no LF yet counts: Redis holds it while it waits for the LF. */
    gen_fill(&in, 'x', 65536);
    gen_str(&in, "\r");
    gen_str(&want, "!Protocol error: too big inline request");
    check_gen("inline CR over limit", &in, &want);

    gen_add(&in, "PING", 5);
    gen_fill(&in, '\n', 65531);
    gen_str(&want, "~");
    check_gen("inline NUL at limit", &in, &want);

    gen_add(&in, "PING", 5);
    gen_fill(&in, '\n', 65532);
    gen_str(&want, "!Protocol error: too big inline request");
    check_gen("inline NUL over limit", &in, &want);
}
END_TEST

/* Redis checks the inline limit only while no LF has arrived, so the same bytes are a
 * command when the CR LF arrive together and an error when the CR arrives alone. */
START_TEST(inline_limit_depends_on_lf_arrival_like_redis)
{
    struct resp_limits lim = {DEFAULT_MAX_BULK, 0};
    struct resp_parser p;
    size_t used;
    char *buf = malloc(65538);

    ck_assert_ptr_nonnull(buf);
    memset(buf, 'x', 65536);
    memcpy(buf + 65536, "\r\n", 2);

    resp_parser_init(&p);
    ck_assert_int_eq(resp_parser_feed(&p, &lim, buf, 65536, &used), RESP_INCOMPLETE);
    ck_assert_int_eq(resp_parser_feed(&p, &lim, buf + 65536, 2, &used), RESP_COMMAND);
    ck_assert_int_eq(p.argc, 1);
    ck_assert_uint_eq(p.argvlen[0], 65536);
    resp_parser_free(&p);

    resp_parser_init(&p);
    ck_assert_int_eq(resp_parser_feed(&p, &lim, buf, 65537, &used), RESP_ERROR);
    ck_assert_str_eq(resp_parser_error(&p), "Protocol error: too big inline request");
    resp_parser_free(&p);
    free(buf);
}
END_TEST

/* Arguments at and around RESP_BIG_ARG, mixed with small ones and pipelined, parse the same
 * at every split: big ones go to blocks of their own, small ones to the arena. */
START_TEST(big_arguments_split_anywhere)
{
    struct gen in = {0}, want = {0};
    const size_t sizes[] = {RESP_BIG_ARG, 1, RESP_BIG_ARG + 904, RESP_BIG_ARG - 1};
    char head[32];

    gen_str(&in, "*5\r\n$3\r\nSET\r\n");
    gen_str(&want, "[SET");
    for (size_t i = 0; i < 4; i++) {
        snprintf(head, sizeof(head), "$%zu\r\n", sizes[i]);
        gen_str(&in, head);
        gen_fill(&in, (char)('a' + i), sizes[i]);
        gen_str(&in, "\r\n");
        gen_str(&want, "|");
        gen_fill(&want, (char)('a' + i), sizes[i]);
    }
    gen_str(&in, "PING\r\n");
    gen_str(&want, "][PING]");
    check_gen("big arguments", &in, &want);
}
END_TEST

/* A big argument's block: where argv points, counted as parser memory while held, kept alive
 * by a reference after the command is released. */
START_TEST(big_argument_block_outlives_command)
{
    struct gen in = {0};
    struct resp_parser p;
    size_t used;

    gen_str(&in, "*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$5000\r\n");
    gen_fill(&in, 'x', 5000);
    gen_str(&in, "\r\n");
    resp_parser_init(&p);
    ck_assert_int_eq(resp_parser_feed(&p, NULL, in.s, in.len, &used), RESP_COMMAND);
    ck_assert_ptr_null(resp_parser_arg_block(&p, 0));
    ck_assert_ptr_null(resp_parser_arg_block(&p, 1));
    struct resp_block *b = resp_parser_arg_block(&p, 2);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_eq(p.argv[2], b->data + RESP_ARG_HEADROOM);
    ck_assert_uint_eq(p.argvlen[2], 5000);
    ck_assert_uint_ge(b->cap, RESP_ARG_HEADROOM + 5000 + 2);
    ck_assert_uint_ge(resp_parser_memory(&p), b->cap);
    ck_assert_int_eq(b->refs, 1);

    resp_block_ref(b);
    resp_parser_next(&p);
    ck_assert_uint_lt(resp_parser_memory(&p), 1024);
    ck_assert_int_eq(b->refs, 1);
    for (size_t i = 0; i < 5000; i++)
        REQUIRE(b->data[RESP_ARG_HEADROOM + i] == 'x');
    resp_block_unref(b); /* freed here: ASan and valgrind see a leak or a double free */
    resp_parser_free(&p);
    free(in.s);
}
END_TEST

START_TEST(idle_parser_holds_no_memory)
{
    struct resp_parser p;
    size_t used;
    char *arena;

    resp_parser_init(&p);
    ck_assert(resp_parser_idle(&p));
    ck_assert_uint_eq(resp_parser_pending(&p), 0);
    ck_assert_ptr_null(p.arena);
    ck_assert_ptr_null(p.line);
    ck_assert_ptr_null(p.argv);

    /* The hot path reuses the same arena: no allocation per command. */
    ck_assert_int_eq(
        resp_parser_feed(&p, NULL, IN("*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$1\r\nx\r\n"), &used),
        RESP_COMMAND);
    arena = p.argv[0];
    resp_parser_next(&p);
    ck_assert_int_eq(
        resp_parser_feed(&p, NULL, IN("*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$1\r\ny\r\n"), &used),
        RESP_COMMAND);
    ck_assert_ptr_eq(p.argv[0], arena);
    ck_assert_str_eq(p.argv[2], "y");
    resp_parser_next(&p);

    /* A partial inline line is held until its end. */
    ck_assert_int_eq(resp_parser_feed(&p, NULL, IN("ECHO abc"), &used), RESP_INCOMPLETE);
    ck_assert(!resp_parser_idle(&p));
    ck_assert_uint_eq(resp_parser_pending(&p), 8);
    ck_assert_ptr_nonnull(p.line);
    ck_assert_int_eq(resp_parser_feed(&p, NULL, IN("\r\n"), &used), RESP_COMMAND);
    ck_assert_str_eq(p.argv[1], "abc");
    resp_parser_next(&p);
    ck_assert(resp_parser_idle(&p));
    resp_parser_free(&p);
    ck_assert_ptr_null(p.arena);
    ck_assert_ptr_null(p.line);
    ck_assert_ptr_null(p.argv);
    ck_assert_ptr_null(p.argvlen);
}
END_TEST

START_TEST(feed_returns_after_each_command)
{
    struct resp_parser p;
    const char in[] = "PING\r\n*2\r\n$4\r\nECHO\r\n$1\r\na\r\nPI";
    size_t used;

    resp_parser_init(&p);
    ck_assert_int_eq(resp_parser_feed(&p, NULL, in, sizeof(in) - 1, &used), RESP_COMMAND);
    ck_assert_uint_eq(used, 6);
    ck_assert_int_eq(p.argc, 1);
    ck_assert_str_eq(p.argv[0], "PING");
    ck_assert_uint_eq(p.argvlen[0], 4);
    resp_parser_next(&p);
    ck_assert_int_eq(resp_parser_feed(&p, NULL, in + 6, sizeof(in) - 7, &used), RESP_COMMAND);
    ck_assert_uint_eq(used, 21);
    ck_assert_int_eq(p.argc, 2);
    ck_assert_str_eq(p.argv[1], "a");
    /* Feeding again without resp_parser_next releases the command first. */
    ck_assert_int_eq(resp_parser_feed(&p, NULL, in + 27, 2, &used), RESP_INCOMPLETE);
    ck_assert_uint_eq(used, 2);
    ck_assert_int_eq(p.argc, 0);
    ck_assert_uint_eq(resp_parser_pending(&p), 2);
    ck_assert(!resp_parser_idle(&p));
    resp_parser_free(&p);
}
END_TEST

/* A request cut at every byte and moved to a fresh parser at the cut ends as if it had not
 * moved; an error text built in the parser survives a move; the source is left empty. */
START_TEST(moved_parser_continues_the_request)
{
    const char in[] = "*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$5\r\nhello\r\n";
    const size_t n = sizeof(in) - 1;
    struct resp_parser a, b;
    size_t used;

    for (size_t cut = 1; cut < n; cut++) {
        resp_parser_init(&a);
        resp_parser_init(&b);
        ck_assert_int_eq(resp_parser_feed(&a, NULL, in, cut, &used), RESP_INCOMPLETE);
        resp_parser_move(&b, &a);
        ck_assert(resp_parser_idle(&a));
        ck_assert_uint_eq(resp_parser_pending(&a), 0);
        ck_assert_uint_eq(resp_parser_memory(&a), 0);
        ck_assert_uint_eq(resp_parser_pending(&b), cut);
        ck_assert_int_eq(resp_parser_feed(&b, NULL, in + cut, n - cut, &used), RESP_COMMAND);
        ck_assert_int_eq(b.argc, 3);
        ck_assert_str_eq(b.argv[0], "PUBLISH");
        ck_assert_str_eq(b.argv[1], "ch");
        ck_assert_str_eq(b.argv[2], "hello");
        resp_parser_free(&a);
        resp_parser_free(&b);
    }
    resp_parser_init(&a);
    resp_parser_init(&b);
    ck_assert_int_eq(resp_parser_feed(&a, NULL, "*1\r\n!x\r\n", 9, &used), RESP_ERROR);
    resp_parser_move(&b, &a);
    memset(&a, 0x55, sizeof(a)); /* nothing in b may still point into a */
    resp_parser_init(&a);
    ck_assert_str_eq(resp_parser_error(&b), "Protocol error: expected '$', got '!'");
    resp_parser_free(&b);
}
END_TEST

/* The most a big argument's block costs beyond twice the bytes received. */
#define BIG_BLOCK_MIN (sizeof(struct resp_block) + RESP_ARG_HEADROOM + 2)

START_TEST(huge_announced_bulk_costs_only_received_bytes)
{
    struct resp_parser p;
    struct resp_limits lim = {DEFAULT_MAX_BULK, 0};
    const char head[] = "*2\r\n$536870912\r\n0123456789";
    static char chunk[16384];
    size_t used, got = 0;

    resp_parser_init(&p);
    /* The announcement alone: no block yet, only the small argument arrays. */
    ck_assert_int_eq(resp_parser_feed(&p, &lim, head, sizeof(head) - 11, &used), RESP_INCOMPLETE);
    ck_assert_uint_le(resp_parser_memory(&p), 256);
    ck_assert_int_eq(resp_parser_feed(&p, &lim, head + sizeof(head) - 11, 10, &used),
                     RESP_INCOMPLETE);
    ck_assert_uint_eq(resp_parser_pending(&p), sizeof(head) - 1);
    ck_assert_uint_le(resp_parser_memory(&p), BIG_BLOCK_MIN + 512);
    ck_assert_uint_le(p.argv_cap, 8);

    /* One MiB more: the block doubles with the data, never towards the announced 512 MiB. */
    memset(chunk, 'z', sizeof(chunk));
    for (int i = 0; i < 64; i++) {
        ck_assert_int_eq(resp_parser_feed(&p, &lim, chunk, sizeof(chunk), &used), RESP_INCOMPLETE);
        got += used;
    }
    ck_assert_uint_eq(got, 1 << 20);
    ck_assert_uint_le(resp_parser_memory(&p), 2 * (got + 10) + BIG_BLOCK_MIN + 512);
    ck_assert_uint_eq(resp_parser_pending(&p), sizeof(head) - 1 + got);
    resp_parser_free(&p);

    /* A huge argument count costs only the arguments received. */
    resp_parser_init(&p);
    ck_assert_int_eq(resp_parser_feed(&p, &lim, IN("*2147483647\r\n$0\r\n\r\n$0\r\n\r\n"), &used),
                     RESP_INCOMPLETE);
    ck_assert_int_le(p.argv_cap, 8);
    ck_assert_uint_le(p.arena_cap, 256);
    resp_parser_free(&p);
}
END_TEST

/* Feeds a request holding one 24 MiB argument in pieces of step bytes and checks it. */
static void check_big_argument(size_t step)
{
    const size_t big = 24u << 20;
    struct resp_parser p;
    struct resp_limits lim = {DEFAULT_MAX_BULK, 0};
    char head[64];
    char *in;
    size_t hlen, len, off = 0, used;
    enum resp_status st = RESP_INCOMPLETE;

    hlen = (size_t)snprintf(head, sizeof(head), "*2\r\n$7\r\nPUBLISH\r\n$%zu\r\n", big);
    len = hlen + big + 2;
    in = malloc(len);
    ck_assert_ptr_nonnull(in);
    memcpy(in, head, hlen);
    for (size_t i = 0; i < big; i++)
        in[hlen + i] = (char)(i * 7 + (i >> 12));
    memcpy(in + hlen + big, "\r\n", 2);

    resp_parser_init(&p);
    while (off < len) {
        size_t n = len - off < step ? len - off : step;

        st = resp_parser_feed(&p, &lim, in + off, n, &used);
        off += used;
        if (st != RESP_INCOMPLETE)
            break;
        ck_assert_uint_eq(resp_parser_pending(&p), off);
        ck_assert_uint_le(resp_parser_memory(&p), 2 * off + BIG_BLOCK_MIN + 512);
    }
    ck_assert_int_eq(st, RESP_COMMAND);
    ck_assert_uint_eq(off, len);
    ck_assert_int_eq(p.argc, 2);
    ck_assert_str_eq(p.argv[0], "PUBLISH");
    ck_assert_uint_eq(p.argvlen[1], big);
    ck_assert(memcmp(p.argv[1], in + hlen, big) == 0);
    ck_assert_int_eq(p.argv[1][big], '\0');
    /* The big argument's block is not kept once the command is released. */
    resp_parser_next(&p);
    ck_assert_uint_le(resp_parser_memory(&p), 1024);
    resp_parser_free(&p);
    free(in);
}

START_TEST(argument_of_24_mib)
{
    check_big_argument(SIZE_MAX);
    check_big_argument(16384);
    check_big_argument(65521);
}
END_TEST

/* 200,000 three-byte arguments fed in 4 KiB pieces: the arena grows geometrically, so it
 * moves a few dozen times, not once per argument (which was quadratic under ASan). */
START_TEST(many_small_arguments_grow_the_arena_geometrically)
{
    enum { ARGS = 200000 };
    struct resp_parser p;
    size_t len = 0, cap = (size_t)ARGS * 10 + 32, used, off = 0, last_cap = 0;
    char *in = malloc(cap);
    int moves = 0;
    enum resp_status st = RESP_INCOMPLETE;

    len += (size_t)snprintf(in, cap, "*%d\r\n", ARGS);
    for (int i = 0; i < ARGS; i++)
        len += (size_t)snprintf(in + len, cap - len, "$3\r\n%03d\r\n", i % 1000);
    resp_parser_init(&p);
    while (off < len && st == RESP_INCOMPLETE) {
        size_t n = len - off < 4096 ? len - off : 4096;
        st = resp_parser_feed(&p, NULL, in + off, n, &used);
        off += used;
        if (p.arena_cap != last_cap) {
            moves++;
            last_cap = p.arena_cap;
        }
    }
    ck_assert_int_eq(st, RESP_COMMAND);
    ck_assert_int_eq(p.argc, ARGS);
    ck_assert_str_eq(p.argv[ARGS - 1], "999");
    ck_assert_msg(moves < 64, "the arena grew %d times", moves);
    ck_assert_uint_le(p.arena_cap, 2 * (size_t)ARGS * 4 + 1024);
    resp_parser_free(&p);
    free(in);
}
END_TEST

START_TEST(unauthenticated_limits_at_bounds)
{
    struct gen in = {0};
    struct resp_parser p;
    struct resp_limits lim = {DEFAULT_MAX_BULK, 1};
    size_t used;

    /* The largest bulk a client may send before AUTH goes through whole. */
    gen_str(&in, "*1\r\n$16384\r\n");
    gen_fill(&in, 'a', 16384);
    gen_str(&in, "\r\n");
    resp_parser_init(&p);
    ck_assert_int_eq(resp_parser_feed(&p, &lim, in.s, in.len, &used), RESP_COMMAND);
    ck_assert_uint_eq(p.argvlen[0], 16384);
    resp_parser_free(&p);
    free(in.s);

    /* So does the largest argument count. */
    memset(&in, 0, sizeof(in));
    gen_str(&in, "*10\r\n");
    for (int i = 0; i < 10; i++)
        gen_str(&in, "$1\r\na\r\n");
    resp_parser_init(&p);
    ck_assert_int_eq(resp_parser_feed(&p, &lim, in.s, in.len, &used), RESP_COMMAND);
    ck_assert_int_eq(p.argc, 10);
    resp_parser_free(&p);
    free(in.s);
}
END_TEST

/* The suite: tables first, then memory and size behaviour. */
static Suite *resp_suite(void)
{
    Suite *s = suite_create("resp");
    TCase *tables = tcase_create("tables");
    TCase *memory = tcase_create("memory");

    tcase_set_timeout(tables, 120);
    tcase_add_test(tables, multibulk_table_matches_redis);
    tcase_add_test(tables, unauthenticated_limits_match_redis);
    tcase_add_test(tables, inline_table_matches_redis);
    tcase_add_test(tables, pipelined_thousand_commands);
    tcase_add_test(tables, binary_arguments_all_byte_values);
    tcase_add_test(tables, count_lines_limited_like_redis);
    tcase_add_test(tables, inline_lines_limited_like_redis);
    tcase_add_test(tables, inline_limit_depends_on_lf_arrival_like_redis);
    suite_add_tcase(s, tables);

    tcase_set_timeout(memory, 120);
    tcase_add_test(tables, big_arguments_split_anywhere);
    tcase_add_test(memory, big_argument_block_outlives_command);
    tcase_add_test(memory, idle_parser_holds_no_memory);
    tcase_add_test(memory, feed_returns_after_each_command);
    tcase_add_test(memory, moved_parser_continues_the_request);
    tcase_add_test(memory, huge_announced_bulk_costs_only_received_bytes);
    tcase_add_test(memory, argument_of_24_mib);
    tcase_add_test(memory, unauthenticated_limits_at_bounds);
    tcase_add_test(memory, many_small_arguments_grow_the_arena_geometrically);
    suite_add_tcase(s, memory);
    return s;
}

UNIT_MAIN(resp_suite)
