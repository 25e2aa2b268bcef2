/**
 * `npm run bench:sessions [-- --clients 500 --messages 200 --size 64 --rounds 3 --detached 10000]`: what resumable
 * sessions cost, measured in one run:
 *
 * - fan-out with sessions off and on: one Nest app (bench/fanout-instance.ts, `WEBSOCKETS_SESSIONS` off or on) and
 *   a room of `clients` raw-socket members; with sessions on, each member asks for a session in its handshake, skips
 *   the `$session` frame and acknowledges every 64 messages, as the SDK does. Messages delivered per second from the
 *   first request to the last frame, every member checked for exactly `messages` messages; the order of the two
 *   set-ups alternates between rounds, the ratio is computed per round (the machine is shared: compare ratios);
 * - a detached session in memory: `detached` sessions made and detached into a room in this process (with
 *   `--expose-gc`), the heap before and after, without missed messages and with 10 missed broadcasts of `size`
 *   bytes (whose frame all sessions share), and the time to make and detach one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SessionStore } from '../lib/broadcast/session-store.js';
import { PreparedMessage } from '../lib/protocol/prepared-message.js';
import { AUTH_MARKER_SUBPROTOCOL } from '../lib/protocol/bearer-subprotocol.js';
import { ackFrame, sessionSubprotocol } from '../lib/protocol/session-subprotocol.js';
import { FrameCounter, OP_TEXT, buildFrameBlock, handshakeRequest, openSocket, type ClientSocket } from './wire.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const INSTANCE = path.join(HERE, 'fanout-instance.js');
const ROOM = 'bench';
const ROUND_TIMEOUT_MS = 180_000;
const CONNECT_BATCH = 100;
const ACK_EVERY = 64;
const DOLLAR = 0x24;
const QUOTE = 0x22;
const LETTER_A = 0x61;

interface Options {
  readonly clients: number;
  readonly messages: number;
  readonly size: number;
  readonly rounds: number;
  readonly detached: number;
}

function parseOptions(argv: readonly string[]): Options {
  const value = (name: string, fallback: number): number => {
    const at = argv.indexOf(`--${name}`);
    const raw = at >= 0 ? argv[at + 1] : process.env[`npm_config_${name}`];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer; got ${raw}`);
    return n;
  };
  return {
    clients: value('clients', 500),
    messages: value('messages', 200),
    size: value('size', 64),
    rounds: value('rounds', 3),
    detached: value('detached', 10_000),
  };
}

async function startInstance(sessions: boolean): Promise<{ readonly process: ChildProcess; readonly port: number }> {
  const profile = process.env.BENCH_CPU_PROF_DIR ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF_DIR, '--cpu-prof-name', `sessions-${sessions ? 'on' : 'off'}.cpuprofile`] : [];
  const child = spawn(process.execPath, [...profile, INSTANCE], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, WEBSOCKETS_REDIS_URL: '', WEBSOCKETS_SESSIONS: sessions ? 'on' : 'off', NODE_NO_WARNINGS: '1' },
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

function clientFrame(text: string): Buffer {
  return buildFrameBlock(OP_TEXT, Buffer.from(text), 1).block;
}

/** The handshake of a member that asks for a session (or not). */
function request(port: number, sessions: boolean): Buffer {
  const plain = handshakeRequest(port, '/ws', null).toString('latin1');
  if (!sessions) return Buffer.from(plain, 'latin1');
  const header = `Sec-WebSocket-Protocol: ${AUTH_MARKER_SUBPROTOCOL}, ${sessionSubprotocol(null)}\r\n`;
  return Buffer.from(`${plain.slice(0, -2)}${header}\r\n`, 'latin1');
}

interface Member {
  readonly socket: ClientSocket;
  /** Fan-out messages received. */
  fanout: number;
}

/**
 * Opens a member, joins the room and waits for the reply. With a session, the first message is the `$session` frame
 * and every 64th message received is acknowledged (the count includes the join reply, as the SDK counts).
 */
async function member(port: number, sessions: boolean, onMessages: (n: number) => void): Promise<Member> {
  const socket = await openSocket(port, request(port, sessions));
  const state: Member = { socket, fanout: 0 };
  let preamble = sessions ? 2 : 1;
  let received = 0;
  let acked = 0;
  let joined: () => void = () => undefined;
  const reply = new Promise<void>((resolve) => (joined = resolve));
  // Each message's first bytes tell the session's own frames ($session, $ack) from the others, without allocating;
  // both set-ups read them, so that the clients do the same work per message.
  const counter = new FrameCounter(false, (prefix) => {
    const own = sessions && prefix[10] === DOLLAR && prefix[1] === QUOTE;
    if (own && prefix[11] === LETTER_A) return;
    if (!own && sessions) {
      received++;
      if (received - acked >= ACK_EVERY) {
        acked = received;
        socket.socket.write(clientFrame(ackFrame(received)));
      }
    }
    if (preamble > 0) {
      if (--preamble === 0) joined();
      return;
    }
    state.fanout++;
    onMessages(1);
  }, 16);
  const take = (chunk: Buffer): void => {
    counter.push(chunk);
  };
  socket.socket.on('data', take);
  socket.socket.resume();
  if (socket.head.length > 0) take(socket.head);
  socket.socket.write(clientFrame(JSON.stringify({ event: 'join', data: ROOM })));
  await reply;
  return state;
}

