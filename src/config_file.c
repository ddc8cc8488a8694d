/* The configuration file loader: inih fed through our own line reader, which numbers lines,
 * rejects over-long and malformed lines (inih would truncate or mis-number them) and disables
 * multi-line continuation; [user.NAME] sections; "key += more" for lists; the checks of keys
 * that must fit together. Values go through config.c's setters like any other. */

#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* A configuration file is a few KiB; anything past this is the wrong file. */
#define CONFIG_FILE_MAX (1 << 20)

static const char *const config_sections[] = {"server",   "log",     "limits", "security",
                                              "upstream", "metrics", "tls"};

/* Keys of a [user.NAME] section; the user table is this one plus the section name. */
typedef int config_user_setter_fn(struct config_user *u, const char *value, char *err,
                                  size_t errlen);
static config_user_setter_fn config_user_set_password;
static config_user_setter_fn config_user_set_enabled;
static config_user_setter_fn config_user_set_admin;
static config_user_setter_fn config_user_set_channels;

static const struct {
    const char *name;
    config_user_setter_fn *set;
} config_user_keys[] = {
    {"password", config_user_set_password}, /* "sha256:<64 hex digits>" or the password */
    {"enabled", config_user_set_enabled},   /* yes or no; default yes */
    {"channels", config_user_set_channels}, /* globs; default none; "*" = every channel */
    {"admin", config_user_set_admin},       /* yes or no; default no */
};
_Static_assert(sizeof(config_user_keys) / sizeof(config_user_keys[0]) ==
                   sizeof(((struct config_user *)0)->set_on) / sizeof(int),
               "struct config_user's set_on has one line per key");

#define CONFIG_USER_PREFIX "user."

/* State of one config_load run, shared by the line reader and the inih handler. */
struct config_load {
    struct config *cfg;
    const char *path;
    config_report_fn *report;
    void *arg;
    int problems;
    const char *buf; /* the whole file */
    size_t len;
    size_t pos;
    int lineno;                  /* line most recently handed to inih */
    int in_bad_header;           /* after a malformed [section] line, already reported */
    int set_on[CONFIG_MAX_KEYS]; /* line each key was set on, 0 if not yet */
    char *list[CONFIG_MAX_KEYS]; /* a list key's value so far, for "key += more" */
};

/* The keys whose value is a list, which "key += more" extends (lines are limited to what
 * inih reads, 200 bytes with Debian's library), and what joins the parts. */
static const struct {
    const char *section, *name, *sep;
} config_list_keys[] = {
    {"server", "bind", " "},
    {"upstream", "channels", " "},
    {"tls", "ciphers", ":"},
    {"tls", "ciphersuites", ":"},
};

/* The joiner of a list key, or NULL for a key that is not a list. */
static const char *config_list_sep(const char *section, const char *name)
{
    for (size_t i = 0; i < sizeof(config_list_keys) / sizeof(config_list_keys[0]); i++)
        if (strcasecmp(section, config_list_keys[i].section) == 0 &&
            strcasecmp(name, config_list_keys[i].name) == 0)
            return config_list_keys[i].sep;
    return NULL;
}

/* For an unknown key: where a key of that name lives, also written Redis's way with '-'
 * ("tcp-keepalive" is [server] tcp_keepalive), as " (did you mean ...?)", or "". */
static const char *config_key_hint(const char *name, char *buf, size_t len)
{
    static const char *const redis_names[][2] = {
        {"loglevel", "level"},
        {"logfile", "target"},
        {"client_output_buffer_limit", "pubsub_output_limit"}};
    char want[64];
    size_t n = strlen(name);

    if (n >= sizeof(want))
        return "";
    for (size_t i = 0; i <= n; i++)
        want[i] = name[i] == '-' ? '_' : name[i];
    for (size_t i = 0; i < sizeof(redis_names) / sizeof(redis_names[0]); i++)
        if (strcasecmp(want, redis_names[i][0]) == 0)
            snprintf(want, sizeof(want), "%s", redis_names[i][1]);
    for (size_t i = 0; i < config_key_count(); i++) {
        const struct config_key_info *key = config_key(i);
        if (strcasecmp(key->name, want) == 0) {
            snprintf(buf, len, " (did you mean [%s] %s?)", key->section, key->name);
            return buf;
        }
    }
    return "";
}

