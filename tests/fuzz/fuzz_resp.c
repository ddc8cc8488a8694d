/* libFuzzer harness for the request parser alone (src/resp.c): no server, no sockets.
 * Each input is parsed four ways (authenticated or not, default or tiny bulk limit), each
 * fed whole and again one byte at a time; both feedings must yield the same commands and
 * the same error, every argument must be NUL-terminated, and the limits must hold. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

/* Stop checking equality past this many commands (an input of tiny commands is cheap). */
#define FUZZ_MAX_COMMANDS 4096

/* What one feeding produced: a digest of every command, the count and the final status. */
struct outcome {
    uint64_t digest;
    long commands;
    int error;
    char error_text[128];
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with a message: the fuzzer records the input as a crash. */
static void fuzz_fail(const char *what)
{
    fprintf(stderr, "fuzz_resp: %s\n", what);
    abort();
}

/* Mixes bytes into a running FNV-1a digest. */
static uint64_t mix(uint64_t h, const void *p, size_t len)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

/* Checks one returned command against the parser's promises and folds it into o. */
static void check_command(const struct resp_parser *p, const struct resp_limits *lim,
                          struct outcome *o)
{
    if (p->argc <= 0)
        fuzz_fail("RESP_COMMAND with no arguments");
    /* The 10-argument limit is not checked here: as in Redis it applies to multibulk
     * requests only, and inline ones are bounded by their 64 KiB line. */
    o->digest = mix(o->digest, &p->argc, sizeof(p->argc));
    for (int i = 0; i < p->argc; i++) {
        if (p->argv[i][p->argvlen[i]] != '\0')
            fuzz_fail("argument not NUL-terminated");
        if ((long long)p->argvlen[i] > lim->max_bulk_len && p->argvlen[i] > RESP_INLINE_MAX)
            fuzz_fail("argument longer than the bulk limit");
        if (lim->unauthenticated && p->argvlen[i] > RESP_UNAUTH_MAX_BULK &&
            p->argvlen[i] > RESP_INLINE_MAX)
            fuzz_fail("unauthenticated argument longer than 16 KiB");
        o->digest = mix(o->digest, &p->argvlen[i], sizeof(p->argvlen[i]));
        o->digest = mix(o->digest, p->argv[i], p->argvlen[i]);
    }
    o->commands++;
}

/* Parses data fed in chunks of at most step bytes (0 = all at once) and records the outcome. */
static void parse(const uint8_t *data, size_t size, const struct resp_limits *lim, size_t step,
                  struct outcome *o)
{
    struct resp_parser p;
    size_t pos = 0;

    memset(o, 0, sizeof(*o));
    o->digest = 1469598103934665603ULL;
    resp_parser_init(&p);
    while (pos < size && o->commands < FUZZ_MAX_COMMANDS) {
        size_t len = step && size - pos > step ? step : size - pos;
        size_t used = 0;
        enum resp_status st = resp_parser_feed(&p, lim, (const char *)data + pos, len, &used);
        if (used > len)
            fuzz_fail("consumed more than it was given");
        pos += used;
        if (st == RESP_COMMAND) {
            check_command(&p, lim, o);
            resp_parser_next(&p);
        } else if (st == RESP_ERROR) {
            o->error = 1;
            snprintf(o->error_text, sizeof(o->error_text), "%s", resp_parser_error(&p));
            if (strncmp(o->error_text, "Protocol error", 14) != 0)
                fuzz_fail("error text without the Redis prefix");
            break;
        } else if (used != len) {
            fuzz_fail("RESP_INCOMPLETE without consuming everything");
        }
    }
    resp_parser_free(&p);
}

/* Requires two outcomes to be identical (the parser resumes at any byte boundary). */
static void same(const struct outcome *a, const struct outcome *b)
{
    if (a->commands != b->commands || a->digest != b->digest || a->error != b->error ||
        strcmp(a->error_text, b->error_text) != 0) {
        fprintf(stderr,
                "fuzz_resp: whole feed gave %ld commands error %d '%s'; byte-wise gave %ld "
                "commands error %d '%s'\n",
                a->commands, a->error, a->error_text, b->commands, b->error, b->error_text);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long long bulk_limits[] = {512LL * 1024 * 1024, 16};

    for (int unauth = 0; unauth < 2; unauth++) {
        for (int b = 0; b < 2; b++) {
            struct resp_limits lim = {bulk_limits[b], unauth};
            struct outcome whole, bytewise;
            parse(data, size, &lim, 0, &whole);
            parse(data, size, &lim, 1, &bytewise);
            same(&whole, &bytewise);
        }
    }
    return 0;
}
