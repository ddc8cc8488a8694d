#!/bin/bash
# Real redis-cli against a throwaway evbrokerd (TCP and unix socket): PING, PUBLISH counts,
# a background SUBSCRIBE, RESP3, --pipe, PUBSUB NUMSUB and CLIENT LIST. Prints "ok cli/NAME"
# or "FAIL cli/NAME: why" per test. Every command runs under timeout; stdin is never read.
set -u

SUITE=cli
. "$(dirname "$0")/itest-lib.bash"
sock=$dir/evb.sock

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

read -r port < <(free_port 1)
printf '[server]\nport = %s\nbind = 127.0.0.1\nunixsocket = %s\nmaxclients = 1234\n[log]\ntarget = %s\n[limits]\npubsub_output_limit = 4mb 1mb 30\n[security]\nprotected_mode = no\n' \
    "$port" "$sock" "$dir/daemon.log" >"$dir/evbrokerd.conf"
start_daemon_or_exit "$dir/evbrokerd.conf" "$port"

check ping "PING did not answer PONG" test "$(cli PING)" = PONG
check echo-quoted "ECHO of a spaced argument" test "$(cli ECHO 'two words')" = "two words"
check publish-no-subscriber "PUBLISH count not 0" test "$(cli PUBLISH nobody hi)" = 0

# A background subscriber; redis-cli prints each reply element on its own line.
timeout 20 redis-cli -p "$port" SUBSCRIBE clich >"$dir/sub.out" 2>&1 </dev/null &
subpid=$!
pids+=("$subpid")
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

# CONFIG GET: the configured values under Redis's names, and never a password.
cfg_get() { cli CONFIG GET "$@" | tr '\n' ' '; }
check config-get-int "got: $(cfg_get maxclients)" test "$(cfg_get maxclients)" = "maxclients 1234 "
check config-get-glob "got: $(cfg_get 'client-output*')" test "$(cfg_get 'client-output*')" = \
    "client-output-buffer-limit normal 0 0 0 slave 268435456 67108864 60 pubsub 4194304 1048576 30 "
check config-get-bool-and-string "got: $(cfg_get protected-mode unixsocket)" \
    test "$(cfg_get protected-mode unixsocket)" = "unixsocket $sock protected-mode no "
check config-get-no-password "got: $(cfg_get '*pass*')" test "$(cfg_get '*pass*')" = " "
check config-get-loglevel "got: $(cfg_get loglevel)" test "$(cfg_get loglevel)" = "loglevel notice "

# ACL CAT lists a container in its own category (@slow) as well as its subcommands, as
# COMMAND LIST FILTERBY ACLCAT does.
catslow=$(cli ACL CAT slow | tr '\n' ' ')
check acl-cat-containers "ACL CAT slow: $catslow" sh -c 'case " $1" in
    *" client "*" client|list "*) [ "$1" = "$2" ] ;; *) false ;; esac' _ "$catslow" \
    "$(cli COMMAND LIST FILTERBY ACLCAT slow | tr '\n' ' ')"

# LASTSAVE and INFO's rdb_last_save_time: the start, as Unix time (nothing is saved after).
lastsave=$(cli LASTSAVE)
rdb_time=$(cli INFO persistence | tr -d '\r' | sed -n 's/^rdb_last_save_time://p')
check lastsave-unix-time "LASTSAVE $lastsave, INFO $rdb_time, now $(date +%s)" \
    test "$lastsave" = "$rdb_time" -a "$(($(date +%s) - lastsave))" -ge 0 -a \
    "$(($(date +%s) - lastsave))" -lt 600

# MONITOR with redis-cli: a line per command from TCP and unix clients, a long argument cut
# at 64 KiB with the rest counted. A monitor that never reads is dropped at the output limit.
timeout 20 redis-cli -p "$port" MONITOR >"$dir/mon.out" 2>&1 </dev/null &
monpid=$!
pids+=("$monpid")
wait_monitor() {
    for _ in $(seq 100); do
        [ "$(cli CLIENT LIST | grep -c ' flags=O ')" = "$1" ] && return 0
        sleep 0.05
    done
    return 1
}
check monitor-listed "CLIENT LIST never showed a flags=O client" wait_monitor 1
timeout 5 redis-cli -s "$sock" PUBLISH monch 'two words' >/dev/null </dev/null
long=$(head -c 70000 /dev/zero | tr '\0' 'm')
cli PUBLISH monch "$long" >/dev/null
exec 7<>"/dev/tcp/127.0.0.1/$port" # a second monitor that never reads
printf 'MONITOR\r\n' >&7
check monitor-stalled-listed "the stalled monitor never showed" wait_monitor 2
for _ in $(seq 300); do cli PUBLISH monch "$long"; done >/dev/null
check monitor-stalled-dropped "a monitor that never reads was kept past 4 MB" wait_monitor 1
exec 7>&-
mon_has() {
    for _ in $(seq 100); do
        grep -qF -- "$1" "$dir/mon.out" && return 0
        sleep 0.05
    done
    return 1
}
check monitor-unix-line "no unix line in: $(head -c 300 "$dir/mon.out")" \
    mon_has "[0 unix:$sock] \"PUBLISH\" \"monch\" \"two words\""
check monitor-long-argument-cut "no cut argument in the monitor's output" \
    mon_has "\"PUBLISH\" \"monch\" \"$(head -c 65536 /dev/zero | tr '\0' 'm')\"...(4464 more bytes)"
cli ECHO monitored >/dev/null
check monitor-tcp-line "no TCP line" mon_has "] \"ECHO\" \"monitored\""
# A line stops growing past about 1 MiB; the arguments left are counted.
cli PUBSUB NUMSUB $(for _ in $(seq 20); do printf '%s ' "$long"; done) >/dev/null
check monitor-long-line-cut "no cut line" mon_has "\"...(4464 more bytes) ...(4 more arguments)"
check monitor-admin-hidden "an admin command was shown" \
    sh -c '! grep -q "\"CLIENT\" \"LIST\"" "$1"' _ "$dir/mon.out"
kill "$monpid" 2>/dev/null

# SIGTERM: a clean exit with status 0, and the unix socket file removed.
kill "$daemon"
wait_exit "$daemon" 100
check clean-exit "exit status $status after SIGTERM" test "$status" = 0
check unix-socket-removed "socket file left behind" test ! -e "$sock"

[ "$failures" -eq 0 ]
