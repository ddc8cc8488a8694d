#!/bin/bash
# Integration tests of the upstream bridge (issue 4): a real redis-server and evbrokerd nodes on
# free ports, with throwaway configs under one temp directory. Prints "ok NAME" or
# "FAIL NAME: why" per test and ends with "bridge: N passed, N failed"; exits non-zero on a
# failure. Kills only the processes it started. Never reads stdin.
#   bash tests/integration/bridge.sh          the tests
#   bash tests/integration/bridge.sh bench    the fan-out measurements for BENCHMARKS.md
# Environment: EVBROKERD (daemon), ITEST_BIN_DIR (where bridge_load is), ITEST_TMPDIR.
set -u
exec </dev/null

root=$(cd "$(dirname "$0")/../.." && pwd)
EVBROKERD=${EVBROKERD:-$root/src/evbrokerd}
LOAD=${ITEST_BIN_DIR:-$root/tests/integration}/bridge_load
tmp=$(mktemp -d "${ITEST_TMPDIR:-/tmp}/evb-bridge.XXXXXX") || exit 1
pids=()
passed=0
failed=0

# Stops every process this script started, then removes the temp directory.
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() { echo "ok bridge_$1"; passed=$((passed + 1)); }
fail() { echo "FAIL bridge_$1: $2"; failed=$((failed + 1)); }
now_ms() { date +%s%3N; }
cli() { timeout 5 redis-cli -p "$@"; }

for need in "$EVBROKERD" "$LOAD"; do
    if [ ! -x "$need" ]; then
        echo "FAIL bridge_setup: $need is missing (run make and make integration)"
        echo "bridge: 0 passed, 1 failed"
        exit 1
    fi
done
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    echo "FAIL bridge_setup: redis-server and redis-cli are needed (make setup)"
    echo "bridge: 0 passed, 1 failed"
    exit 1
fi

# Prints a TCP port nobody listens on.
free_port() {
    local p
    while :; do
        p=$((10000 + RANDOM % 20000)) # below the ephemeral range, so no TIME_WAIT of ours
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}

# Waits up to $2 ms until something answers PING on port $1 (NOAUTH counts as an answer).
wait_ping() {
    local end=$(($(now_ms) + $2))
    while [ "$(now_ms)" -lt "$end" ]; do
        case "$(timeout 1 redis-cli -p "$1" ping 2>/dev/null)" in PONG | NOAUTH*) return 0 ;; esac
        sleep 0.02
    done
    return 1
}

# start_redis VAR PORT [args...]: starts redis-server on PORT, stores its PID in VAR.
start_redis() {
    local var=$1 port=$2
    shift 2
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
        --logfile "$tmp/redis-$port.log" "$@" &
    pids+=($!)
    printf -v "$var" %s $!
    wait_ping "$port" 5000 || { echo "redis-server on $port did not start"; return 1; }
}

# start_node VAR PORT UPSTREAM_PORT [extra [upstream] lines]: starts evbrokerd, PID in VAR.
start_node() {
    local var=$1 port=$2 up=$3 conf=$tmp/node-$2.conf
    shift 3
    printf '[server]\nbind = 127.0.0.1\nport = %s\n[log]\nlevel = verbose\n' "$port" >"$conf"
    printf '[upstream]\nhost = 127.0.0.1\nport = %s\n' "$up" >>"$conf"
    for line in "$@"; do echo "$line" >>"$conf"; done
    "$EVBROKERD" -c "$conf" >"$tmp/node-$port.log" 2>&1 &
    pids+=($!)
    printf -v "$var" %s $!
    wait_ping "$port" 5000 || {
        echo "evbrokerd on $port did not start:"
        tail -n 5 "$tmp/node-$port.log"
        return 1
    }
}

# Prints one field of a node's INFO bridge.
bridge_field() {
    cli "$1" info bridge 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"
}

# Waits up to $3 ms until field $2 of node $1's INFO bridge equals $4.
wait_field() {
    local end=$(($(now_ms) + $3))
    while [ "$(now_ms)" -lt "$end" ]; do
        [ "$(bridge_field "$1" "$2")" = "$4" ] && return 0
        sleep 0.02
    done
    return 1
}

