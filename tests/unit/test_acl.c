/* Unit suite for acl.c: passwords for the default user and configured users, Redis's channel
 * rules (globs for channels, equality for patterns, "*" for everything), and its @admin
 * commands, which only the default user and users with admin = yes may run. */
#include <string.h>

#include "acl.h"
#include "command.h"
#include "config.h"
#include "unit.h"
#include "util.h"

/* A configuration with requirepass and two users, built through the real setters. */
static void make_config(struct config *cfg)
{
    config_init(cfg);
    char err[128];
    ck_assert_int_eq(config_set(cfg, "security", "requirepass", "top", err, sizeof(err)), 0);
    cfg->users = xcalloc(2, sizeof(*cfg->users));
    cfg->nusers = 2;
    cfg->users[0].name = xstrdup("alice");
    cfg->users[0].enabled = 1;
    util_sha256("pw", 2, cfg->users[0].password_sha256);
    cfg->users[0].channels = xcalloc(2, sizeof(char *));
    cfg->users[0].channels[0] = xstrdup("news.*");
    cfg->users[0].channels[1] = xstrdup("chat");
    cfg->users[0].nchannels = 2;
    cfg->users[1].name = xstrdup("off");
    cfg->users[1].enabled = 0;
    util_sha256("pw", 2, cfg->users[1].password_sha256);
}

START_TEST(default_user_needs_requirepass)
{
    struct config cfg;
    const struct config_user *u = (const void *)1;
    make_config(&cfg);
    ck_assert_int_eq(acl_authenticate(&cfg, NULL, 0, "top", 3, &u), ACL_AUTH_OK);
    ck_assert_ptr_null(u);
    ck_assert_int_eq(acl_authenticate(&cfg, "default", 7, "top", 3, &u), ACL_AUTH_OK);
    ck_assert_int_eq(acl_authenticate(&cfg, NULL, 0, "to", 2, &u), ACL_AUTH_FAILED);
    ck_assert_int_eq(acl_authenticate(&cfg, NULL, 0, "topp", 4, &u), ACL_AUTH_FAILED);
    config_free(&cfg);
}
END_TEST

START_TEST(default_user_takes_any_password_without_requirepass)
{
    struct config cfg;
    const struct config_user *u;
    config_init(&cfg);
    ck_assert_int_eq(acl_authenticate(&cfg, "default", 7, "whatever", 8, &u), ACL_AUTH_OK);
    config_free(&cfg);
}
END_TEST

START_TEST(configured_users_need_their_password_and_to_be_enabled)
{
    struct config cfg;
    const struct config_user *u = NULL;
    make_config(&cfg);
    ck_assert_int_eq(acl_authenticate(&cfg, "alice", 5, "pw", 2, &u), ACL_AUTH_OK);
    ck_assert_ptr_eq(u, &cfg.users[0]);
    ck_assert_int_eq(acl_authenticate(&cfg, "alice", 5, "pW", 2, &u), ACL_AUTH_FAILED);
    ck_assert_int_eq(acl_authenticate(&cfg, "off", 3, "pw", 2, &u), ACL_AUTH_FAILED);
    ck_assert_int_eq(acl_authenticate(&cfg, "nobody", 6, "pw", 2, &u), ACL_AUTH_FAILED);
    /* Names are exact: no prefix or case folding. */
    ck_assert_int_eq(acl_authenticate(&cfg, "alic", 4, "pw", 2, &u), ACL_AUTH_FAILED);
    ck_assert_int_eq(acl_authenticate(&cfg, "Alice", 5, "pw", 2, &u), ACL_AUTH_FAILED);
    config_free(&cfg);
}
END_TEST

START_TEST(channels_follow_redis_acl_rules)
{
    struct config cfg;
    make_config(&cfg);
    const struct config_user *a = &cfg.users[0];
    static const struct {
        const char *name;
        int pattern, allowed;
    } rows[] = {
        {"news.sport", 0, 1}, {"news.", 0, 1},  {"news", 0, 0},   {"chat", 0, 1},
        {"chat2", 0, 0},      {"sports", 0, 0}, {"news.*", 1, 1}, {"news.a*", 1, 0},
        {"chat", 1, 1},       {"*", 1, 0},      {"news.*", 0, 1}, {"", 0, 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        ck_assert_msg(acl_channel_allowed(a, rows[i].name, strlen(rows[i].name), rows[i].pattern) ==
                          rows[i].allowed,
                      "row %zu (%s)", i, rows[i].name);
    /* The default user (NULL) may use everything. */
    ck_assert_int_eq(acl_channel_allowed(NULL, "x", 1, 1), 1);
    /* "*" allows every channel and every pattern. */
    free(cfg.users[0].channels[1]);
    cfg.users[0].channels[1] = xstrdup("*");
    ck_assert_int_eq(acl_channel_allowed(a, "any", 3, 0), 1);
    ck_assert_int_eq(acl_channel_allowed(a, "a*b", 3, 1), 1);
    config_free(&cfg);
}
END_TEST

START_TEST(admin_commands_need_admin_users)
{
    struct config cfg;
    make_config(&cfg);
    struct config_user *alice = &cfg.users[0];
    ck_assert(acl_command_allowed(NULL, CMD_F_ACL_ADMIN)); /* the default user */
    ck_assert(!acl_command_allowed(alice, CMD_F_ACL_ADMIN));
    ck_assert(!acl_command_allowed(alice, CMD_F_ACL_ADMIN | CMD_F_ADMIN));
    ck_assert(acl_command_allowed(alice, CMD_F_ADMIN)); /* the flag alone is MONITOR's business */
    ck_assert(acl_command_allowed(alice, CMD_F_ACL_CHANNEL | CMD_F_PUBSUB_OK));
    alice->admin = 1;
    ck_assert(acl_command_allowed(alice, CMD_F_ACL_ADMIN));
    config_free(&cfg);
}
END_TEST

START_TEST(find_user_by_exact_name)
{
    struct config cfg;
    make_config(&cfg);
    ck_assert_ptr_eq(acl_find_user(&cfg, "alice"), &cfg.users[0]);
    ck_assert_ptr_null(acl_find_user(&cfg, "ALICE"));
    ck_assert_ptr_null(acl_find_user(&cfg, "default"));
    config_free(&cfg);
}
END_TEST

/* The acl suite. */
static Suite *acl_suite(void)
{
    Suite *s = suite_create("acl");
    TCase *tc = tcase_create("acl");
    tcase_add_test(tc, default_user_needs_requirepass);
    tcase_add_test(tc, default_user_takes_any_password_without_requirepass);
    tcase_add_test(tc, configured_users_need_their_password_and_to_be_enabled);
    tcase_add_test(tc, channels_follow_redis_acl_rules);
    tcase_add_test(tc, admin_commands_need_admin_users);
    tcase_add_test(tc, find_user_by_exact_name);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(acl_suite)
