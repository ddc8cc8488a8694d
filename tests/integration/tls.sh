#!/bin/bash
# The TLS listener against real clients: redis-cli --tls, openssl s_client and Python's ssl
# module. A throwaway CA, server and client certificate (EC P-256) are made with the openssl
# CLI. Covers client certificates (yes, optional), the TLS 1.2 floor, pub/sub between TLS and
# plain clients (1 MiB frames too), HELLO 3, QUIT, protected mode, SIGTERM with TLS
# subscribers, certificate reload on SIGHUP and startup errors. Prints "ok tls/NAME" or "FAIL tls/NAME: why".
set -u

SUITE=tls
. "$(dirname "$0")/itest-lib.bash"

# --- certificates ----------------------------------------------------------------------
# Makes an EC key and a certificate signed by the test CA: name, subject, extensions.
make_cert() {
    openssl ecparam -name prime256v1 -genkey -noout -out "$dir/$1.key" &&
        openssl req -new -key "$dir/$1.key" -subj "$2" -out "$dir/$1.csr" &&
        printf '%s\n' "$3" >"$dir/$1.ext" &&
        openssl x509 -req -in "$dir/$1.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
            -CAcreateserial -days 2 -sha256 -extfile "$dir/$1.ext" -out "$dir/$1.crt"
}
certs_ok=no
if (openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca.key" &&
    openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 2 -subj "/CN=evbrokerd test CA" \
        -out "$dir/ca.crt" &&
    make_cert server /CN=127.0.0.1 \
        "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth" &&
    make_cert client "/CN=evbrokerd test client" "extendedKeyUsage=clientAuth") \
    >"$dir/openssl.log" 2>&1; then
    certs_ok=yes
fi
check certificates "openssl could not make the test certificates: $(tail -3 "$dir/openssl.log")" \
    test $certs_ok = yes
[ $certs_ok = yes ] || exit 1

# Writes a configuration with a plain and a TLS port: file, plain port, TLS port, auth_clients,
# then any extra lines for [server].
write_conf() {
    local file=$1 port=$2 tport=$3 auth=$4
    shift 4
    {
        echo "[server]"
        echo "port = $port"
        for line in "$@"; do echo "$line"; done
        echo "[log]"
        echo "level = verbose"
        echo "target = $dir/daemon.log"
        echo "[tls]"
        echo "port = $tport"
        echo "cert_file = $dir/server.crt"
        echo "key_file = $dir/server.key"
        echo "ca_cert_file = $dir/ca.crt"
        echo "auth_clients = $auth"
    } >"$file"
}

# Starts the daemon on a configuration and waits for it; sets $daemon.
start_daemon() {
    "$EVBROKERD" -c "$1" >>"$dir/daemon.out" 2>&1 &
    daemon=$!
    pids+=("$daemon")
    wait_port "$2"
}

# redis-cli over TLS, trusting the test CA, with a time limit; extra options first.
tcli() {
    local port=$1
    shift
    timeout 5 redis-cli --tls --cacert "$dir/ca.crt" -p "$port" "$@" 2>&1
}

# Client certificate options for tcli.
CLIENT_CERT=(--cert "$dir/client.crt" --key "$dir/client.key")

# --- auth_clients = optional ---------------------------------------------------------------
port=$(free_port)
tport=$(free_port)
write_conf "$dir/opt.conf" "$port" "$tport" optional "bind = 127.0.0.1"
start_daemon "$dir/opt.conf" "$port"
check listening "daemon did not start: $(tail -3 "$dir/daemon.out")" kill -0 "$daemon"
out=$(tcli "$tport" PING)
check optional-ping-without-cert "redis-cli --tls PING said '$out'" test "$out" = PONG
out=$(tcli "$tport" "${CLIENT_CERT[@]}" PING)
check optional-ping-with-cert "redis-cli --tls --cert PING said '$out'" test "$out" = PONG
out=$(tcli "$tport" HELLO 3)
check hello3 "HELLO 3 over TLS said '$(echo "$out" | tr '\n' ' ')'" \
    sh -c 'printf "%s\n" "$1" | grep -qx "proto 3"' _ "$out"
