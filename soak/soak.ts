/**
 * `npm run soak -- [--minutes M | --seconds S] [--clients N] [--report path]`
 *
 * A server on 127.0.0.1 (connection limits on, short timeouts) serves N well-behaved clients (the `ws` library,
 * half of them with permessage-deflate) that keep exchanging numbered messages, while attackers from other loopback
 * addresses (127.0.0.2-127.0.0.13) hit it in turn: trickled headers, trickled frames, a client that never reads,
 * compression bombs, 2^63-1 length frames, fragments past the limit, frames pipelined with the handshake, resets
 * mid-handshake and mid-frame, silent (half-open) peers, connection floods over the per-address limits.
 *
 * Checks: every well-behaved message came back once and in order; every attack got its documented answer; after
 * warm-up (the first quarter, at least 5 s) the heap measured after gc every second is flat: its growth from the
 * first post-warm-up quarter to the last, and (on runs with a minute or more after warm-up) its least-squares slope,
 * stay under the bounds below. Prints a
 * summary and writes a JSON report (default dist/soak-report.json); exit code 1 when a check fails.
 *
 * Everything runs in one process (server, clients, attackers), so the heap is that of all three.
 */
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { constants, deflateRawSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import WsLibrary from 'ws';
import { WebSocketServer } from '../lib/node/server.js';
import type { WebSocket } from '../lib/node/websocket.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string' },
    seconds: { type: 'string' },
    clients: { type: 'string', default: '20' },
    report: { type: 'string', default: path.join('dist', 'soak-report.json') },
  },
});
const durationMs = values.seconds !== undefined ? Number(values.seconds) * 1000 : Number(values.minutes ?? '1') * 60_000;
if (!Number.isFinite(durationMs) || durationMs < 5000) throw new Error('the soak needs at least 5 seconds (--seconds or --minutes)');
const CLIENTS = Number(values.clients);
/** Messages each good client keeps in flight. */
const WINDOW = 8;
const MAX_MESSAGE_SIZE = 65_536;
/** Post-warm-up heap bounds: growth between the first and last quarter, and the fitted slope per minute. */
const MAX_GROWTH = 4 * 1024 * 1024;
const MAX_SLOPE_PER_MINUTE = 2 * 1024 * 1024;
const MiB = 1024 * 1024;

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc (npm run soak does)');

// --- the server ------------------------------------------------------------------------------------------------

const server = new WebSocketServer({
  port: 0,
  host: '127.0.0.1',
  env: {},
  maxMessageSize: MAX_MESSAGE_SIZE,
  openTimeoutMs: 500,
  // Short enough for the silent peers to be found within the run; long enough for a well-behaved client whose pong
  // waits behind its own (asynchronous) inflation on a loaded machine.
  pingIntervalMs: 1000,
  pingTimeoutMs: 2000,
  closeTimeoutMs: 1000,
  // The good clients come from 127.0.0.1; each attacker address is held to these.
  maxConnectionsPerAddress: 30,
  maxHandshakesPerSecondPerAddress: 100,
  maxConnections: CLIENTS + 300,
});
const serverErrors: string[] = [];
server.on('error', (error: Error) => serverErrors.push(error.stack ?? error.message));
/** Open connections per client address, and the most seen at once: never over maxConnectionsPerAddress. */
const openByAddress = new Map<string, number>();
let peakPerAddress = 0;
server.on('connection', (ws: WebSocket) => {
  ws.on('error', () => undefined);
  const address = ws.remoteAddress ?? '?';
  const open = (openByAddress.get(address) ?? 0) + 1;
  openByAddress.set(address, open);
  peakPerAddress = Math.max(peakPerAddress, open);
  ws.once('close', () => openByAddress.set(address, (openByAddress.get(address) ?? 1) - 1));
  if (ws.request?.path === '/flood') {
    // Sends to a client that never reads: send() waits on the water marks, so this loop stalls, bounded.
    void (async () => {
      const chunk = Buffer.alloc(16_384, 1);
      try {
        for (;;) await ws.send(chunk);
      } catch {
        // the attacker reset the connection
      }
    })();
    return;
  }
  ws.on('message', (data: string | Buffer, isBinary: boolean) => void ws.send(data, { binary: isBinary }).catch(() => undefined));
});
const { port } = (await server.listen()) as net.AddressInfo;
const url = `ws://127.0.0.1:${port}/`;

// --- well-behaved clients --------------------------------------------------------------------------------------