# Waits up to $2 ms until node $1's link is no longer up; fails if it still is.
wait_link_lost() {
    local end=$(($(now_ms) + $2))
    while [ "$(now_ms)" -lt "$end" ] && [ "$(bridge_field "$1" bridge_link)" = up ]; do
        sleep 0.05
    done
    [ "$(bridge_field "$1" bridge_link)" != up ]
}

# churn_bounded NAME PORT PID: a client subscribes and unsubscribes 600 names of 100 KB on
# node PORT whose upstream does not read; the node must drop the link for the bytes unsent,
# and (with jemalloc; the sanitizers' allocator keeps what it frees) stay under 64 MB.
churn_bounded() {
    local name=$1 port=$2 pid=$3 rss alloc
    timeout 30 python3 - "$port" <<'PYEOF' >"$tmp/churn-$port.out" 2>&1
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
for i in range(600):
    name = b"bc.%d." % i + b"n" * 100000
    s.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n*2\r\n$11\r\nUNSUBSCRIBE\r\n$%d\r\n%s\r\n"
              % (len(name), name, len(name), name))
    want, got = 2 * (len(name) + 40), b""
    while len(got) < want and b":0\r\n" not in got[-8:]:
        got += s.recv(1 << 20)
print("done")
PYEOF
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
    alloc=$(cli "$port" info memory | tr -d '\r' | sed -n 's/^mem_allocator://p')
    [ "$(cat "$tmp/churn-$port.out")" = done ] &&
        { [ "${alloc#jemalloc}" = "$alloc" ] || [ "${rss:-999999}" -lt 65536 ]; } &&
        grep -q "subscription changes unsent" "$tmp/node-$port.log" && ok "$name" ||
        fail "$name" "churn said '$(head -c 200 "$tmp/churn-$port.out")', RSS ${rss} kB ($alloc), log: $(grep Upstream "$tmp/node-$port.log" | tail -1)"
}

# Waits up to 5 s for a file to appear.
wait_file() {
    local i
    for i in $(seq 250); do [ -e "$1" ] && return 0; sleep 0.02; done
    return 1
}

