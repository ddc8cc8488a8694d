/* Byte-exact protocol table: runs every case of wire_cases.txt (raw request bytes on one or
 * more connections -> exact reply bytes, and whether the server closes) against evbrokerd and,
 * in the same run, against a real redis-server, so the table is proven to be Redis's bytes.
 * Cases marked evb-only differ from Redis on purpose and run against evbrokerd alone.
 * File format: see the header comment of wire_cases.txt. */
#include "itest.h"

#include <ctype.h>

#define MAX_CONNS 10
#define IDLE_CHECK_MS 25 /* how long a finished case listens for bytes nobody expected */

/* A growable byte buffer. */
struct buf {
    char *p;
    size_t len, cap;
};

enum seg_kind { SEG_LIT, SEG_INT, SEG_LINE, SEG_DATA };

/* One piece of an expectation: literal bytes, or a placeholder. */
struct seg {
    enum seg_kind kind;
    struct buf lit;
};

enum step_kind { STEP_SEND, STEP_EXPECT, STEP_CLOSED, STEP_SLEEP };

/* One line of a case. */
struct step {
    enum step_kind kind;
    int conn;
    int lineno;
    struct buf data; /* STEP_SEND */
    struct seg *segs;
    size_t nsegs; /* STEP_EXPECT */
    int ms;       /* STEP_SLEEP */
};

/* A case: a name, flags and its steps. */
struct wcase {
    char name[128];
    int lineno;
    int evb_only;
    int redis_only;
    int profile;
    struct step *steps;
    size_t nsteps;
};

/* Server configurations cases may ask for; both servers get the same limits. */
static const struct profile {
    const char *name;
    const char *evb_conf;
    const char *redis_args[4];
    const char *auth; /* password the quiescence check must send, or NULL */
} profiles[] = {
    {"default", "", {NULL}, NULL},
    {"bulk1mb",
     "[limits]\nproto_max_bulk_len = 1mb\n",
     {"--proto-max-bulk-len", "1mb", NULL},
     NULL},
    {"auth", "[security]\nrequirepass = secret\n", {"--requirepass", "secret", NULL}, "secret"},
};
#define NPROFILES (sizeof(profiles) / sizeof(profiles[0]))

enum { TARGET_EVB, TARGET_REDIS, NTARGETS };
static const char *const target_names[NTARGETS] = {"evbrokerd", "redis-server"};
static struct itest_server servers[NTARGETS][NPROFILES];
static int server_failed[NTARGETS][NPROFILES]; /* could not start: skip, counted as failures */
static int exit_failures;

