#!/bin/bash
# Real client libraries against a real evbrokerd: ioredis and node-redis (tests/clients/), at
# the versions package-lock.json pins, installed from the npm registry into the suite's own
# directory. Prints "ok clients/NAME" or "FAIL clients/NAME: why"; a machine without Node.js
# and npm, or one that cannot reach the registry, gets one "ok ... # skipped" line saying so.
set -u

SUITE=clients
. "$(dirname "$0")/itest-lib.bash"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "ok $SUITE/node # skipped: Node.js and npm are not installed"
    exit 0
fi
mkdir -p "$dir/node"
cp "$TOP/tests/clients/package.json" "$TOP/tests/clients/package-lock.json" \
    "$TOP/tests/clients/node_clients.mjs" "$dir/node/"
if ! (cd "$dir/node" && timeout 180 npm ci --no-audit --no-fund --loglevel=error) \
    >"$dir/npm.log" 2>&1; then
    why=$(grep -m1 -oE 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH' \
        "$dir/npm.log")
    if [ -n "$why" ]; then
        echo "ok $SUITE/npm-install # skipped: the npm registry could not be reached ($why)"
        exit 0
    fi
    echo "FAIL $SUITE/npm-install: $(tail -3 "$dir/npm.log" | tr '\n' ' ')"
    exit 1
fi

read -r port < <(free_port 1)
cat >"$dir/evbrokerd.conf" <<EOF
[server]
bind = 127.0.0.1
port = $port
[log]
target = $dir/daemon.log
EOF
start_daemon_or_exit "$dir/evbrokerd.conf" "$port"

out=$(timeout 120 node "$dir/node/node_clients.mjs" "$port" 2>"$dir/node.err")
rc=$?
echo "$out"
if [ $rc -ne 0 ] && ! grep -q '^FAIL ' <<<"$out"; then
    echo "FAIL $SUITE/run: node exited with status $rc: $(head -5 "$dir/node.err" | tr '\n' ' ')"
    failures=$((failures + 1))
fi
failures=$((failures + $(grep -c '^FAIL ' <<<"$out")))
check daemon-alive "the daemon died during the client runs" kill -0 "$daemon"
[ "$failures" -eq 0 ]
