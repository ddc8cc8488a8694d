#!/bin/bash
# Users and channel permissions with real redis-cli: requirepass, [user.NAME] users with plain
# and SHA-256 passwords, Redis's NOPERM rules for PUBLISH, SUBSCRIBE and PSUBSCRIBE, disabled
# users, Redis's @admin commands refused to users without admin = yes, and a SIGHUP reload
# that disconnects subscribers and monitors who lost access. Prints
# "ok acl/NAME" or "FAIL acl/NAME: why".
set -u

SUITE=acl
. "$(dirname "$0")/itest-lib.bash"

NOPERM="NOPERM this user has no permissions to access one of the channels used as arguments"
port=$(free_port)
hash=$(printf 'hunter2' | sha256sum | cut -d' ' -f1)

# Writes the configuration; $1 is the channel list of alice, $2 whether bob is enabled, $3
# whether ops is an admin.
write_conf() {
    cat >"$dir/acl.conf" <<EOF
[server]
port = $port
bind = 127.0.0.1
[log]
target = $dir/daemon.log
[security]
requirepass = topsecret
[user.alice]
password = wonderland
channels = $1
[user.bob]
password = sha256:$hash
channels = *
enabled = $2
[user.ops]
password = ops-pass
channels = *
admin = $3
EOF
}

# redis-cli as a user ("" = no AUTH), with a time limit.
as() {
    local user=$1
    shift
    if [ -z "$user" ]; then
        timeout 5 redis-cli -p "$port" "$@" 2>&1
    else
        timeout 5 redis-cli -p "$port" --user "$user" --pass "$PASS" --no-auth-warning "$@" 2>&1
    fi
}

write_conf "news.* chat" yes yes
"$EVBROKERD" -c "$dir/acl.conf" >>"$dir/daemon.out" 2>&1 &
daemon=$!
pids+=("$daemon")
for _ in $(seq 100); do
    timeout 1 redis-cli -p "$port" -a topsecret --no-auth-warning PING >/dev/null 2>&1 && break
    sleep 0.05
done

out=$(as "" PING)
check noauth-without-password "PING gave '$out'" test "$out" = "NOAUTH Authentication required."
out=$(timeout 5 redis-cli -p "$port" -a topsecret --no-auth-warning PING 2>&1)
check requirepass-default-user "PING with requirepass gave '$out'" test "$out" = PONG
WRONGPASS="AUTH failed: WRONGPASS invalid username-password pair or user is disabled."
PASS=wrong out=$(as alice PING | head -1)
check wrong-password "gave '$out'" test "$out" = "$WRONGPASS"
PASS=wonderland out=$(as alice PUBLISH news.today x)
check channel-allowed-by-glob "PUBLISH news.today gave '$out'" test "$out" = 0
PASS=wonderland out=$(as alice PUBLISH sports x)
check publish-denied "PUBLISH sports gave '$out'" test "$out" = "$NOPERM"
PASS=wonderland out=$(as alice SUBSCRIBE chat sports)
check subscribe-denied-if-any-denied "gave '$out'" test "$out" = "$NOPERM"
PASS=wonderland out=$(as alice PSUBSCRIBE 'news.a*')
check psubscribe-needs-equal-pattern "PSUBSCRIBE news.a* gave '$out'" test "$out" = "$NOPERM"
PASS=hunter2 out=$(as bob PUBLISH anything x)
check sha256-password-and-star "bob PUBLISH gave '$out'" test "$out" = 0
out=$(timeout 5 redis-cli -3 -p "$port" HELLO 3 AUTH alice wonderland 2>&1 | head -2 | tr '\n' ' ')
check hello-auth-user "HELLO 3 AUTH alice gave '$out'" sh -c 'printf "%s" "$1" | grep -q "server"' _ "$out"
PASS=wonderland out=$(as alice ACL WHOAMI)
check acl-whoami-user "alice's ACL WHOAMI gave '$out'" test "$out" = alice
out=$(timeout 5 redis-cli -p "$port" -a topsecret --no-auth-warning ACL USERS | tr '\n' ' ')
check acl-users-sorted "ACL USERS gave '$out'" test "$out" = "alice bob default ops "

# Redis's @admin commands (those of its "admin" flag, and ROLE and LASTSAVE) need admin = yes;
# a refusal names the command as Redis does and dooms a transaction.
for c in "MONITOR|monitor" "CLIENT LIST|client|list" "CLIENT KILL USER bob|client|kill" \
    "CONFIG GET port|config|get" "ROLE|role" "ACL USERS|acl|users"; do
    # shellcheck disable=SC2086
    PASS=wonderland out=$(as alice ${c%%|*} | head -1)
    check "admin-refused-${c#*|}" "alice's ${c%%|*} gave '$out'" test "$out" = \
        "NOPERM this user has no permissions to run the '${c#*|}' command"
