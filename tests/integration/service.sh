#!/bin/bash
# Service behaviour of a real evbrokerd: systemd notification, SIGHUP reloads (also under
# load), SIGTERM cleanup, configuration errors with line numbers, maxclients, idle timeout,
# IPv6, log reopening and `make install`. Prints "ok service/NAME" or "FAIL service/NAME: why".
set -u

SUITE=service
. "$(dirname "$0")/itest-lib.bash"

# Starts the daemon in the background with a config file; sets $daemon.
start_daemon() {
    "$EVBROKERD" -c "$1" >>"$dir/daemon.log" 2>&1 &
    daemon=$!
    pids+=("$daemon")
}

# redis-cli with a time limit.
cli() {
    timeout 5 redis-cli "$@" 2>&1
}

# --- the unit file -------------------------------------------------------------------------
if command -v systemd-analyze >/dev/null; then
    # verify checks that ExecStart exists: point it at the binary under test, since the unit's
    # /usr/local/bin path exists only after `make install`.
    bin=$(cd "$(dirname "$EVBROKERD")" && pwd)/$(basename "$EVBROKERD")
    sed "s#^ExecStart=/usr/local/bin/evbrokerd #ExecStart=$bin #" "$TOP/evbrokerd.service" \
        >"$dir/evbrokerd.service"
    check unit-execstart-rewritten "ExecStart not found in the unit" \
        grep -q "^ExecStart=$bin " "$dir/evbrokerd.service"
    out=$(systemd-analyze verify "$dir/evbrokerd.service" 2>&1)
    check unit-verifies "systemd-analyze verify: $out" test -z "$out"
else
    echo "FAIL service/unit-verifies: systemd-analyze missing (scripts/setup.sh installs systemd)"
    failures=$((failures + 1))
fi

# --- systemd notification: READY before clients, RELOADING/READY on SIGHUP, STOPPING ------
port=$(free_port)
notify=$dir/notify.sock
cat >"$dir/notify.conf" <<EOF
[server]
port = $port
bind = 127.0.0.1
pidfile = $dir/evb.pid
unixsocket = $dir/evb.sock
EOF
python3 - "$notify" "$dir/notify.log" <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); s.settimeout(0.2)
end = time.time() + 30
with open(sys.argv[2], "a") as log:
    while time.time() < end:
        try:
            msg = s.recv(4096).decode()
        except socket.timeout:
            continue
        log.write(msg.replace("\n", " ") + "\n"); log.flush()
        if "STOPPING=1" in msg:
            break
EOF
pids+=($!)
for _ in $(seq 50); do [ -S "$notify" ] && break; sleep 0.05; done
NOTIFY_SOCKET=$notify "$EVBROKERD" -c "$dir/notify.conf" >>"$dir/daemon.log" 2>&1 &
daemon=$!
pids+=("$daemon")
ready_before_client=no
for _ in $(seq 100); do
    if grep -q 'READY=1' "$dir/notify.log" 2>/dev/null; then
        ready_before_client=yes
        break
    fi
    sleep 0.05
done
check notify-ready "no READY=1 datagram" test "$ready_before_client" = yes
check notify-ready-means-listening "not serving after READY=1" wait_port "$port"
check pidfile-written "pidfile missing or wrong" grep -qx "$daemon" "$dir/evb.pid"
kill -HUP "$daemon"
for _ in $(seq 50); do
    [ "$(grep -c 'READY=1' "$dir/notify.log")" -ge 2 ] && break
    sleep 0.05
done
check notify-reload "no RELOADING=1 then READY=1 after SIGHUP: $(tr '\n' '|' <"$dir/notify.log")" \
    sh -c "grep -n 'RELOADING=1' '$dir/notify.log' | head -1 | grep -q '^2:' &&
           [ \$(grep -c 'READY=1' '$dir/notify.log') -ge 2 ]"

