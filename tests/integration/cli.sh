#!/bin/bash
# Real redis-cli against a throwaway evbrokerd (TCP and unix socket): PING, PUBLISH counts,
# a background SUBSCRIBE, RESP3, --pipe, PUBSUB NUMSUB and CLIENT LIST. Prints "ok cli/NAME"
# or "FAIL cli/NAME: why" per test. Every command runs under timeout; stdin is never read.
set -u

EVBROKERD=${EVBROKERD:-src/evbrokerd}
dir=$(mktemp -d "${ITEST_TMPDIR:-/tmp}/cli.XXXXXX") || exit 1
sock=$dir/evb.sock
daemon=
subpid=
failures=0

# Stops what this script started, by PID, and removes its directory.
cleanup() {
    [ -n "$subpid" ] && kill "$subpid" 2>/dev/null
    if [ -n "$daemon" ]; then
        kill "$daemon" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$daemon" 2>/dev/null
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Records one result: ok when the condition command succeeds, FAIL with a reason otherwise.
check() {
    local name=$1 why=$2
    shift 2
    if "$@"; then
        echo "ok cli/$name"
    else
        echo "FAIL cli/$name: $why"
        failures=$((failures + 1))
    fi
}

# redis-cli on the daemon's TCP port, never waiting more than 5 s.
cli() {
    timeout 5 redis-cli -p "$port" "$@" </dev/null
}

# Polls (up to 5 s) until the output of a cli call equals the wanted text.
wait_for() {
    local want=$1
    shift
    for _ in $(seq 100); do
        [ "$(cli "$@" 2>/dev/null)" = "$want" ] && return 0
        sleep 0.05
    done
    return 1
}

# Starts evbrokerd on a random port (retrying on a clash) with a unix socket. Ports 20000 to
# 32767 lie below Linux's ephemeral range, so outgoing connections never hold them.
start_daemon() {
    for _ in $(seq 10); do
        port=$((20000 + RANDOM % 12768))
        printf '[server]\nport = %s\nbind = 127.0.0.1\nunixsocket = %s\n' "$port" "$sock" \
            >"$dir/evb.conf"
        "$EVBROKERD" -c "$dir/evb.conf" >"$dir/evb.log" 2>&1 </dev/null &
        daemon=$!
        for _ in $(seq 200); do
            [ "$(timeout 2 redis-cli -p "$port" PING 2>/dev/null)" = PONG ] && return 0
            kill -0 "$daemon" 2>/dev/null || break
            sleep 0.05
        done
        kill "$daemon" 2>/dev/null
        wait "$daemon" 2>/dev/null
        daemon=
    done
    return 1
}

if ! start_daemon; then
    echo "FAIL cli/start: evbrokerd did not start"
    cat "$dir/evb.log" 2>/dev/null | tail -5
    exit 1
fi

check ping "PING did not answer PONG" test "$(cli PING)" = PONG
check echo-quoted "ECHO of a spaced argument" test "$(cli ECHO 'two words')" = "two words"
check publish-no-subscriber "PUBLISH count not 0" test "$(cli PUBLISH nobody hi)" = 0

# A background subscriber; redis-cli prints each reply element on its own line.
timeout 20 redis-cli -p "$port" SUBSCRIBE clich >"$dir/sub.out" 2>&1 </dev/null &
subpid=$!
check numsub-sees-subscriber "PUBSUB NUMSUB never showed 1" \
    wait_for "$(printf 'clich\n1')" PUBSUB NUMSUB clich
check publish-count "PUBLISH count not 1" test "$(cli PUBLISH clich 'hello world')" = 1
cli PUBLISH clich second >/dev/null
want=$(printf 'subscribe\nclich\n1\nmessage\nclich\nhello world\nmessage\nclich\nsecond')
# Polls (up to 5 s) until the subscriber printed exactly what is wanted.
got_sub() {
    for _ in $(seq 100); do
        [ "$(cat "$dir/sub.out")" = "$want" ] && return 0
        sleep 0.05
    done
    return 1
}
check subscribe-receives "subscriber output: $(head -c 300 "$dir/sub.out" | tr '\n' '|')" got_sub

# CLIENT LIST: one line per client, key=value fields; the subscriber shows as sub=1 with flag P.
list=$(cli CLIENT LIST)
parse_list() {
    local lines subs
    lines=$(printf '%s\n' "$list" | grep -c '^id=[0-9]* addr=127\.0\.0\.1:[0-9]* ')
    subs=$(printf '%s\n' "$list" | grep -c ' flags=P .* sub=1 psub=0 ')
    [ "$lines" -ge 2 ] && [ "$subs" -eq 1 ]
}
check client-list-parsed "CLIENT LIST was: $(printf '%s' "$list" | head -c 400)" parse_list
# As in Redis, the caller's own line names the running command.
own_cmd() { printf '%s\n' "$list" | grep -q ' cmd=client|list '; }
cmds=$(printf '%s' "$list" | grep -o 'cmd=[^ ]*' | tr '\n' ' ')
check client-list-own-cmd "no line with cmd=client|list: $cmds" own_cmd

kill "$subpid" 2>/dev/null
wait "$subpid" 2>/dev/null
subpid=
check numsub-after-subscriber-left "PUBSUB NUMSUB did not drop to 0" \
    wait_for "$(printf 'clich\n0')" PUBSUB NUMSUB clich

# RESP3: HELLO 3 answers the map, with proto 3.
hello=$(cli -3 HELLO 3 | tr '\n' ' ')
hello_ok() {
    [[ "$hello" == *"server redis version "*" proto 3 id "*" mode standalone role master"* ]]
}
check resp3-hello "HELLO 3 gave: $hello" hello_ok

# Several commands on stdin, replies in order. (redis-cli first fetches COMMAND DOCS here.)
piped=$(printf 'PING\nECHO a\nPUBLISH p x\n' | timeout 5 redis-cli -p "$port" | tr '\n' ' ')
check stdin-pipelined "replies were: $piped" test "$piped" = "PONG a 0 "

# --pipe: raw protocol, no errors; redis-cli 7.0 reports 3 replies here against Redis too.
pipe_out=$(printf '*1\r\n$4\r\nPING\r\n*3\r\n$7\r\nPUBLISH\r\n$1\r\nq\r\n$1\r\nr\r\nPING\r\n' |
    timeout 10 redis-cli -p "$port" --pipe 2>&1)
check pipe-mode "--pipe said: $pipe_out" \
    bash -c 'printf "%s" "$1" | grep -q "errors: 0, replies: 3"' _ "$pipe_out"

# The unix socket.
check unix-socket-ping "redis-cli -s did not get PONG" \
    test "$(timeout 5 redis-cli -s "$sock" PING </dev/null)" = PONG
check unix-socket-publish "PUBLISH over the unix socket" \
    test "$(timeout 5 redis-cli -s "$sock" PUBLISH u v </dev/null)" = 0

# An error reply is shown as such.
err=$(cli NOSUCH a 2>&1)
check unknown-command-error "got: $err" \
    test "$err" = "ERR unknown command 'NOSUCH', with args beginning with: 'a' "

# SIGTERM: a clean exit with status 0, and the unix socket file removed.
kill "$daemon"
status=0
for _ in $(seq 200); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.05; done
wait "$daemon" || status=$?
daemon=
check clean-exit "exit status $status after SIGTERM" test "$status" -eq 0
check unix-socket-removed "socket file left behind" test ! -e "$sock"

[ "$failures" -eq 0 ]