out=$(tcli "$tport" CLIENT LIST)
check client-list-laddr "CLIENT LIST over TLS: $out" \
    sh -c 'printf "%s\n" "$1" | grep -q "laddr=127.0.0.1:$2 .*cmd=client|list"' _ "$out" "$tport"

# TLS versions: 1.1 is refused (the client is allowed to offer it), 1.2 and 1.3 work.
s_client() {
    timeout 5 openssl s_client -connect "127.0.0.1:$tport" -CAfile "$dir/ca.crt" "$@" 2>&1
}
out=$(s_client -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0')
rc=$?
check tls1.1-refused "TLS 1.1 handshake did not fail (rc $rc): $(echo "$out" | grep -i cipher)" \
    sh -c '[ "$1" -ne 0 ] && printf "%s\n" "$2" | grep -q "Cipher is (NONE)"' _ "$rc" "$out"
for v in 1.2 1.3; do
    out=$(s_client "-tls${v/./_}")
    check "tls$v-accepted" "TLS $v handshake failed: $(echo "$out" | grep -iE 'error|protocol')" \
        sh -c 'printf "%s\n" "$1" | grep -Eq "Protocol *: TLSv$2|New, TLSv$2"' _ "$out" "$v"
done

# Pub/sub across TLS and plain clients, exact bytes, including a 1 MiB message (a shared,
# referenced frame) and RESP3; QUIT over TLS gets +OK before the close.
python3 - "$port" "$tport" "$dir" >"$dir/pubsub.out" 2>&1 <<'EOF'
import os, socket, ssl, sys
port, tport, d = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=d + "/ca.crt")
ctx.load_cert_chain(d + "/client.crt", d + "/client.key")

def plain():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s

def tls():
    s = socket.create_connection(("127.0.0.1", tport), timeout=10)
    return ctx.wrap_socket(s, server_hostname="127.0.0.1")

def cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out

def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        d = s.recv(min(1 << 20, n - len(buf)))
        if not d:
            raise EOFError("closed after %d of %d bytes" % (len(buf), n))
        buf += d
    return buf

def expect(s, want, what):
    got = read_exact(s, len(want))
    if got != want:
        print("FAIL", what, repr(got[:120]), "!=", repr(want[:120]))
        sys.exit(0)

def sub(s, ch, resp3=False):
    if resp3:
        s.sendall(cmd("HELLO", "3"))
        buf = b""
        while b"proto" not in buf or not buf.endswith(b"\r\n"):
            buf += s.recv(4096)
            if b"modules" in buf and buf.endswith(b"*0\r\n"):
                break
    s.sendall(cmd("SUBSCRIBE", ch))
    head = b">" if resp3 else b"*"
    expect(s, head + b"3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(ch), ch.encode()),
           "subscribe reply")

def frame(ch, payload, resp3=False):
    head = b">" if resp3 else b"*"
    return (head + b"3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$%d\r\n" % (len(ch), ch.encode(), len(payload))
            + payload + b"\r\n")

big = os.urandom(1 << 20)
small = b"hello over tls"
for name, mk_sub, mk_pub, resp3 in (("plain-to-tls", tls, plain, False),
                                    ("tls-to-plain", plain, tls, False),
                                    ("tls-to-tls-resp3", tls, tls, True)):
    ch = "ch-" + name
    s, p = mk_sub(), mk_pub()
    sub(s, ch, resp3)
    for payload in (small, big, small):
        p.sendall(cmd("PUBLISH", ch, payload))
        expect(p, b":1\r\n", name + " publish reply")
        expect(s, frame(ch, payload, resp3), name + " message of %d bytes" % len(payload))
    print("ok", name)
    s.close(); p.close()

