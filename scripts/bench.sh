#!/bin/bash
# Issue-5 fan-out benchmark: runs every scenario against redis-server and evbrokerd, each on a
# fresh server on a free port, interleaved and repeated, then prints one table of medians with
# the ratio evbrokerd/redis, the target and PASS/FAIL, and draws a PNG chart with gnuplot.
# It kills only the processes it started, never reads stdin, and bounds every step in time.
#
# Environment: BENCH_REPS (3), BENCH_QUICK=1 (small counts, smoke test), BENCH_ONLY="1,2a"
# (scenario ids), BENCH_DURATION (seconds per run), BENCH_OUT (bench-results), EVBROKERD,
# BENCH_BATCH_US (evbrokerd's [server] output_batch_us; the daemon's default when unset),
# BENCH_REDIS_ARGS (extra redis-server arguments, e.g. "--io-threads 2"),
# LOADGEN, REDIS_SERVER, BENCH_CHART (PNG path, default $BENCH_OUT/bench.png), BENCH_RENDER
# (an earlier raw-*.tsv: redraw its tables and chart without running anything).
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
EVBROKERD=${EVBROKERD:-$ROOT/src/evbrokerd}
LOADGEN=${LOADGEN:-$ROOT/tests/bench/loadgen}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
REPS=${BENCH_REPS:-3}
QUICK=${BENCH_QUICK:-0}
ONLY=${BENCH_ONLY:-}
OUT=${BENCH_OUT:-$ROOT/bench-results}
CHART=${BENCH_CHART:-$OUT/bench.png}
if [ "$QUICK" = 1 ]; then DUR=${BENCH_DURATION:-1}; else DUR=${BENCH_DURATION:-4}; fi

# Scenarios: id | name | loadgen arguments. IDLE_N/IDLE_BIG are replaced below.
SCENARIOS=(
    "1|1pub-1sub-64B-pipe64|-P 1 -S 1 -s 64 -d 64"
    "2a|1ch-100subs-64B|-P 1 -S 100 -s 64 -d 16"
    "2b|1ch-1000subs-64B|-P 1 -S 1000 -s 64 -d 16"
    "3|1000ch-1sub-4pubs|-P 4 -S 1000 -C 1000 -s 64 -d 16"
    "4|100subs-own-pattern|-P 1 -S 100 --patterns -s 64 -d 16"
    "5|10000-patterns|-P 1 -S 10 --pattern-count 10000 -s 64 -d 16"
    "6|rate20k-100subs|-P 1 -S 100 -s 64 -r 20000 -d 4096"
    "7a|1sub-1KiB|-P 1 -S 1 -s 1024 -d 16"
    "7b|100subs-1KiB|-P 1 -S 100 -s 1024 -d 16"
    "7c|1sub-16KiB|-P 1 -S 1 -s 16384 -d 16"
    "7d|100subs-16KiB|-P 1 -S 100 -s 16384 -d 16"
    "8|idle-10k|--idle-subscribers IDLE_N --hold HOLD"
    "9|idle-50k|--idle-subscribers IDLE_BIG --hold HOLD --setup-timeout 60"
)
# Targets: scenario id | figure key | op | ratio (evbrokerd / redis-server).
TARGETS=(
    "1|publishes_per_s|>=|1.3"
    "2a|srv_cpu_us_per_delivery|<=|0.5"
    "2a|deliveries_per_s|>=|1.5"
    "2b|srv_cpu_us_per_delivery|<=|0.5"
    "2b|deliveries_per_s|>=|1.5"
    "3|srv_cpu_us_per_delivery|<=|0.8"
    "4|srv_cpu_us_per_publish|<=|0.7"
    "5|publishes_per_s|>=|10"
    "6|lat_p99_us|<=|0.5"
    "7a|srv_cpu_us_per_delivery|<=|0.6"
    "7b|srv_cpu_us_per_delivery|<=|0.6"
    "7c|srv_cpu_us_per_delivery|<=|0.6"
    "7d|srv_cpu_us_per_delivery|<=|0.6"
    "8|rss_per_conn_b|<=|0.25"
    "9|idle_connected|works|50000"
)
# Idle subscribers are held long enough for both servers to shrink idle buffers (Redis frees
# an idle query buffer after 2 s), so RSS is the steady state, not the connect-time peak.
if [ "$QUICK" = 1 ]; then IDLE_N=1000 IDLE_BIG=2000 HOLD=3; else IDLE_N=10000 IDLE_BIG=50000 HOLD=10; fi

WORK=$(mktemp -d /tmp/evb-bench.XXXXXX)
PIDS=""

