/* Unit tests for the server's adaptive batching controller: when it engages, how the window
 * follows the load, and when it lets go (load gone, or holding not paying). */
#include <string.h>

#include "config.h"
#include "server.h"
#include "unit.h"

/* A server state with only what the controller reads: the two keys and the clock. */
static void controller_up(int batch_us, int load_mark)
{
    memset(&server, 0, sizeof(server));
    config_init(&server.cfg);
    server.cfg.output_batch_us = batch_us;
    server.cfg.output_batch_load = load_mark;
    server.now_ms = 1000000;
}

static void controller_down(void)
{
    config_free(&server.cfg);
}

START_TEST(light_load_never_engages)
{
    controller_up(2000, 90);
    for (int i = 0; i < 50; i++) {
        server_adapt_batching(89);
        ck_assert_int_eq(server.batch_engaged, 0);
    }
    ck_assert_int_eq(server.load_pct, 89);
}
END_TEST

START_TEST(saturation_engages_with_the_shortest_window_then_doubles_to_the_limit)
{
    static const int want[] = {250, 500, 1000, 2000, 2000, 2000};
    controller_up(2000, 90);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        server_adapt_batching(95);
        ck_assert_int_eq(server.batch_engaged, 1);
        ck_assert_int_eq(server.batch_window_us, want[i]);
    }
}
END_TEST

START_TEST(lighter_load_shrinks_the_window_and_a_quiet_second_lets_go)
{
    controller_up(2000, 90);
    for (int i = 0; i < 4; i++)
        server_adapt_batching(100);
    ck_assert_int_eq(server.batch_window_us, 2000);
    /* Below the mark but above half of it: shorter windows, still engaged however long. */
    server_adapt_batching(60);
    ck_assert_int_eq(server.batch_window_us, 1000);
    for (int i = 0; i < 30; i++) {
        server.now_ms += 100;
        server_adapt_batching(60);
    }
    ck_assert_int_eq(server.batch_engaged, 1);
    ck_assert_int_eq(server.batch_window_us, 250); /* never below an eighth */
    /* Under half the mark: engaged for a second more, in case the load comes back. */
    server_adapt_batching(10);
    server.now_ms += 900;
    server_adapt_batching(10);
    ck_assert_int_eq(server.batch_engaged, 1);
    server.now_ms += 200;
    server_adapt_batching(10);
    ck_assert_int_eq(server.batch_engaged, 0);
    /* Back at the mark: starts over from the shortest window. */
    server_adapt_batching(90);
    ck_assert_int_eq(server.batch_engaged, 1);
    ck_assert_int_eq(server.batch_window_us, 250);
}
END_TEST

START_TEST(a_busy_interval_between_quiet_ones_restarts_the_quiet_second)
{
    controller_up(2000, 90);
    server_adapt_batching(95);
    server_adapt_batching(10);
    server.now_ms += 800;
    server_adapt_batching(95);
    server.now_ms += 800;
    server_adapt_batching(10);
    server.now_ms += 800;
    server_adapt_batching(10);
    ck_assert_int_eq(server.batch_engaged, 1);
}
END_TEST

START_TEST(zero_window_disables_and_zero_mark_always_batches)
{
    controller_up(0, 90);
    server_adapt_batching(100);
    ck_assert_int_eq(server.batch_engaged, 0);
    controller_down();
    controller_up(3000, 0);
    server_adapt_batching(0);
    ck_assert_int_eq(server.batch_engaged, 1);
    ck_assert_int_eq(server.batch_window_us, 3000);
}
END_TEST

/* One cron interval at load_pct in which n subscribers were held and j messages joined them. */
static void interval(int load_pct, long long n, long long j)
{
    server.batch_holds = n;
    server.batch_joins = j;
    server.now_ms += 100;
    server_adapt_batching(load_pct);
    ck_assert_int_eq(server.batch_holds, 0);
    ck_assert_int_eq(server.batch_joins, 0);
}

START_TEST(holding_that_pays_keeps_batching)
{
    controller_up(2000, 70);
    interval(95, 0, 0);
    ck_assert_int_eq(server.batch_window_us, 250);
    /* 1,000 holds with 200 joins at a 250 µs window: 1.6 joins per hold at 2 ms. */
    interval(95, 1000, 200);
    ck_assert_int_eq(server.batch_engaged, 1);
    ck_assert_int_eq(server.batch_window_us, 500);
    interval(95, 1000, 100000); /* one channel, many subscribers: dozens per hold */
    ck_assert_int_eq(server.batch_engaged, 1);
    /* Too few holds to judge by. */
    interval(95, 99, 0);
    ck_assert_int_eq(server.batch_engaged, 1);
}
END_TEST