# Many 1 MiB messages at once to a TLS subscriber that reads only afterwards: the output
# waits in the bufferevent and everything arrives in order.
s, p = tls(), plain()
sub(s, "burst")
for i in range(24):
    p.sendall(cmd("PUBLISH", "burst", big[:-2] + b"%02d" % i))
for i in range(24):
    expect(p, b":1\r\n", "burst publish reply")
for i in range(24):
    expect(s, frame("burst", big[:-2] + b"%02d" % i), "burst message %d" % i)
print("ok burst")

# A pipeline whose replies exceed the 1 MiB pause mark: reading pauses with decrypted input
# still inside the bufferevent, resumes as replies drain, and every reply arrives in order.
raw = socket.socket()
raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
raw.connect(("127.0.0.1", tport))
q = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
n, pad = 100000, b"p" * 94
q.setblocking(False)
req, got, sent = b"".join(b"ECHO %06d%s\r\n" % (i, pad) for i in range(n)), b"", 0
want = b"".join(b"$100\r\n%06d%s\r\n" % (i, pad) for i in range(n))
import select, time
deadline = time.time() + 30
while len(got) < len(want) and time.time() < deadline:
    blocked = sent == len(req)
    r, w, _ = select.select([q], [q] if sent < len(req) else [], [], 0.2)
    if w:
        try:
            sent += q.send(req[sent:sent + 65536])
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
            blocked = True
    else:
        blocked = True
    # Replies are read only once the daemon stops taking requests, so its output piles up.
    if blocked and (r or q.pending()):
        try:
            got += q.recv(1 << 20)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
print("ok pipeline" if got == want else "FAIL pipeline: %d of %d bytes, equal prefix %s" %
      (len(got), len(want), want.startswith(got)))
q.close()

q = tls()
q.sendall(cmd("QUIT"))
expect(q, b"+OK\r\n", "QUIT reply")
print("ok quit" if q.recv(10) == b"" else "FAIL quit: not closed")
EOF
for t in plain-to-tls tls-to-plain tls-to-tls-resp3 burst pipeline quit; do
    check "pubsub-$t" "$(grep -v '^ok' "$dir/pubsub.out" | head -3 | cut -c1-300)" \
        grep -qx "ok $t" "$dir/pubsub.out"
done

# A TLS subscriber that stops reading: its queued output (most of it inside the bufferevent)
# shows in CLIENT LIST omem, and past the 32mb hard limit it is dropped like a plain one.
python3 - "$port" "$tport" "$dir" >"$dir/slow.out" 2>&1 <<'EOF'
import re, socket, ssl, sys, time
port, tport, d = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=d + "/ca.crt")
raw = socket.socket()
raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
raw.settimeout(10)
raw.connect(("127.0.0.1", tport))
s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
s.sendall(b"SUBSCRIBE slow\r\n")
buf = b""
while not buf.endswith(b":1\r\n"):
    buf += s.recv(100)
p = socket.create_connection(("127.0.0.1", port), timeout=10)

def call(cmd):
    p.sendall(cmd)
    time.sleep(0.3)
    return p.recv(1 << 20).decode(errors="replace")

big = b"x" * (1 << 20)

def publish(n):
    for _ in range(n):
        p.sendall(b"*3\r\n$7\r\nPUBLISH\r\n$4\r\nslow\r\n$%d\r\n%s\r\n" % (len(big), big))
    got = b""
    while got.count(b"\r\n") < n:
        got += p.recv(4096)

publish(8)
time.sleep(0.3)
lst = call(b"CLIENT LIST\r\n")
m = re.search(r"laddr=127\.0\.0\.1:%d .*? omem=(\d+)" % tport, lst)
omem = int(m.group(1)) if m else -1
print("ok omem" if omem > 6 * (1 << 20) else "FAIL omem: %d after 8 MiB queued" % omem)
publish(40)
time.sleep(0.5)
info = call(b"INFO stats\r\n")
m = re.search(r"client_output_buffer_limit_disconnections:(\d+)", info)
lst = call(b"CLIENT LIST\r\n")
gone = ("laddr=127.0.0.1:%d " % tport) not in lst
print("ok dropped" if m and int(m.group(1)) >= 1 and gone else
      "FAIL dropped: limit disconnections %s, still listed %s" % (m and m.group(1), not gone))