/* Appends n bytes to a buffer. */
static void buf_add(struct buf *b, const void *p, size_t n)
{
    if (b->cap - b->len < n + 1) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL)
            abort();
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* Drops the first n bytes of a buffer. */
static void buf_consume(struct buf *b, size_t n)
{
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

/* Value of a hex digit, or -1. */
static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes one escape at s (just after the backslash) into out. Returns the bytes of s used, or
 * -1 for an unknown escape. */
static int unescape_one(const char *s, struct buf *out)
{
    static const char from[] = "rntab0\\\"'{}e", to[] = "\r\n\t\a\b\0\\\"'{}\x1b";
    const char *hit = *s ? strchr(from, *s) : NULL;

    if (*s == 'x' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
        char c = (char)(hexval(s[1]) * 16 + hexval(s[2]));
        buf_add(out, &c, 1);
        return 3;
    }
    if (hit == NULL)
        return -1;
    buf_add(out, &to[hit - from], 1);
    return 1;
}

/* Decodes plain text with escapes (no placeholders) up to end into out. Returns 0 or -1. */
static int unescape_text(const char *s, const char *end, struct buf *out)
{
    while (s < end) {
        if (*s == '\\') {
            int n = unescape_one(s + 1, out);
            if (n < 0)
                return -1;
            s += 1 + n;
        } else {
            buf_add(out, s++, 1);
        }
    }
    return 0;
}

/* Starts a new segment of the given kind. */
static struct seg *seg_new(struct step *st, enum seg_kind kind)
{
    st->segs = realloc(st->segs, (st->nsegs + 1) * sizeof(*st->segs));
    struct seg *g = &st->segs[st->nsegs++];
    memset(g, 0, sizeof(*g));
    g->kind = kind;
    return g;
}

/* Parses the data of a '>' or '<' line: escapes, {repeat N TEXT}, and for expectations the
 * {int} and {line} placeholders. Fills st->data (send) or st->segs. Returns 0 or -1. */
static int parse_data(const char *s, struct step *st, int expect)
{
    struct buf *lit = NULL;

    while (*s) {
        if (lit == NULL) {
            lit = expect ? &seg_new(st, SEG_LIT)->lit : &st->data;
            buf_add(lit, "", 0);
        }
        if (*s == '{') {
            const char *close = strchr(s, '}');
            if (close == NULL)
                return -1;
            if (expect && strncmp(s, "{int}", 5) == 0) {
                seg_new(st, SEG_INT);
                lit = NULL;
            } else if (expect && strncmp(s, "{line}", 6) == 0) {
                seg_new(st, SEG_LINE);
                lit = NULL;
            } else if (expect && strncmp(s, "{data}", 6) == 0) {
                seg_new(st, SEG_DATA);
                lit = NULL;
            } else if (strncmp(s, "{repeat ", 8) == 0) {
                char *text;
                long n = strtol(s + 8, &text, 10);
                struct buf unit = {0};
                if (n <= 0 || *text != ' ' || unescape_text(text + 1, close, &unit) < 0)
                    return -1;
                for (long i = 0; i < n; i++)
                    buf_add(lit, unit.p, unit.len);
                free(unit.p);
            } else {
                return -1;
            }
            s = close + 1;
        } else if (*s == '\\') {
            int n = unescape_one(s + 1, lit);
            if (n < 0)
                return -1;
            s += 1 + n;
        } else {
            buf_add(lit, s++, 1);
        }
    }
    return 0;
}

/* Reads the case file. Returns the number of cases, or -1 after printing the bad line. */
static long load_cases(const char *path, struct wcase **out)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0;
    long ncases = 0;
    struct wcase *cases = NULL, *cur = NULL;

    if (f == NULL) {
        fprintf(stderr, "wire: cannot open %s\n", path);
        return -1;
    }
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        if (strncmp(line, "=== ", 4) == 0) {
            cases = realloc(cases, (size_t)(ncases + 1) * sizeof(*cases));
            cur = &cases[ncases++];
            memset(cur, 0, sizeof(*cur));
            cur->lineno = lineno;
            char *save = NULL, *tok = strtok_r(line + 4, " ", &save);
            snprintf(cur->name, sizeof(cur->name), "%s", tok ? tok : "?");
            while ((tok = strtok_r(NULL, " ", &save)) != NULL) {
                size_t p;
                if (strcmp(tok, "evb-only") == 0 || strcmp(tok, "redis-only") == 0) {
                    *(tok[0] == 'e' ? &cur->evb_only : &cur->redis_only) = 1;
                    continue;
                }
                for (p = 0; p < NPROFILES; p++)
                    if (strncmp(tok, "profile=", 8) == 0 && strcmp(tok + 8, profiles[p].name) == 0)
                        break;
                if (p == NPROFILES)
                    goto bad;
                cur->profile = (int)p;
            }
            continue;
        }
        /* Step lines: [N]> data, [N]< data, [N]< closed, sleep MS */
        if (cur == NULL)
            goto bad;
        cur->steps = realloc(cur->steps, (cur->nsteps + 1) * sizeof(*cur->steps));
        struct step *st = &cur->steps[cur->nsteps++];
        memset(st, 0, sizeof(*st));
        st->lineno = lineno;
        char *p = line;
        if (strncmp(p, "sleep ", 6) == 0) {
            st->kind = STEP_SLEEP;
            st->ms = atoi(p + 6);
            continue;
        }
        st->conn = 1;
        if (*p >= '1' && *p <= '9')
            st->conn = *p++ - '0';
        if ((*p != '>' && *p != '<') || (p[1] != ' ' && p[1] != '\0'))
            goto bad;
        int expect = *p == '<';
        p += p[1] ? 2 : 1;
        if (expect && strcmp(p, "closed") == 0) {
            st->kind = STEP_CLOSED;
            continue;
        }
        st->kind = expect ? STEP_EXPECT : STEP_SEND;
        if (parse_data(p, st, expect) < 0)
            goto bad;
    }
    free(line);
    fclose(f);
    *out = cases;
    return ncases;
