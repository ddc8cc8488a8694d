/* The configuration: one table of keys drives defaults, parsing (inih), validation, the
 * --help text and what a reload may change. Defaults go through the same parser as the
 * file, so nothing bypasses validation. */
#ifndef EVB_CONFIG_H
#define EVB_CONFIG_H

#include <stddef.h>

#define CONFIG_MAX_BIND 16

/* A user from a [user.NAME] section (Redis ACL users, reduced to what a broker needs). */
struct config_user {
    char *name;
    unsigned char password_sha256[32];
    int enabled;
    int admin;       /* may run Redis's @admin commands (MONITOR, CLIENT LIST/KILL, ...) */
    char **channels; /* globs a channel must match; "*" allows every channel and pattern */
    int nchannels;
    int line;      /* line of its first key in the file */
    int set_on[4]; /* line each key was set on while loading, for duplicate detection */
};

struct config {
    /* [server] */
    char *bind[CONFIG_MAX_BIND]; /* addresses; a leading '-' means "skip if unavailable" */
    int nbind;
    int port;           /* TCP port; 0 disables TCP */
    char *unixsocket;   /* NULL when unset */
    int unixsocketperm; /* octal permission bits, 0 = leave to umask */
    int tcp_backlog;
    int maxclients;
    int timeout;           /* idle seconds before closing a non-subscriber; 0 = never */
    int tcp_keepalive;     /* seconds; 0 = off */
    char *pidfile;         /* NULL when unset */
    int output_batch_us;   /* under load, subscriber output is written once per window */
    int output_batch_load; /* loop busy percent that engages batching; 0 = always */
    /* [log] */
    int log_level;    /* enum log_level */
    char *log_target; /* "stderr", "syslog" or a file path */
    /* [limits] */
    long long proto_max_bulk_len;
    long long client_query_buffer_limit;
    long long pubsub_hard_limit; /* bytes; 0 = no limit */
    long long pubsub_soft_limit; /* bytes; 0 = no limit */
    int pubsub_soft_seconds;
    /* [security] */
    char *requirepass;  /* NULL when unset */
    int protected_mode; /* without requirepass, refuse clients that are not on loopback */
    struct config_user *users;
    int nusers;
    /* [upstream] */
    char *upstream_host; /* NULL = no bridge (unless upstream_unixsocket is set) */
    int upstream_port;
    char *upstream_unixsocket; /* NULL when unset; replaces host and port */
    char *upstream_user;       /* NULL = AUTH with the password only */
    char *upstream_password;   /* NULL = no AUTH */
    int upstream_connect_timeout_ms;
    int upstream_reconnect_min_ms;
    int upstream_reconnect_max_ms;
    char *upstream_channels;         /* space-separated globs of bridged names */
    int upstream_direction;          /* enum config_direction */
    int upstream_queue_limit;        /* forwards buffered while the link is down or busy */
    long long upstream_queue_memory; /* and their bytes (channel and payload) */
    int upstream_reply_timeout_ms;   /* a publish unanswered this long: the link is stuck */
    /* [metrics] */
    char *metrics_listen; /* "IP:PORT" or "[IPv6]:PORT" of the HTTP endpoint; NULL = off */
    /* [tls] */
    int tls_port;                 /* TLS listener on the [server] bind addresses; 0 = off */
    char *tls_cert_file;          /* PEM certificate (chain) of the server; NULL when unset */
    char *tls_key_file;           /* PEM private key of tls_cert_file; NULL when unset */
    char *tls_ca_cert_file;       /* PEM CAs that client certificates must chain to */
    int tls_auth_clients;         /* enum config_tls_auth */
    char *tls_ciphers;            /* OpenSSL cipher list for TLS 1.2; NULL = OpenSSL's default */
    char *tls_ciphersuites;       /* TLS 1.3 suites; NULL = OpenSSL's default */
    int tls_handshake_timeout_ms; /* a TLS client still in its handshake then is closed */
};

/* Whether TLS clients must present a certificate (Redis's tls-auth-clients). */
enum config_tls_auth { CONFIG_TLS_AUTH_NO, CONFIG_TLS_AUTH_OPTIONAL, CONFIG_TLS_AUTH_YES };

/* Which way the bridge carries messages. */
enum config_direction { CONFIG_DIR_BOTH, CONFIG_DIR_IN, CONFIG_DIR_OUT };

/* One row of the key table, for --help, the documentation test and reloads. */
struct config_key_info {
    const char *section;
    const char *name;
    const char *default_value;
    const char *help;
    int reloadable;
};

/* Reports one problem: "FILE:LINE: [section] key: why". */
typedef void config_report_fn(const char *problem, void *arg);

/* Fills cfg with the built-in defaults, parsed through the key table. */
void config_init(struct config *cfg);
/* Frees the strings cfg holds; cfg may be initialised again after. */
void config_free(struct config *cfg);

/* Parses an INI file over cfg. Every problem (unreadable file, unknown section or key, bad
 * value, duplicate key, over-long line) is reported once. Returns the number of problems;
 * cfg is only meaningful when that is 0. */
int config_load(struct config *cfg, const char *path, config_report_fn *report, void *arg);

/* Sets one key from a string, as the file would (used for command-line flags).
 * Returns 0, or -1 with a reason in err. */
int config_set(struct config *cfg, const char *section, const char *name, const char *value,
               char *err, size_t errlen);

/* The key table, for --help, tests and the file loader (config_file.c): the row of a key
 * (section NULL = any; -1 when unknown), the number of rows (at most CONFIG_MAX_KEYS). */
size_t config_key_count(void);
const struct config_key_info *config_key(size_t i);
int config_find(const char *section, const char *name);
#define CONFIG_MAX_KEYS 64

/* Returns 1 for yes/on/true/1, 0 for no/off/false/0, -1 otherwise. */
int config_parse_bool(const char *value);

#endif