EOF
for t in omem dropped; do
    check "slow-subscriber-$t" "$(grep -v '^ok' "$dir/slow.out" | head -3 | cut -c1-300)" \
        grep -qx "ok $t" "$dir/slow.out"
done

# SIGTERM with TLS subscribers connected: exit 0, promptly, after a subscriber that had 6 MiB
# queued (in the bufferevent and behind it) received all of it, then a clean TLS close.
for i in 1 2 3; do
    timeout 20 redis-cli --tls --cacert "$dir/ca.crt" -p "$tport" SUBSCRIBE "s$i" >/dev/null 2>&1 &
    pids+=($!)
done
for _ in $(seq 50); do
    subs=$(timeout 5 redis-cli -p "$port" CLIENT LIST 2>&1 | grep -c "laddr=127.0.0.1:$tport .*sub=1")
    [ "$subs" = 3 ] && break
    sleep 0.1
done
check tls-subscribers-listed "CLIENT LIST shows $subs TLS subscribers, expected 3" test "$subs" = 3
python3 - "$port" "$tport" "$dir" "$daemon" >"$dir/drain.out" 2>&1 <<'EOF'
import os, signal, socket, ssl, sys, time
port, tport, d, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
ctx = ssl.create_default_context(cafile=d + "/ca.crt")
raw = socket.socket()
raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
raw.settimeout(10)
raw.connect(("127.0.0.1", tport))
s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
s.sendall(b"SUBSCRIBE drain\r\n")
buf = b""
while not buf.endswith(b":1\r\n"):
    buf += s.recv(100)
p = socket.create_connection(("127.0.0.1", port), timeout=10)
big = b"d" * (1 << 20)
for _ in range(6):
    p.sendall(b"*3\r\n$7\r\nPUBLISH\r\n$5\r\ndrain\r\n$%d\r\n%s\r\n" % (len(big), big))
got = b""
while got.count(b"\r\n") < 6:
    got += p.recv(4096)
os.kill(pid, signal.SIGTERM)
frame = b"*3\r\n$7\r\nmessage\r\n$5\r\ndrain\r\n$%d\r\n%s\r\n" % (len(big), big)
want = frame * 6
data = b""
try:
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        data += chunk
except (ssl.SSLError, OSError) as e:
    print("FAIL drain: %s after %d of %d bytes" % (e, len(data), len(want)))
    sys.exit(0)
print("ok drain" if data == want else "FAIL drain: %d of %d bytes" % (len(data), len(want)))
EOF
check sigterm-drains-tls-output "$(cut -c1-300 "$dir/drain.out")" grep -qx "ok drain" "$dir/drain.out"
wait_exit "$daemon" 50
check sigterm-exit-0 "exit status $status with TLS subscribers connected" test "$status" = 0

# --- auth_clients = yes (the default) -----------------------------------------------------
port=$(free_port)
tport=$(free_port)
write_conf "$dir/yes.conf" "$port" "$tport" yes "bind = 127.0.0.1"
start_daemon "$dir/yes.conf" "$port"
out=$(tcli "$tport" PING)
check yes-refuses-without-cert "PING without a client certificate said '$out'" \
    test "$out" != PONG
out=$(tcli "$tport" "${CLIENT_CERT[@]}" PING)
check yes-accepts-cert "PING with the client certificate said '$out'" test "$out" = PONG
for _ in $(seq 20); do
    grep -q 'TLS handshake failed: .*certificate' "$dir/daemon.log" && break
    sleep 0.1