# SIGTERM with subscribers connected: exit 0 quickly, pidfile and unix socket gone.
timeout 10 redis-cli -p "$port" SUBSCRIBE a >/dev/null 2>&1 &
pids+=($!)
timeout 10 redis-cli -s "$dir/evb.sock" PSUBSCRIBE 'b*' >/dev/null 2>&1 &
pids+=($!)
sleep 0.3
kill -TERM "$daemon"
wait_exit "$daemon" 50
check sigterm-exit-0 "exit status $status with subscribers connected" test "$status" = 0
check sigterm-removes-pidfile "pidfile still there" test ! -e "$dir/evb.pid"
check sigterm-removes-socket "unix socket still there" test ! -e "$dir/evb.sock"
sleep 0.3
check notify-stopping "no STOPPING=1" grep -q 'STOPPING=1' "$dir/notify.log"

# --- SIGHUP under load: subscribers lose no message and no connection --------------------
port=$(free_port)
cat >"$dir/load.conf" <<EOF
[server]
port = $port
bind = 127.0.0.1
[log]
level = notice
target = $dir/load.log
EOF
start_daemon "$dir/load.conf"
wait_port "$port"
python3 - "$port" "$daemon" >"$dir/load.out" 2>&1 <<'EOF'
import os, signal, socket, sys, time
port, pid, n = int(sys.argv[1]), int(sys.argv[2]), 20000
subs = []
for _ in range(5):
    s = socket.create_connection(("127.0.0.1", port)); s.sendall(b"SUBSCRIBE load\r\n")
    buf = b""
    while not buf.endswith(b":1\r\n"):
        buf += s.recv(100)
    subs.append(s)
pub = socket.create_connection(("127.0.0.1", port))
for i in range(n):
    pub.sendall(b"PUBLISH load %d\r\n" % i)
    if i % 2000 == 0:
        os.kill(pid, signal.SIGHUP)
        time.sleep(0.01)
want = b"".join(b"*3\r\n$7\r\nmessage\r\n$4\r\nload\r\n$%d\r\n%d\r\n" % (len(str(i)), i)
                for i in range(n))
ok = True
for s in subs:
    s.settimeout(10)
    got = b""
    while len(got) < len(want):
        d = s.recv(1 << 20)
        if not d:
            break
        got += d
    ok = ok and got == want
print("all-delivered" if ok else "LOST")
EOF
check sighup-under-load "subscribers lost messages or connections during reloads: $(cat "$dir/load.out")" \
    grep -q all-delivered "$dir/load.out"
check sighup-logged "no reload line in the log" grep -q 'Configuration reloaded' "$dir/load.log"

# Reopen the log file after logrotate moved it.
mv "$dir/load.log" "$dir/load.log.1"
kill -HUP "$daemon"
sleep 0.3
check log-reopened "SIGHUP did not reopen the log file" test -s "$dir/load.log"

# A reload with requirepass: new clients must authenticate; an invalid file keeps the old.
printf '[server]\nport = %s\nbind = 127.0.0.1\n[log]\ntarget = %s\n[security]\nrequirepass = s3cret\n' \
    "$port" "$dir/load.log" >"$dir/load.conf"
kill -HUP "$daemon"
sleep 0.3
check reload-applies-requirepass "PING without AUTH after reload: $(cli -p "$port" PING)" \
    sh -c "timeout 5 redis-cli -p $port PING 2>&1 | grep -q NOAUTH"
printf '[server]\nport = %s\nbogus = 1\n' "$port" >"$dir/load.conf"
kill -HUP "$daemon"
sleep 0.3
check reload-invalid-keeps-running "daemon not serving after an invalid reload" \
    sh -c "timeout 5 redis-cli -p $port -a s3cret --no-auth-warning PING | grep -q PONG"
check reload-invalid-logged "no log line for the rejected reload" \
    grep -q 'Reload of .* failed' "$dir/load.log"