done
PASS=wonderland out=$(as alice ACL WHOAMI)
check admin-not-needed-whoami "alice's ACL WHOAMI gave '$out'" test "$out" = alice
PASS=ops-pass out=$(as ops CLIENT LIST)
check admin-allowed "ops's CLIENT LIST gave '$out'" sh -c 'printf "%s" "$1" | grep -q "user=ops"' _ "$out"

# Transactions: a channel refused while queuing dooms the transaction; one allowed when queued
# but revoked by the reload below before EXEC is refused at EXEC, in Redis's words.
python3 - "$port" "$dir/tx.go" "$dir/tx.queued" >"$dir/tx.out" 2>&1 <<'EOF2' &
import os, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
def say(*cmds):
    s.sendall("".join(c + "\r\n" for c in cmds).encode())
    time.sleep(0.3)
    print(s.recv(65536).decode(errors="replace").replace("\r\n", "|"))
say("AUTH alice wonderland", "MULTI", "PUBLISH sports x", "EXEC")
say("MULTI", "CLIENT LIST", "EXEC")
say("MULTI", "PUBLISH news.today x", "PING")
ops = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
ops.sendall(b"AUTH ops ops-pass\r\nMULTI\r\nCLIENT ID\r\nCLIENT LIST\r\n")
time.sleep(0.3)
print(ops.recv(65536).decode(errors="replace").replace("\r\n", "|"))
open(sys.argv[3], "w").close()  # both transactions are queued: the reload may come
for _ in range(100):
    if os.path.exists(sys.argv[2]):
        break
    time.sleep(0.1)
say("EXEC")
ops.sendall(b"EXEC\r\n")
time.sleep(0.3)
print(ops.recv(65536).decode(errors="replace").replace("\r\n", "|"))
EOF2
txpid=$!
pids+=("$txpid")

# Subscribers that will lose access on reload, and one that keeps it.
timeout 20 redis-cli -p "$port" --user alice --pass wonderland --no-auth-warning \
    PSUBSCRIBE 'news.*' >"$dir/pattern.out" 2>&1 &
pids+=($!)
patpid=$!
timeout 20 redis-cli -p "$port" --user alice --pass wonderland --no-auth-warning \
    SUBSCRIBE chat >"$dir/chat.out" 2>&1 &
pids+=($!)
chatpid=$!
timeout 20 redis-cli -p "$port" --user bob --pass hunter2 --no-auth-warning \
    SUBSCRIBE chat >"$dir/bob.out" 2>&1 &
pids+=($!)
bobpid=$!
timeout 20 redis-cli -p "$port" --user ops --pass ops-pass --no-auth-warning \
    MONITOR >"$dir/monitor.out" 2>&1 &
pids+=($!)
monpid=$!
sleep 0.5
out=$(timeout 5 redis-cli -p "$port" -a topsecret --no-auth-warning PUBSUB NUMSUB chat | tail -1)
check subscribers-connected "NUMSUB chat gave '$out'" test "$out" = 2

for _ in $(seq 100); do
    [ -e "$dir/tx.queued" ] && break
    sleep 0.1
done
# Alice keeps "chat" but loses "news.*"; bob is disabled; ops is no longer an admin.
write_conf "chat" no no
kill -HUP "$daemon"
for _ in $(seq 40); do
    kill -0 "$patpid" 2>/dev/null || break
    sleep 0.1
done
check reload-drops-revoked-pattern "alice's news.* subscriber still connected" \
    sh -c "! kill -0 $patpid 2>/dev/null"
check reload-drops-disabled-user "bob's subscriber still connected" \
    sh -c "for i in \$(seq 40); do kill -0 $bobpid 2>/dev/null || exit 0; sleep 0.1; done; exit 1"
check reload-drops-monitor-without-admin "ops's monitor still connected" \
    sh -c "for i in \$(seq 40); do kill -0 $monpid 2>/dev/null || exit 0; sleep 0.1; done; exit 1"
touch "$dir/tx.go"
wait "$txpid"
out=$(head -1 "$dir/tx.out")
check multi-denied-channel-dooms "gave '$out'" test "$out" = \
    "+OK|+OK|-$NOPERM|-EXECABORT Transaction discarded because of previous errors.|"
