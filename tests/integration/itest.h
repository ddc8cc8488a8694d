/* Shared helpers for the integration tests: throwaway evbrokerd and redis-server processes on
 * free ports (each in its own mkdtemp directory, stopped by PID), raw socket I/O that never
 * blocks longer than a timeout, and a Check runner printing one "ok NAME" or "FAIL NAME: why"
 * line per test for scripts/run-integration.sh. Header-only: every function is static. */
#ifndef EVB_ITEST_H
#define EVB_ITEST_H

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ITEST_UNUSED __attribute__((unused))
/* Default wait for one reply or event; only reached when something is already wrong. */
#define ITEST_TIMEOUT_MS 10000
/* Start-up attempts, each on a fresh port, in case another process takes the port first. */
#define ITEST_START_TRIES 10

/* A daemon this test started: evbrokerd or redis-server. */
struct itest_server {
    pid_t pid;
    int port;
    int is_redis;
    char dir[256];      /* mkdtemp directory holding the config, log and socket */
    char conf[300];     /* config file (evbrokerd only) */
    char log[300];      /* stdout and stderr of the daemon */
    char unixsock[300]; /* unix socket path, empty if none */
};

/* Milliseconds on a monotonic clock. */
ITEST_UNUSED static long long itest_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps for ms milliseconds. */
ITEST_UNUSED static void itest_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Returns a port that was free a moment ago: the kernel's pick for a bind to port 0. */
ITEST_UNUSED static int itest_free_port(void)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
        port = ntohs(sin.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Creates a private directory under $ITEST_TMPDIR (the runner's) or /tmp. */
ITEST_UNUSED static int itest_mkdtemp(char *out, size_t len, const char *tag)
{
    const char *base = getenv("ITEST_TMPDIR");
    snprintf(out, len, "%s/%s.XXXXXX", base && *base ? base : "/tmp", tag);
    return mkdtemp(out) ? 0 : -1;
}

/* nftw callback removing one entry. */
static int itest_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* Removes a directory this test created, with everything in it. */
ITEST_UNUSED static void itest_rmtree(const char *dir)
{
    if (dir[0])
        nftw(dir, itest_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Connects a blocking TCP socket to 127.0.0.1:port with 10 s send and receive timeouts. */
ITEST_UNUSED static int itest_connect(int port)
{
    struct sockaddr_in sin;
    struct timeval tv = {ITEST_TIMEOUT_MS / 1000, 0};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Connects to a unix socket path, with the same timeouts as itest_connect. */
ITEST_UNUSED static int itest_connect_unix(const char *path)
{
    struct sockaddr_un sun;
    struct timeval tv = {ITEST_TIMEOUT_MS / 1000, 0};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (fd < 0)
        return -1;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        close(fd);
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Writes all of buf. Returns 0, or -1 on error or timeout. */
ITEST_UNUSED static int itest_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Writes a C string. Returns 0 or -1. */
ITEST_UNUSED static int itest_send(int fd, const char *s)
{
    return itest_write_all(fd, s, strlen(s));
}

/* Reads whatever arrives within timeout_ms (at most len bytes). Returns the count, 0 on EOF,
 * -1 on error, -2 on timeout. */
ITEST_UNUSED static ssize_t itest_read_some(int fd, void *buf, size_t len, int timeout_ms)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    long long deadline = itest_now_ms() + timeout_ms;

    for (;;) {
        long long left = deadline - itest_now_ms();
        int rc = poll(&pfd, 1, left > 0 ? (int)left : 0);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return -1;
        if (rc == 0)
            return -2;
        ssize_t n = recv(fd, buf, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == ECONNRESET)
            return 0;
        return n;
    }
}

/* Reads exactly len bytes within timeout_ms in total. Returns 0, or -1 (error, EOF, timeout). */
ITEST_UNUSED static int itest_read_exact(int fd, void *buf, size_t len, int timeout_ms)
{
    char *p = buf;
    long long deadline = itest_now_ms() + timeout_ms;

    while (len > 0) {
        long long left = deadline - itest_now_ms();
        ssize_t n = itest_read_some(fd, p, len, left > 0 ? (int)left : 0);
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads len bytes and compares them with want. Returns 0 when equal; else -1 and a printable
 * description of what arrived in got (truncated to gotlen). */
ITEST_UNUSED static int itest_expect(int fd, const char *want, size_t len, char *got, size_t gotlen)
{
    char *buf = malloc(len + 1);
    int rc = itest_read_exact(fd, buf, len, ITEST_TIMEOUT_MS);

    if (rc == 0 && memcmp(buf, want, len) == 0) {
        free(buf);
        return 0;
    }
    if (got && gotlen) {
        size_t o = 0;
        o += (size_t)snprintf(got, gotlen, "%s", rc < 0 ? "(short read) " : "");
        for (size_t i = 0; rc == 0 && i < len && o + 5 < gotlen; i++) {
            unsigned char c = (unsigned char)buf[i];
            o += (size_t)snprintf(got + o, gotlen - o, c >= 0x20 && c < 0x7f ? "%c" : "\\x%02x", c);
        }
    }
    free(buf);
    return -1;
}

/* Waits for the peer to close. Returns 1 on EOF or reset, 0 if bytes or nothing came. */
ITEST_UNUSED static int itest_wait_closed(int fd, int timeout_ms)
{
    char buf[256];
    return itest_read_some(fd, buf, sizeof(buf), timeout_ms) == 0;
}

/* Starts a process with stdout and stderr to logpath and stdin from /dev/null. It gets
 * SIGTERM if this process dies first (PR_SET_PDEATHSIG), so a crashed test leaks nothing. */
ITEST_UNUSED static pid_t itest_spawn(char *const argv[], const char *logpath)
{
    pid_t parent = getpid();
    pid_t pid = fork();

    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(127);
    int in = open("/dev/null", O_RDONLY);
    int out = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0)
        _exit(127);
    dup2(in, 0);
    dup2(out, 1);
    dup2(out, 2);
    execvp(argv[0], argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* Waits up to timeout_ms for a child to exit. Returns its wait status, or -1 if it runs on. */
ITEST_UNUSED static int itest_wait_pid(pid_t pid, int timeout_ms)
{
    long long deadline = itest_now_ms() + timeout_ms;
    int status;

    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0 || itest_now_ms() >= deadline)
            return -1;
        itest_sleep_ms(5);
    }
}

/* Waits until the server accepts a connection. Returns 0, or -1 if it exited or timed out. */
static int itest_wait_ready(struct itest_server *s, int timeout_ms)
{
    long long deadline = itest_now_ms() + timeout_ms;

    while (itest_now_ms() < deadline) {
        int fd = s->port > 0 ? itest_connect(s->port) : itest_connect_unix(s->unixsock);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            return -1;
        }
        itest_sleep_ms(10);
    }
    return -1;
}

/* Prints the last lines of a server's log to stderr, for a failure's diagnosis. */
ITEST_UNUSED static void itest_dump_log(const struct itest_server *s)
{
    char line[512];
    FILE *f = fopen(s->log, "r");
    long n = 0;

    if (f == NULL)
        return;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, n > 4000 ? n - 4000 : 0, SEEK_SET);
    fprintf(stderr, "---- %s (tail)\n", s->log);
    while (fgets(line, sizeof(line), f))
        fprintf(stderr, "  | %s", line);
    fclose(f);
}

/* Sets out to dir + "/" + name (a helper, so the compiler sees no overlapping snprintf). */
static void itest_path(char *out, size_t len, const char *dir, const char *name)
{
    size_t d = strlen(dir), n = strlen(name);
    if (d + n + 2 > len)
        abort();
    memmove(out, dir, d);
    out[d] = '/';
    memcpy(out + d + 1, name, n + 1);
}

/* Spawns a server on s->port and waits until it answers; on failure kills it (the caller may
 * retry on another port). Returns 0, or -1. */
static int itest_spawn_ready(struct itest_server *s, char *const argv[])
{
    s->pid = itest_spawn(argv, s->log);
    if (s->pid > 0 && itest_wait_ready(s, ITEST_TIMEOUT_MS) == 0)
        return 0;
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        itest_wait_pid(s->pid, 2000);
        s->pid = 0;
    }
    return -1;
}

/* Starts evbrokerd ($EVBROKERD) on a free port with "[server] port/bind", a unix socket when
 * want_unix, and extra config text appended verbatim. Returns 0, or -1 after logging why. */
ITEST_UNUSED static int itest_evb_start(struct itest_server *s, int want_unix, const char *extra)
{
    const char *bin = getenv("EVBROKERD");

    memset(s, 0, sizeof(*s));
    if (bin == NULL || itest_mkdtemp(s->dir, sizeof(s->dir), "evb") < 0) {
        fprintf(stderr, "itest: EVBROKERD unset or mkdtemp failed\n");
        return -1;
    }
    itest_path(s->conf, sizeof(s->conf), s->dir, "evbrokerd.conf");
    itest_path(s->log, sizeof(s->log), s->dir, "evbrokerd.log");
    if (want_unix)
        itest_path(s->unixsock, sizeof(s->unixsock), s->dir, "evb.sock");
    for (int attempt = 0; attempt < ITEST_START_TRIES; attempt++) {
        FILE *f = fopen(s->conf, "w");
        if (f == NULL)
            return -1;
        s->port = itest_free_port();
        fprintf(f, "[server]\nport = %d\nbind = 127.0.0.1\n", s->port);
        if (want_unix)
            fprintf(f, "unixsocket = %s\n", s->unixsock);
        fprintf(f, "[log]\nlevel = verbose\n%s", extra ? extra : "");
        fclose(f);
        char *argv[] = {(char *)bin, "-c", s->conf, NULL};
        if (itest_spawn_ready(s, argv) == 0)
            return 0;
    }
    fprintf(stderr, "itest: evbrokerd did not start\n");
    itest_dump_log(s);
    return -1;
}

/* Starts redis-server on a free port, no persistence, plus extra "--key value" arguments
 * (NULL-terminated). Returns 0, or -1. */
ITEST_UNUSED static int itest_redis_start(struct itest_server *s, const char *const *extra)
{
    memset(s, 0, sizeof(*s));
    s->is_redis = 1;
    if (itest_mkdtemp(s->dir, sizeof(s->dir), "redis") < 0)
        return -1;
    itest_path(s->log, sizeof(s->log), s->dir, "redis.log");
    for (int attempt = 0; attempt < ITEST_START_TRIES; attempt++) {
        char port[16];
        const char *argv[40] = {"redis-server", "--port",    port,   "--bind",
                                "127.0.0.1",    "--save",    "",     "--appendonly",
                                "no",           "--dir",     s->dir, "--daemonize",
                                "no",           "--logfile", "",     NULL};
        int n = 15;
        s->port = itest_free_port();
        snprintf(port, sizeof(port), "%d", s->port);
        for (int i = 0; extra && extra[i] && n < 38; i++)
            argv[n++] = extra[i];
        argv[n] = NULL;
        if (itest_spawn_ready(s, (char *const *)argv) == 0)
            return 0;
    }
    fprintf(stderr, "itest: redis-server did not start\n");
    itest_dump_log(s);
    return -1;
}

/* Whether the server process is still running. */
ITEST_UNUSED static int itest_alive(struct itest_server *s)
{
    int status;
    if (s->pid <= 0)
        return 0;
    if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
        s->pid = 0;
        return 0;
    }
    return 1;
}

/* Stops the server by its PID (SIGTERM, then SIGKILL after 10 s) and removes its directory.
 * Returns 0 when it exited with status 0 (so sanitizer reports fail the test), else -1. */
ITEST_UNUSED static int itest_stop(struct itest_server *s)
{
    int status = -1, rc = -1;

    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        status = itest_wait_pid(s->pid, ITEST_TIMEOUT_MS);
        if (status == -1) {
            kill(s->pid, SIGKILL);
            itest_wait_pid(s->pid, 2000);
            fprintf(stderr, "itest: pid %d ignored SIGTERM\n", (int)s->pid);
        }
        rc = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
        if (rc < 0) {
            fprintf(stderr, "itest: %s pid %d exit status 0x%x\n",
                    s->is_redis ? "redis-server" : "evbrokerd", (int)s->pid, status);
            itest_dump_log(s);
        }
        s->pid = 0;
    }
    itest_rmtree(s->dir);
    s->dir[0] = '\0';
    return rc;
}

/* Runs a Check suite, one TCase per test, forking each, and prints "ok PREFIX/TCASE" or
 * "FAIL PREFIX/TCASE: file:line: message" per test. Returns the process exit status. */
ITEST_UNUSED static int itest_run_suite(Suite *suite, const char *prefix)
{
    SRunner *sr = srunner_create(suite);
    int failed;

    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_SILENT);
    TestResult **res = srunner_results(sr);
    int n = srunner_ntests_run(sr);
    for (int i = 0; i < n; i++) {
        if (tr_rtype(res[i]) == CK_PASS)
            printf("ok %s/%s\n", prefix, tr_tcname(res[i]));
        else
            printf("FAIL %s/%s: %s:%d: %s\n", prefix, tr_tcname(res[i]), tr_lfile(res[i]),
                   tr_lno(res[i]), tr_msg(res[i]));
    }
    free(res);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    fflush(stdout);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