done
check handshake-failure-logged "no handshake failure with OpenSSL's reason in the log" \
    grep -q 'TLS handshake failed: .*certificate' "$dir/daemon.log"
out=$(timeout 5 redis-cli -p "$port" PING 2>&1)
check plain-port-unaffected "plain PING said '$out'" test "$out" = PONG
kill -TERM "$daemon"
wait_exit "$daemon" 50

# --- protected mode over TLS: a client that is not 127.0.0.1 gets -DENIED after the handshake.
# Redis's rule counts only 127.0.0.1 and ::1 as local, so a client bound to 127.0.0.2 is
# refused while every byte stays on loopback.
port=$(free_port)
tport=$(free_port)
write_conf "$dir/prot.conf" "$port" "$tport" no "bind = 127.0.0.1"
start_daemon "$dir/prot.conf" "$port"
out=$(timeout 10 python3 - "$tport" "$dir/ca.crt" <<'EOF2' 2>&1
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
raw = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5,
                               source_address=("127.0.0.2", 0))
s = ctx.wrap_socket(raw)
s.sendall(b"PING\r\n")
data = b""
try:
    while True:
        d = s.recv(4096)
        if not d:
            break
        data += d
except (OSError, ssl.SSLError):
    pass
print(data.decode(errors="replace").strip())
EOF2
)
check protected-mode "a TLS client from 127.0.0.2 got '$out'" \
    sh -c 'printf "%s\n" "$1" | grep -q "^-DENIED"' _ "$out"
out=$(tcli "$tport" PING)
check protected-mode-loopback "a TLS client from 127.0.0.1 got '$out'" test "$out" = PONG
kill -TERM "$daemon"
wait_exit "$daemon" 50

# --- maxclients also counts TLS clients ---------------------------------------------------
# With the one allowed connection held by a plain subscriber, a TLS client is closed before
# any handshake, as Redis does on its TLS port (it cannot be told why), and counted.
port=$(free_port)
tport=$(free_port)
write_conf "$dir/max.conf" "$port" "$tport" no "bind = 127.0.0.1" "maxclients = 1"
start_daemon "$dir/max.conf" "$port"
timeout 20 redis-cli -p "$port" SUBSCRIBE hold >"$dir/hold.out" 2>&1 &
holder=$!
pids+=("$holder")
for _ in $(seq 50); do
    grep -q hold "$dir/hold.out" 2>/dev/null && break
    sleep 0.1
done
out=$(tcli "$tport" PING | tr '\n' ' ')
check maxclients-tls "a TLS client over maxclients got '$out'" \
    sh -c 'case "$1" in *PONG*) exit 1 ;; esac' _ "$out"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
for _ in $(seq 50); do
    out=$(tcli "$tport" PING | head -1)
    [ "$out" = PONG ] && break
    sleep 0.1
done
check maxclients-tls-frees "a TLS client after the subscriber left got '$out'" test "$out" = PONG
out=$(tcli "$tport" INFO stats | tr -d '\r' | sed -n 's/^rejected_connections://p')
# At least the refusal above; retries racing the holder's close may add more.
check maxclients-tls-counted "rejected_connections is '$out'" test "${out:-0}" -ge 1
kill -TERM "$daemon"
wait_exit "$daemon" 50

# --- a handshake that never finishes -------------------------------------------------------
# A connection to the TLS port that sends nothing is kept while handshake_timeout_ms has not
# passed, and closed once it has (cron looks once a second), here after a SIGHUP lowers it; a
# client whose handshake is done may idle past it. A log of its own keeps the reload lines
# of the next section countable.
port=$(free_port)
tport=$(free_port)
write_conf "$dir/hs.conf" "$port" "$tport" no "bind = 127.0.0.1"
sed -i "s#^target = .*#target = $dir/hs.log#" "$dir/hs.conf"
echo "handshake_timeout_ms = 60000" >>"$dir/hs.conf"
start_daemon "$dir/hs.conf" "$port"
timeout 10 redis-cli --tls --cacert "$dir/ca.crt" -p "$tport" SUBSCRIBE hs >"$dir/hs.out" 2>&1 &
hs_sub=$!
pids+=("$hs_sub")
exec 7<>"/dev/tcp/127.0.0.1/$tport"
timeout 1.5 cat <&7 >/dev/null
rc=$?
check handshake-timeout-not-early \
    "a silent connection was closed within 1.5 s of a 60 s deadline (rc $rc)" test $rc = 124
