/* The server's TLS context: certificate, key, client CAs, protocol floor and ciphers, built
 * from [tls] at startup and rebuilt on reload. Connections are client.c's business; this module
 * only hands out SSL objects and turns OpenSSL's error queue into text. */
#ifndef EVB_TLS_H
#define EVB_TLS_H

#include <stddef.h>

struct config;
struct ssl_st;

/* Builds the context from cfg (borrowed) and makes it the one new connections get; open
 * connections keep theirs. Returns 0, or -1 after logging one line that names the file or
 * setting and OpenSSL's reason, with the previous context (if any) still in use. */
int tls_init(const struct config *cfg);

/* Whether cfg names other files than the running context was built from, or they changed
 * on disk since (device, inode, size or modification time). */
int tls_files_changed(const struct config *cfg);

/* A new server-side SSL for one connection; the caller (its bufferevent) frees it. */
struct ssl_st *tls_new_ssl(void);

/* Writes OpenSSL's reason for err (an ERR_get_error code; 0 = none) into buf. */
void tls_error_text(unsigned long err, char *buf, size_t len);

/* Frees the context (connections keep their own references). */
void tls_cleanup(void);

#endif
