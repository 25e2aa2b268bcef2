/**
 * `npm run bench:fanout [-- --clients 1000 --messages 200 --size 64 --rounds 3]`: broadcast fan-out, in messages
 * delivered per second to the members of one room, for two set-ups measured in the same run:
 *
 * - `1 instance, in-process`: one Nest app (bench/fanout-instance.ts) holding every client;
 * - `2 instances, Redis`: two Nest apps in two processes sharing the room through a real redis-server (started here
 *   on 127.0.0.1 at a free port with no persistence, stopped at the end), half the clients on each;
 * - `2 instances, Redis, presence tracked`: the same with `trackPresence()` on both (each join is also announced to
 *   the other instance; no presence events, which would mix with the counted messages);
 * - `2 instances, Redis Cluster (sharded)`: the same two instances on a three-master Redis Cluster started here
 *   (bench/redis-cluster.ts), through a `redis+cluster://` URL: sharded pub/sub.
 *
 * Clients connected and joined per second (each opens its connection and joins the room, 100 at a time, until each
 * has its reply) are reported too: the cost of presence tracking on joins shows there.
 *
 * Each round starts the instances fresh, opens the clients (raw sockets from bench/wire.ts, which count frames
 * without copying payloads), has each join the room, then one more client (not in the room, on the first instance)
 * sends `messages` fan-out requests at once. The clock runs from the first request to the last frame received by
 * the last member; every member must get every message exactly once, or the round fails. The order of the set-ups
 * alternates between rounds. Figures are medians over the rounds, with the range; the ratio is computed per round.
 * The machine is shared (instances, Redis and the clients compete for its cores): compare ratios, not absolutes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startRedisCluster } from './redis-cluster.js';
import { FrameCounter, OP_TEXT, buildFrameBlock, handshakeRequest, openSocket, type ClientSocket } from './wire.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const INSTANCE = path.join(HERE, 'fanout-instance.js');
const ROOM = 'bench';
/** Bound on the measurement of one round. */
const ROUND_TIMEOUT_MS = 180_000;
/** Connections opened at once. */
const CONNECT_BATCH = 100;

interface Options {
  readonly clients: number;
  readonly messages: number;
  readonly size: number;
  readonly rounds: number;
}

interface SetUp {
  readonly name: string;
  readonly instances: number;
  readonly redis: 'none' | 'single' | 'cluster';
  readonly presence?: boolean;
}

const SET_UPS: readonly SetUp[] = [
  { name: '1 instance, in-process', instances: 1, redis: 'none' },
  { name: '2 instances, Redis', instances: 2, redis: 'single' },
  { name: '2 instances, Redis, presence tracked', instances: 2, redis: 'single', presence: true },
  { name: '2 instances, Redis Cluster (sharded)', instances: 2, redis: 'cluster' },
];

