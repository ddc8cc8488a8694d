#!/bin/bash
# Adaptive output batching of a real evbrokerd: an idle server does not batch; with batching
# forced on (output_batch_load = 0) a subscriber getting a stream of messages receives them
# in few writes, all in order, none later than the window allows; a reload turns it off.
# Prints "ok batching/NAME" or "FAIL batching/NAME: why" per check.
set -u

SUITE=batching
. "$(dirname "$0")/itest-lib.bash"

read -r port < <(free_port 1)
# write_conf US LOAD: output_batch_us and output_batch_load.
write_conf() {
    write_daemon_conf "output_batch_us = $1" "output_batch_load = $2"
}

# info FIELD: the value of one INFO pubsub field.
info() {
    timeout 5 redis-cli -p "$port" INFO pubsub | tr -d '\r' | sed -n "s/^$1://p"
}

# stream_checks PREFIX PORT: 200 publishes, each waiting for its reply, reach a raw subscriber
# in order, in far fewer writes than messages, none held much past the window (the subscriber
# is read between publishes, so a message that waited is seen).
stream_checks() {
timeout 60 python3 - "$2" >"$dir/py.out" 2>"$dir/py.err" <<'PYEOF'
import socket, sys, time

port = int(sys.argv[1])

def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s

def info_field(name):
    s = conn()
    s.sendall(b"INFO pubsub\r\n")
    data = b""
    while not data.endswith(b"\r\n") or data.count(b"\r\n") < 2 or len(data) < int(data[1:data.index(b"\r\n")]) + 5:
        data += s.recv(65536)
    s.close()
    for line in data.decode().split("\r\n"):
        if line.startswith(name + ":"):
            return int(line.split(":")[1])
    return -1

sub = conn()
sub.sendall(b"SUBSCRIBE stream\r\n")
want = b"*3\r\n$9\r\nsubscribe\r\n$6\r\nstream\r\n:1\r\n"
got = b""
while len(got) < len(want):
    got += sub.recv(4096)
assert got == want, got

pub = conn()
writes0 = info_field("output_writes")
n = 200
flen = len(b"*3\r\n$7\r\nmessage\r\n$6\r\nstream\r\n$4\r\nm000\r\n")
sent_at, data, worst = [], b"", 0.0
sub.setblocking(False)

def drain():
    """Reads what the subscriber has; notes how long the oldest new message waited."""
    global data, worst
    while True:
        try:
            chunk = sub.recv(1 << 20)
        except BlockingIOError:
            return
        if not chunk:
            return
        first = len(data) // flen
        worst = max(worst, time.monotonic() - sent_at[first])
        data += chunk

for i in range(n):
    body = b"m%03d" % i
    pub.sendall(b"*3\r\n$7\r\nPUBLISH\r\n$6\r\nstream\r\n$4\r\n" + body + b"\r\n")
    sent_at.append(time.monotonic())
    r = b""
    while not r.endswith(b"\r\n"):
        r += pub.recv(64)
    assert r == b":1\r\n", r
    time.sleep(0.001)
    drain()
deadline = time.monotonic() + 5
while len(data) < n * flen and time.monotonic() < deadline:
    time.sleep(0.005)
    drain()
writes = info_field("output_writes") - writes0

frame = lambda i: b"*3\r\n$7\r\nmessage\r\n$6\r\nstream\r\n$4\r\nm%03d\r\n" % i
expect = b"".join(frame(i) for i in range(n))
print("writes=%d worst_wait_ms=%.1f" % (writes, worst * 1000))
ok = data == expect
print("in_order" if ok else "MISMATCH")
# 200 replies to the publisher plus the subscriber's writes (one per window, about 3 here),
# against 400 without batching; the INFO connections themselves add a few.
print("few_writes" if writes <= n + 40 else "many_writes")
print("bounded_wait" if worst < 0.4 else "slow")
PYEOF
    local out
    out=$(cat "$dir/py.out")
    [ -n "${ITEST_VERBOSE:-}" ] && echo "    $out" | head -1
    check "${1}stream_in_order" "$(head -c 300 "$dir/py.out") $(tail -3 "$dir/py.err")" \
        grep -qx in_order "$dir/py.out"
    check "${1}stream_in_few_writes" "$out" grep -qx few_writes "$dir/py.out"
    check "${1}wait_bounded_by_window" "$out" grep -qx bounded_wait "$dir/py.out"
}

# timerfds PID: how many timerfds the process holds.
timerfds() {
    ls -l "/proc/$1/fd" 2>/dev/null | grep -c 'anon_inode:\[timerfd\]'
}