sed -i 's/^handshake_timeout_ms = 60000$/handshake_timeout_ms = 300/' "$dir/hs.conf"
kill -HUP "$daemon"
timeout 5 cat <&7 >/dev/null
rc=$?
exec 7<&-
check handshake-timeout \
    "a silent connection was open 5 s after a reload to a 300 ms deadline (rc $rc)" test $rc = 0
check handshake-timeout-logged "no handshake timeout line in the log" \
    grep -q 'closed: TLS handshake not done within 300 ms' "$dir/hs.log"
out=$(timeout 5 redis-cli -p "$port" PUBLISH hs still-here 2>&1)
check handshake-done-stays "the TLS subscriber was closed too (PUBLISH to it says '$out')" \
    test "$out" = 1
kill "$hs_sub" 2>/dev/null
wait "$hs_sub" 2>/dev/null
kill -TERM "$daemon"
wait_exit "$daemon" 50

# --- SIGHUP reloads the certificate -------------------------------------------------------
# A renewed certificate at the same path is served to new connections after SIGHUP, an open
# TLS subscriber keeps its session and its messages, a SIGHUP with nothing changed keeps the
# context, and a broken file on a later reload leaves the renewed certificate in use.
make_cert renewed "/CN=evbrokerd renewed" "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth" >>"$dir/openssl.log" 2>&1
cp "$dir/server.crt" "$dir/live.crt"
cp "$dir/server.key" "$dir/live.key"
port=$(free_port)
tport=$(free_port)
write_conf "$dir/reload.conf" "$port" "$tport" no "bind = 127.0.0.1"
sed -i -e "s#^cert_file = .*#cert_file = $dir/live.crt#" \
    -e "s#^key_file = .*#key_file = $dir/live.key#" "$dir/reload.conf"
start_daemon "$dir/reload.conf" "$port"
# The subject of the certificate a new TLS connection is shown.
served_subject() {
    s_client </dev/null | openssl x509 -noout -subject 2>/dev/null
}
# Sends SIGHUP and waits (up to 5 s) for the n-th "Configuration reloaded" line; $2 names
# the check that fails when it never comes.
reload_daemon() {
    kill -HUP "$daemon"
    for _ in $(seq 50); do
        [ "$(grep -c 'Configuration reloaded' "$dir/daemon.log")" -ge "$1" ] && break
        sleep 0.1
    done
    check "$2" "no reload line number $1 in the log" \
        test "$(grep -c 'Configuration reloaded' "$dir/daemon.log")" -ge "$1"
}
out=$(served_subject)
check reload-serves-first-cert "subject before reload: '$out'" \
    sh -c 'printf "%s" "$1" | grep -q "CN *= *127.0.0.1"' _ "$out"
timeout 20 redis-cli --tls --cacert "$dir/ca.crt" -p "$tport" SUBSCRIBE keep >"$dir/keep.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
    grep -q keep "$dir/keep.out" 2>/dev/null && break
    sleep 0.1
done
reloads=$(grep -c 'Configuration reloaded' "$dir/daemon.log")
cp "$dir/renewed.crt" "$dir/live.crt"
cp "$dir/renewed.key" "$dir/live.key"
reload_daemon $((reloads + 1)) reload-renewed-done
out=$(served_subject)
check reload-serves-renewed-cert "subject after reload: '$out'" \
    sh -c 'printf "%s" "$1" | grep -q "CN *= *evbrokerd renewed"' _ "$out"
