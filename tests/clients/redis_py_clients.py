"""redis-py (Debian's python3-redis) against a server on 127.0.0.1:PORT (argv[1]), as an
application would use it: commands, a PubSub object with channel and pattern subscriptions,
binary payloads, transactions (pipeline), PUBSUB introspection and errors. Prints "ok clients/NAME" or
"FAIL clients/NAME: why" per check (tests/integration/clients.sh); exits 1 when one fails."""
import sys
import time

import redis

PORT = int(sys.argv[1])
failures = 0
# Every byte value, twice: binary payloads must cross unchanged.
BINARY = bytes(i % 256 for i in range(512))


def check(name, ok, why):
    global failures
    if ok:
        print(f"ok clients/redis-py/{name}")
    else:
        print(f"FAIL clients/redis-py/{name}: {why}")
        failures += 1


def expect(name, call, test):
    """Runs call(); its value must satisfy test. An exception fails the check."""
    try:
        value = call()
    except Exception as err:  # any failure of the call is the check's failure
        check(name, False, f"{type(err).__name__}: {err}")
        return None
    check(name, test(value), f"got {value!r}")
    return value


def messages(pubsub, n, seconds=3.0):
    """The next n messages of a PubSub (confirmations included), or fewer after seconds."""
    got, deadline = [], time.monotonic() + seconds
    while len(got) < n and time.monotonic() < deadline:
        msg = pubsub.get_message(timeout=0.1)
        if msg is not None:
            got.append(msg)
    return got


def error_text(call):
    try:
        call()
    except redis.ResponseError as err:
        return str(err)
    return "no error"


def main():
    r = redis.Redis(host="127.0.0.1", port=PORT, socket_timeout=5)
    expect("ping", r.ping, lambda v: v is True)
    expect("echo", lambda: r.echo("héllo"), lambda v: v == "héllo".encode())
    expect("setname", lambda: r.client_setname("py-pub"), lambda v: v is True)
    expect("getname", r.client_getname, lambda v: v in ("py-pub", b"py-pub"))

    p = r.pubsub()
    p.subscribe("py.a", "py.bin")
    p.psubscribe("py.p.*")
    confirmations = messages(p, 3)
    check(
        "subscribe-confirmations",
        [(m["type"], m["channel"], m["data"]) for m in confirmations]
        == [("subscribe", b"py.a", 1), ("subscribe", b"py.bin", 2), ("psubscribe", b"py.p.*", 3)],
        f"got {confirmations!r}",
    )
    expect("publish", lambda: r.publish("py.a", "one"), lambda v: v == 1)
    expect("publish-pattern", lambda: r.publish("py.p.x", "two"), lambda v: v == 1)
    expect("publish-binary", lambda: r.publish("py.bin", BINARY), lambda v: v == 1)
    got = messages(p, 3)
    check(
        "messages",
        [(m["type"], m["pattern"], m["channel"], m["data"]) for m in got]
        == [
            ("message", None, b"py.a", b"one"),
            ("pmessage", b"py.p.*", b"py.p.x", b"two"),
            ("message", None, b"py.bin", BINARY),
        ],
        f"got {got!r}",
    )
    # pipeline() is a transaction by default: MULTI, the commands, EXEC.
    pipe = r.pipeline()
    pipe.publish("py.a", "tx1").publish("py.p.y", "tx2").ping()
    expect("pipeline-transaction", pipe.execute, lambda v: v == [1, 1, True])
    got = messages(p, 2)
    check(
        "pipeline-transaction-messages",
        [(m["channel"], m["data"]) for m in got] == [(b"py.a", b"tx1"), (b"py.p.y", b"tx2")],
        f"got {got!r}",
    )
    pipe = r.pipeline()
    pipe.publish("py.a", "never").execute_command("NOSUCH")
    expect(
        "pipeline-transaction-error",
        lambda: error_text(pipe.execute),
        lambda v: "unknown command 'NOSUCH'" in v,
    )
    # A pipeline is written whole before any reply is read: 20 MB of replies must not deadlock
    # (reading once paused at 1 MiB of unread replies, and redis-py timed out).
    pipe = r.pipeline(transaction=False)
    for _ in range(20000):
        pipe.echo(b"e" * 1000)
    expect("pipeline-20mb-of-replies", pipe.execute, lambda v: len(v) == 20000 and v[-1] == b"e" * 1000)
    # The doomed transaction published nothing: the next thing the subscriber gets is the pong.
    p.ping()
    pong = messages(p, 1)
    check("ping-while-subscribed", len(pong) == 1 and pong[0]["type"] == "pong", f"got {pong!r}")
    expect(
        "numsub",
        lambda: r.pubsub_numsub("py.a", "py.none"),
        lambda v: v == [(b"py.a", 1), (b"py.none", 0)],
    )
    expect("numpat", r.pubsub_numpat, lambda v: v == 1)
    expect("channels", lambda: sorted(r.pubsub_channels("py.*")), lambda v: v == [b"py.a", b"py.bin"])
    expect(
        "unknown-command",
        lambda: error_text(lambda: r.execute_command("NOSUCH", "x")),
        lambda v: v.startswith("unknown command 'NOSUCH', with args beginning with: 'x' "),
    )
    expect(
        "wrong-arity",
        lambda: error_text(lambda: r.execute_command("PUBLISH", "py.a")),
        lambda v: v == "wrong number of arguments for 'publish' command",
    )
    p.unsubscribe()
    p.punsubscribe()
    gone = messages(p, 3)
    check(
        "unsubscribe-confirmations",
        sorted((m["type"], m["data"]) for m in gone)
        == [("punsubscribe", 0), ("unsubscribe", 1), ("unsubscribe", 2)],
        f"got {gone!r}",
    )
    p.close()
    expect("numsub-after", lambda: r.pubsub_numsub("py.a"), lambda v: v == [(b"py.a", 0)])
    r.close()


try:
    main()
except Exception as err:  # report, never a traceback without a FAIL line
    check("run", False, f"{type(err).__name__}: {err}")
sys.exit(1 if failures else 0)