# The configuration path replaced by a FIFO nobody writes: the reload must neither block the
# loop (open and read of a FIFO wait for a writer) nor be taken as an empty file.
rm -f "$dir/load.conf"
mkfifo "$dir/load.conf"
kill -HUP "$daemon"
sleep 0.3
check reload-fifo-does-not-block "daemon not serving after a reload from a FIFO" \
    sh -c "timeout 2 redis-cli -p $port -a s3cret --no-auth-warning PING | grep -q PONG"
check reload-fifo-logged "no 'not a regular file' line" grep -q 'not a regular file' "$dir/load.log"
# The log file replaced by a FIFO nobody reads: reopening it must not block either.
mv "$dir/load.log" "$dir/load.log.2"
mkfifo "$dir/load.log"
kill -HUP "$daemon"
sleep 0.3
check reload-log-fifo-does-not-block "daemon not serving after reopening a FIFO log" \
    sh -c "timeout 2 redis-cli -p $port -a s3cret --no-auth-warning PING | grep -q PONG"
check reload-log-fifo-logged "no line about the log it kept" \
    grep -q "cannot reopen log file .* (a FIFO with no reader), keeping the old handle" "$dir/load.log.2"
kill "$daemon"

# A relative configuration path is made absolute for INFO and reloads, as Redis does, but
# symbolic links stay as given (a ConfigMap's link would otherwise pin its old target).
mkdir -p "$dir/cm/v1"
printf '[server]\nbind = 127.0.0.1\n' >"$dir/cm/v1/evb.conf"
ln -s v1 "$dir/cm/data"
port=$(free_port)
(cd "$dir/cm" && exec "$EVBROKERD" -c data/evb.conf --port "$port") >>"$dir/daemon.log" 2>&1 &
daemon=$!
pids+=("$daemon")
wait_port "$port"
out=$(timeout 2 redis-cli -p "$port" INFO server | tr -d '\r' | sed -n 's/^config_file://p')
check config-file-absolute-link-kept "config_file is '$out'" test "$out" = "$dir/cm/data/evb.conf"
kill "$daemon"

# --port given on the command line stays in force across reloads, with no false "changed,
# needs a restart" warning; a log target that cannot be opened keeps the old one (said in the
# log) while the rest of the reload, the level included, applies.
port=$(free_port)
printf '[server]\nbind = 127.0.0.1\n[log]\ntarget = %s\n' "$dir/cli.log" >"$dir/cli.conf"
"$EVBROKERD" -c "$dir/cli.conf" --port "$port" >>"$dir/daemon.log" 2>&1 &
daemon=$!
pids+=("$daemon")
wait_port "$port"
kill -HUP "$daemon"
sleep 0.3
check reload-keeps-cli-port "no longer serving on --port after a reload" \
    sh -c "timeout 2 redis-cli -p $port PING | grep -q PONG"
check reload-cli-no-false-warning "$(grep 'take effect after a restart' "$dir/cli.log")" \
    sh -c "! grep -q 'take effect after a restart' '$dir/cli.log'"
printf '[server]\nbind = 127.0.0.1\n[log]\nlevel = warning\ntarget = %s/no/such/dir.log\n' "$dir" \
    >"$dir/cli.conf"
kill -HUP "$daemon"
sleep 0.3
check reload-bad-log-target-logged "$(tail -2 "$dir/cli.log")" \
    grep -q "target $dir/no/such/dir.log cannot be opened (No such file or directory); logging stays on $dir/cli.log" \
    "$dir/cli.log"
out=$(timeout 2 redis-cli -p "$port" CONFIG GET loglevel logfile | tr '\n' ' ')
check reload-bad-log-target-rest-applies "CONFIG GET gave '$out'" \
    test "$out" = "loglevel warning logfile $dir/cli.log "
kill "$daemon"

