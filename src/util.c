/* Allocation, parsing and hashing helpers shared by all modules.
 * Everything here is pure apart from the allocation-failure abort. */
#include "util.h"

/* An explicit fall-through that both gcc and clang understand. */
#define EVB_FALLTHROUGH __attribute__((fallthrough))

#include <ctype.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#ifdef EVB_JEMALLOC
#include <jemalloc/jemalloc.h>
#else
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Reports an allocation failure and aborts: there is no sane way to go on. */
static void oom(size_t n)
{
    fprintf(stderr, "evbrokerd: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *xaligned_alloc(size_t align, size_t n)
{
    void *p = aligned_alloc(align, n);
    if (p == NULL)
        oom(n);
    return p;
}

void *xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (p == NULL)
        oom(count * n);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    return xmemdup(s, strlen(s));
}

char *xmemdup(const void *p, size_t len)
{
    char *q = xmalloc(len + 1);
    if (len)
        memcpy(q, p, len);
    q[len] = '\0';
    return q;
}

void util_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "evbrokerd: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}

int util_parse_ll(const char *s, size_t len, long long *out)
{
    unsigned long long v = 0, limit;
    size_t i = 0;
    int neg = 0;

    if (len == 0 || len > 20)
        return -1;
    if (len == 1 && s[0] == '0') {
        *out = 0;
        return 0;
    }
    if (s[0] == '-') {
        neg = 1;
        i = 1;
        if (len == 1)
            return -1;
    }
    /* No leading zeros: "01" and "-0" are not canonical integers. */
    if (s[i] < '1' || s[i] > '9')
        return -1;
    /* 19 digits always fit in 64 bits and 20 never fit a long long, so the loop needs no
     * overflow test per digit (the parser runs this for every length line it reads). */
    if (len - i > 19)
        return -1;
    limit = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
    for (; i < len; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9)
            return -1;
        v = v * 10 + d;
    }
    if (v > limit)
        return -1;
    if (neg)
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    else
        *out = (long long)v;
    return 0;
}

int util_parse_size(const char *s, long long *out)
{
    static const struct {
        const char *suffix;
        long long mul;
    } units[] = {
        {"", 1},
        {"b", 1},
        {"k", 1000},
        {"kb", 1024},
        {"m", 1000000},
        {"mb", 1024 * 1024},
        {"g", 1000000000LL},
        {"gb", 1024LL * 1024 * 1024},
    };
    size_t n = 0;
    long long v;

    while (s[n] >= '0' && s[n] <= '9')
        n++;
    if (n == 0 || util_parse_ll(s, n, &v) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(s + n, units[i].suffix) == 0) {
            if (v > LLONG_MAX / units[i].mul)
                return -1;
            *out = v * units[i].mul;
            return 0;
        }
    }
    return -1;
}

int util_has_word(const char *list, const char *word)
{
    size_t len = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += len)
        if ((p == list || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0'))
            return 1;
    return 0;
}

int util_strcaseeq(const char *name, const char *buf, size_t len)
{
    /* ASCII folding as strncasecmp does in the C locale, without its strlen and locale
     * lookups: command dispatch runs this for every table entry it passes. */
    for (size_t i = 0; i < len; i++) {
        unsigned char a = (unsigned char)name[i], b = (unsigned char)buf[i];
        if (a == '\0')
            return 0;
        if (a != b) {
            if (a >= 'A' && a <= 'Z')
                a = (unsigned char)(a + 32);
            if (b >= 'A' && b <= 'Z')
                b = (unsigned char)(b + 32);
            if (a != b)
                return 0;
        }
    }
    return name[len] == '\0';
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

/* Reads 8 little-endian bytes. */
static uint64_t load64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* SipHash with one compression and two finalization rounds, as Redis uses for its dicts:
 * fast on short keys and still keyed, so crafted channel names cannot target a bucket. */
uint64_t util_siphash(const void *in, size_t len, const uint8_t key[16])
{
    const uint8_t *p = in;
    uint64_t k0 = load64(key), k1 = load64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    uint64_t b = (uint64_t)len << 56, m;
    const uint8_t *end = p + (len - len % 8);

    for (; p != end; p += 8) {
        m = load64(p);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    switch (len & 7) {
    case 7:
        b |= (uint64_t)p[6] << 48;
        EVB_FALLTHROUGH;
    case 6:
        b |= (uint64_t)p[5] << 40;
        EVB_FALLTHROUGH;
    case 5:
        b |= (uint64_t)p[4] << 32;
        EVB_FALLTHROUGH;
    case 4:
        b |= (uint64_t)p[3] << 24;
        EVB_FALLTHROUGH;
    case 3:
        b |= (uint64_t)p[2] << 16;
        EVB_FALLTHROUGH;
    case 2:
        b |= (uint64_t)p[1] << 8;
        EVB_FALLTHROUGH;
    case 1:
        b |= (uint64_t)p[0];
        break;
    case 0:
        break;
    }
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

void util_random_bytes(void *buf, size_t len)
{
    uint8_t *p = buf;
    size_t got = 0;

    while (got < len) {
        ssize_t n = getrandom(p + got, len - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got < len) {
        unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
        for (; got < len; got++)
            p[got] = (uint8_t)rand_r(&seed);
    }
}

long long util_ustime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

long long util_mstime(void)
{
    return util_ustime() / 1000;
}

void util_sha256(const void *p, size_t len, unsigned char out[32])
{
    unsigned int n = 32;
    if (EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) != 1)
        util_assert_fail("EVP_Digest(sha256)", __FILE__, __LINE__);
}

int util_sockaddr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        return ntohl(sin->sin_addr.s_addr) == INADDR_LOOPBACK;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        static const unsigned char mapped[16] = {0, 0, 0,    0,    0,   0, 0, 0,
                                                 0, 0, 0xff, 0xff, 127, 0, 0, 1};
        return IN6_IS_ADDR_LOOPBACK(a) || memcmp(a->s6_addr, mapped, 16) == 0;
    }
    return sa->sa_family == AF_UNIX;
}

void util_format_sockaddr(const struct sockaddr *sa, size_t salen, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        port = ntohs(sin->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        port = ntohs(sin6->sin6_port);
    } else if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        size_t max = salen > off ? salen - off : 0;
        if (max > sizeof(sun->sun_path))
            max = sizeof(sun->sun_path);
        snprintf(buf, len, "%.*s:0", (int)strnlen(sun->sun_path, max), sun->sun_path);
        return;
    }
    snprintf(buf, len, "%s:%d", ip, port);
}

#ifdef EVB_JEMALLOC
/* Runs the arena.<all>.OP control ("purge", "decay") on every jemalloc arena. */
static void util_arenas_ctl(const char *op)
{
    char name[64];
    snprintf(name, sizeof(name), "arena.%u.%s", (unsigned)MALLCTL_ARENAS_ALL, op);
    mallctl(name, NULL, NULL, NULL, 0);
}
#endif

/* jemalloc only returns pages to the system as they age (10 s) and only while it allocates,
 * so memory freed on a quiet server would stay resident; Redis runs jemalloc's background
 * thread for this, we purge at the moment we know a lot was freed. */
void util_release_free_memory(void)
{
#ifdef EVB_JEMALLOC
    util_arenas_ctl("purge");
#else
    malloc_trim(0); /* also harmless under ASan, whose allocator is not glibc's */
#endif
}

void util_decay_free_memory(void)
{
#ifdef EVB_JEMALLOC
    util_arenas_ctl("decay");
#endif
}
