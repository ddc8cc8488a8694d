/* Helpers for the robustness tests (badinput, slowconsumer, churn): a daemon's resident set
 * from /proc, one INFO field over a raw connection, and whether the daemon under test is the
 * sanitizer build (slower, bigger: tests scale their load and their bounds with it).
 * Header-only on top of itest.h: every function is static. */
#ifndef EVB_ITEST_MEM_H
#define EVB_ITEST_MEM_H

#include "itest.h"

/* A process's resident set in KiB, from /proc/PID/status (0 if unreadable). */
ITEST_UNUSED static long itest_rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = 0;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* Runs "INFO section" on a new connection and returns the integer value of field, or -1. */
ITEST_UNUSED static long long itest_info_field(int port, const char *section, const char *field)
{
    char cmd[128], head[32], key[128];
    long long value = -1;
    size_t len = 0;
    int fd = itest_connect(port);

    if (fd < 0)
        return -1;
    snprintf(cmd, sizeof(cmd), "INFO %s\r\n", section);
    snprintf(key, sizeof(key), "\n%s:", field);
    if (itest_send(fd, cmd) < 0)
        goto done;
    for (size_t i = 0; i + 1 < sizeof(head); i++) { /* "$<len>\r\n" */
        if (itest_read_exact(fd, head + i, 1, ITEST_TIMEOUT_MS) < 0)
            goto done;
        if (head[i] == '\n') {
            head[i + 1] = '\0';
            break;
        }
    }
    if (head[0] != '$' || sscanf(head + 1, "%zu", &len) != 1)
        goto done;
    char *body = malloc(len + 3);
    body[0] = '\n';
    if (itest_read_exact(fd, body + 1, len + 2, ITEST_TIMEOUT_MS) == 0) {
        body[len + 1] = '\0';
        char *at = strstr(body, key);
        if (at)
            value = atoll(at + strlen(key));
    }
    free(body);
done:
    close(fd);
    return value;
}

/* Whether $EVBROKERD is the ASan/UBSan build (its path has build-san), or ITEST_SAN=1. */
ITEST_UNUSED static int itest_is_san(void)
{
    const char *bin = getenv("EVBROKERD"), *flag = getenv("ITEST_SAN");
    return (flag && strcmp(flag, "1") == 0) || (bin && strstr(bin, "build-san") != NULL);
}

/* For the sanitizer build, shrinks ASan's quarantine of freed memory (256 MB by default) in
 * the environment the daemons inherit, so RSS figures measure the daemon, not the quarantine.
 * Keeps any ASAN_OPTIONS already set. Call before starting a daemon. */
ITEST_UNUSED static void itest_san_small_quarantine(void)
{
    const char *old = getenv("ASAN_OPTIONS");
    char opts[1024];

    if (!itest_is_san())
        return;
    snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=4", old ? old : "",
             old && *old ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
}

#endif