/* a, sep and b in a new string. */
static char *config_join(const char *a, const char *sep, const char *b)
{
    size_t la = strlen(a), ls = strlen(sep), lb = strlen(b);
    char *s = xmalloc(la + ls + lb + 1);

    memcpy(s, a, la);
    memcpy(s + la, sep, ls);
    memcpy(s + la + ls, b, lb + 1);
    return s;
}

/* For "key += value": strips the '+' that inih left at the end of name into base (at least
 * 64 bytes). Returns 1 if name had it. */
static int config_append_name(const char *name, char *base, size_t baselen)
{
    size_t n = strlen(name);

    if (n == 0 || name[n - 1] != '+')
        return 0;
    n--;
    while (n > 0 && isspace((unsigned char)name[n - 1]))
        n--;
    snprintf(base, baselen, "%.*s", (int)n, name);
    return 1;
}

/* Whether a user name is acceptable: printable, no spaces, not "default" (the default user
 * is configured with [security] requirepass). */
static int config_user_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > 64 || util_strcaseeq("default", name, len))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (name[i] < '!' || name[i] > '~' || name[i] == '[' || name[i] == ']')
            return 0;
    return 1;
}

/* Tells whether a section name (length-counted, as cut from a line) is one we know. */
static int config_section_known(const char *name, size_t len)
{
    size_t plen = strlen(CONFIG_USER_PREFIX);
    if (len > plen && strncasecmp(name, CONFIG_USER_PREFIX, plen) == 0)
        return config_user_name_valid(name + plen, len - plen);
    for (size_t i = 0; i < sizeof(config_sections) / sizeof(config_sections[0]); i++)
        if (util_strcaseeq(config_sections[i], name, len))
            return 1;
    return 0;
}

/* Counts one problem and passes it to the callback as "FILE:LINE: text" (no line if 0). */
__attribute__((format(printf, 3, 4))) static void config_problem(struct config_load *ld, int line,
                                                                 const char *fmt, ...)
{
    char text[768];
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(msg, sizeof(msg), "%s:%d: %s", ld->path, line, text);
    else
        snprintf(msg, sizeof(msg), "%s: %s", ld->path, text);
    ld->problems++;
    if (ld->report != NULL)
        ld->report(msg, ld->arg);
}

/* Checks the syntax of one line (leading blanks already skipped, line end excluded) the way
 * inih reads it, so that every malformed line is reported rather than only the first.
 * Returns 0 when inih may have it, -1 after reporting it. */
static int config_check_line(struct config_load *ld, const char *s, size_t len)
{
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    if (len == 0 || s[0] == ';' || s[0] == '#')
        return 0;
    if (memchr(s, '\0', len) != NULL) {
        config_problem(ld, ld->lineno, "line contains a NUL byte");
        return -1;
    }
    if (s[0] == '[') {
        const char *end = memchr(s, ']', len);
        if (end == NULL) {
            config_problem(ld, ld->lineno, "section header '%.*s' has no closing ']'", (int)len, s);
            ld->in_bad_header = 1;
            return -1;
        }
        ld->in_bad_header = 0;
        if (!config_section_known(s + 1, (size_t)(end - s - 1)))
            config_problem(ld, ld->lineno, "unknown section [%.*s]%s", (int)(end - s - 1), s + 1,
                           util_strcaseeq("user.default", s + 1, (size_t)(end - s - 1))
                               ? " (the default user's password is [security] requirepass)"
                               : "");
        return 0;
    }
    /* inih splits at the first '=' or ':'; " ;" starts an inline comment before that. */
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ';' && i > 0 && isspace((unsigned char)s[i - 1]))
            break;
        if (s[i] == '=' || s[i] == ':') {
            if (i > 0)
                return 0;
            config_problem(ld, ld->lineno, "missing key name before '%c'", s[i]);
            return -1;
        }
    }
    config_problem(ld, ld->lineno, "expected 'key = value', '[section]' or a comment, got '%.*s'",
                   (int)len, s);
    return -1;
}