bad:
    fprintf(stderr, "wire: %s:%d: cannot parse this line\n", path, lineno);
    free(line);
    fclose(f);
    return -1;
}

/* Matches an expectation against received bytes: 1 and *used when complete, 0 when more
 * bytes are needed, -1 on a mismatch. */
static int match_segs(const struct step *st, const struct buf *b, size_t *used)
{
    size_t pos = 0, last_int = 0;

    for (size_t i = 0; i < st->nsegs; i++) {
        const struct seg *g = &st->segs[i];
        if (g->kind == SEG_LIT) {
            size_t n = g->lit.len < b->len - pos ? g->lit.len : b->len - pos;
            if (memcmp(b->p + pos, g->lit.p, n) != 0)
                return -1;
            if (n < g->lit.len)
                return 0;
            pos += n;
        } else if (g->kind == SEG_INT) {
            size_t start = pos;
            if (pos < b->len && b->p[pos] == '-')
                pos++;
            while (pos < b->len && isdigit((unsigned char)b->p[pos]))
                pos++;
            if (pos == b->len)
                return 0;
            if (pos == start || (pos == start + 1 && b->p[start] == '-'))
                return -1;
            last_int = b->p[start] == '-' ? 0 : strtoul(b->p + start, NULL, 10);
        } else if (g->kind == SEG_DATA) {
            if (b->len - pos < last_int)
                return 0;
            pos += last_int;
        } else {
            const char *cr = memchr(b->p + pos, '\r', b->len - pos);
            if (cr == NULL)
                return 0;
            pos = (size_t)(cr - b->p);
        }
    }
    *used = pos;
    return 1;
}

/* Appends a printable rendering of bytes (at most 240 of them) to out. */
static void render(char *out, size_t outlen, const char *p, size_t n)
{
    size_t o = strlen(out);
    for (size_t i = 0; i < n && i < 240 && o + 6 < outlen; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\r')
            o += (size_t)snprintf(out + o, outlen - o, "\\r");
        else if (c == '\n')
            o += (size_t)snprintf(out + o, outlen - o, "\\n");
        else if (c >= 0x20 && c < 0x7f && c != '\\')
            out[o++] = (char)c, out[o] = '\0';
        else
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
    }
    if (n > 240 && o + 4 < outlen)
        snprintf(out + o, outlen - o, "...");
}

/* Renders an expectation back into the file's notation. */
static void render_expect(char *out, size_t outlen, const struct step *st)
{
    for (size_t i = 0; i < st->nsegs; i++) {
        const struct seg *g = &st->segs[i];
        if (g->kind == SEG_LIT)
            render(out, outlen, g->lit.p, g->lit.len);
        else
            snprintf(out + strlen(out), outlen - strlen(out), "%s",
                     g->kind == SEG_INT    ? "{int}"
                     : g->kind == SEG_LINE ? "{line}"
                                           : "{data}");
    }
}

/* Open connections of one case run and the bytes received but not yet matched. */
struct conns {
    int fd[MAX_CONNS];
    int closed[MAX_CONNS];
    struct buf in[MAX_CONNS];
};

/* Reads more bytes for connection i. Returns what itest_read_some does. */
static ssize_t conn_read(struct conns *cs, int i, int timeout_ms)
{
    char tmp[65536];
    ssize_t n = itest_read_some(cs->fd[i], tmp, sizeof(tmp), timeout_ms);
    if (n > 0)
        buf_add(&cs->in[i], tmp, (size_t)n);
    return n;
}