# --- configuration errors: right line, non-zero exit -------------------------------------
# Each case: name, expected line number, substring of the reason, file body (printf format).
bad_case() {
    local name=$1 line=$2 why=$3 body=$4
    printf "$body" >"$dir/bad.conf"
    out=$("$EVBROKERD" -c "$dir/bad.conf" 2>&1)
    rc=$?
    check "config-$name" "rc=$rc out=$out" \
        sh -c "[ $rc -eq 78 ] && printf '%s' \"\$1\" | grep -q \"bad.conf:$line: .*$why\"" _ "$out"
}
bad_case unknown-key 3 "unknown key" '[server]\nport = 1\nfoo = 2\n'
bad_case bad-number 2 "port" '[server]\nport = abc\n'
bad_case bad-size-unit 2 "proto_max_bulk_len" '[limits]\nproto_max_bulk_len = 12xb\n'
bad_case bad-address 2 "bind" '[server]\nbind = 300.1.1.1\n'
bad_case duplicate-key 3 "duplicate" '[server]\nport = 1\nport = 2\n'
bad_case line-too-long 2 "" "[server]\npidfile = /$(printf 'x%.0s' $(seq 300))\n"
bad_case upstream-host-and-socket 3 "host is set too" '[upstream]\nhost = r\nunixsocket = /r.sock\n'
bad_case upstream-user-no-password 2 "set without a password" '[upstream]\nuser = bob\nhost = r\n'
printf '[upstream]\nreconnect_min_ms = 5000\nreconnect_max_ms = 100\n' >"$dir/bad.conf"
out=$("$EVBROKERD" --test-config -c "$dir/bad.conf" 2>&1)
check test-config-cross-keys "rc=$? out=$out" \
    sh -c '[ "$1" -eq 78 ] && printf "%s" "$2" | grep -q "bad.conf:2: .*above reconnect_max_ms"' _ $? "$out"
out=$("$EVBROKERD" -c "$dir/missing.conf" 2>&1)
check config-unreadable "missing file accepted: $out" sh -c "printf '%s' \"\$1\" | grep -q 'cannot open'" _ "$out"
"$EVBROKERD" --test-config -c "$TOP/conf/evbrokerd.conf" >/dev/null 2>&1
check test-config-accepts-shipped "--test-config rejected conf/evbrokerd.conf" test $? -eq 0
printf '[server]\nport = x\nfoo = 1\n' >"$dir/bad.conf"
out=$("$EVBROKERD" --test-config -c "$dir/bad.conf" 2>&1)
check test-config-lists-every-problem "expected lines 2 and 3: $out" \
    sh -c "printf '%s' \"\$1\" | grep -q 'bad.conf:2:' && printf '%s' \"\$1\" | grep -q 'bad.conf:3:'" _ "$out"

# --- maxclients, idle timeout, IPv6 --------------------------------------------------------
port=$(free_port)
printf '[server]\nport = %s\nbind = 127.0.0.1 -::1\nmaxclients = 2\ntimeout = 1\n' "$port" \
    >"$dir/limits.conf"
start_daemon "$dir/limits.conf"
wait_port "$port"
timeout 10 redis-cli -p "$port" SUBSCRIBE keep >"$dir/keep.out" 2>&1 &
pids+=($!)
python3 - "$port" >"$dir/max.out" 2>&1 <<'EOF' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(4)
start = time.time()
try:
    d = s.recv(100)
except socket.timeout:
    d = b"?"
print("closed-after %.1f" % (time.time() - start) if d == b"" else "not-closed")
EOF
idlepid=$!
pids+=("$idlepid")
sleep 0.3
out=$(cli -p "$port" PING)
check maxclients-reached "third client got: $out" test "$out" = "ERR max number of clients reached"
wait "$idlepid"
check idle-timeout-closes-normal-client "$(cat "$dir/max.out")" grep -q closed-after "$dir/max.out"
check idle-timeout-spares-subscribers "subscriber was closed" \
    sh -c "[ \$(timeout 5 redis-cli -p $port PUBSUB NUMSUB keep | tail -1) = 1 ]"
