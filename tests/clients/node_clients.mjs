// Two widely used Node.js Redis clients, ioredis and node-redis (4 over RESP2, 5 over RESP3),
// against a server on 127.0.0.1:PORT (argv[2]): connecting (each sends its own setup commands),
// commands, subscriptions of every kind, binary payloads and errors, as an application would.
// Prints "ok clients/NAME" or "FAIL clients/NAME: why" per check (tests/integration/clients.sh);
// exits non-zero when a check fails.
import Redis from "ioredis";
import { createClient } from "redis";
import { createClient as createResp3Client } from "redis5";

const port = Number(process.argv[2]);
let failures = 0;

function check(name, ok, why) {
  if (ok) {
    console.log(`ok clients/${name}`);
  } else {
    console.log(`FAIL clients/${name}: ${why}`);
    failures++;
  }
}

// Runs one check on a promise: its value must satisfy test; a rejection or a timeout fails it.
async function expect(name, promise, test, ms = 3000) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
  });
  try {
    const value = await Promise.race([promise, timeout]);
    check(name, test(value), `got ${JSON.stringify(value)}`);
  } catch (err) {
    check(name, false, err.message);
  } finally {
    clearTimeout(timer);
  }
}

// Resolves once list holds n entries (messages arrive asynchronously), or after ms.
function arrived(list, n, ms = 3000) {
  return new Promise((resolve) => {
    const start = Date.now();
    const poll = () => {
      if (list.length >= n || Date.now() - start > ms) resolve(list);
      else setTimeout(poll, 5);
    };
    poll();
  });
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
// Every byte value, twice: binary payloads must cross unchanged.
const binary = Buffer.from([...Array(512).keys()].map((i) => i % 256));

async function ioredisChecks() {
  const opts = { host: "127.0.0.1", port, maxRetriesPerRequest: 1, retryStrategy: () => null };
  const pub = new Redis({ ...opts, connectionName: "io-pub" });
  const sub = new Redis(opts);
  await expect("ioredis/ready", pub.ping(), (v) => v === "PONG");
  await expect("ioredis/connection-name", pub.client("GETNAME"), (v) => v === "io-pub");
  await expect("ioredis/echo", pub.echo("héllo"), (v) => v === "héllo");

  const got = [];
  sub.on("message", (channel, message) => got.push(["message", channel, message]));
  sub.on("pmessage", (pattern, channel, message) =>
    got.push(["pmessage", pattern, channel, message]),
  );
  sub.on("smessage", (channel, message) => got.push(["smessage", channel, message]));
  const bins = [];
  sub.on("messageBuffer", (channel, message) => {
    if (channel.toString() === "io.bin") bins.push(message);
  });
  await expect("ioredis/subscribe", sub.subscribe("io.a", "io.bin"), (v) => v === 2);
  await expect("ioredis/psubscribe", sub.psubscribe("io.p.*"), (v) => v === 3);
  await expect("ioredis/ssubscribe", sub.ssubscribe("io.s"), (v) => v === 1);
  await expect("ioredis/publish", pub.publish("io.a", "one"), (v) => v === 1);
  await expect("ioredis/publish-pattern", pub.publish("io.p.x", "two"), (v) => v === 1);
  await expect("ioredis/spublish", pub.spublish("io.s", "three"), (v) => v === 1);
  await expect("ioredis/publish-binary", pub.publish("io.bin", binary), (v) => v === 1);
  await arrived(got, 4);
  check(
    "ioredis/messages",
    same(got, [
      ["message", "io.a", "one"],
      ["pmessage", "io.p.*", "io.p.x", "two"],
      ["smessage", "io.s", "three"],
      ["message", "io.bin", binary.toString()],
    ]),
    `got ${JSON.stringify(got)}`,
  );
  await arrived(bins, 1);
  check(
    "ioredis/binary-payload",
    bins.length === 1 && bins[0].equals(binary),
    `got ${bins.length} buffers`,
  );
  await expect(
    "ioredis/multi-exec",
    pub.multi().publish("io.a", "tx").ping().exec(),
    (v) => same(v, [[null, 1], [null, "PONG"]]),
  );
  await arrived(got, 5);
  check("ioredis/multi-message", same(got[4], ["message", "io.a", "tx"]), `got ${got[4]}`);
  await expect(
    "ioredis/numsub",
    pub.pubsub("NUMSUB", "io.a", "io.none"),
    (v) => same(v, ["io.a", 1, "io.none", 0]),
  );
  await expect("ioredis/numpat", pub.pubsub("NUMPAT"), (v) => v === 1);
  await expect("ioredis/channels", pub.pubsub("CHANNELS", "io.*"), (v) =>
    same([...v].sort(), ["io.a", "io.bin"]),
  );
  await expect(
    "ioredis/unknown-command",
    pub.call("NOSUCH", "x").then(
      () => "no error",
      (err) => err.message,
    ),
    (v) => v.startsWith("ERR unknown command 'NOSUCH', with args beginning with: 'x' "),
  );
  await expect("ioredis/unsubscribe", sub.unsubscribe("io.a", "io.bin"), (v) => v === 1);
  await expect("ioredis/punsubscribe", sub.punsubscribe("io.p.*"), (v) => v === 0);
  await expect("ioredis/sunsubscribe", sub.sunsubscribe("io.s"), (v) => v === 0);
  await expect("ioredis/command-after-unsubscribe", sub.ping(), (v) => v === "PONG");
  await expect("ioredis/quit", Promise.all([pub.quit(), sub.quit()]), (v) => same(v, ["OK", "OK"]));
}

async function nodeRedisChecks() {
  const client = createClient({ socket: { host: "127.0.0.1", port, reconnectStrategy: false } });
  client.on("error", () => {}); // reported through the checks
  const sub = client.duplicate();
  sub.on("error", () => {});
  await expect("node-redis/connect", Promise.all([client.connect(), sub.connect()]), () => true);
  await expect("node-redis/ping", client.ping(), (v) => v === "PONG");
  await expect("node-redis/setname", client.clientSetName("nr-pub"), (v) => v === "OK");
  await expect("node-redis/getname", client.clientGetName(), (v) => v === "nr-pub");

  const got = [];
  await expect(
    "node-redis/subscribe",
    sub.subscribe("nr.a", (message, channel) => got.push(["message", channel, message])),
    () => true,
  );
  await expect(
    "node-redis/psubscribe",
    sub.pSubscribe("nr.p.*", (message, channel) => got.push(["pmessage", channel, message])),
    () => true,
  );
  await expect(
    "node-redis/ssubscribe",
    sub.sSubscribe("nr.s", (message, channel) => got.push(["smessage", channel, message])),
    () => true,
  );
  const bins = [];
  await expect(
    "node-redis/subscribe-buffers",
    sub.subscribe("nr.bin", (message) => bins.push(message), true),
    () => true,
  );
  await expect("node-redis/publish", client.publish("nr.a", "one"), (v) => v === 1);
  await expect("node-redis/publish-pattern", client.publish("nr.p.x", "two"), (v) => v === 1);
  await expect("node-redis/spublish", client.sPublish("nr.s", "three"), (v) => v === 1);
  await expect("node-redis/publish-binary", client.publish("nr.bin", binary), (v) => v === 1);
  await arrived(got, 3);
  check(
    "node-redis/messages",
    same(got, [
      ["message", "nr.a", "one"],
      ["pmessage", "nr.p.x", "two"],
      ["smessage", "nr.s", "three"],
    ]),
    `got ${JSON.stringify(got)}`,
  );
  await arrived(bins, 1);
  check(
    "node-redis/binary-payload",
    bins.length === 1 && bins[0].equals(binary),
    `got ${bins.length} buffers`,
  );
  await expect(
    "node-redis/multi-exec",
    client.multi().publish("nr.a", "tx").ping().exec(),
    (v) => same(v, [1, "PONG"]),
  );
  await arrived(got, 4);
  check("node-redis/multi-message", same(got[3], ["message", "nr.a", "tx"]), `got ${got[3]}`);
  await expect(
    "node-redis/numsub",
    client.pubSubNumSub(["nr.a", "nr.none"]),
    (v) => v["nr.a"] === 1 && v["nr.none"] === 0,
  );
  await expect("node-redis/numpat", client.pubSubNumPat(), (v) => v === 1);
  await expect("node-redis/shardchannels", client.pubSubShardChannels(), (v) => same(v, ["nr.s"]));
  await expect(
    "node-redis/wrong-arity",
    client.sendCommand(["PUBLISH", "nr.a"]).then(
      () => "no error",
      (err) => err.message,
    ),
    (v) => v === "ERR wrong number of arguments for 'publish' command",
  );
  await expect("node-redis/unsubscribe", sub.unsubscribe(["nr.a", "nr.bin"]), () => true);
  await expect("node-redis/punsubscribe", sub.pUnsubscribe("nr.p.*"), () => true);
  await expect("node-redis/sunsubscribe", sub.sUnsubscribe("nr.s"), () => true);
  await expect("node-redis/numsub-after", client.pubSubNumSub(["nr.a"]), (v) => v["nr.a"] === 0);
  await expect("node-redis/quit", Promise.all([client.quit(), sub.quit()]), () => true);
}

// node-redis 5 over RESP3 (HELLO 3), where one connection subscribes and still sends commands:
// messages arrive as pushes between replies, including those it publishes to itself.
async function resp3Checks() {
  const c = createResp3Client({
    socket: { host: "127.0.0.1", port, reconnectStrategy: false },
    RESP: 3,
  });
  c.on("error", () => {});
  await expect("node-redis-resp3/connect", c.connect(), () => true);
  const got = [];
  await expect(
    "node-redis-resp3/subscribe",
    c.subscribe("r3.a", (message, channel) => got.push(["message", channel, message])),
    () => true,
  );
  await expect(
    "node-redis-resp3/psubscribe",
    c.pSubscribe("r3.p.*", (message, channel) => got.push(["pmessage", channel, message])),
    () => true,
  );
  await expect(
    "node-redis-resp3/ssubscribe",
    c.sSubscribe("r3.s", (message, channel) => got.push(["smessage", channel, message])),
    () => true,
  );
  await expect("node-redis-resp3/publish-to-self", c.publish("r3.a", "one"), (v) => v === 1);
  await expect("node-redis-resp3/publish-pattern", c.publish("r3.p.x", "two"), (v) => v === 1);
  await expect("node-redis-resp3/spublish", c.sPublish("r3.s", "three"), (v) => v === 1);
  await expect("node-redis-resp3/ping-while-subscribed", c.ping(), (v) => v === "PONG");
  await arrived(got, 3);
  check(
    "node-redis-resp3/messages",
    same(got, [
      ["message", "r3.a", "one"],
      ["pmessage", "r3.p.x", "two"],
      ["smessage", "r3.s", "three"],
    ]),
    `got ${JSON.stringify(got)}`,
  );
  await expect("node-redis-resp3/numsub", c.pubSubNumSub(["r3.a"]), (v) => v["r3.a"] === 1);
  await expect(
    "node-redis-resp3/unsubscribe",
    Promise.all([c.unsubscribe("r3.a"), c.pUnsubscribe("r3.p.*"), c.sUnsubscribe("r3.s")]),
    () => true,
  );
  await expect("node-redis-resp3/numsub-after", c.pubSubNumSub(["r3.a"]), (v) => v["r3.a"] === 0);
  await expect("node-redis-resp3/quit", c.quit(), () => true);
}

try {
  await ioredisChecks();
  await nodeRedisChecks();
  await resp3Checks();
} catch (err) {
  check("run", false, err.stack);
}
process.exit(failures ? 1 : 0);
