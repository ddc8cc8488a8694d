/* Small helpers every module uses: allocation that aborts on failure, strict number and
 * size parsing with Redis's rules, the keyed hash, and the assert macro.
 * Nothing here does I/O except the abort paths. */
#ifndef EVB_UTIL_H
#define EVB_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define EVB_VERSION "0.1.0"
/* The Redis version whose replies evbrokerd reproduces (HELLO, INFO redis_version). */
#define EVB_REDIS_COMPAT_VERSION "7.0.15"

/* Allocation failure is fatal: callers never check. Caller frees. */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t n);
void *xrealloc(void *p, size_t n);
/* n bytes at an address that is a multiple of align (a power of two dividing n). */
void *xaligned_alloc(size_t align, size_t n);
char *xstrdup(const char *s);
/* Copies len bytes and adds a NUL terminator. Caller frees. */
char *xmemdup(const void *p, size_t len);

/* Logs the failed condition with its place and aborts. */
void util_assert_fail(const char *expr, const char *file, int line);
#define EVB_ASSERT(e) ((e) ? (void)0 : util_assert_fail(#e, __FILE__, __LINE__))

/* Parses a whole buffer as a signed 64-bit integer with Redis's string2ll rules: no spaces,
 * no '+', no leading zeros, overflow rejected. Returns 0 and sets *out, or -1. */
int util_parse_ll(const char *s, size_t len, long long *out);

/* Parses a size like "512mb", "64k", "1gb" or "1024" (Redis's memtoll units: k=1000,
 * kb=1024, m, mb, g, gb; case-insensitive). Returns 0 and sets *out, or -1. */
int util_parse_size(const char *s, long long *out);

/* Whether a space-separated word list holds exactly word ("admin" in "admin noscript"). */
int util_has_word(const char *list, const char *word);

/* Case-insensitive comparison of a NUL-terminated name with a length-counted buffer. */
int util_strcaseeq(const char *name, const char *buf, size_t len);

/* SipHash-1-2 of the buffer under a 16-byte key (the registries' keyed hash). */
uint64_t util_siphash(const void *in, size_t len, const uint8_t key[16]);

/* SHA-256 of a buffer (OpenSSL's libcrypto). */
void util_sha256(const void *p, size_t len, unsigned char out[32]);

/* Whether a peer counts as local for protected mode, as Redis judges it: exactly
 * 127.0.0.1 or ::1 (also as ::ffff:127.0.0.1), or a unix socket. */
struct sockaddr;
int util_sockaddr_is_loopback(const struct sockaddr *sa);

/* Formats an address the way Redis's CLIENT LIST does: "ip:port" (IPv6 without brackets),
 * "path:0" for a unix socket (salen bounds its path), "?:0" for anything else. */
void util_format_sockaddr(const struct sockaddr *sa, size_t salen, char *buf, size_t len);

/* Hands the allocator's free pages back to the system now (jemalloc: purges every arena;
 * otherwise malloc_trim), for after many idle buffers were freed at once. */
void util_release_free_memory(void);
/* Lets jemalloc give back the free pages that have aged past its decay time (10 s), which it
 * otherwise does only while it allocates: after a burst a quiet server kept its peak RSS.
 * Cheap; cron calls it every second while the loop is not busy. Nothing without jemalloc. */
void util_decay_free_memory(void);

/* Fills buf with random bytes from the kernel (falls back to time and pid). */
void util_random_bytes(void *buf, size_t len);

/* Monotonic clock in milliseconds and microseconds. */
long long util_mstime(void);
long long util_ustime(void);

#endif