# Kills the servers this script started (by pid) and removes the scratch directory.
cleanup()
{
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Prints a port in 20000-32767 (below the ephemeral range) that nothing listens on.
free_port()
{
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}

# Waits (up to 5 s) until a server answers PING on a port.
wait_ready()
{
    for _ in $(seq 50); do
        [ "$(timeout 2 redis-cli -p "$1" ping 2>/dev/null </dev/null)" = PONG ] && return 0
        sleep 0.1
    done
    return 1
}

# Starts one server ($1 = redis|evb) on a free port; sets SRV_PID and SRV_PORT.
start_server()
{
    SRV_PORT=$(free_port)
    if [ "$1" = redis ]; then
        # shellcheck disable=SC2086
        "$REDIS_SERVER" --port "$SRV_PORT" --bind 127.0.0.1 --save '' --appendonly no \
            --client-output-buffer-limit "pubsub 0 0 0" --maxclients 120000 \
            --protected-mode no --daemonize no --dir "$WORK" \
            --logfile "$WORK/redis.log" ${BENCH_REDIS_ARGS:-} </dev/null &
    else
        cat >"$WORK/evb.conf" <<EOF
[server]
bind = 127.0.0.1
port = $SRV_PORT
maxclients = 120000
tcp_keepalive = 300
${BENCH_BATCH_US:+output_batch_us = $BENCH_BATCH_US}
[log]
level = warning
target = $WORK/evb.log
[limits]
pubsub_output_limit = "0 0 0"
EOF
        "$EVBROKERD" -c "$WORK/evb.conf" </dev/null &
    fi
    SRV_PID=$!
    PIDS="$PIDS $SRV_PID"
    wait_ready "$SRV_PORT" || { echo "bench: $1 did not start on port $SRV_PORT" >&2; exit 1; }
}

# Stops the server started last.
stop_server()
{
    kill "$SRV_PID" 2>/dev/null
    wait "$SRV_PID" 2>/dev/null
    PIDS=$(echo "$PIDS" | tr ' ' '\n' | grep -vx "$SRV_PID" | tr '\n' ' ')
}

# Runs one scenario ($1 id, $2 name, $3 args) on one server ($4), repetition $5.
run_one()
{
    local id=$1 name=$2 args=$3 srv=$4 rep=$5 line load limit
    args=${args//IDLE_N/$IDLE_N}
    args=${args//IDLE_BIG/$IDLE_BIG}
    args=${args//HOLD/$HOLD}
    case $args in *idle-subscribers*) limit=180 ;; *) args="$args -t $DUR"; limit=$((DUR + 90)) ;; esac
    start_server "$srv"
    load=$(cut -d' ' -f1 /proc/loadavg)
    # shellcheck disable=SC2086
    line=$(timeout "$limit" "$LOADGEN" --port "$SRV_PORT" --server-pid "$SRV_PID" \
        --label "$name" $args 2>>"$OUT/loadgen.stderr" </dev/null | grep '^RESULT')
    stop_server
    [ -n "$line" ] || line="RESULT label=$name integrity=FAIL error=no_result"
    printf '%s\t%s\t%s\t%s\t%s\n' "$id" "$srv" "$rep" "load1=$load" "${line#RESULT }" >>"$RAW"
    printf '  rep %s  %-4s %-22s %-6s %s\n' "$rep" "$id" "$name" "$srv" \
        "$(echo "$line" | tr ' ' '\n' | grep -E '^(publishes_per_s|deliveries_per_s|lat_p99_us|srv_cpu_us_per_delivery|srv_cpu_us_per_publish|rss_per_conn_b|idle_connected|held|integrity|client_saturated|cli_cpu_pct)=' | tr '\n' ' ')"
}

# Whether a scenario id is selected by BENCH_ONLY.
selected()
{
    [ -z "$ONLY" ] && return 0
    case ",$ONLY," in *",$1,"*) return 0 ;; esac
    return 1
}

# Prints the median of every (scenario, server, key) from the raw file as TSV.
medians()
{
    awk -F'\t' '{ for (i = 4; i <= NF; i++) { split($i, kv, " ");
          for (j in kv) { n = index(kv[j], "="); if (n == 0) continue;
              k = substr(kv[j], 1, n - 1); v = substr(kv[j], n + 1);
              if (v ~ /^-?[0-9.]+$/) print $1 "\t" $2 "\t" k "\t" v } } }' "$RAW" |
        sort -t"$(printf '\t')" -k1,1 -k2,2 -k3,3 -k4,4g |
        awk -F'\t' '{ key = $1 "\t" $2 "\t" $3; if (key != last && last != "") flush();
                      last = key; vals[++n] = $4 }
                    function flush() { m = (n % 2) ? vals[(n + 1) / 2] : (vals[n / 2] + vals[n / 2 + 1]) / 2;
                                       print last "\t" m; n = 0 }
                    END { if (n) flush() }'
}