/* inih's fgets-style reader: hands over one whole line of the file at a time. Over-long and
 * malformed lines are reported here and replaced by an empty line, so inih never truncates
 * a value or counts the rest of a long line as a new one. Leading blanks are removed, which
 * turns off inih's multi-line values (an indented line would continue the previous value). */
static char *config_reader(char *str, int num, void *stream)
{
    struct config_load *ld = stream;
    const char *line, *nl;
    size_t len, content;

    if (ld->pos >= ld->len || num < 4)
        return NULL;
    line = ld->buf + ld->pos;
    nl = memchr(line, '\n', ld->len - ld->pos);
    len = nl != NULL ? (size_t)(nl - line) : ld->len - ld->pos;
    ld->pos += len + (nl != NULL);
    ld->lineno++;

    content = len > 0 && line[len - 1] == '\r' ? len - 1 : len;
    if (ld->lineno == 1 && content >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
        line += 3;
        len -= 3;
        content -= 3;
    }
    /* inih needs room for "\r\n\0" after the longest line. */
    if (content > (size_t)num - 3) {
        config_problem(ld, ld->lineno,
                       "line too long (%zu characters, at most %d; a list continues on the "
                       "next line with \"key += more\")",
                       content, num - 3);
        len = 0;
    }
    while (len > 0 && (*line == ' ' || *line == '\t')) {
        line++;
        len--;
    }
    if (len > 0 && config_check_line(ld, line, len) < 0)
        len = 0;
    memcpy(str, line, len);
    str[len] = '\n';
    str[len + 1] = '\0';
    return str;
}

/* Removes one pair of double quotes around a value (there are no escapes). Returns 0 and sets
 * *out to value itself, or to a copy in *owned (caller frees); -1 if a quote is not closed. */
static int config_unquote(const char *value, const char **out, char **owned)
{
    size_t len = strlen(value);

    *owned = NULL;
    *out = value;
    if (len == 0 || value[0] != '"')
        return 0;
    if (len < 2 || value[len - 1] != '"')
        return -1;
    *owned = xmemdup(value + 1, len - 2);
    *out = *owned;
    return 0;
}

/* Finds the user of a [user.NAME] section, creating it (enabled, no channels) on first use. */
static struct config_user *config_user_get(struct config *cfg, const char *name, int line)
{
    for (int i = 0; i < cfg->nusers; i++)
        if (strcmp(cfg->users[i].name, name) == 0)
            return &cfg->users[i];
    cfg->users = xrealloc(cfg->users, sizeof(*cfg->users) * (size_t)(cfg->nusers + 1));
    struct config_user *u = &cfg->users[cfg->nusers++];
    memset(u, 0, sizeof(*u));
    u->name = xstrdup(name);
    u->enabled = 1;
    u->line = line;
    return u;
}

/* Stores the SHA-256 of a password, or decodes one given as "sha256:<64 hex digits>". */
static int config_user_set_password(struct config_user *u, const char *value, char *err,
                                    size_t errlen)
{
    if (strncasecmp(value, "sha256:", 7) != 0) {
        if (value[0] == '\0') {
            snprintf(err, errlen, "must not be empty");
            return -1;
        }
        util_sha256(value, strlen(value), u->password_sha256);
        return 0;
    }
    const char *hex = value + 7;
    if (strlen(hex) != 64) {
        snprintf(err, errlen, "sha256: needs 64 hex digits, got %zu characters", strlen(hex));
        return -1;
    }
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (!isxdigit((unsigned char)hex[2 * i]) || !isxdigit((unsigned char)hex[2 * i + 1]) ||
            sscanf(hex + 2 * i, "%2x", &v) != 1) {
            snprintf(err, errlen, "sha256: '%s' is not hexadecimal", hex);
            return -1;
        }
        u->password_sha256[i] = (unsigned char)v;
    }
    return 0;
}

