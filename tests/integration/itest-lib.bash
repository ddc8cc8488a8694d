# Shared plumbing of the shell integration suites (sourced, never run by itself): a private
# temp directory, cleanup of every PID the suite started, one-line results, free ports and
# waits. The suite sets SUITE before sourcing; results print as "ok SUITE/NAME" or
# "FAIL SUITE/NAME: why", and the suite ends with [ "$failures" -eq 0 ].

EVBROKERD=${EVBROKERD:-src/evbrokerd}
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dir=$(mktemp -d "${ITEST_TMPDIR:-/tmp}/$SUITE.XXXXXX") || exit 1
pids=()
failures=0
exec </dev/null

# Stops every process this suite started, by PID, and removes its directory.
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    sleep 0.1
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    [ -n "${ITEST_KEEP:-}" ] && [ "$failures" -ne 0 ] && cp -r "$dir" "$ITEST_KEEP" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Records one result: ok when the condition command succeeds, FAIL with the reason otherwise.
check() {
    local name=$1 why=$2
    shift 2
    if "$@"; then
        echo "ok $SUITE/$name"
    else
        echo "FAIL $SUITE/$name: $why"
        failures=$((failures + 1))
    fi
}

# Prints N (default 1) distinct TCP ports that are free now, below the ephemeral range so a
# test's own outgoing connections cannot be holding them (see bridge.sh).
free_port() {
    python3 - "${1:-1}" <<'PY'
import random, socket, sys
got = []
while len(got) < int(sys.argv[1]):
    p = random.randint(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        if p not in got:
            got.append(p)
    except OSError:
        pass
    finally:
        s.close()
print(*got)
PY
}

# Waits until a TCP port answers PING (5 s at most).
wait_port() {
    for _ in $(seq 100); do
        timeout 1 redis-cli -p "$1" PING >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    return 1
}

# Waits up to $2 tenths of a second for a child to exit; sets $status to its exit status,
# or "timeout". Runs in the suite's shell (not a subshell) so that wait can reap the child.
wait_exit() {
    local pid=$1 tenths=$2
    for _ in $(seq "$tenths"); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        status=timeout
        return
    fi
    wait "$pid"
    status=$?
}

# Writes $dir/evbrokerd.conf: the log in $dir/daemon.log, [server] on 127.0.0.1:$port, then
# the suite's own lines (one per argument), which may add [server] keys or open sections.
write_daemon_conf() {
    {
        printf '[log]\ntarget = %s\n[server]\nbind = 127.0.0.1\nport = %s\n' "$dir/daemon.log" "$port"
        printf '%s\n' "$@"
    } >"$dir/evbrokerd.conf"
}

# Starts the daemon on config $1 (its log set to $dir/daemon.log) and waits for $2 (its
# port) to answer; sets $daemon. When it does not answer, prints why and ends the suite.
start_daemon_or_exit() {
    "$EVBROKERD" -c "$1" >"$dir/stderr.log" 2>&1 &
    daemon=$!
    pids+=("$daemon")
    if ! wait_port "$2"; then
        echo "FAIL $SUITE/start: the daemon did not answer on port $2"
        cat "$dir/stderr.log" "$dir/daemon.log" 2>/dev/null | head -20 | sed 's/^/    /'
        exit 1
    fi
}