/* Runs one step. Returns 0, or -1 with why filled in. */
static int run_step(struct conns *cs, const struct step *st, int port, char *why, size_t wl)
{
    int i = st->conn;

    if (st->kind == STEP_SLEEP) {
        itest_sleep_ms(st->ms);
        return 0;
    }
    if (cs->fd[i] < 0 && (cs->fd[i] = itest_connect(port)) < 0) {
        snprintf(why, wl, "line %d: cannot connect", st->lineno);
        return -1;
    }
    if (st->kind == STEP_SEND) {
        if (itest_write_all(cs->fd[i], st->data.p, st->data.len) == 0)
            return 0;
        snprintf(why, wl, "line %d: write failed: %s", st->lineno, strerror(errno));
        return -1;
    }
    if (st->kind == STEP_CLOSED) {
        if (cs->in[i].len == 0 && conn_read(cs, i, ITEST_TIMEOUT_MS) == 0) {
            cs->closed[i] = 1;
            return 0;
        }
        snprintf(why, wl, "line %d: connection %d not closed; got: ", st->lineno, i);
        render(why, wl, cs->in[i].p, cs->in[i].len);
        return -1;
    }
    long long deadline = itest_now_ms() + ITEST_TIMEOUT_MS;
    for (;;) {
        size_t used = 0;
        int m = match_segs(st, &cs->in[i], &used);
        if (m == 1) {
            buf_consume(&cs->in[i], used);
            return 0;
        }
        ssize_t n = 0;
        if (m == 0) {
            long long left = deadline - itest_now_ms();
            n = conn_read(cs, i, left > 0 ? (int)left : 0);
            if (n > 0)
                continue;
        }
        snprintf(why, wl, "line %d: conn %d%s\n      want: ", st->lineno, i,
                 m < 0    ? " mismatch"
                 : n == 0 ? " closed early"
                          : " timed out");
        render_expect(why, wl, st);
        snprintf(why + strlen(why), wl - strlen(why), "\n      got:  ");
        render(why, wl, cs->in[i].p, cs->in[i].len);
        return -1;
    }
}

/* Polls a fresh connection until no channel, pattern or shard channel is left, so the next
 * case starts from an empty server. Returns 0, or -1 if the server never quiesces. */
static int wait_quiet(int port, const char *auth)
{
    char req[256], want[64], got[256];
    snprintf(req, sizeof(req), "%s%s%sPUBSUB NUMPAT\r\nPUBSUB CHANNELS\r\nPUBSUB SHARDCHANNELS\r\n",
             auth ? "AUTH " : "", auth ? auth : "", auth ? "\r\n" : "");
    snprintf(want, sizeof(want), "%s:0\r\n*0\r\n*0\r\n", auth ? "+OK\r\n" : "");
    for (int tries = 0; tries < 200; tries++) {
        int fd = itest_connect(port);
        if (fd < 0)
            return -1;
        int rc =
            itest_send(fd, req) == 0 ? itest_expect(fd, want, strlen(want), got, sizeof(got)) : -1;
        close(fd);
        if (rc == 0)
            return 0;
        itest_sleep_ms(10);
    }
    return -1;
}

/* Returns the running server for a target and profile, (re)starting it when needed. */
static struct itest_server *get_server(int target, int profile)
{
    struct itest_server *s = &servers[target][profile];

    if (s->pid > 0 && itest_alive(s))
        return s;
    if (s->dir[0]) {
        fprintf(stderr, "wire: %s (%s) died; restarting it\n", target_names[target],
                profiles[profile].name);
        itest_dump_log(s);
        itest_rmtree(s->dir);
        exit_failures++;
    }
    if (server_failed[target][profile])
        return NULL;
    int rc = target == TARGET_EVB ? itest_evb_start(s, 0, profiles[profile].evb_conf)
                                  : itest_redis_start(s, profiles[profile].redis_args);
    if (rc < 0) {
        server_failed[target][profile] = 1;
        return NULL;
    }
    return s;
}