# Looks up a median: $1 scenario, $2 server, $3 key.
med()
{
    awk -F'\t' -v s="$1" -v r="$2" -v k="$3" '$1 == s && $2 == r && $3 == k { print $4 }' "$MED"
}

# Prints the summary tables (markdown) from the medians.
summary()
{
    local t id key op want r e ratio verdict sat name
    echo "| scenario | figure | redis-server | evbrokerd | ratio evb/redis | target | result | bad runs (redis/evb) | client saturated (redis/evb) |"
    echo "|---|---|---:|---:|---:|---|---|---|---|"
    for t in "${TARGETS[@]}"; do
        IFS='|' read -r id key op want <<<"$t"
        selected "$id" || continue
        name=$(for s in "${SCENARIOS[@]}"; do [ "${s%%|*}" = "$id" ] && echo "$s" | cut -d'|' -f2; done)
        r=$(med "$id" redis "$key")
        e=$(med "$id" evb "$key")
        ratio=$(awk -v r="$r" -v e="$e" 'BEGIN { if (r + 0 > 0 && e != "") printf "%.2f", e / r; else print "n/a" }')
        if [ "$op" = works ]; then
            verdict=$(awk -v e="$e" -v w="$want" -v h="$(med "$id" evb held)" \
                'BEGIN { if (e + 0 >= w && h + 0 == 1) print "PASS"; else if (h + 0 == 1) printf "LIMITED (held %d of %d)", e, w; else print "FAIL" }')
            want="$want held"
        else
            verdict=$(awk -v x="$ratio" -v op="$op" -v w="$want" \
                'BEGIN { if (x == "n/a") print "n/a"; else if ((op == ">=" && x + 0 >= w) || (op == "<=" && x + 0 <= w)) print "PASS"; else print "FAIL" }')
            want="$op ${want}x"
        fi
        sat="$(med "$id" redis client_saturated)/$(med "$id" evb client_saturated)"
        printf '| %s %s | %s | %s | %s | %s | %s | %s | %s/%s | %s |\n' "$id" "$name" "$key" \
            "${r:-n/a}" "${e:-n/a}" "$ratio" "$want" "$verdict" \
            "$(failures_srv "$id" redis)" "$(failures_srv "$id" evb)" "$sat"
    done
}

# Counts bad runs of a scenario on one server.
failures_srv()
{
    awk -F'\t' -v s="$1" -v r="$2" '$1 == s && $2 == r && ($5 ~ /integrity=FAIL/ || $5 ~ /held=0/) { n++ } END { print n + 0 }' "$RAW"
}

# Prints the secondary figures of every scenario (medians) as a markdown table.
details()
{
    local s id name srv k
    echo "| scenario | server | publishes/s | deliveries/s | p50 us | p99 us | p99.9 us | srv us/delivery | srv us/publish | srv CPU % | client CPU % | srv RSS kB | lost/dup/reord (sum) |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    for s in "${SCENARIOS[@]}"; do
        IFS='|' read -r id name _ <<<"$s"
        selected "$id" || continue
        case $name in idle*) continue ;; esac
        for srv in redis evb; do
            printf '| %s %s | %s |' "$id" "$name" "$srv"
            for k in publishes_per_s deliveries_per_s lat_p50_us lat_p99_us lat_p999_us \
                srv_cpu_us_per_delivery srv_cpu_us_per_publish srv_cpu_pct cli_cpu_pct srv_rss_kb; do
                printf ' %s |' "$(med "$id" "$srv" "$k")"
            done
            printf ' %s |\n' "$(awk -F'\t' -v s="$id" -v r="$srv" '$1 == s && $2 == r {
                for (i = 1; i <= split($5, kv, " "); i++) { split(kv[i], p, "=");
                    if (p[1] == "lost") l += p[2]; if (p[1] == "dups") d += p[2];
                    if (p[1] == "reordered") o += p[2] } } END { printf "%d/%d/%d", l, d, o }' "$RAW")"
        done
    done
    echo
    echo "| idle scenario | server | requested | connected | held | RSS before kB | RSS just connected kB | RSS after hold kB | RSS per connection B (after hold) |"
    echo "|---|---|---:|---:|---|---:|---:|---:|---:|"
    for s in "${SCENARIOS[@]}"; do
        IFS='|' read -r id name _ <<<"$s"
        selected "$id" || continue
        case $name in idle*) ;; *) continue ;; esac
        for srv in redis evb; do
            printf '| %s %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$id" "$name" "$srv" \
                "$(med "$id" "$srv" idle_requested)" "$(med "$id" "$srv" idle_connected)" \
                "$(med "$id" "$srv" held)" "$(med "$id" "$srv" rss_base_kb)" \
                "$(med "$id" "$srv" rss_after_kb)" "$(med "$id" "$srv" rss_held_kb)" \
                "$(med "$id" "$srv" rss_per_conn_b)"
        done
    done
}