# Stops one process this script started (SIGKILL with -9 as $2).
stop_pid() {
    kill "${2:--TERM}" "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

# The field of a bridge_load result line, e.g. result_field "$line" received.
result_field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# Runs the whole fabric test for one kind: subscribers on both nodes and on Redis, publishers
# on both nodes and on Redis, 10,000 messages; each subscriber must get each exactly once in
# per-publisher order.
test_fabric() {
    local kind=$1 sub=$2 ch=$3 field=$4 r=$5 a=$6 b=$7 n=0 line p port res=""
    rm -f "$tmp"/ready-*
    for port in "$a" "$a" "$b" "$b" "$r"; do
        n=$((n + 1))
        "$LOAD" sub "$port" "$kind" "$sub" 1 10000 30000 "$tmp/ready-$n" >"$tmp/sub-$kind-$n.out" &
        pids+=($!)
        eval "subpid$n=$!"
    done
    for n in 1 2 3 4 5; do wait_file "$tmp/ready-$n" || { fail "fabric_$kind" "subscriber $n not ready"; return; }; done
    if ! wait_field "$a" "$field" 3000 1 || ! wait_field "$b" "$field" 3000 1; then
        fail "fabric_$kind" "upstream subscriptions not confirmed ($field)"
        return
    fi
    "$LOAD" pub "$a" "${kind/pattern/channel}" "$ch" 4000 A 0 32 >/dev/null &
    p1=$!
    "$LOAD" pub "$b" "${kind/pattern/channel}" "$ch" 3000 B 0 32 >/dev/null &
    p2=$!
    "$LOAD" pub "$r" "${kind/pattern/channel}" "$ch" 3000 R 0 32 >/dev/null &
    p3=$!
    pids+=($p1 $p2 $p3)
    wait $p1 $p2 $p3
    for n in 1 2 3 4 5; do
        eval "wait \$subpid$n"
        line=$(cat "$tmp/sub-$kind-$n.out")
        if [ "$(result_field "$line" received)" != 10000 ] ||
            [ "$(result_field "$line" order_errors)" != 0 ] || [ "$(result_field "$line" gaps)" != 0 ]; then
            res="$res subscriber $n ($( [ $n -le 2 ] && echo node1 || { [ $n -le 4 ] && echo node2 || echo redis; })): $line;"
        fi
    done
    if [ -z "$res" ]; then ok "fabric_${kind}_exactly_once_in_order"; else fail "fabric_${kind}_exactly_once_in_order" "$res"; fi
}

run_tests() {
    local rport aport bport rpid apid bpid
    rport=$(free_port)
    start_redis rpid "$rport" || { fail setup "redis"; return; }
    aport=$(free_port)
    start_node apid "$aport" "$rport" || { fail setup "node 1"; return; }
    bport=$(free_port)
    start_node bpid "$bport" "$rport" || { fail setup "node 2"; return; }
    if wait_field "$aport" bridge_link 3000 up && wait_field "$bport" bridge_link 3000 up; then
        ok link_comes_up
    else
        fail link_comes_up "bridge_link is not up: $(bridge_field "$aport" bridge_link)"
    fi
    # With a redis-server at hand: INFO server, clients, stats and memory have Redis 7.0's
    # fields in Redis's order (then evbrokerd's own), so exporters and dashboards find every one.
    local rf ef section
    for section in server clients stats memory; do
        rf=$(cli "$rport" INFO "$section" | tr -d '\r' | grep ':' | cut -d: -f1 | tr '\n' ' ')
        ef=$(cli "$aport" INFO "$section" | tr -d '\r' | grep ':' | cut -d: -f1 | tr '\n' ' ')
        [ -n "$rf" ] && [ "${ef#"$rf"}" != "$ef" ] && ok "info_${section}_fields_as_redis" ||
            fail "info_${section}_fields_as_redis" "redis: $rf / evbrokerd: $ef"
    done

    # Interest: no local subscriber, no upstream subscription.
    local s1 s2 s3 got
    got="$(cli "$rport" pubsub channels)|$(cli "$rport" pubsub numpat)|$(cli "$rport" pubsub shardchannels)"
    [ "$got" = "|0|" ] && ok no_upstream_subscription_without_local_interest ||
        fail no_upstream_subscription_without_local_interest "redis shows '$got'"
    rm -f "$tmp"/ready-i*
    "$LOAD" sub "$aport" channel ich 1 1 60000 "$tmp/ready-i1" >/dev/null & s1=$!
    "$LOAD" sub "$aport" pattern 'ip.*' 1 1 60000 "$tmp/ready-i2" >/dev/null & s2=$!
    "$LOAD" sub "$aport" shard ish 1 1 60000 "$tmp/ready-i3" >/dev/null & s3=$!
    pids+=($s1 $s2 $s3)
    wait_file "$tmp/ready-i1" && wait_file "$tmp/ready-i2" && wait_file "$tmp/ready-i3"
    wait_field "$aport" bridge_upstream_shard_channels 3000 1
    wait_field "$aport" bridge_upstream_patterns 3000 1
    got="$(cli "$rport" pubsub channels)|$(cli "$rport" pubsub numpat)|$(cli "$rport" pubsub shardchannels)"
    [ "$got" = "ich|1|ish" ] && ok upstream_subscription_follows_first_local_subscriber ||
        fail upstream_subscription_follows_first_local_subscriber "redis shows '$got'"
    stop_pid $s1
    stop_pid $s2
    stop_pid $s3
    local end=$(($(now_ms) + 3000))
    while [ "$(now_ms)" -lt "$end" ]; do
        got="$(cli "$rport" pubsub channels)|$(cli "$rport" pubsub numpat)|$(cli "$rport" pubsub shardchannels)"
        [ "$got" = "|0|" ] && break
        sleep 0.05
    done
    [ "$got" = "|0|" ] && ok upstream_unsubscribe_after_last_local_subscriber ||
        fail upstream_unsubscribe_after_last_local_subscriber "redis still shows '$got'"

    # Every direction, every kind, 10,000 messages from three publishers.
    test_fabric channel fch fch bridge_upstream_channels "$rport" "$aport" "$bport"
    test_fabric pattern 'fp.*' fp.x bridge_upstream_patterns "$rport" "$aport" "$bport"
    test_fabric shard fsh fsh bridge_upstream_shard_channels "$rport" "$aport" "$bport"
    local sup
    sup=$(bridge_field "$aport" bridge_echoes_suppressed)
    [ "${sup:-0}" -gt 0 ] && [ "$(bridge_field "$aport" bridge_echoes_pending)" = 0 ] &&
        ok echoes_suppressed_and_none_left_pending ||
        fail echoes_suppressed_and_none_left_pending "suppressed=$sup pending=$(bridge_field "$aport" bridge_echoes_pending)"

    # Upstream killed and restarted three times while node 1 publishes 1000/s.
    local la lb pub t0 t1 worst=0 down_ok=1 i
    rm -f "$tmp"/ready-r*
    "$LOAD" sub "$aport" channel rs 1 6000 30000 "$tmp/ready-r1" >"$tmp/sub-rs-a.out" & la=$!
    "$LOAD" sub "$bport" channel rs 1 6000 30000 "$tmp/ready-r2" >"$tmp/sub-rs-b.out" & lb=$!
    pids+=($la $lb)
    wait_file "$tmp/ready-r1" && wait_file "$tmp/ready-r2"
    wait_field "$aport" bridge_upstream_channels 3000 1
    wait_field "$bport" bridge_upstream_channels 3000 1
    "$LOAD" pub "$aport" channel rs 6000 A 1000 32 >/dev/null & pub=$!
    pids+=($pub)
    for i in 1 2 3; do
        sleep 0.7
        stop_pid "$rpid" -9
        sleep 0.4
        [ "$(bridge_field "$aport" bridge_link)" = up ] && down_ok=0
        start_redis rpid "$rport" || { fail restart "redis did not restart"; break; }
        t0=$(now_ms)
        wait_field "$aport" bridge_link 5000 up
        wait_field "$bport" bridge_link 5000 up
        t1=$(($(now_ms) - t0))
        [ $t1 -gt $worst ] && worst=$t1
    done
    wait $pub
    wait $la $lb
    local ra rb
    ra=$(cat "$tmp/sub-rs-a.out")
    rb=$(cat "$tmp/sub-rs-b.out")
    kill -0 "$apid" 2>/dev/null && kill -0 "$bpid" 2>/dev/null && ok nodes_survive_upstream_restarts ||
        fail nodes_survive_upstream_restarts "a node exited; see $tmp"
    [ $down_ok = 1 ] && ok link_reported_down_while_upstream_is_dead ||
        fail link_reported_down_while_upstream_is_dead "INFO said up while redis was dead"
    [ $worst -le 1500 ] && ok link_back_within_a_second_of_upstream_returning ||
        fail link_back_within_a_second_of_upstream_returning "took $worst ms"
    [ "$(result_field "$ra" received)" = 6000 ] && [ "$(result_field "$ra" order_errors)" = 0 ] &&
        [ "$(result_field "$ra" gaps)" = 0 ] && ok local_delivery_uninterrupted_by_upstream_restarts ||
        fail local_delivery_uninterrupted_by_upstream_restarts "node1 subscriber: $ra"
    [ "$(result_field "$rb" received)" -gt 0 ] && [ "$(result_field "$rb" order_errors)" = 0 ] &&
        ok remote_delivery_resumes_in_order_after_restarts ||
        fail remote_delivery_resumes_in_order_after_restarts "node2 subscriber: $rb"
    echo "  restarts: link back after at most $worst ms; node2 got: $rb; node1 INFO:" \
        "$(cli "$aport" info bridge | tr -d '\r' | grep -E 'reconnects|dropped|forwarded' | tr '\n' ' ')"
    local lost
    lost=$(grep -c "lost:" "$tmp/node-$aport.log")
    [ "$lost" = 3 ] && ok each_loss_logged_once || fail each_loss_logged_once "$lost 'lost' lines"
    # Subscriptions restored: a new subscriber on node 2 gets what Redis publishes.
    rm -f "$tmp/ready-x"
    "$LOAD" sub "$bport" channel after 1 1 5000 "$tmp/ready-x" >"$tmp/sub-after.out" & s1=$!
    pids+=($s1)
    wait_file "$tmp/ready-x"
    wait_field "$bport" bridge_upstream_channels 3000 1
    cli "$rport" publish after "R:1:" >/dev/null
    wait $s1
    [ "$(result_field "$(cat "$tmp/sub-after.out")" received)" = 1 ] &&
        ok subscriptions_work_after_restarts || fail subscriptions_work_after_restarts "$(cat "$tmp/sub-after.out")"

    # Password-protected upstream: right password, ACL user, wrong password.
    local pport ppid cport cpid dport dpid eport epid c1 c2
    pport=$(free_port)
    start_redis ppid "$pport" --requirepass s3cret || { fail setup "redis with password"; return; }
    cli "$pport" -a s3cret --no-auth-warning acl setuser bridge on '>bpass' '~*' '&*' '+@all' >/dev/null
    cport=$(free_port)
    start_node cpid "$cport" "$pport" "password = s3cret"
    eport=$(free_port)
    start_node epid "$eport" "$pport" "user = bridge" "password = bpass"
    dport=$(free_port)
    start_node dpid "$dport" "$pport" "password = wrong"
    if wait_field "$cport" bridge_link 3000 up && wait_field "$eport" bridge_link 3000 up; then
        rm -f "$tmp/ready-p"
        "$LOAD" sub "$cport" channel pw 1 1 5000 "$tmp/ready-p" >"$tmp/sub-pw.out" & s1=$!
        pids+=($s1)
        wait_file "$tmp/ready-p"
        wait_field "$cport" bridge_upstream_channels 3000 1
        cli "$eport" publish pw "E:1:" >/dev/null
        wait $s1
        [ "$(result_field "$(cat "$tmp/sub-pw.out")" received)" = 1 ] && ok password_and_acl_user_upstream ||
            fail password_and_acl_user_upstream "$(cat "$tmp/sub-pw.out")"
    else
        fail password_and_acl_user_upstream "link not up: $(bridge_field "$cport" bridge_link)/$(bridge_field "$eport" bridge_link)"
    fi
    c1=$(cli "$pport" -a s3cret --no-auth-warning info stats | tr -d '\r' | sed -n 's/^total_connections_received://p')
    sleep 1.5
    c2=$(cli "$pport" -a s3cret --no-auth-warning info stats | tr -d '\r' | sed -n 's/^total_connections_received://p')
    local authlines
    authlines=$(grep -c "refused authentication" "$tmp/node-$dport.log")
    if [ "$authlines" = 1 ] && [ "$(bridge_field "$dport" bridge_link)" != up ] && [ "$c2" -gt $((c1 + 2)) ]; then
        ok wrong_password_logged_once_and_retried
    else
        fail wrong_password_logged_once_and_retried "log lines=$authlines link=$(bridge_field "$dport" bridge_link) connections $c1 -> $c2"
    fi
    grep "refused authentication" "$tmp/node-$dport.log" | sed 's/^/  log: /'

    # An evbrokerd as upstream is refused: two nodes bridged to each other passed one publish
    # around forever (hundreds of thousands of copies a second).
    local lport lpid mport mpid lr
    lport=$(free_port)
    mport=$(free_port)
    start_node lpid "$lport" "$mport" || { fail setup "loop node 1"; return; }
    start_node mpid "$mport" "$lport" || { fail setup "loop node 2"; return; }
    sleep 0.5
    rm -f "$tmp/ready-l"
    "$LOAD" sub "$mport" channel lp 1 2 1500 "$tmp/ready-l" >"$tmp/sub-loop.out" & s1=$!
    pids+=($s1)
    wait_file "$tmp/ready-l"
    lr=$(cli "$mport" publish lp "L:1:")
    wait $s1
    if [ "$lr" = 1 ] && [ "$(result_field "$(cat "$tmp/sub-loop.out")" received)" = 1 ] &&
        [ "$(bridge_field "$lport" bridge_link)" != up ] &&
        [ "$(bridge_field "$mport" bridge_link)" != up ] &&
        grep -q "it is an evbrokerd" "$tmp/node-$lport.log"; then
        ok evbrokerd_upstream_refused
    else
        fail evbrokerd_upstream_refused "publish gave $lr, the subscriber: $(cat "$tmp/sub-loop.out"), links $(bridge_field "$lport" bridge_link)/$(bridge_field "$mport" bridge_link), log: $(grep Upstream "$tmp/node-$lport.log" | tail -1)"
    fi

    # A stopped upstream: what waits for it is bounded in bytes, and the link is dropped once
    # a publish has waited reply_timeout_ms; it comes back when the upstream does.
    local sport spid nport npid qb dropped
    sport=$(free_port)
    start_redis spid "$sport" || { fail setup "redis to stop"; return; }
    nport=$(free_port)
    start_node npid "$nport" "$sport" "queue_memory = 1mb" "reply_timeout_ms = 1000" ||
        { fail setup "node with a byte bound"; return; }
    wait_field "$nport" bridge_link 3000 up
    kill -STOP "$spid"
    "$LOAD" pub "$nport" channel qm 300 Q 0 10000 >/dev/null
    qb=$(bridge_field "$nport" bridge_queue_bytes)
    dropped=$(bridge_field "$nport" bridge_dropped)
    [ "${qb:-0}" -gt 0 ] && [ "$qb" -le 1048576 ] && [ "${dropped:-0}" -gt 0 ] &&
        ok queue_bounded_in_bytes || fail queue_bounded_in_bytes "queue bytes $qb, dropped $dropped"
    wait_link_lost "$nport" 4000 &&
        grep -q "no reply to a publish for" "$tmp/node-$nport.log" &&
        [ "$(bridge_field "$nport" bridge_in_doubt)" -gt 0 ] && ok stuck_upstream_dropped ||
        fail stuck_upstream_dropped "link $(bridge_field "$nport" bridge_link) 4 s after the upstream stopped"
    kill -CONT "$spid"
    wait_field "$nport" bridge_link 5000 up && ok link_back_after_stuck_upstream_resumes ||
        fail link_back_after_stuck_upstream_resumes "link $(bridge_field "$nport" bridge_link)"

    # Subscription churn against a stopped upstream, with no publish to notice it: 600
    # subscribe/unsubscribe pairs of 100 KB names queued 120 MB on the subscribe link before;
    # now the link is dropped past queue_memory (1 MB here).
    kill -STOP "$spid"
    churn_bounded subscription_churn_bounded "$nport" "$npid"
    kill -CONT "$spid"
    wait_field "$nport" bridge_link 5000 up && ok link_back_after_churn ||
        fail link_back_after_churn "link $(bridge_field "$nport" bridge_link)"
    # A name past 1 MiB stays local: a 33 MB one made the upstream drop the link at each
    # resubscription (its confirmation is past Redis's 32 MB pubsub limit), for good. (Such a
    # name is now past the local subscriber's own limit too, so 2 MiB shows it: the upstream
    # never hears of it.)
    local rc0 rc1
    rc0=$(bridge_field "$nport" bridge_reconnects)
    timeout 20 python3 - "$nport" "$sport" <<'PYEOF' >"$tmp/bigname.out" 2>&1
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
name = b"n" * (2 << 20)
s.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(name), name))
got = b""
while not got.endswith(b":1\r\n"):
    d = s.recv(1 << 20)
    if not d:
        sys.exit("closed")
    got += d
