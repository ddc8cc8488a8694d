/* The server's OpenSSL context, built from [tls]: certificate chain, private key, the CAs
 * client certificates must chain to, TLS 1.2 as the floor, optional cipher lists; built at
 * start and again on every reload, so a renewed certificate is picked up by SIGHUP. It does
 * no I/O: client.c runs each connection on a libevent OpenSSL bufferevent. */
#include "tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "log.h"

static SSL_CTX *tls_ctx;

/* What the files behind tls_ctx looked like when it was built: cert, key, CA. */
static struct stat tls_file_stat[3];

/* The stat of a [tls] file, all zero when it is unset or cannot be read. */
static void tls_stat(const char *path, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    if (path && stat(path, st) != 0)
        memset(st, 0, sizeof(*st));
}

/* The [tls] files of cfg, in tls_file_stat order. */
static void tls_files(const struct config *cfg, const char *paths[3])
{
    paths[0] = cfg->tls_cert_file;
    paths[1] = cfg->tls_key_file;
    paths[2] = cfg->tls_ca_cert_file;
}

int tls_files_changed(const struct config *cfg)
{
    const char *paths[3];
    struct stat now;

    tls_files(cfg, paths);
    for (int i = 0; i < 3; i++) {
        const struct stat *then = &tls_file_stat[i];
        tls_stat(paths[i], &now);
        if (now.st_dev != then->st_dev || now.st_ino != then->st_ino ||
            now.st_size != then->st_size || now.st_mtim.tv_sec != then->st_mtim.tv_sec ||
            now.st_mtim.tv_nsec != then->st_mtim.tv_nsec)
            return 1;
    }
    return 0;
}

void tls_error_text(unsigned long err, char *buf, size_t len)
{
    if (err == 0) {
        snprintf(buf, len, "unknown OpenSSL error");
        return;
    }
    ERR_error_string_n(err, buf, len);
}

/* Logs why loading one [tls] file or setting failed, with OpenSSL's first reason, and clears
 * the error queue. */
static void tls_log_failure(const char *what, const char *value)
{
    char reason[256];

    tls_error_text(ERR_get_error(), reason, sizeof(reason));
    ERR_clear_error();
    log_warning("TLS: cannot use [tls] %s %s: %s", what, value, reason);
}

int tls_init(const struct config *cfg)
{
    static const unsigned char sid_ctx[] = "evbrokerd";
    const char *paths[3];
    struct stat st[3];
    SSL_CTX *ctx;

    /* Taken before reading, so a file replaced meanwhile counts as changed next time. */
    tls_files(cfg, paths);
    for (int i = 0; i < 3; i++)
        tls_stat(paths[i], &st[i]);
    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        tls_log_failure("context", "(SSL_CTX_new)");
        return -1;
    }
    /* TLS 1.2 at least, always. No compression (CRIME), no renegotiation (nothing needs it,
     * and the bufferevent should never have to read in the middle of a write). */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* A client that closes without close_notify has simply gone (RESP frames are
     * self-delimiting, so nothing can be truncated unnoticed); OpenSSL 3 would make it an
     * error, and libevent would report an error instead of EOF. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Idle connections give their 34 KiB of record buffers back. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert_file) != 1) {
        tls_log_failure("cert_file", cfg->tls_cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key_file, SSL_FILETYPE_PEM) != 1) {
        tls_log_failure("key_file", cfg->tls_key_file);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        tls_log_failure("key_file (does not match cert_file)", cfg->tls_key_file);
        goto fail;
    }
    if (cfg->tls_ca_cert_file) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->tls_ca_cert_file);
        if (names == NULL || SSL_CTX_load_verify_locations(ctx, cfg->tls_ca_cert_file, NULL) != 1) {
            if (names)
                sk_X509_NAME_pop_free(names, X509_NAME_free);
            tls_log_failure("ca_cert_file", cfg->tls_ca_cert_file);
            goto fail;
        }
        /* Tells clients which CAs their certificate should come from. */
        SSL_CTX_set_client_CA_list(ctx, names);
    }
    if (cfg->tls_auth_clients == CONFIG_TLS_AUTH_YES)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    else if (cfg->tls_auth_clients == CONFIG_TLS_AUTH_OPTIONAL)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    else
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (cfg->tls_ciphers && SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers) != 1) {
        tls_log_failure("ciphers", cfg->tls_ciphers);
        goto fail;
    }
    if (cfg->tls_ciphersuites && SSL_CTX_set_ciphersuites(ctx, cfg->tls_ciphersuites) != 1) {
        tls_log_failure("ciphersuites", cfg->tls_ciphersuites);
        goto fail;
    }
    /* Connections keep the context they started with (an SSL holds a reference), so a
     * reload's new certificate applies to new connections only. */
    SSL_CTX_free(tls_ctx);
    tls_ctx = ctx;
    memcpy(tls_file_stat, st, sizeof(st));
    return 0;
fail:
    SSL_CTX_free(ctx);
    return -1;
}

struct ssl_st *tls_new_ssl(void)
{
    SSL *ssl = SSL_new(tls_ctx);
    if (ssl == NULL) {
        char reason[256];
        tls_error_text(ERR_get_error(), reason, sizeof(reason));
        ERR_clear_error();
        log_ratelimited(LOG_LEVEL_WARNING, "TLS: SSL_new failed: %s", reason);
    }
    return ssl;
}

void tls_cleanup(void)
{
    SSL_CTX_free(tls_ctx);
    tls_ctx = NULL;
}