/* Stores a yes or no into *field. */
static int config_user_set_bool(int *field, const char *value, char *err, size_t errlen)
{
    int v = config_parse_bool(value);
    if (v < 0) {
        snprintf(err, errlen, "must be yes or no, got '%s'", value);
        return -1;
    }
    *field = v;
    return 0;
}

static int config_user_set_enabled(struct config_user *u, const char *value, char *err,
                                   size_t errlen)
{
    return config_user_set_bool(&u->enabled, value, err, errlen);
}

static int config_user_set_admin(struct config_user *u, const char *value, char *err, size_t errlen)
{
    return config_user_set_bool(&u->admin, value, err, errlen);
}

/* Adds the globs of a space-separated list to a user's. */
static void config_user_add_channels(struct config_user *u, const char *value)
{
    char *copy = xstrdup(value), *save = NULL;
    for (char *tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        u->channels = xrealloc(u->channels, sizeof(*u->channels) * (size_t)(u->nchannels + 1));
        u->channels[u->nchannels++] = xstrdup(tok);
    }
    free(copy);
}

/* A space-separated list of channel globs. */
static int config_user_set_channels(struct config_user *u, const char *value, char *err,
                                    size_t errlen)
{
    for (int j = 0; j < u->nchannels; j++)
        free(u->channels[j]);
    u->nchannels = 0;
    config_user_add_channels(u, value);
    return 0;
}

/* Handles one key of a [user.NAME] section. */
static int config_user_handler(struct config_load *ld, const char *user, const char *name,
                               const char *value, int append)
{
    char err[256];
    const char *v;
    char *owned;
    size_t k, nkeys = sizeof(config_user_keys) / sizeof(config_user_keys[0]);

    for (k = 0; k < nkeys; k++)
        if (strcasecmp(name, config_user_keys[k].name) == 0)
            break;
    if (k == nkeys) {
        config_problem(ld, ld->lineno, "unknown key '%s' in section [user.%s]", name, user);
        return 1;
    }
    struct config_user *u = config_user_get(ld->cfg, user, ld->lineno);
    int list = config_user_keys[k].set == config_user_set_channels;
    if (append && (!list || u->set_on[k] == 0)) {
        config_problem(ld, ld->lineno, "[user.%s] %s: %s", user, config_user_keys[k].name,
                       list ? "+= extends a value set before it with ="
                            : "+= is only for lists (channels)");
        return 1;
    }
    if (!append && u->set_on[k] != 0) {
        config_problem(ld, ld->lineno, "[user.%s] %s: duplicate key (first set on line %d)", user,
                       config_user_keys[k].name, u->set_on[k]);
        return 1;
    }
    u->set_on[k] = ld->lineno;
    if (config_unquote(value, &v, &owned) < 0) {
        config_problem(ld, ld->lineno, "[user.%s] %s: opening '\"' is not closed", user,
                       config_user_keys[k].name);
        return 1;
    }
    if (append)
        config_user_add_channels(u, v);
    else if (config_user_keys[k].set(u, v, err, sizeof(err)) < 0)
        config_problem(ld, ld->lineno, "[user.%s] %s: %s", user, config_user_keys[k].name, err);
    free(owned);
    return 1;
}

