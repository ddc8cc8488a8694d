#!/bin/bash
# Profiles one benchmark scenario: starts a throwaway server (evb or redis) on a free port, runs
# tests/bench/loadgen with the given arguments while `perf record -g` samples the server, and
# prints the top functions by self time. Kills only the server it started; never reads stdin.
#
# Usage: scripts/bench-profile.sh evb|redis SECONDS LOADGEN-ARGS...
#   e.g. scripts/bench-profile.sh evb 4 -P 1 -S 1000 -s 64 -d 16
# Environment: EVBROKERD, LOADGEN, REDIS_SERVER, PROFILE_OUT (perf data, default /tmp),
# PROFILE_BATCH_US (evbrokerd's [server] output_batch_us).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EVBROKERD=${EVBROKERD:-$ROOT/src/evbrokerd}
LOADGEN=${LOADGEN:-$ROOT/tests/bench/loadgen}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
OUTDIR=${PROFILE_OUT:-/tmp}
SRV=$1 SECS=$2
shift 2
WORK=$(mktemp -d /tmp/evb-prof.XXXXXX)
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT

PORT=$((20000 + RANDOM % 12000))
if [ "$SRV" = redis ]; then
    "$REDIS_SERVER" --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --client-output-buffer-limit "pubsub 0 0 0" --maxclients 20000 --daemonize no \
        --dir "$WORK" --logfile "$WORK/redis.log" </dev/null &
else
    printf '[server]\nbind = 127.0.0.1\nport = %s\nmaxclients = 100000\noutput_batch_us = %s\n[limits]\n%s\n' \
        "$PORT" "${PROFILE_BATCH_US:-2000}" 'pubsub_output_limit = "0 0 0"' >"$WORK/evb.conf"
    "$EVBROKERD" -c "$WORK/evb.conf" </dev/null 2>"$WORK/evb.log" &
fi
PID=$!
for _ in $(seq 50); do
    [ "$(timeout 2 redis-cli -p "$PORT" ping 2>/dev/null </dev/null)" = PONG ] && break
    sleep 0.1
done
DATA=$OUTDIR/perf-$SRV-$$.data
timeout $((SECS + 120)) "$LOADGEN" --port "$PORT" --server-pid "$PID" -t "$SECS" "$@" </dev/null &
LG=$!
sleep 0.5 # setup (subscriptions) is not profiled
perf record -q -g -p "$PID" -o "$DATA" -- sleep "$((SECS - 1))" </dev/null >/dev/null 2>&1
wait "$LG"
perf report -i "$DATA" --stdio --no-children --percent-limit 1.5 -g none 2>/dev/null |
    grep -E '^ +[0-9]' | head -25
echo "perf data: $DATA"