out=$(sed -n 2p "$dir/tx.out")
check multi-admin-refused-dooms "gave '$out'" test "$out" = "+OK|-NOPERM this user has no \
permissions to run the 'client|list' command|-EXECABORT Transaction discarded because of \
previous errors.|"
out=$(sed -n 4p "$dir/tx.out")
check multi-admin-queued "gave '$out'" test "$out" = "+OK|+OK|+QUEUED|+QUEUED|"
out=$(sed -n 6p "$dir/tx.out")
check multi-admin-revoked-before-exec "EXEC gave '$out'" sh -c 'printf "%s" "$1" | grep -q \
"^\*2|:[0-9]*|-NOPERM ACLs rules changed between the moment the \
transaction was accumulated and the EXEC call. This command is no longer allowed for the \
following reason: no permission to execute the command or subcommand|$"' _ "$out"
out=$(sed -n 5p "$dir/tx.out")
check multi-revoked-before-exec "EXEC gave '$out'" test "$out" = "*2|-NOPERM ACLs rules changed \
between the moment the transaction was accumulated and the EXEC call. This command is no longer \
allowed for the following reason: no permission to access one of the channels used as \
arguments|+PONG|"
out=$(timeout 5 redis-cli -p "$port" -a topsecret --no-auth-warning PUBLISH chat still-here)
check reload-keeps-allowed-subscriber "PUBLISH chat reached '$out' subscribers" test "$out" = 1
check reload-logged "no revocation line in the log" grep -q "access revoked by reload" "$dir/daemon.log"
PASS=hunter2 out=$(as bob PING | head -1)
check disabled-user-refused "bob PING after reload gave '$out'" test "$out" = "$WRONGPASS"
# CLIENT KILL USER closes every connection of that user (alice's chat subscriber), and names
# an unknown user with Redis's error.
out=$(timeout 5 redis-cli -p "$port" -a topsecret --no-auth-warning CLIENT KILL USER alice)
check client-kill-user "CLIENT KILL USER alice gave '$out'" test "$out" = 1
check client-kill-user-closes "alice's chat subscriber still connected" \
    sh -c "for i in \$(seq 40); do kill -0 $chatpid 2>/dev/null || exit 0; sleep 0.1; done; exit 1"
out=$(timeout 5 redis-cli -p "$port" -a topsecret --no-auth-warning CLIENT KILL USER nobody)
check client-kill-unknown-user "gave '$out'" test "$out" = "ERR No such user 'nobody'"
kill "$chatpid" 2>/dev/null

kill -TERM "$daemon"
wait_exit "$daemon" 50
check clean-exit "exit status $status" test "$status" = 0

# Protected mode without a password: Redis's rule, only 127.0.0.1, ::1 and the unix socket
# are local, so a client bound to 127.0.0.2 is refused while every byte stays on loopback.
port=$(free_port)
printf '[server]\nport = %s\nbind = 127.0.0.1\n' "$port" >"$dir/prot.conf"
"$EVBROKERD" -c "$dir/prot.conf" >>"$dir/daemon.out" 2>&1 &
daemon=$!
pids+=("$daemon")
wait_port "$port"
out=$(timeout 5 python3 - "$port" <<'EOF2' 2>&1
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3,
                             source_address=("127.0.0.2", 0))
# The refusal is written at accept; nothing is sent, so the close is an orderly EOF.
data = b""
while True:
    try:
        d = s.recv(4096)
    except ConnectionResetError:
        break
    if not d:
        break
    data += d
print(data.decode(errors="replace").split("\r\n")[0][:60])
EOF2
)
check protected-mode-denies-non-local "a client from 127.0.0.2 got '$out'" \
    sh -c 'printf "%s" "$1" | grep -q "^-DENIED evbrokerd is running in protected mode"' _ "$out"
out=$(timeout 5 redis-cli -p "$port" PING 2>&1)
check protected-mode-serves-local "a client from 127.0.0.1 got '$out'" test "$out" = PONG
# As in Redis, the refusal is counted as rejected only: three local connections were received
# (wait_port's PING, the PING above, this INFO).
out=$(timeout 5 redis-cli -p "$port" INFO stats | tr -d '\r' |
    grep -E '^(total_connections_received|rejected_connections):' | tr '\n' ' ')
check protected-mode-counted "INFO stats gave '$out'" \
    test "$out" = "total_connections_received:3 rejected_connections:1 "
kill -TERM "$daemon"
wait_exit "$daemon" 50

[ "$failures" -eq 0 ]