if python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null; then
    out=$(cli -h ::1 -p "$port" PUBLISH keep hello)
    check ipv6-loopback "PUBLISH over ::1 gave '$out'" test "$out" = 1
else
    echo "ok service/ipv6-loopback # skipped: no IPv6 loopback on this machine"
fi
kill "$daemon"

# --- a low descriptor limit, and running out of descriptors ----------------------------------
# With 112 descriptors, Redis's reserve of 32 and 64 for the metrics endpoint, maxclients
# shrinks to 16: the 17th client gets "max number of clients reached" instead of waiting in
# the backlog. Then the limit is lowered under the running daemon, so accept runs out of
# descriptors before maxclients: every listener pauses, the metrics endpoint's too (before, a
# scrape waiting in its backlog made libevent's listener spin the CPU and write millions of
# warnings), and all resume once descriptors are free again.
read -r port mport < <(free_port 2)
printf '[server]\nport = %s\nbind = 127.0.0.1\n[log]\ntarget = %s\n[metrics]\nlisten = 127.0.0.1:%s\n' \
    "$port" "$dir/emfile.log" "$mport" >"$dir/emfile.conf"
(ulimit -n 112 && exec "$EVBROKERD" -c "$dir/emfile.conf") >>"$dir/daemon.log" 2>&1 &
daemon=$!
pids+=("$daemon")
wait_port "$port"
python3 - "$port" "$mport" "$daemon" >"$dir/emfile.out" 2>&1 <<'EOF2'
import os, resource, socket, sys, time
port, mport, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def cpu_s():
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / 100.0
def ping(s):
    s.sendall(b"PING\r\n"); s.settimeout(2)
    try:
        return s.recv(100) == b"+PONG\r\n"
    except OSError:
        return False
first = socket.create_connection(("127.0.0.1", port))
assert ping(first), "first client"
first.sendall(b"CONFIG GET maxclients\r\n")
time.sleep(0.2)
print("maxclients", first.recv(200).split(b"\r\n")[4].decode())
others = [socket.create_connection(("127.0.0.1", port)) for _ in range(15)]
over = socket.create_connection(("127.0.0.1", port))
over.settimeout(2)
print("over-refused-ok" if over.recv(100) == b"-ERR max number of clients reached\r\n"
      else "over-refused-FAILED")
print("others-ok" if all(ping(o) for o in others) else "others-FAILED")
# As in Redis, the refused one counts as rejected only: wait_port's PING, first, 15 others.
first.sendall(b"INFO stats\r\n")
time.sleep(0.2)
stats = dict(l.split(":", 1) for l in first.recv(65536).decode().split("\r\n") if ":" in l)
print("counted-ok" if (stats["total_connections_received"], stats["rejected_connections"])
      == ("17", "1") else "counted-FAILED", stats["total_connections_received"],
      stats["rejected_connections"])
for o in others:
    o.close()
time.sleep(0.3)
# Room for three more descriptors only.
used = len(os.listdir("/proc/%d/fd" % pid))
resource.prlimit(pid, resource.RLIMIT_NOFILE, (used + 3, 112))
hold = [socket.create_connection(("127.0.0.1", port)) for _ in range(6)]
time.sleep(0.5)
print("existing-ok" if ping(first) else "existing-FAILED")
scrape = socket.create_connection(("127.0.0.1", mport))  # waits in the backlog
scrape.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
before = cpu_s()
time.sleep(1)
used = cpu_s() - before
print("metrics-idle-ok" if used < 0.3 else "metrics-spin-FAILED", used)
late = hold[-1]  # in the backlog too
for h in hold[:-1]:
    h.close()
