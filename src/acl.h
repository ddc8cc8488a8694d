/* Authentication and permissions: the default user (requirepass) and the users of
 * [user.NAME] sections, with Redis's ACL rules for channels and its @admin category. Pure
 * apart from reading the running configuration; replies are the caller's business. */
#ifndef EVB_ACL_H
#define EVB_ACL_H

#include <stddef.h>

struct client;
struct config;
struct config_user;

enum acl_auth_result { ACL_AUTH_OK, ACL_AUTH_FAILED };

/* Checks user (NULL or "default" = the default user) and password against cfg. On success
 * sets *user_out to the configured user (NULL for the default user). Without requirepass
 * the default user accepts any password, as in Redis. */
enum acl_auth_result acl_authenticate(const struct config *cfg, const char *user, size_t ulen,
                                      const char *pass, size_t plen,
                                      const struct config_user **user_out);

/* Whether a user (NULL = default: everything) may use a channel; for a pattern subscription
 * the pattern must equal one of the user's globs, as in Redis, unless "*" allows all. */
int acl_channel_allowed(const struct config_user *u, const char *name, size_t len, int is_pattern);

/* Whether a user (NULL = default: everything) may run a command of these CMD_F_* flags: the
 * @admin commands need admin = yes. */
int acl_command_allowed(const struct config_user *u, unsigned cmd_flags);

/* Finds a configured user by name, or NULL. */
const struct config_user *acl_find_user(const struct config *cfg, const char *name);

/* After a reload: re-points c at its user in the new configuration. Returns 0, or -1 when
 * the user is gone or disabled, one of c's subscriptions is no longer allowed, or c is a
 * monitor whose user lost admin (the caller disconnects it). */
int acl_recheck_client(struct client *c, const struct config *cfg);

#endif
