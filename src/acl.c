/* Users, passwords and permissions. Passwords are compared as SHA-256 digests in constant
 * time; channel rules follow Redis 7's ACL: a channel must match one of the user's globs, a
 * pattern must equal one of them, and "*" allows everything. Redis's @admin commands need a
 * user with admin = yes (the default user has every right, as in Redis). */
#include "acl.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "command.h"
#include "config.h"
#include "pattern.h"
#include "pubsub.h"
#include "util.h"

int acl_command_allowed(const struct config_user *u, unsigned cmd_flags)
{
    return u == NULL || u->admin || !(cmd_flags & CMD_F_ACL_ADMIN);
}

const struct config_user *acl_find_user(const struct config *cfg, const char *name)
{
    for (int i = 0; i < cfg->nusers; i++)
        if (strcmp(cfg->users[i].name, name) == 0)
            return &cfg->users[i];
    return NULL;
}

enum acl_auth_result acl_authenticate(const struct config *cfg, const char *user, size_t ulen,
                                      const char *pass, size_t plen,
                                      const struct config_user **user_out)
{
    unsigned char digest[32], want[32];

    *user_out = NULL;
    if (user == NULL || (ulen == 7 && memcmp(user, "default", 7) == 0)) {
        if (cfg->requirepass == NULL)
            return ACL_AUTH_OK;
        util_sha256(cfg->requirepass, strlen(cfg->requirepass), want);
        util_sha256(pass, plen, digest);
        return CRYPTO_memcmp(digest, want, 32) == 0 ? ACL_AUTH_OK : ACL_AUTH_FAILED;
    }
    char *name = xmemdup(user, ulen);
    const struct config_user *u = acl_find_user(cfg, name);
    free(name);
    util_sha256(pass, plen, digest);
    /* Compare even for an unknown user, so the time does not tell which names exist. */
    int same = CRYPTO_memcmp(digest, u ? u->password_sha256 : want, 32) == 0;
    if (u == NULL || !u->enabled || !same)
        return ACL_AUTH_FAILED;
    *user_out = u;
    return ACL_AUTH_OK;
}

int acl_channel_allowed(const struct config_user *u, const char *name, size_t len, int is_pattern)
{
    if (u == NULL)
        return 1;
    for (int i = 0; i < u->nchannels; i++) {
        const char *g = u->channels[i];
        size_t glen = strlen(g);
        if (glen == 1 && g[0] == '*')
            return 1;
        if (is_pattern ? (glen == len && memcmp(g, name, len) == 0)
                       : pattern_match(g, glen, name, len, 0))
            return 1;
    }
    return 0;
}

/* Checks every subscription of one kind against the user's permissions. */
static int subscriptions_allowed(struct client *c, enum pubsub_kind kind,
                                 const struct config_user *u)
{
    const char **names;
    size_t *lens;
    size_t n = pubsub_client_names(c, kind, &names, &lens);
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++)
        ok = acl_channel_allowed(u, names[i], lens[i], kind == PUBSUB_PATTERN);
    free(names);
    free(lens);
    return ok;
}

int acl_recheck_client(struct client *c, const struct config *cfg)
{
    const struct config_user *u = NULL;

    if (client_user_name(c)) {
        u = acl_find_user(cfg, client_user_name(c));
        if (u == NULL || !u->enabled)
            return -1;
    }
    if (c->ext) /* without one, the user is the default already */
        c->ext->user = u;
    /* Redis keeps such a monitor; here revoking admin stops the stream of every command. */
    if ((c->flags & CLIENT_F_MONITOR) && !acl_command_allowed(u, CMD_F_ACL_ADMIN))
        return -1;
    for (int k = 0; k < 3; k++)
        if (!subscriptions_allowed(c, (enum pubsub_kind)k, u))
            return -1;
    return 0;
}