resource.prlimit(pid, resource.RLIMIT_NOFILE, (112, 112))
time.sleep(0.5)
print("resumed-ok" if ping(late) else "resumed-FAILED")
scrape.settimeout(3)
print("metrics-resumed-ok" if scrape.recv(4096).startswith(b"HTTP/1.0 200") else "metrics-resumed-FAILED")
EOF2
check fit-maxclients-reduced "$(head -1 "$dir/emfile.out")" grep -qx "maxclients 16" "$dir/emfile.out"
check fit-maxclients-logged "no reduction in the log" \
    grep -q "maxclients 10000 needs 10096 open files but the limit is 112: maxclients reduced to 16" \
    "$dir/emfile.log"
check fit-over-limit-refused "$(cat "$dir/emfile.out")" grep -q over-refused-ok "$dir/emfile.out"
check fit-under-limit-served "$(cat "$dir/emfile.out")" grep -q others-ok "$dir/emfile.out"
check fit-refusal-counted-as-rejected "$(grep counted "$dir/emfile.out")" \
    grep -q counted-ok "$dir/emfile.out"
check emfile-existing-client-served "$(cat "$dir/emfile.out")" grep -q existing-ok "$dir/emfile.out"
check emfile-accept-resumes "$(cat "$dir/emfile.out")" grep -q "^resumed-ok" "$dir/emfile.out"
check emfile-metrics-no-spin "$(cat "$dir/emfile.out")" grep -q metrics-idle-ok "$dir/emfile.out"
check emfile-metrics-resumes "$(cat "$dir/emfile.out")" grep -q metrics-resumed-ok "$dir/emfile.out"
check emfile-no-libevent-warnings "$(grep -c 'Error from accept' "$dir/daemon.log") accept warnings" \
    sh -c "! grep -q 'Error from accept' '$dir/daemon.log'"
check emfile-logged-once "expected one 'Out of file descriptors' line, got $(grep -c 'Out of file descriptors' "$dir/emfile.log")" \
    test "$(grep -c 'Out of file descriptors' "$dir/emfile.log")" = 1
kill "$daemon"

# --- make install with DESTDIR ---------------------------------------------------------------
dest=$dir/dest
if make -C "$TOP" -s install DESTDIR="$dest" PREFIX=/usr >"$dir/install.log" 2>&1; then
    check install-binary "binary missing" test -x "$dest/usr/bin/evbrokerd"
    check install-top "evbrokerd-top missing" test -x "$dest/usr/bin/evbrokerd-top"
    check install-config "config missing" test -f "$dest/etc/evbrokerd/evbrokerd.conf"
    check install-unit "unit missing or ExecStart not rewritten" \
        grep -q '^ExecStart=/usr/bin/evbrokerd' "$dest/lib/systemd/system/evbrokerd.service"
    check install-doc "README missing or Documentation= not rewritten" \
        sh -c "[ -f '$dest/usr/share/doc/evbrokerd/README.md' ] &&
               grep -q '^Documentation=file:/usr/share/doc/evbrokerd/README.md' \
                   '$dest/lib/systemd/system/evbrokerd.service'"
    echo "# local edit" >>"$dest/etc/evbrokerd/evbrokerd.conf"
    make -C "$TOP" -s install DESTDIR="$dest" PREFIX=/usr >>"$dir/install.log" 2>&1
    check install-keeps-config "an existing config was overwritten" \
        grep -q '# local edit' "$dest/etc/evbrokerd/evbrokerd.conf"
    make -C "$TOP" -s uninstall DESTDIR="$dest" PREFIX=/usr >>"$dir/install.log" 2>&1
    check uninstall-removes "binary or unit left behind" \
        sh -c "[ ! -e '$dest/usr/bin/evbrokerd' ] && [ ! -e '$dest/usr/bin/evbrokerd-top' ] &&
               [ ! -e '$dest/lib/systemd/system/evbrokerd.service' ] &&
               [ ! -e '$dest/usr/share/doc/evbrokerd' ]"
else
    echo "FAIL service/install: $(tail -3 "$dir/install.log")"
    failures=$((failures + 1))
fi

[ "$failures" -eq 0 ]