interface RoundResult {
  readonly sessions: boolean;
  readonly deliveredPerSecond: number;
}

async function round(sessions: boolean, options: Options): Promise<RoundResult> {
  const instance = await startInstance(sessions);
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
    for (let opened = 0; opened < options.clients; opened += CONNECT_BATCH) {
      const batch = Math.min(CONNECT_BATCH, options.clients - opened);
      members.push(...(await Promise.all(Array.from({ length: batch }, () => member(instance.port, sessions, onMessages)))));
    }
    const publisher = await openSocket(instance.port, handshakeRequest(instance.port, '/ws', null));
    publisher.socket.resume();
    const frame = clientFrame(JSON.stringify({ event: 'fanout', data: { room: ROOM, text: 'x'.repeat(options.size) } }));
    const requests = Buffer.concat(Array.from({ length: options.messages }, () => frame));
    const started = process.hrtime.bigint();
    publisher.socket.write(requests);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      finished,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`sessions ${sessions}: ${delivered} of ${expected} messages within ${ROUND_TIMEOUT_MS} ms`)), ROUND_TIMEOUT_MS);
      }),
    ]).finally(() => clearTimeout(timer));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    await new Promise((resolve) => setTimeout(resolve, 200));
    const wrong = members.filter((m) => m.fanout !== options.messages);
    if (wrong.length > 0) throw new Error(`${wrong.length} member(s) got a message count other than ${options.messages} (e.g. ${wrong[0]!.fanout})`);
    publisher.socket.destroy();
    return { sessions, deliveredPerSecond: expected / seconds };
  } finally {
    for (const m of members) m.socket.socket.destroy();
    await stop(instance.process);
  }
}

const collect = (globalThis as { gc?: () => void }).gc;

function heapUsed(): number {
  collect?.();
  collect?.();
  return process.memoryUsage().heapUsed;
}

/** Bytes and time per detached session, without and with 10 missed broadcasts. */
function detachedMemory(options: Options): { readonly empty: number; readonly withMissed: number; readonly microseconds: number } {
  if (collect === undefined) throw new Error('run with node --expose-gc (npm run bench:sessions does)');
  const store = new SessionStore({ ttlMs: 3_600_000, maxBufferedBytes: 1_048_576, maxDetached: options.detached });
  const before = heapUsed();
  const started = process.hrtime.bigint();
  for (let i = 0; i < options.detached; i++) {
    const { session } = store.create();
    store.detach(session, [ROOM], { user: `user-${i}` }, { code: 1006, reason: '' });
  }
  const microseconds = Number(process.hrtime.bigint() - started) / 1e3 / options.detached;
  const empty = (heapUsed() - before) / options.detached;
  const text = JSON.stringify({ event: 'n', data: 'x'.repeat(options.size) });
  for (let i = 0; i < 10; i++) store.deliver(ROOM, new PreparedMessage(text));
  const withMissed = (heapUsed() - before) / options.detached;
  if (store.detachedCount !== options.detached) throw new Error('sessions were lost');
  store.endAll();
  return { empty, withMissed, microseconds };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const format = (n: number): string => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const memory = detachedMemory(options);
  const rounds: RoundResult[][] = [];
  for (let r = 0; r < options.rounds; r++) {
    const order = r % 2 === 0 ? [false, true] : [true, false];
    const results: RoundResult[] = [];
    for (const sessions of order) {
      const result = await round(sessions, options);
      process.stderr.write(`round ${r + 1}/${options.rounds} sessions ${sessions ? 'on' : 'off'}: ${format(result.deliveredPerSecond)} messages/s delivered\n`);
      results.push(result);
    }
    rounds.push(results);
  }
  const of = (sessions: boolean): number[] => rounds.map((rs) => rs.find((x) => x.sessions === sessions)!.deliveredPerSecond);
  const ratios = rounds.map((rs) => rs.find((x) => x.sessions)!.deliveredPerSecond / rs.find((x) => !x.sessions)!.deliveredPerSecond);
  const cpu = os.cpus();
  const lines = [
    `Sessions: fan-out of ${options.messages} messages of ${options.size} characters to a room of ${options.clients} clients, ${options.rounds} round(s); median (min-max)`,
    `Machine: ${cpu.length} x ${cpu[0]?.model ?? 'unknown CPU'}, Node ${process.version}`,
    '',
    '| sessions | messages delivered/s | ratio to off |',
    '|---|---:|---:|',
    `| off | ${format(median(of(false)))} (${format(Math.min(...of(false)))}-${format(Math.max(...of(false)))}) | 1.00 |`,
    `| on | ${format(median(of(true)))} (${format(Math.min(...of(true)))}-${format(Math.max(...of(true)))}) | ${median(ratios).toFixed(2)} |`,
    '',
    `Detached sessions (${format(options.detached)}, in one room): ${format(memory.empty)} bytes each in the heap; ` +
      `${format(memory.withMissed)} bytes each with 10 missed broadcasts of ${options.size} characters (frames shared); ` +
      `${memory.microseconds.toFixed(1)} µs to make and detach one.`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