/* inih's callback for each "key = value": finds the key, rejects repeats, applies the value. */
static int config_handler(void *user, const char *section, const char *name, const char *value)
{
    struct config_load *ld = user;
    char err[512];
    const char *v;
    char *owned;
    int i;

    if (name == NULL || value == NULL || ld->in_bad_header)
        return 1; /* a section start, a bare name, or a key under a header already reported */
    if (section[0] == '\0') {
        config_problem(ld, ld->lineno, "key '%s' must follow a [section] header", name);
        return 1;
    }
    if (!config_section_known(section, strlen(section)))
        return 1; /* reported once, at the section header */
    char base[64];
    int append = config_append_name(name, base, sizeof(base));
    if (append)
        name = base;
    if (strncasecmp(section, CONFIG_USER_PREFIX, strlen(CONFIG_USER_PREFIX)) == 0)
        return config_user_handler(ld, section + strlen(CONFIG_USER_PREFIX), name, value, append);
    i = config_find(section, name);
    if (i < 0) {
        char hint[128];
        config_problem(ld, ld->lineno, "unknown key '%s' in section [%s]%s", name, section,
                       config_key_hint(name, hint, sizeof(hint)));
        return 1;
    }
    const struct config_key_info *def = config_key((size_t)i);
    const char *sep = config_list_sep(def->section, def->name);
    if (append && (sep == NULL || ld->set_on[i] == 0)) {
        config_problem(ld, ld->lineno, "[%s] %s: %s", def->section, def->name,
                       sep ? "+= extends a value set before it with ="
                           : "+= is only for lists "
                             "([server] bind, [upstream] channels, [tls] ciphers and ciphersuites, "
                             "[user.NAME] channels)");
        return 1;
    }
    if (!append && ld->set_on[i] != 0) {
        config_problem(ld, ld->lineno, "[%s] %s: duplicate key (first set on line %d)",
                       def->section, def->name, ld->set_on[i]);
        return 1;
    }
    ld->set_on[i] = ld->lineno;
    if (config_unquote(value, &v, &owned) < 0) {
        config_problem(ld, ld->lineno,
                       "[%s] %s: opening '\"' is not closed (note that ' ;' starts a comment)",
                       def->section, def->name);
        return 1;
    }
    if (sep) { /* keep the list so far: the next line may extend it */
        char *joined = append ? config_join(ld->list[i], sep, v) : xstrdup(v);
        free(ld->list[i]);
        ld->list[i] = joined;
        v = joined;
    }
    if (config_set(ld->cfg, def->section, def->name, v, err, sizeof(err)) < 0)
        config_problem(ld, ld->lineno, "[%s] %s: %s", def->section, def->name, err);
    free(owned);
    return 1;
}

/* Reads the whole file, or says why not in why. Only a regular file of at most
 * CONFIG_FILE_MAX bytes: a FIFO would block the loop in open or read (a reload runs there),
 * and /dev/zero or a wrong path to a huge file would take all memory. */