time.sleep(1)
u = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
u.sendall(b"*3\r\n$6\r\nPUBSUB\r\n$6\r\nNUMSUB\r\n$%d\r\n%s\r\n" % (len(name), name))
got = b""
while not got.endswith(b"\r\n:0\r\n") and not got.endswith(b"\r\n:1\r\n"):
    got += u.recv(1 << 20)
print("subscribed" if got.endswith(b":0\r\n") else "forwarded upstream")
PYEOF
    rc1=$(bridge_field "$nport" bridge_reconnects)
    [ "$(cat "$tmp/bigname.out")" = subscribed ] && [ "$rc1" = "$rc0" ] &&
        [ "$(bridge_field "$nport" bridge_link)" = up ] && ok long_name_stays_local ||
        fail long_name_stays_local "said '$(head -c 200 "$tmp/bigname.out")', reconnects $rc0 -> $rc1"
    # A healthy upstream keeps its link through one SUBSCRIBE of 30,000 names and the
    # unsubscription when that client leaves: 1.2 MB each, past queue_memory (1 MB here) in
    # one go, but draining.
    local rc2
    rc0=$(bridge_field "$nport" bridge_reconnects)
    timeout 20 python3 - "$nport" <<'PYEOF' >"$tmp/manysub.out" 2>&1
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
names = [b"bm.%08d.channel.name" % i for i in range(30000)]
s.sendall(b"*%d\r\n$9\r\nSUBSCRIBE\r\n" % (len(names) + 1) +
          b"".join(b"$%d\r\n%s\r\n" % (len(n), n) for n in names))