/* Runs one case against one server. Returns 0, or -1 with why filled in. */
static int run_case(const struct wcase *wc, int target, char *why, size_t wl)
{
    struct itest_server *s = get_server(target, wc->profile);
    struct conns cs;
    int rc = 0;

    if (s == NULL) {
        snprintf(why, wl, "server could not start");
        return -1;
    }
    memset(&cs, 0, sizeof(cs));
    for (int i = 0; i < MAX_CONNS; i++) {
        cs.fd[i] = -1;
        buf_add(&cs.in[i], "", 0); /* never a NULL buffer, even when empty */
    }
    for (size_t k = 0; k < wc->nsteps && rc == 0; k++)
        rc = run_step(&cs, &wc->steps[k], s->port, why, wl);
    if (rc == 0) {
        /* Nothing may arrive that the case did not expect. */
        itest_sleep_ms(IDLE_CHECK_MS);
        for (int i = 0; i < MAX_CONNS && rc == 0; i++) {
            if (cs.fd[i] < 0 || cs.closed[i])
                continue;
            conn_read(&cs, i, 0);
            if (cs.in[i].len > 0) {
                snprintf(why, wl, "conn %d: unexpected extra bytes: ", i);
                render(why, wl, cs.in[i].p, cs.in[i].len);
                rc = -1;
            }
        }
    }
    for (int i = 0; i < MAX_CONNS; i++) {
        if (cs.fd[i] >= 0)
            close(cs.fd[i]);
        free(cs.in[i].p);
    }
    if (itest_alive(s) && wait_quiet(s->port, profiles[wc->profile].auth) < 0 && rc == 0) {
        snprintf(why, wl, "subscriptions left after the case's connections closed");
        rc = -1;
    }
    if (!itest_alive(s) && rc == 0) {
        snprintf(why, wl, "server died");
        rc = -1;
    }
    return rc;
}

/* Frees a case's steps. */
static void free_case(struct wcase *wc)
{
    for (size_t k = 0; k < wc->nsteps; k++) {
        struct step *st = &wc->steps[k];
        free(st->data.p);
        for (size_t g = 0; g < st->nsegs; g++)
            free(st->segs[g].lit.p);
        free(st->segs);
    }
    free(wc->steps);
}

int main(int argc, char **argv)
{
    const char *dir = getenv("ITEST_SRC_DIR");
    char path[512];
    struct wcase *cases = NULL;
    int passed[NTARGETS] = {0}, failed[NTARGETS] = {0}, evb_only = 0, redis_only = 0, bad = 0;
    static char why[8192];

    if (argc > 1)
        snprintf(path, sizeof(path), "%s", argv[1]);
    else
        snprintf(path, sizeof(path), "%s/wire_cases.txt", dir ? dir : "tests/integration");
    signal(SIGPIPE, SIG_IGN);
    long n = load_cases(path, &cases);
    if (n < 0) {
        printf("FAIL wire/load: %s does not parse\n", path);
        return EXIT_FAILURE;
    }
    for (long c = 0; c < n; c++) {
        char line[16384] = "";
        int case_bad = 0;
        evb_only += cases[c].evb_only;
        redis_only += cases[c].redis_only;
        for (int t = 0; t < NTARGETS; t++) {
            if ((t == TARGET_REDIS && cases[c].evb_only) ||
                (t == TARGET_EVB && cases[c].redis_only))
                continue;
            why[0] = '\0';
            if (run_case(&cases[c], t, why, sizeof(why)) == 0) {
                passed[t]++;
                continue;
            }
            failed[t]++;
            case_bad = 1;
            snprintf(line + strlen(line), sizeof(line) - strlen(line), "\n    %s: %s",
                     target_names[t], why);
        }
        bad += case_bad;
        if (case_bad)
            printf("FAIL wire/%s (line %d):%s\n", cases[c].name, cases[c].lineno, line);
        else
            printf("ok wire/%s%s\n", cases[c].name,
                   cases[c].evb_only     ? " (evb-only)"
                   : cases[c].redis_only ? " (redis-only)"
                                         : "");
        fflush(stdout);
        free_case(&cases[c]);
    }
    free(cases);
    for (int t = 0; t < NTARGETS; t++)
        for (size_t p = 0; p < NPROFILES; p++) {
            struct itest_server *s = &servers[t][p];
            if (s->pid > 0 && itest_stop(s) < 0 && t == TARGET_EVB) {
                printf("FAIL wire/%s-clean-exit-%s: non-zero exit after SIGTERM (see log)\n",
                       target_names[t], profiles[p].name);
                bad++;
            }
        }
    printf("wire: %ld cases (%d evb-only, %d redis-only); evbrokerd %d passed, %d failed; "
           "redis-server %d passed, %d failed\n",
           n, evb_only, redis_only, passed[TARGET_EVB], failed[TARGET_EVB], passed[TARGET_REDIS],
           failed[TARGET_REDIS]);
    if (exit_failures)
        printf("wire: a server died %d time(s) during the run\n", exit_failures);
    return bad || exit_failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