function parseOptions(argv: readonly string[]): Options {
  const value = (name: string, fallback: number): number => {
    const at = argv.indexOf(`--${name}`);
    const raw = at >= 0 ? argv[at + 1] : process.env[`npm_config_${name}`];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer; got ${raw}`);
    return n;
  };
  return { clients: value('clients', 1000), messages: value('messages', 200), size: value('size', 64), rounds: value('rounds', 3) };
}

/** A child process that prints one JSON line when ready. */
interface Child {
  readonly process: ChildProcess;
  readonly port: number;
}

async function startInstance(redisUrl: string | null, presence = false): Promise<Child> {
  const child = spawn(process.execPath, [INSTANCE], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, WEBSOCKETS_REDIS_URL: redisUrl ?? '', BENCH_PRESENCE: presence ? '1' : '', NODE_NO_WARNINGS: '1' },
  });
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    lines.on('line', (line) => {
      if (!line.startsWith('{')) return;
      const parsed = JSON.parse(line) as { ready?: boolean; port?: number };
      if (parsed.ready === true && parsed.port !== undefined) resolve(parsed.port);
    });
    child.once('exit', (code) => reject(new Error(`fan-out instance exited with ${code} before it was ready`)));
  });
  return { process: child, port };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** A redis-server on 127.0.0.1 at a free port, without persistence. */
async function startRedis(): Promise<{ url: string; version: string; process: ChildProcess }> {
  const port = await new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port: free } = server.address() as net.AddressInfo;
      server.close(() => resolve(free));
    });
  });
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  child.once('error', (error) => {
    process.stderr.write(`cannot start redis-server (apt-get install redis-server): ${error.message}\n`);
    process.exit(1);
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const pong = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      socket.once('error', () => resolve(false));
      socket.once('data', (data) => {
        socket.destroy();
        resolve(data.toString() === '+PONG\r\n');
      });
      socket.once('connect', () => socket.write('PING\r\n'));
    });
    if (pong) break;
    if (Date.now() > deadline) throw new Error(`redis-server did not start:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const version = /version=([^\s,]+)/.exec(output)?.[1] ?? /v=([^\s,]+)/.exec(output)?.[1] ?? 'unknown';
  return { url: `redis://127.0.0.1:${port}`, version, process: child };
}

/** One masked client text frame holding the JSON message. */
function clientFrame(message: unknown): Buffer {
  return buildFrameBlock(OP_TEXT, Buffer.from(JSON.stringify(message)), 1).block;
}

interface Member {
  readonly socket: ClientSocket;
  readonly counter: FrameCounter;
}

/** Opens a client, joins the room and waits for the reply; its counter then counts the fan-out messages only. */
async function member(port: number, onMessages: (n: number) => void): Promise<Member> {
  const socket = await openSocket(port, handshakeRequest(port, '/ws', null));
  const counter = new FrameCounter();
  let joined: () => void = () => undefined;
  const reply = new Promise<void>((resolve) => (joined = resolve));
  let waitingForReply = true;
  const take = (chunk: Buffer): void => {
    const n = counter.push(chunk);
    if (n === 0) return;
    if (waitingForReply) {
      waitingForReply = false;
      counter.messages -= 1;
      joined();
      if (n > 1) onMessages(n - 1);
      return;
    }
    onMessages(n);
  };
  socket.socket.on('data', take);
  socket.socket.resume();
  if (socket.head.length > 0) take(socket.head);
  socket.socket.write(clientFrame({ event: 'join', data: ROOM }));
  await reply;
  return { socket, counter };
}

interface RoundResult {
  readonly setUp: string;
  readonly seconds: number;
  readonly deliveredPerSecond: number;
  readonly publishedPerSecond: number;
  readonly joinsPerSecond: number;
}

async function round(setUp: SetUp, options: Options, urls: { readonly single: string; readonly cluster: string }): Promise<RoundResult> {
  const url = setUp.redis === 'none' ? null : urls[setUp.redis];
  const instances = await Promise.all(Array.from({ length: setUp.instances }, () => startInstance(url, setUp.presence === true)));
  const members: Member[] = [];
  try {
    const expected = options.clients * options.messages;
    let delivered = 0;
    let done: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const onMessages = (n: number): void => {
      delivered += n;
      if (delivered >= expected) done();
    };
    const joinStarted = process.hrtime.bigint();
    for (let opened = 0; opened < options.clients; opened += CONNECT_BATCH) {
      const batch = Math.min(CONNECT_BATCH, options.clients - opened);
      members.push(
        ...(await Promise.all(Array.from({ length: batch }, (_, i) => member(instances[(opened + i) % instances.length]!.port, onMessages)))),
      );
    }
    const joinsPerSecond = options.clients / (Number(process.hrtime.bigint() - joinStarted) / 1e9);
    const publisher = await openSocket(instances[0]!.port, handshakeRequest(instances[0]!.port, '/ws', null));
    publisher.socket.resume();
    const text = 'x'.repeat(options.size);
    const frame = clientFrame({ event: 'fanout', data: { room: ROOM, text } });
    const requests = Buffer.concat(Array.from({ length: options.messages }, () => frame));
    const started = process.hrtime.bigint();
    publisher.socket.write(requests);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      finished,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${setUp.name}: ${delivered} of ${expected} messages within ${ROUND_TIMEOUT_MS} ms`)), ROUND_TIMEOUT_MS);
      }),
    ]).finally(() => clearTimeout(timer));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    // Exactly once: a late duplicate would show after a short grace period.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const wrong = members.filter((m) => m.counter.messages !== options.messages);
    if (wrong.length > 0) {
      throw new Error(`${wrong.length} member(s) got a message count other than ${options.messages} (e.g. ${wrong[0]!.counter.messages})`);
    }
    publisher.socket.destroy();
    return { setUp: setUp.name, seconds, deliveredPerSecond: expected / seconds, publishedPerSecond: options.messages / seconds, joinsPerSecond };
  } finally {
    for (const m of members) m.socket.socket.destroy();
    await Promise.all(instances.map((instance) => stop(instance.process)));
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function format(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const redis = await startRedis();
  const cluster = await startRedisCluster().catch(async (error: unknown) => {
    await stop(redis.process);
    throw error;
  });
  const results: RoundResult[][] = [];
  try {
    for (let r = 0; r < options.rounds; r++) {
      const order = r % 2 === 0 ? SET_UPS : [...SET_UPS].reverse();
      const roundResults: RoundResult[] = [];
      for (const setUp of order) {
        const result = await round(setUp, options, { single: redis.url, cluster: cluster.url });
        process.stderr.write(`round ${r + 1}/${options.rounds} ${setUp.name}: ${format(result.deliveredPerSecond)} messages/s delivered\n`);
        roundResults.push(result);
      }
      results.push(roundResults);
    }
  } finally {
    await stop(redis.process);
    await cluster.stop();
  }

  const cpu = os.cpus();
  const lines = [
    `Fan-out: ${options.messages} messages of ${options.size} characters to a room of ${options.clients} clients, ` +
      `${options.rounds} round(s); median (min-max)`,
    `Machine: ${cpu.length} x ${cpu[0]?.model ?? 'unknown CPU'}, Node ${process.version}, redis-server ${redis.version}`,
    '',
    '| set-up | messages delivered/s | broadcasts/s | ratio to 1 instance | clients connected and joined/s |',
    '|---|---:|---:|---:|---:|',
  ];
  for (const setUp of SET_UPS) {
    const mine = results.map((rs) => rs.find((x) => x.setUp === setUp.name)!);
    const delivered = mine.map((x) => x.deliveredPerSecond);
    const ratios = results.map((rs) => rs.find((x) => x.setUp === setUp.name)!.deliveredPerSecond / rs.find((x) => x.setUp === SET_UPS[0]!.name)!.deliveredPerSecond);
    lines.push(
      `| ${setUp.name} | ${format(median(delivered))} (${format(Math.min(...delivered))}-${format(Math.max(...delivered))}) | ` +
        `${format(median(mine.map((x) => x.publishedPerSecond)))} | ${median(ratios).toFixed(2)} | ${format(median(mine.map((x) => x.joinsPerSecond)))} |`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