START_TEST(holding_that_does_not_pay_lets_go_for_five_seconds)
{
    controller_up(2000, 70);
    interval(95, 0, 0);
    /* 1,000 holds with 100 joins at 250 µs: 0.8 per hold at 2 ms, so most writes still carry
     * one message each. */
    interval(95, 1000, 100);
    ck_assert_int_eq(server.batch_engaged, 0);
    ck_assert_int_eq(server.stats.batch_declines, 1);
    for (int i = 0; i < 49; i++) {
        interval(100, 0, 0);
        ck_assert_int_eq(server.batch_engaged, 0);
    }
    interval(100, 0, 0); /* five seconds later: tried again from the shortest window */
    ck_assert_int_eq(server.batch_engaged, 1);
    ck_assert_int_eq(server.batch_window_us, 250);
    /* A forced window (mark 0) is never second-guessed. */
    controller_down();
    controller_up(2000, 0);
    interval(100, 1000, 0);
    ck_assert_int_eq(server.batch_engaged, 1);
}
END_TEST

START_TEST(holding_that_pays_only_at_a_window_the_load_will_not_reach_lets_go)
{
    controller_up(2000, 70);
    interval(95, 0, 0);
    /* 0.3 joins per hold at 250 µs would be 2.4 at 2 ms, enough while the load can still
     * widen the window... */
    interval(95, 1000, 300);
    ck_assert_int_eq(server.batch_engaged, 1);
    /* ...but below the mark the window only shrinks: 0.3 per hold is all holding gives. */
    interval(60, 1000, 300);
    ck_assert_int_eq(server.batch_engaged, 0);
    ck_assert_int_eq(server.stats.batch_declines, 1);
    /* Below the mark with one join per hold or more, holding still pays its way. */
    controller_down();
    controller_up(2000, 70);
    interval(95, 0, 0);
    interval(60, 1000, 1000);
    ck_assert_int_eq(server.batch_engaged, 1);
}
END_TEST

START_TEST(misses_in_a_row_wait_twice_as_long_each_until_holding_pays)
{
    controller_up(2000, 70);
    long long waits[] = {5000, 10000, 20000, 40000, 80000, 80000};
    for (int miss = 0; miss < 6; miss++) {
        interval(95, 0, 0); /* engages (at once the first time, then when the wait is over) */
        ck_assert_int_eq(server.batch_engaged, 1);
        interval(95, 1000, 0); /* no message joined a held subscriber */
        ck_assert_int_eq(server.batch_engaged, 0);
        long long retry = server.now_ms + waits[miss];
        ck_assert_int_eq(server.batch_retry_ms, retry);
        while (server.now_ms + 100 < retry) {
            interval(95, 0, 0);
            ck_assert_int_eq(server.batch_engaged, 0);
        }
    }
    /* Holding that pays resets the wait after the next miss to five seconds. */
    interval(95, 0, 0);
    interval(95, 1000, 100000);
    ck_assert_int_eq(server.batch_engaged, 1);
    interval(95, 1000, 0);
    ck_assert_int_eq(server.batch_engaged, 0);
    ck_assert_int_eq(server.batch_retry_ms, server.now_ms + 5000);
}
END_TEST

static Suite *server_suite(void)
{
    Suite *s = suite_create("server");
    TCase *tc = tcase_create("adaptive batching");
    tcase_add_checked_fixture(tc, NULL, controller_down);
    tcase_add_test(tc, light_load_never_engages);
    tcase_add_test(tc, saturation_engages_with_the_shortest_window_then_doubles_to_the_limit);
    tcase_add_test(tc, lighter_load_shrinks_the_window_and_a_quiet_second_lets_go);
    tcase_add_test(tc, a_busy_interval_between_quiet_ones_restarts_the_quiet_second);
    tcase_add_test(tc, zero_window_disables_and_zero_mark_always_batches);
    tcase_add_test(tc, holding_that_pays_keeps_batching);
    tcase_add_test(tc, holding_that_does_not_pay_lets_go_for_five_seconds);
    tcase_add_test(tc, holding_that_pays_only_at_a_window_the_load_will_not_reach_lets_go);
    tcase_add_test(tc, misses_in_a_row_wait_twice_as_long_each_until_holding_pays);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(server_suite)