static char *config_read_file(const char *path, size_t *lenp, char *why, size_t whylen)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    size_t len = 0;
    char *buf;

    if (fd < 0) {
        snprintf(why, whylen, "cannot open: %s", strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        snprintf(why, whylen, "cannot stat: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "not a regular file");
        close(fd);
        return NULL;
    }
    buf = xmalloc(CONFIG_FILE_MAX + 1);
    for (;;) {
        ssize_t n = read(fd, buf + len, CONFIG_FILE_MAX + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(why, whylen, "cannot read: %s", strerror(errno));
            free(buf);
            close(fd);
            return NULL;
        }
        len += (size_t)n;
        if (n == 0 || len > CONFIG_FILE_MAX)
            break;
    }
    close(fd);
    if (len > CONFIG_FILE_MAX) { /* read one byte past the bound to tell */
        snprintf(why, whylen, "larger than %d bytes: is this the configuration file?",
                 CONFIG_FILE_MAX);
        free(buf);
        return NULL;
    }
    *lenp = len;
    return xrealloc(buf, len + 1);
}

/* Checks that the [tls] keys fit together (what a listener needs is set), reported on the
 * line of [tls] port. Whether the files can be read is checked when the listener starts. */
static void config_check_tls(struct config_load *ld)
{
    const struct config *cfg = ld->cfg;
    int line = ld->set_on[config_find("tls", "port")];

    if (cfg->tls_port == 0)
        return;
    if (cfg->tls_cert_file == NULL || cfg->tls_key_file == NULL)
        config_problem(ld, line, "[tls] port: a TLS listener needs cert_file and key_file");
    if (cfg->tls_auth_clients != CONFIG_TLS_AUTH_NO && cfg->tls_ca_cert_file == NULL)
        config_problem(ld, line,
                       "[tls] port: auth_clients = %s needs ca_cert_file (or auth_clients = no)",
                       cfg->tls_auth_clients == CONFIG_TLS_AUTH_YES ? "yes" : "optional");
    if (cfg->tls_port == cfg->port)
        config_problem(ld, line, "[tls] port: %d is also the [server] port", cfg->tls_port);
}

/* Checks that the [upstream] keys fit together, on the line of the key to change. */
static void config_check_upstream(struct config_load *ld)
{
    const struct config *cfg = ld->cfg;

    if (cfg->upstream_host != NULL && cfg->upstream_unixsocket != NULL)
        config_problem(ld, ld->set_on[config_find("upstream", "unixsocket")],
                       "[upstream] unixsocket: host is set too; set only one");
    int min_line = ld->set_on[config_find("upstream", "reconnect_min_ms")];
    int max_line = ld->set_on[config_find("upstream", "reconnect_max_ms")];
    if (cfg->upstream_reconnect_min_ms > cfg->upstream_reconnect_max_ms) {
        if (min_line) /* on the line that set the minimum, else on the maximum's */
            config_problem(ld, min_line,
                           "[upstream] reconnect_min_ms: %d is above reconnect_max_ms (%d%s)",
                           cfg->upstream_reconnect_min_ms, cfg->upstream_reconnect_max_ms,
                           max_line ? "" : ", its default");
        else
            config_problem(ld, max_line,
                           "[upstream] reconnect_max_ms: %d is below reconnect_min_ms (%d, its "
                           "default)",
                           cfg->upstream_reconnect_max_ms, cfg->upstream_reconnect_min_ms);
    }
    if (cfg->upstream_user != NULL && cfg->upstream_password == NULL)
        config_problem(ld, ld->set_on[config_find("upstream", "user")],
                       "[upstream] user: set without a password");
}

/* Reads the whole file, then lets inih parse it through config_reader and config_handler. */
int config_load(struct config *cfg, const char *path, config_report_fn *report, void *arg)
{
    struct config_load ld;
    char *buf;
    int rc;

    memset(&ld, 0, sizeof(ld));
    ld.cfg = cfg;
    ld.path = path;
    ld.report = report;
    ld.arg = arg;
    char why[256];
    buf = config_read_file(path, &ld.len, why, sizeof(why));
    if (buf == NULL) {
        config_problem(&ld, 0, "%s", why);
        return ld.problems;
    }
    ld.buf = buf;
    rc = ini_parse_stream(config_reader, &ld, config_handler, &ld);
    /* The reader blanks every line it rejects and the handler never fails, so inih only
     * complains about a line our checks let through; report it rather than lose it. */
    if (rc > 0)
        config_problem(&ld, rc, "syntax error");
    else if (rc < 0)
        config_problem(&ld, 0, "cannot parse (inih error %d)", rc);
    for (int i = 0; i < cfg->nusers; i++)
        if (cfg->users[i].set_on[0] == 0)
            config_problem(&ld, cfg->users[i].line, "[user.%s]: no password set",
                           cfg->users[i].name);
    config_check_tls(&ld);
    config_check_upstream(&ld);
    for (size_t i = 0; i < CONFIG_MAX_KEYS; i++)
        free(ld.list[i]);
    free(buf);
    return ld.problems;
}