got = b""
while not got.endswith(b":30000\r\n"):
    got += s.recv(1 << 20)
s.close()
print("subscribed")
PYEOF
    sleep 1
    rc2=$(bridge_field "$nport" bridge_reconnects)
    [ "$(cat "$tmp/manysub.out")" = subscribed ] && [ "$rc2" = "$rc0" ] &&
        [ "$(bridge_field "$nport" bridge_link)" = up ] && ok many_subscriptions_keep_link ||
        fail many_subscriptions_keep_link "said '$(head -c 200 "$tmp/manysub.out")', reconnects $rc0 -> $rc2, log: $(grep Upstream "$tmp/node-$nport.log" | tail -1)"
    # One subscription left unanswered is enough to see the upstream is stuck.
    kill -STOP "$spid"
    timeout 4 redis-cli -p "$nport" SUBSCRIBE bc.lone >/dev/null 2>&1 </dev/null &
    wait_link_lost "$nport" 4000 &&
        grep -q "no reply to a subscription for" "$tmp/node-$nport.log" &&
        ok unanswered_subscription_drops_link ||
        fail unanswered_subscription_drops_link "link $(bridge_field "$nport" bridge_link) 4 s after"
    kill -CONT "$spid"

    # The same churn while the link is still resynchronising: an upstream that answers INFO
    # but never confirms the resubscription of a local subscriber (nor reads any more).
    local fport fpid gport gpid
    fport=$(free_port)
    gport=$(free_port)
    start_node gpid "$gport" "$fport" "queue_memory = 1mb" "reply_timeout_ms = 60000" \
        "reconnect_min_ms = 100" || { fail setup "node for the silent upstream"; return; }
    timeout 60 redis-cli -p "$gport" SUBSCRIBE bs.keep >/dev/null 2>&1 </dev/null &
    pids+=($!)
    timeout 60 python3 - "$fport" <<'PYEOF' >"$tmp/silent.out" 2>&1 &