interface GoodStats {
  sent: number;
  received: number;
  outOfOrder: number;
  closedEarly: boolean;
  /** Close code and reason, when the connection closed before the end. */
  closedWith?: string;
}

function goodClient(index: number, stop: Promise<void>): { stats: GoodStats; done: Promise<void> } {
  const stats: GoodStats = { sent: 0, received: 0, outOfOrder: 0, closedEarly: false };
  const done = (async () => {
    const ws = new WsLibrary(url, { perMessageDeflate: index % 2 === 0 });
    ws.on('error', () => undefined);
    await once(ws, 'open');
    let stopping = false;
    const send = (): void => {
      const n = stats.sent++;
      // Sizes vary so that some messages are compressed and some are split over several reads.
      const padding = n % 50 === 0 ? 'x'.repeat(20_000) : n % 7 === 0 ? 'y'.repeat(300) : '';
      ws.send(`${index}:${n}:${padding}`);
    };
    ws.on('message', (data: Buffer) => {
      const text = data.toString();
      const n = Number(text.slice(text.indexOf(':') + 1, text.indexOf(':', text.indexOf(':') + 1)));
      if (n !== stats.received) stats.outOfOrder++;
      stats.received++;
      if (!stopping) send();
    });
    const closed = once(ws, 'close');
    closed.then((args) => {
      if (stopping) return;
      const [code, reason] = args as [number, Buffer];
      stats.closedEarly = true;
      stats.closedWith = `${code} ${reason.toString()} at ${Math.round(performance.now() - started)} ms`;
    }, () => undefined);
    for (let i = 0; i < WINDOW; i++) send();
    await stop;
    stopping = true;
    // Let the messages in flight come back, then close cleanly.
    const deadline = performance.now() + 5000;
    while (stats.received < stats.sent && performance.now() < deadline && ws.readyState === WsLibrary.OPEN) await sleep(10);
    ws.close(1000);
    await closed;
  })();
  return { stats, done };
}

// --- attackers -------------------------------------------------------------------------------------------------

