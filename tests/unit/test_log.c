/* Unit tests for the log rate limiter: a burst passes, repeats are counted, and the count
 * is handed to the first line of the next window; and for log targets: the special names in
 * any case, and a FIFO with no reader refused at once instead of waiting for one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "unit.h"

START_TEST(test_burst_passes_then_repeats_are_counted)
{
    struct log_ratelimit rl;
    long long suppressed = -1;
    memset(&rl, 0, sizeof(rl));
    for (int i = 0; i < LOG_RATELIMIT_BURST; i++) {
        ck_assert_int_eq(log_ratelimit_allow(&rl, 1000 + i, &suppressed), 1);
        ck_assert_int_eq(suppressed, 0);
    }
    for (int i = 0; i < 25; i++)
        ck_assert_int_eq(log_ratelimit_allow(&rl, 2000 + i, &suppressed), 0);
    ck_assert_int_eq(rl.suppressed, 25);
}
END_TEST

START_TEST(test_next_window_reports_the_count_once)
{
    struct log_ratelimit rl;
    long long suppressed = -1;
    memset(&rl, 0, sizeof(rl));
    for (int i = 0; i < LOG_RATELIMIT_BURST + 7; i++)
        log_ratelimit_allow(&rl, 5000, &suppressed);
    /* Still inside the window that started at 5000. */
    ck_assert_int_eq(log_ratelimit_allow(&rl, 5000 + LOG_RATELIMIT_WINDOW_MS - 1, &suppressed), 0);
    ck_assert_int_eq(log_ratelimit_allow(&rl, 5000 + LOG_RATELIMIT_WINDOW_MS, &suppressed), 1);
    ck_assert_int_eq(suppressed, 8);
    ck_assert_int_eq(log_ratelimit_allow(&rl, 5000 + LOG_RATELIMIT_WINDOW_MS + 1, &suppressed), 1);
    ck_assert_int_eq(suppressed, 0);
}
END_TEST

START_TEST(test_clock_going_backwards_starts_a_window)
{
    struct log_ratelimit rl;
    long long suppressed = -1;
    memset(&rl, 0, sizeof(rl));
    for (int i = 0; i < LOG_RATELIMIT_BURST + 1; i++)
        log_ratelimit_allow(&rl, 90000, &suppressed);
    ck_assert_int_eq(log_ratelimit_allow(&rl, 100, &suppressed), 1);
    ck_assert_int_eq(suppressed, 1);
}
END_TEST

START_TEST(test_targets_open_without_waiting)
{
    char dir[] = "/tmp/evb-log-XXXXXX", path[64];

    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(chdir(dir), 0);
    /* "Syslog" and "STDERR" are the targets, not files of that name. */
    ck_assert_int_eq(log_open(LOG_LEVEL_NOTICE, "STDERR"), 0);
    ck_assert_int_eq(log_open(LOG_LEVEL_NOTICE, "Syslog"), 0);
    ck_assert_int_ne(access("STDERR", F_OK), 0);
    ck_assert_int_ne(access("Syslog", F_OK), 0);
    /* A FIFO nobody reads would block open(2); it fails and says why. */
    snprintf(path, sizeof(path), "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    ck_assert_int_eq(log_open(LOG_LEVEL_NOTICE, path), -1);
    ck_assert_str_eq(log_open_error(), "a FIFO with no reader");
    snprintf(path, sizeof(path), "%s/file.log", dir);
    ck_assert_int_eq(log_open(LOG_LEVEL_NOTICE, path), 0);
    log_close();
    unlink(path);
    snprintf(path, sizeof(path), "%s/fifo", dir);
    unlink(path);
    ck_assert_int_eq(chdir("/"), 0);
    rmdir(dir);
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("ratelimit");
    tcase_add_test(tc, test_burst_passes_then_repeats_are_counted);
    tcase_add_test(tc, test_next_window_reports_the_count_once);
    tcase_add_test(tc, test_clock_going_backwards_starts_a_window);
    tcase_add_test(tc, test_targets_open_without_waiting);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(log_suite)