import socket, sys, threading, time
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1])))
ls.listen(16)
info = b"# Server\r\nredis_version:7.0.15\r\n"
def serve(c):
    while True:
        d = c.recv(65536)
        if not d:
            return
        if b"INFO" not in d.upper():
            time.sleep(60)  # a subscription: never confirmed, and nothing read after it
            return
        c.sendall(b"$%d\r\n%s\r\n" % (len(info), info))
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PYEOF
    fpid=$!
    pids+=($fpid)
    sleep 1.5
    churn_bounded resync_churn_bounded "$gport" "$gpid"
    kill "$fpid" 2>/dev/null
    stop_pid "$gpid"
    stop_pid "$npid"
    stop_pid "$lpid"
    stop_pid "$mpid"

    # Every node stops cleanly on SIGTERM (bridge_stop with links up, down and refused);
    # under SAN=1 this is where leaks and sanitizer reports would show.
    local bad="" pid port rc log
    for pid_port in "$apid:$aport" "$bpid:$bport" "$cpid:$cport" "$dpid:$dport" "$epid:$eport"; do
        pid=${pid_port%%:*}
        port=${pid_port##*:}
        kill -TERM "$pid" 2>/dev/null
        wait "$pid"
        rc=$?
        log=$tmp/node-$port.log
        # A leak report elsewhere (e.g. the server's signal events) is the lead's, not ours.
        if grep -q "ERROR: AddressSanitizer\|runtime error" "$log" ||
            grep -A40 "LeakSanitizer" "$log" | grep -q "bridge\.c\|hiredis" ||
            { [ $rc -ne 0 ] && ! grep -q "LeakSanitizer" "$log"; }; then
            bad="$bad node $port (status $rc);"
            grep -A12 "Sanitizer\|runtime error" "$log" | head -30 | sed 's/^/  /'
        elif grep -q "LeakSanitizer" "$log"; then
            echo "  note: node $port: a leak outside the bridge: $(grep -m1 ' #1 ' "$log" | sed 's/^ *//')"
        fi
    done
    [ -z "$bad" ] && ok nodes_exit_cleanly || fail nodes_exit_cleanly "$bad"
}

