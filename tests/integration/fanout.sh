#!/bin/bash
# Fan-out integrity of a real evbrokerd under load, driven by the benchmark's load generator:
# every message reaches every subscriber once and in order, through the frame log's runs (RESP2
# and RESP3) and through the copy path (patterns, several subscriptions per client, large
# frames), with batching forced on and off. Prints "ok fanout/NAME" or "FAIL fanout/NAME: why".
set -u

SUITE=fanout
. "$(dirname "$0")/itest-lib.bash"

LOADGEN=${LOADGEN:-$TOP/tests/bench/loadgen}
if [ ! -x "$LOADGEN" ]; then
    echo "FAIL $SUITE/loadgen: $LOADGEN is missing (make builds it with the integration suite)"
    exit 1
fi

read -r port < <(free_port 1)
write_daemon_conf "output_batch_load = 0" "[limits]" 'pubsub_output_limit = "0 0 0"'
start_daemon_or_exit "$dir/evbrokerd.conf" "$port"

# run NAME ARGS...: one load generator run with a fixed message count; passes when the result
# line shows every expected delivery, none lost, duplicated, reordered or misrouted.
run() {
    local name=$1 out
    shift
    out=$(timeout 120 "$LOADGEN" --port "$port" --server-pid "$daemon" --setup-timeout 30 "$@" \
        2>&1 | grep '^RESULT')
    [ -n "${ITEST_VERBOSE:-}" ] && echo "    $name: $out"
    check "$name" "${out:-no result line}" \
        sh -c 'case "$1" in *" lost=0 dups=0 reordered=0 misrouted=0 bad=0 reply_mismatch=0 errors=0 "*integrity=ok*) ;; *) exit 1 ;; esac
               exp=${1#* expected=}; exp=${exp%% *}; got=${1#* deliveries=}; got=${got%% *}
               [ "$exp" -gt 0 ] && [ "$exp" = "$got" ]' _ "$out"
}

# Batching forced on: runs are held across passes and switch log segments mid-run.
run resp2_one_channel -P 2 -S 40 -s 64 -d 16 -n 20000
run resp3_one_channel --resp3 -P 1 -S 20 -s 64 -d 16 -n 10000
run many_channels -P 4 -S 200 -C 200 -s 100 -d 16 -n 20000
run own_patterns -P 1 -S 20 --patterns -s 64 -d 16 -n 5000
run resp3_many_channels --resp3 -P 4 -S 100 -C 100 -s 100 -d 16 -n 20000
run frames_near_the_log_limit -P 1 -S 10 -s 2000 -d 16 -n 5000
run large_frames -P 1 -S 10 -s 16384 -d 8 -n 1000
run resp3_large_frames --resp3 -P 1 -S 10 -s 16384 -d 8 -n 1000
run large_frames_to_patterns -P 1 -S 10 --patterns -s 5000 -d 8 -n 1000

# A payload big enough to be framed in place (resp.h RESP_BIG_ARG) reaches a channel
# subscriber and a pattern subscriber byte for byte: one frame is built around the request's
# argument, the other copies it.
payload=$(head -c 6000 /dev/zero | tr '\0' 'p')
timeout 5 redis-cli -p "$port" SUBSCRIBE bigch >"$dir/sub.out" 2>&1 </dev/null &
sub=$!
timeout 5 redis-cli -p "$port" PSUBSCRIBE 'big*' >"$dir/psub.out" 2>&1 </dev/null &
psub=$!
for _ in $(seq 50); do
    [ "$(timeout 2 redis-cli -p "$port" PUBSUB NUMPAT </dev/null)" = 1 ] &&
        [ "$(timeout 2 redis-cli -p "$port" PUBSUB NUMSUB bigch </dev/null | tail -1)" = 1 ] && break
    sleep 0.1
done
got=$(timeout 5 redis-cli -p "$port" PUBLISH bigch "$payload" </dev/null)
check big_payload_receivers "PUBLISH replied $got" test "$got" = 2
sleep 0.3
kill "$sub" "$psub" 2>/dev/null
wait "$sub" "$psub" 2>/dev/null
check big_payload_to_channel "$(wc -c <"$dir/sub.out") bytes" grep -qx "$payload" "$dir/sub.out"
check big_payload_to_pattern "$(wc -c <"$dir/psub.out") bytes" grep -qx "$payload" "$dir/psub.out"

# Batching off: every subscriber is written at the end of each pass.
sed -i 's/^output_batch_load = 0$/output_batch_load = 100/; s/^\[server\]$/[server]\noutput_batch_us = 0/' \
    "$dir/evbrokerd.conf"
kill -HUP "$daemon"
sleep 0.3
run unbatched_resp2 -P 2 -S 40 -s 64 -d 64 -n 20000
run unbatched_1k -P 1 -S 10 -s 1024 -d 16 -n 10000

# The load generator's fixed-rate mode with arrival times (a benchmark tool check): the kernel
# receives every message before the client reads it, so the arrival p99 is above zero and not
# above the read p99 (their clocks differ, so a bucket's width, 1 %, is allowed).
out=$(timeout 60 "$LOADGEN" --port "$port" --server-pid "$daemon" -P 1 -S 20 -s 64 -d 64 -r 20000 \
    -n 20000 --arrival 2>&1 | grep '^RESULT')
check arrival_times "${out:-no result line}" awk -v r="$out" 'BEGIN {
    n = split(r, kv, " "); for (i = 1; i <= n; i++) { split(kv[i], p, "="); v[p[1]] = p[2] }
    exit !(v["integrity"] == "ok" && v["arr_p99_us"] > 0 && v["arr_p99_us"] <= v["lat_p99_us"] * 1.01) }'

# Every frame was released, and once messages stop for a second cron frees the log too.
info() {
    timeout 5 redis-cli -p "$port" INFO pubsub | tr -d '\r' | sed -n "s/^$1://p"
}
check no_frames_left "pubsub_frames_alive=$(info pubsub_frames_alive)" \
    test "$(info pubsub_frames_alive)" = 0
sleep 2.5
check idle_log_released "pubsub_log_segments=$(info pubsub_log_segments)" \
    test "$(info pubsub_log_segments)" = 0

[ "$failures" -eq 0 ]
