#!/bin/bash
# Real client libraries against a real evbrokerd (tests/clients/): ioredis and node-redis at
# the versions package-lock.json pins, installed from the npm registry into the suite's own
# directory, and redis-py from Debian's python3-redis. Prints "ok clients/NAME" or
# "FAIL clients/NAME: why"; a library that cannot be had here (no Node.js, no npm registry, no
# python3-redis) gets one "ok ... # skipped" line saying so.
set -u

SUITE=clients
. "$(dirname "$0")/itest-lib.bash"

read -r port < <(free_port 1)
write_daemon_conf
start_daemon_or_exit "$dir/evbrokerd.conf" "$port"

# run_client NAME COMMAND...: runs one client program against the daemon and echoes its result
# lines; one that exits non-zero without a FAIL line fails as NAME.
run_client() {
    local name=$1 out rc
    shift
    out=$(timeout 120 "$@" "$port" 2>"$dir/$name.err")
    rc=$?
    echo "$out"
    failures=$((failures + $(grep -c '^FAIL ' <<<"$out")))
    if [ $rc -ne 0 ] && ! grep -q '^FAIL ' <<<"$out"; then
        echo "FAIL $SUITE/$name: exited with status $rc: $(head -5 "$dir/$name.err" | tr '\n' ' ')"
        failures=$((failures + 1))
    fi
}

# ioredis and node-redis, from the npm registry.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "ok $SUITE/node # skipped: Node.js and npm are not installed"
else
    mkdir -p "$dir/node"
    cp "$TOP/tests/clients/package.json" "$TOP/tests/clients/package-lock.json" \
        "$TOP/tests/clients/node_clients.mjs" "$dir/node/"
    if (cd "$dir/node" && timeout 180 npm ci --no-audit --no-fund --loglevel=error) \
        >"$dir/npm.log" 2>&1; then
        run_client node node "$dir/node/node_clients.mjs"
    else
        why=$(grep -m1 -oE 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH' \
            "$dir/npm.log")
        if [ -n "$why" ]; then
            echo "ok $SUITE/npm-install # skipped: the npm registry could not be reached ($why)"
        else
            echo "FAIL $SUITE/npm-install: $(tail -3 "$dir/npm.log" | tr '\n' ' ')"
            failures=$((failures + 1))
        fi
    fi
fi

# redis-py: Debian's python3-redis (scripts/setup.sh installs it), for Debian's own Python.
if /usr/bin/python3 -c 'import redis' 2>/dev/null; then
    run_client redis-py /usr/bin/python3 "$TOP/tests/clients/redis_py_clients.py"
else
    echo "ok $SUITE/redis-py # skipped: /usr/bin/python3 has no redis module (python3-redis)"
fi

check daemon-alive "the daemon died during the client runs" kill -0 "$daemon"
[ "$failures" -eq 0 ]