# Draws throughput and p99 latency per scenario, redis vs evbrokerd, when gnuplot exists.
chart()
{
    if ! command -v gnuplot >/dev/null && [ "$(id -u)" -eq 0 ]; then
        echo "bench: installing gnuplot-nox for the chart"
        DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq --no-install-recommends \
            gnuplot-nox </dev/null >/dev/null 2>&1
    fi
    if ! command -v gnuplot >/dev/null; then
        echo "bench: gnuplot missing, no chart"
        return
    fi
    local dat=$OUT/chart.dat s id name
    : >"$dat"
    for s in "${SCENARIOS[@]}"; do
        IFS='|' read -r id name _ <<<"$s"
        selected "$id" || continue
        case $name in idle*) continue ;; esac
        printf '"%s %s" %s %s %s %s\n' "$id" "$name" \
            "$(med "$id" redis deliveries_per_s)" "$(med "$id" evb deliveries_per_s)" \
            "$(med "$id" redis lat_p99_us)" "$(med "$id" evb lat_p99_us)" >>"$dat"
    done
    mkdir -p "$(dirname "$CHART")"
    gnuplot <<EOF
set terminal pngcairo size 1400,900 font "sans,10"
set output "$CHART"
set multiplot layout 2,1 title "evbrokerd vs redis-server $(redis-server --version | grep -o 'v=[0-9.]*') (medians of $REPS runs; $(nproc) cores)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set logscale y
set grid ytics
set xtics rotate by -25 noenhanced
set key top right
set ylabel "deliveries/s (log)"
plot "$dat" using 2:xtic(1) title "redis-server" lc rgb "#c0392b", "" using 3 title "evbrokerd" lc rgb "#2471a3"
set ylabel "p99 latency, us (log)"
plot "$dat" using 4:xtic(1) title "redis-server" lc rgb "#c0392b", "" using 5 title "evbrokerd" lc rgb "#2471a3"
unset multiplot
EOF
    echo "bench: chart written to $CHART"
}

for f in "$EVBROKERD" "$LOADGEN"; do
    [ -x "$f" ] || { echo "bench: $f missing (run make bench)" >&2; exit 1; }
done
command -v "$REDIS_SERVER" >/dev/null || { echo "bench: redis-server missing (scripts/setup.sh)" >&2; exit 1; }
ulimit -n 120000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
mkdir -p "$OUT"
STAMP=$(date +%Y%m%d-%H%M%S)
RAW=$OUT/raw-$STAMP.tsv
MED=$OUT/medians-$STAMP.tsv
if [ -n "${BENCH_RENDER:-}" ]; then
    # Only redraw the tables and the chart from an earlier run's raw file.
    RAW=$BENCH_RENDER MED=$OUT/medians-rendered.tsv REPS=0 REPS_SHOWN="as recorded"
    [ -r "$RAW" ] || { echo "bench: $RAW unreadable" >&2; exit 1; }
    LOAD_BEFORE="(not recorded: rendered from $(basename "$RAW"))"
else
    : >"$RAW"
    : >"$OUT/loadgen.stderr"
    LOAD_BEFORE=$(cat /proc/loadavg)
fi
echo "bench: $(nproc) cores, loadavg before: $LOAD_BEFORE, open files limit $(ulimit -n)," \
    "reps $REPS, quick $QUICK, $DUR s per run"
echo "bench: evbrokerd $EVBROKERD ($("$EVBROKERD" --version)), $("$REDIS_SERVER" --version | cut -d' ' -f1-3)"
turn=0
for rep in $(seq "$REPS"); do
    for s in "${SCENARIOS[@]}"; do
        IFS='|' read -r id name args <<<"$s"
        selected "$id" || continue
        # Alternate which server goes first, so drift in machine load favours neither.
        turn=$((turn + 1))
        if [ $((turn % 2)) -eq 1 ]; then order="redis evb"; else order="evb redis"; fi
        for srv in $order; do
            run_one "$id" "$name" "$args" "$srv" "$rep"
        done
    done
done
LOAD_AFTER=$(cat /proc/loadavg)
medians >"$MED"
{
    echo "# evbrokerd vs redis-server, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),"
    echo "loadavg before: $LOAD_BEFORE; after: $LOAD_AFTER; open files limit: $(ulimit -n);"
    echo "reps: ${REPS_SHOWN:-$REPS}; quick: $QUICK; seconds per run: $DUR; raw: $(basename "$RAW")"
    echo
    summary
    echo
    details
} >"$OUT/latest.md"
cp "$RAW" "$OUT/latest.tsv"
cp "$MED" "$OUT/medians.tsv"
echo
cat "$OUT/latest.md"
chart
echo "bench: results in $OUT/latest.md, $OUT/latest.tsv (raw), $OUT/medians.tsv"