write_conf 2000 90
start_daemon_or_exit "$dir/evbrokerd.conf" "$port"
sleep 0.3 # a few cron samples of an idle loop
check idle_does_not_batch "output_batching=$(info output_batching) busy=$(info event_loop_busy_pct)" \
    test "$(info output_batching)" = 0 -a "$(info event_loop_busy_pct)" -lt 90
check idle_declines_nothing "output_batch_declined=$(info output_batch_declined)" \
    test "$(info output_batch_declined)" = 0

# Forced on with a 100 ms window: 200 publishes, each waiting for its reply, reach a raw
# subscriber in order, in far fewer writes than messages, none held much past the window
# (the subscriber is read between publishes, so a message that waited is seen).
write_conf 100000 0
kill -HUP "$daemon"
sleep 0.3
check reload_engages "output_batching=$(info output_batching) window=$(info output_batch_window_us)" \
    test "$(info output_batching)" = 1 -a "$(info output_batch_window_us)" = 100000

check timerfd_used "timerfds=$(timerfds "$daemon")" test "$(timerfds "$daemon")" -ge 1
stream_checks "" "$port"

# The load figure follows real work: while a client floods PUBLISH for a second, a sample
# taken inside the flood shows the loop busy (an idle loop reads 0 or 1).
timeout 30 python3 - "$port" >"$dir/flood.out" 2>&1 <<'PYEOF2'
import socket, sys, threading, time
port = int(sys.argv[1])
stop = time.monotonic() + 1.2
def flood():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    batch = b"*3\r\n$7\r\nPUBLISH\r\n$5\r\nflood\r\n$1\r\nx\r\n" * 500
    while time.monotonic() < stop:
        s.sendall(batch)
        need = 500 * 4
        got = 0
        while got < need:
            got += len(s.recv(65536))
threading.Thread(target=flood, daemon=True).start()
time.sleep(0.8)
q = socket.create_connection(("127.0.0.1", port), timeout=10)
q.sendall(b"INFO pubsub\r\n")
data = b""
while b"output_batch_window_us" not in data:
    data += q.recv(65536)
for line in data.decode().split("\r\n"):
    if line.startswith("event_loop_busy_pct:"):
        print(line.split(":")[1])
PYEOF2
busy=$(tail -1 "$dir/flood.out")
[ -n "${ITEST_VERBOSE:-}" ] && echo "    busy during flood: $busy"
check busy_measured_under_load "event_loop_busy_pct during a flood was '$busy'" \
    sh -c '[ "$1" -ge 10 ] 2>/dev/null' _ "$busy"

write_conf 0 0
kill -HUP "$daemon"
sleep 0.3
check reload_disables "output_batching=$(info output_batching)" test "$(info output_batching)" = 0

# Without timerfds (an old kernel, or a seccomp policy that denies them): a shim makes
# timerfd_create fail for the daemon and libevent alike, and batching runs on libevent's own
# timer, with the same guarantees.
cat >"$dir/notimerfd.c" <<'CEOF'
#include <errno.h>
int timerfd_create(int clockid, int flags);
int timerfd_create(int clockid, int flags)
{
    (void)clockid;
    (void)flags;
    errno = ENOSYS;
    return -1;
}
CEOF
if cc -shared -fPIC -o "$dir/notimerfd.so" "$dir/notimerfd.c" 2>"$dir/cc.err"; then
    read -r port2 < <(free_port 1)
    sed "s/^port = .*/port = $port2/" "$dir/evbrokerd.conf" >"$dir/notimerfd.conf"
    sed -i 's/^output_batch_us = .*/output_batch_us = 100000/; s/^output_batch_load = .*/output_batch_load = 0/' \
        "$dir/notimerfd.conf"
    LD_PRELOAD=$dir/notimerfd.so ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
        "$EVBROKERD" -c "$dir/notimerfd.conf" >"$dir/notimerfd.log" 2>&1 &
    notimer=$!
    pids+=("$notimer")
    if wait_port "$port2"; then
        check no_timerfd_used "timerfds=$(timerfds "$notimer")" test "$(timerfds "$notimer")" = 0
        stream_checks no_timerfd_ "$port2"
    else
        check no_timerfd_start "$(head -5 "$dir/notimerfd.log")" false
    fi
else
    check no_timerfd_shim "cc failed: $(head -3 "$dir/cc.err")" false
fi

[ "$failures" -eq 0 ]