# Fan-out measurement: 1 publisher, SUBS subscribers split over two nodes, versus all of them
# on Redis directly; reports deliveries/s and upstream Redis CPU per delivered message.
run_bench() {
    local subs=${BENCH_SUBS:-200} msgs=${BENCH_MSGS:-20000} size=${BENCH_SIZE:-64}
    local rport aport bport rpid apid bpid mode
    local tck
    tck=$(getconf CLK_TCK)
    rport=$(free_port)
    start_redis rpid "$rport" --client-output-buffer-limit "pubsub 0 0 0" || return
    aport=$(free_port)
    start_node apid "$aport" "$rport"
    bport=$(free_port)
    start_node bpid "$bport" "$rport"
    wait_field "$aport" bridge_link 3000 up
    wait_field "$bport" bridge_link 3000 up
    cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
    for mode in direct nodes; do
        local half=$((subs / 2)) s1 s2 c0 c1 a0 a1 b0 b1 t0 t1 l1 l2 total
        rm -f "$tmp"/ready-b*
        if [ $mode = direct ]; then
            "$LOAD" sub "$rport" channel bench "$half" "$msgs" 120000 "$tmp/ready-b1" >"$tmp/b1.out" & s1=$!
            "$LOAD" sub "$rport" channel bench "$half" "$msgs" 120000 "$tmp/ready-b2" >"$tmp/b2.out" & s2=$!
        else
            "$LOAD" sub "$aport" channel bench "$half" "$msgs" 120000 "$tmp/ready-b1" >"$tmp/b1.out" & s1=$!
            "$LOAD" sub "$bport" channel bench "$half" "$msgs" 120000 "$tmp/ready-b2" >"$tmp/b2.out" & s2=$!
        fi
        pids+=($s1 $s2)
        wait_file "$tmp/ready-b1" && wait_file "$tmp/ready-b2"
        [ $mode = nodes ] && wait_field "$aport" bridge_upstream_channels 3000 1 && wait_field "$bport" bridge_upstream_channels 3000 1
        c0=$(cpu "$rpid"); a0=$(cpu "$apid"); b0=$(cpu "$bpid")
        t0=$(now_ms)
        if [ $mode = direct ]; then
            "$LOAD" pub "$rport" channel bench "$msgs" P 0 "$size" >/dev/null
        else
            "$LOAD" pub "$aport" channel bench "$msgs" P 0 "$size" >/dev/null
        fi
        wait $s1 $s2
        t1=$(now_ms)
        c1=$(cpu "$rpid"); a1=$(cpu "$apid"); b1=$(cpu "$bpid")
        l1=$(cat "$tmp/b1.out"); l2=$(cat "$tmp/b2.out")
        total=$(($(result_field "$l1" received) + $(result_field "$l2" received)))
        local span=$(( $(result_field "$l1" ms) > $(result_field "$l2" ms) ? $(result_field "$l1" ms) : $(result_field "$l2" ms) ))
        awk -v m="$mode" -v n="$total" -v ms="$span" -v rc=$((c1 - c0)) -v ac=$((a1 - a0)) \
            -v bc=$((b1 - b0)) -v tck="$tck" -v subs="$subs" -v msgs="$msgs" -v size="$size" 'BEGIN {
            printf "%-7s subs=%d msgs=%d size=%d delivered=%d first-to-last=%d ms deliveries/s=%.0f redis_cpu=%.2f s (%.3f us/delivery) node_cpu=%.2f+%.2f s\n",
                m, subs, msgs, size, n, ms, (ms > 0 ? n * 1000.0 / ms : 0), rc / tck,
                (n > 0 ? rc / tck * 1e6 / n : 0), ac / tck, bc / tck }'
    done
}

if [ "${1:-}" = bench ]; then
    run_bench
    exit 0
fi
run_tests
echo "bridge: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