check reload-logged "no reload line: $(grep -i tls "$dir/daemon.log" | tail -1)" \
    grep -q '\[tls\] certificate, key, CAs and settings reloaded' "$dir/daemon.log"
out=$(timeout 5 redis-cli -p "$port" PUBLISH keep after-reload)
for _ in $(seq 50); do
    grep -q after-reload "$dir/keep.out" && break
    sleep 0.1
done
check reload-keeps-open-sessions "PUBLISH said '$out'; the TLS subscriber got: $(tail -3 \
    "$dir/keep.out" | tr '\n' ' ')" sh -c '[ "$1" = 1 ] && grep -q after-reload "$2"' _ "$out" \
    "$dir/keep.out"
# A SIGHUP with nothing TLS changed (log rotation sends one) keeps the context and its
# session cache: no second "reloaded" line.
reload_daemon $((reloads + 2)) reload-unchanged-done
n=$(grep -c '\[tls\] certificate, key, CAs and settings reloaded' "$dir/daemon.log")
check reload-unchanged-keeps-context "TLS context rebuilt $n times after one change" test "$n" = 1
echo "not a certificate" >"$dir/live.crt"
reload_daemon $((reloads + 3)) reload-broken-done
check reload-bad-cert-logged "no failure line: $(grep -i tls "$dir/daemon.log" | tail -1)" \
    grep -q '\[tls\] reload failed; new TLS connections keep the previous' "$dir/daemon.log"
out=$(served_subject)
check reload-bad-cert-keeps-renewed "subject after a failed reload: '$out'" \
    sh -c 'printf "%s" "$1" | grep -q "CN *= *evbrokerd renewed"' _ "$out"
out=$(tcli "$tport" PING)
check reload-bad-cert-still-serves "TLS PING after a failed reload said '$out'" test "$out" = PONG
kill -TERM "$daemon"
wait_exit "$daemon" 50

# --- startup errors -----------------------------------------------------------------------
port=$(free_port)
tport=$(free_port)
write_conf "$dir/bad.conf" "$port" "$tport" optional "bind = 127.0.0.1"
sed -i "s#^cert_file = .*#cert_file = $dir/missing.crt#" "$dir/bad.conf"
out=$(timeout 10 "$EVBROKERD" -c "$dir/bad.conf" 2>&1)
rc=$?
check bad-cert-path-exits-69 "exit status $rc" test "$rc" = 69
check bad-cert-path-named "no line naming the file: $(grep -i tls "$dir/daemon.log" | tail -1)" \
    grep -q "cert_file $dir/missing.crt: .*No such file" "$dir/daemon.log"
cp "$dir/client.key" "$dir/other.key"
sed -i -e "s#^cert_file = .*#cert_file = $dir/server.crt#" \
    -e "s#^key_file = .*#key_file = $dir/other.key#" "$dir/bad.conf"
timeout 10 "$EVBROKERD" -c "$dir/bad.conf" >/dev/null 2>&1
rc=$?
check key-mismatch-exits-69 "exit status $rc with a key of another certificate" test "$rc" = 69
check key-mismatch-named "no line naming the key: $(grep -i tls "$dir/daemon.log" | tail -1)" \
    grep -q "key_file $dir/other.key: .*mismatch" "$dir/daemon.log"
printf '[server]\nport = %s\n[tls]\nport = %s\nca_cert_file = %s\n' "$port" "$tport" \
    "$dir/ca.crt" >"$dir/nocert.conf"
out=$(timeout 10 "$EVBROKERD" -c "$dir/nocert.conf" 2>&1)
rc=$?
check missing-cert-exits-78 "exit status $rc: $out" \
    sh -c '[ "$1" = 78 ] && printf "%s" "$2" | grep -q "nocert.conf:4: \[tls\] port: .*cert_file"' \
    _ "$rc" "$out"

[ "$failures" -eq 0 ]