const REQUEST = (pathName = '/', extra = ''): Buffer =>
  Buffer.from(
    `GET ${pathName} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
    'latin1',
  );

function frame(opcode: number, payload: Buffer, options: { fin?: boolean; rsv1?: boolean; declared?: bigint } = {}): Buffer {
  const length = options.declared ?? BigInt(payload.length);
  const first = (options.fin === false ? 0 : 0x80) | (options.rsv1 === true ? 0x40 : 0) | opcode;
  let head: Buffer;
  if (length <= 125n) head = Buffer.from([first, 0x80 | Number(length)]);
  else if (length <= 0xffffn) head = Buffer.from([first, 0x80 | 126, Number(length >> 8n), Number(length & 255n)]);
  else {
    head = Buffer.alloc(10);
    head[0] = first;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(length, 2);
  }
  const key = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= key[i & 3]!;
  return Buffer.concat([head, key, body]);
}

const BOMB = (() => {
  const out = deflateRawSync(Buffer.alloc(32 * MiB), { finishFlush: constants.Z_SYNC_FLUSH, windowBits: 9 });
  return out.subarray(0, out.length - 4);
})();

/** A raw attacker connection: what it received, and whether/how the server closed it. */
class Raw {
  readonly socket: net.Socket;
  received = Buffer.alloc(0);
  closed: Promise<void>;
  constructor(localAddress: string) {
    this.socket = net.connect({ port, host: '127.0.0.1', localAddress });
    this.socket.on('error', () => undefined);
    this.socket.on('data', (chunk: Buffer) => {
      if (this.received.length < 65_536) this.received = Buffer.concat([this.received, chunk]);
    });
    // Not events.once: it rejects on 'error', and a reset is an expected end here.
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
  }
  ready(): Promise<void> {
    return new Promise((resolve) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('close', () => resolve());
    });
  }
  write(data: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }
  status(): string {
    const text = this.received.subarray(0, 12).toString('latin1');
    return text.startsWith('HTTP/1.1 ') ? text.slice(9, 12) : 'none';
  }
  /** The close code of the first close frame after the head. */
  closeCode(): number | undefined {
    const start = this.received.indexOf('\r\n\r\n');
    let at = start === -1 ? 0 : start + 4;
    const b = this.received;
    while (at + 2 <= b.length) {
      let length = b[at + 1]! & 0x7f;
      let offset = at + 2;
      if (length === 126) {
        length = b.readUInt16BE(offset);
        offset += 2;
      } else if (length === 127) {
        length = Number(b.readBigUInt64BE(offset));
        offset += 8;
      }
      if ((b[at]! & 0x0f) === 0x8) return length >= 2 ? b.readUInt16BE(offset) : 1005;
      at = offset + length;
    }
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function bounded(raw: Raw, ms: number): Promise<boolean> {
  const timer = sleep(ms).then(() => false);
  return Promise.race([raw.closed.then(() => true), timer]);
}

/** Each attack returns its outcome: what the server answered ('101+1009', '503', 'cut', ...). */
const ATTACKS: Record<string, (address: string) => Promise<string>> = {
  async 'trickled headers'(address) {
    const raw = new Raw(address);
    await raw.ready();
    const request = REQUEST();
    for (const byte of request) {
      if (raw.socket.destroyed) break;
      raw.write(Buffer.from([byte]));
      await sleep(20);
    }
    await bounded(raw, 2000);
    raw.socket.destroy();
    return raw.received.length === 0 ? 'cut' : raw.status();
  },
  async 'trickled frame'(address) {
    const raw = new Raw(address);
    await raw.ready();
    raw.write(REQUEST());
    const payload = Buffer.from('trickle'.repeat(10));
    for (const byte of frame(0x1, payload)) {
      raw.write(Buffer.from([byte]));
      await sleep(2);
    }
    for (let waited = 0; !raw.received.includes(payload) && waited < 3000; waited += 10) await sleep(10);
    const echoed = raw.received.includes(payload);
    raw.socket.destroy();
    return `${raw.status()}+${echoed ? 'echo' : 'none'}`;
  },
  async 'never reads'(address) {
    const raw = new Raw(address);
    await raw.ready();
    raw.write(REQUEST('/flood'));
    raw.socket.pause();
    await sleep(1500);
    raw.socket.resetAndDestroy();
    return 'stalled+reset';
  },
  async 'compression bomb'(address) {
    const raw = new Raw(address);
    await raw.ready();
    raw.write(Buffer.concat([REQUEST('/', 'Sec-WebSocket-Extensions: permessage-deflate\r\n'), frame(0x2, BOMB, { rsv1: true })]));
    await bounded(raw, 3000);
    raw.socket.destroy();
    return `${raw.status()}+${raw.closeCode() ?? 'none'}`;
  },
  async '2^63-1 length'(address) {
    const raw = new Raw(address);
    await raw.ready();
    raw.write(Buffer.concat([REQUEST(), frame(0x2, Buffer.from('abc'), { declared: 2n ** 63n - 1n })]));
    await bounded(raw, 3000);
    raw.socket.destroy();
    return `${raw.status()}+${raw.closeCode() ?? 'none'}`;
  },
  async 'fragments past the limit'(address) {
    const raw = new Raw(address);
    await raw.ready();
    const piece = Buffer.alloc(8192, 0x61);
    const frames = [REQUEST(), frame(0x1, piece, { fin: false })];
    for (let i = 0; i < 10; i++) frames.push(frame(0x0, piece, { fin: false }));
    raw.write(Buffer.concat(frames));
    await bounded(raw, 3000);
    raw.socket.destroy();
    return `${raw.status()}+${raw.closeCode() ?? 'none'}`;
  },
  async 'pipelined with the handshake'(address) {
    const raw = new Raw(address);
    await raw.ready();
    raw.write(Buffer.concat([REQUEST(), frame(0x1, Buffer.from('p1')), frame(0x1, Buffer.from('p2'))]));
    for (let waited = 0; !raw.received.includes('p2') && waited < 3000; waited += 10) await sleep(10);
    raw.write(frame(0x8, Buffer.from([0x03, 0xe8])));
    await bounded(raw, 3000);
    raw.socket.destroy();
    const both = raw.received.indexOf('p1') !== -1 && raw.received.indexOf('p2') > raw.received.indexOf('p1');
    return `${raw.status()}+${both ? 'echoes' : 'no echoes'}+${raw.closeCode() ?? 'none'}`;
  },
  async 'reset mid-handshake'(address) {
    const raw = new Raw(address);
    await raw.ready();
    raw.write(REQUEST().subarray(0, 50));
    await sleep(5);
    raw.socket.resetAndDestroy();
    return 'reset';
  },
  async 'reset mid-frame'(address) {
    const raw = new Raw(address);
    await raw.ready();
    raw.write(Buffer.concat([REQUEST(), frame(0x2, Buffer.alloc(5000)).subarray(0, 2000)]));
    await sleep(20);
    raw.socket.resetAndDestroy();
    return `${raw.status()}+reset`;
  },
  async 'half-open (silent)'(address) {
    const raw = new Raw(address);
    await raw.ready();
    raw.write(REQUEST());
    await bounded(raw, 8000);
    raw.socket.destroy();
    return `${raw.status()}+${raw.closeCode() ?? 'none'}`;
  },
  async 'connection flood'(address) {
    // 40 at once from one address: 30 get in (maxConnectionsPerAddress), the rest get 503.
    const raws = Array.from({ length: 40 }, () => new Raw(address));
    await Promise.all(raws.map((raw) => raw.ready()));
    for (const raw of raws) raw.write(REQUEST());
    for (let waited = 0; raws.some((raw) => raw.status() === 'none') && waited < 3000; waited += 20) await sleep(20);
    const statuses = raws.map((raw) => raw.status());
    for (const raw of raws) raw.socket.destroy();
    const ok = statuses.filter((s) => s === '101').length;
    const refused = statuses.filter((s) => s === '503').length;
    return `${ok}x101+${refused}x503`;
  },
};

/** What each attack must get (a regular expression over its outcome). */
const EXPECTED: Record<string, RegExp> = {
  'trickled headers': /^cut$/,
  'trickled frame': /^101\+echo$/,
  'never reads': /^stalled\+reset$/,
  'compression bomb': /^101\+1009$/,
  '2^63-1 length': /^101\+1009$/,
  'fragments past the limit': /^101\+1009$/,
  'pipelined with the handshake': /^101\+echoes\+1000$/,
  'reset mid-handshake': /^reset$/,
  // The reset may come before the 101 has arrived.
  'reset mid-frame': /^(101|none)\+reset$/,
  'half-open (silent)': /^101\+1011$/,
  // 30 at once at most (checked on the server's side); a slow machine may free a slot (keepalive) mid-flood.
  'connection flood': /^(3[0-9])x101\+([1-9]|10)x503$/,
};

interface AttackStats {
  runs: number;
  outcomes: Record<string, number>;
  unexpected: number;
}

async function attacker(worker: number, stop: () => boolean, stats: Record<string, AttackStats>): Promise<void> {
  const names = Object.keys(ATTACKS);
  for (let i = worker; !stop(); i++) {
    const name = names[i % names.length]!;
    // Each worker from its own addresses, so that one attack's slots do not count against another's.
    const address = name === 'connection flood' ? `127.0.0.${10 + worker}` : `127.0.0.${2 + worker}`;
    let outcome: string;
    try {
      outcome = await ATTACKS[name]!(address);
    } catch (error) {
      outcome = `threw ${(error as Error).message}`;
    }
    const entry = (stats[name] ??= { runs: 0, outcomes: {}, unexpected: 0 });
    entry.runs++;
    entry.outcomes[outcome] = (entry.outcomes[outcome] ?? 0) + 1;
    if (!EXPECTED[name]!.test(outcome)) entry.unexpected++;
  }
}

// --- the run ---------------------------------------------------------------------------------------------------

interface Sample {
  readonly t: number;
  readonly heapMiB: number;
  readonly rssMiB: number;
  readonly arrayBuffersMiB: number;
  readonly connections: number;
}

const samples: Sample[] = [];
const started = performance.now();
let stopped = false;
let resolveStop!: () => void;
const stopSignal = new Promise<void>((resolve) => {
  resolveStop = resolve;
});

const sampler = setInterval(() => {
  gc!();
  const memory = process.memoryUsage();
  samples.push({
    t: Math.round((performance.now() - started) / 100) / 10,
    heapMiB: round(memory.heapUsed / MiB),
    rssMiB: round(memory.rss / MiB),
    arrayBuffersMiB: round(memory.arrayBuffers / MiB),
    connections: server.clients.size,
  });
}, 1000);

const goods = Array.from({ length: CLIENTS }, (_, i) => goodClient(i, stopSignal));
const attackStats: Record<string, AttackStats> = {};
const attackers = Array.from({ length: 4 }, (_, worker) => attacker(worker, () => stopped, attackStats));

await sleep(durationMs);
stopped = true;
resolveStop();
await Promise.all(goods.map((g) => g.done));
await Promise.all(attackers);
clearInterval(sampler);

// --- checks ----------------------------------------------------------------------------------------------------

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

const problems: string[] = [];
let sent = 0;
let received = 0;
for (const [i, { stats }] of goods.entries()) {
  sent += stats.sent;
  received += stats.received;
  if (stats.received !== stats.sent) problems.push(`client ${i}: sent ${stats.sent}, received ${stats.received}`);
  if (stats.outOfOrder > 0) problems.push(`client ${i}: ${stats.outOfOrder} messages out of order`);
  if (stats.closedEarly) problems.push(`client ${i}: closed before the end (${stats.closedWith ?? ''})`);
}
for (const [name, entry] of Object.entries(attackStats)) {
  if (entry.unexpected > 0) problems.push(`${name}: ${entry.unexpected} of ${entry.runs} unexpected outcomes ${JSON.stringify(entry.outcomes)}`);
}
for (const name of Object.keys(ATTACKS)) if (attackStats[name] === undefined) problems.push(`${name}: never ran`);
if (peakPerAddress > 30) problems.push(`${peakPerAddress} connections from one address at once (maxConnectionsPerAddress 30)`);
if (serverErrors.length > 0) problems.push(`server errors: ${serverErrors.slice(0, 3).join(' | ')}`);

const warmUp = Math.max(5, samples.length / 4);
const steady = samples.filter((s) => s.t >= warmUp);
let growthMiB = 0;
let slopeMiBPerMinute = 0;
if (steady.length >= 4) {
  const quarter = Math.max(1, Math.floor(steady.length / 4));
  const mean = (list: Sample[]): number => list.reduce((sum, s) => sum + s.heapMiB, 0) / list.length;
  growthMiB = round(mean(steady.slice(-quarter)) - mean(steady.slice(0, quarter)));
  const mt = steady.reduce((sum, s) => sum + s.t, 0) / steady.length;
  const mh = mean(steady);
  const num = steady.reduce((sum, s) => sum + (s.t - mt) * (s.heapMiB - mh), 0);
  const den = steady.reduce((sum, s) => sum + (s.t - mt) ** 2, 0);
  slopeMiBPerMinute = round((num / den) * 60);
  if (growthMiB * MiB > MAX_GROWTH) problems.push(`heap grew ${growthMiB} MiB after warm-up (bound ${MAX_GROWTH / MiB} MiB)`);
  // A slope fitted on less than a minute is mostly noise: it is reported, and checked on longer runs only.
  if (steady.length >= 60 && slopeMiBPerMinute * MiB > MAX_SLOPE_PER_MINUTE) problems.push(`heap slope ${slopeMiBPerMinute} MiB/min after warm-up (bound ${MAX_SLOPE_PER_MINUTE / MiB})`);
} else {
  problems.push(`too few memory samples after warm-up (${steady.length})`);
}

const report = {
  ok: problems.length === 0,
  problems,
  durationSeconds: round(durationMs / 1000),
  node: process.version,
  goodClients: CLIENTS,
  peakConnectionsPerAddress: peakPerAddress,
  messages: { sent, received, perSecond: Math.round(received / (durationMs / 1000)) },
  attacks: attackStats,
  memory: { warmUpSeconds: round(warmUp), growthMiB, slopeMiBPerMinute, peakHeapMiB: Math.max(...samples.map((s) => s.heapMiB)), samples },
};
mkdirSync(path.dirname(path.resolve(values.report)), { recursive: true });
writeFileSync(values.report, `${JSON.stringify(report, null, 2)}\n`);

const attackLines = Object.entries(attackStats).map(
  ([name, entry]) => `  ${name.padEnd(30)} ${String(entry.runs).padStart(5)} runs  ${Object.entries(entry.outcomes).map(([o, n]) => `${o} x${n}`).join(', ')}`,
);
console.log(
  [
    `soak: ${report.durationSeconds} s, ${CLIENTS} well-behaved clients, ${Object.keys(ATTACKS).length} attacks from 127.0.0.2-13`,
    `messages: ${sent} sent, ${received} echoed once and in order (${report.messages.perSecond}/s)`,
    'attacks:',
    ...attackLines,
    `heap after gc: peak ${report.memory.peakHeapMiB} MiB, growth after warm-up ${growthMiB} MiB, slope ${slopeMiBPerMinute} MiB/min`,
    `report: ${values.report}`,
    problems.length === 0 ? 'OK' : `FAILED:\n  ${problems.join('\n  ')}`,
  ].join('\n'),
);
await server.close();
process.exitCode = problems.length === 0 ? 0 : 1;
