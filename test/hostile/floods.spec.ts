/**
 * The second round of attacks (issue 12), each over real sockets against a server in a process of its own
 * (test/hostile/fixtures/measured-server.ts, run with --expose-gc), so that what an attack costs is read from that
 * process alone: heap and buffers after gc, and the longest block of its event loop.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { createInterface, type Interface } from 'node:readline';
import WsLibrary from 'ws';
import type { Measure } from './fixtures/measured-server.js';
import { ROOT, compileForChild, type CompiledTree } from '../support/compile.js';
import { rawConnect, withTimeout, type RawConnection } from '../support/net.js';
import { WAIT_MS, clientFrame, closeCodeIn, upgradeRequest } from './peer.js';

const BUILD_TIMEOUT_MS = 90_000;
const MiB = 1024 * 1024;
let compiled: CompiledTree;

beforeAll(async () => {
  compiled = await compileForChild('floods-', ['test/hostile/fixtures/measured-server.ts'], { timeoutMs: BUILD_TIMEOUT_MS });
}, BUILD_TIMEOUT_MS + 5000);

afterAll(() => compiled?.remove());

/** The fixture server: started with options, asked to measure itself, stopped in afterEach. */
class MeasuredServer {
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly lines: Interface,
    readonly port: number,
  ) {}

  static async start(options: Record<string, unknown> = {}): Promise<MeasuredServer> {
    const child = spawn(process.execPath, ['--expose-gc', compiled.entry('test/hostile/fixtures/measured-server.ts'), JSON.stringify(options)], {
      cwd: ROOT,
      env: { ...process.env, NODE_NO_WARNINGS: '1' },
    });
    running.add(child);
    const lines = createInterface({ input: child.stdout });
    const [line] = (await withTimeout(once(lines, 'line'), 10_000, 'the fixture server to listen')) as [string];
    return new MeasuredServer(child, lines, (JSON.parse(line) as { port: number }).port);
  }

  async measure(): Promise<Measure> {
    const answer = once(this.lines, 'line');
    this.child.stdin.write('measure\n');
    const [line] = (await withTimeout(answer, 20_000, 'the fixture server to measure itself')) as [string];
    return JSON.parse(line) as Measure;
  }

  /** Heap plus ArrayBuffer bytes after gc. */
  async held(): Promise<number> {
    const m = await this.measure();
    return m.heapUsed + m.arrayBuffers;
  }
}

const running = new Set<ChildProcessWithoutNullStreams>();
const opened: Array<{ destroy(): void } | { terminate(): void }> = [];

afterEach(async () => {
  for (const item of opened.splice(0)) 'destroy' in item ? item.destroy() : item.terminate();
  for (const child of running) {
    child.stdin.end();
    if (child.exitCode === null) await withTimeout(once(child, 'exit'), WAIT_MS, 'the fixture server to exit').catch(() => child.kill('SIGKILL'));
  }
  running.clear();
});

/** A raw client past the handshake (its socket paused when `read` is false). */
async function attacker(port: number, read = true): Promise<RawConnection> {
  const raw = await rawConnect(port);
  opened.push(raw);
  await raw.write(upgradeRequest());
  await raw.readUntil((bytes) => bytes.includes('\r\n\r\n'), WAIT_MS, 'the 101');
  if (!read) raw.socket.pause();
  return raw;
}

/** A `ws` client whose numbered messages must all come back, in order. */
async function wellBehaved(port: number, count = 20): Promise<void> {
  const client = new WsLibrary(`ws://127.0.0.1:${port}/`);
  opened.push(client);
  await withTimeout(once(client, 'open'), WAIT_MS, 'the well-behaved client to connect');
  const received: string[] = [];
  const all = new Promise<void>((resolve) => {
    client.on('message', (data) => {
      received.push(String(data));
      if (received.length === count) resolve();
    });
  });
  for (let i = 0; i < count; i++) client.send(`m${i}`);
  await withTimeout(all, WAIT_MS, 'the well-behaved client to get its echoes');
  expect(received).toEqual(Array.from({ length: count }, (_, i) => `m${i}`));
}

/** A pong frame carrying `data` among the bytes after the 101. */
function hasPong(bytes: Buffer, data: string): boolean {
  return bytes.includes(Buffer.concat([Buffer.from([0x8a, data.length]), Buffer.from(data)]));
}

/** The close frame's reason after the HTTP head, or undefined. */
function closeReasonIn(bytes: Buffer): string | undefined {
  const at = bytes.indexOf(Buffer.from([0x88]), bytes.indexOf('\r\n\r\n') + 4);
  if (at === -1) return undefined;
  return bytes.subarray(at + 4, at + 2 + (bytes[at + 1]! & 0x7f)).toString();
}

describe('memory a peer can make the server hold', () => {
  it('an unfinished message of 200 000 one-byte fragments holds about its size, not a Buffer per fragment', async () => {
    // The fragment limit is raised so that only the memory bound stands in the way.
    const server = await MeasuredServer.start({ maxFragments: 1_000_000, pingIntervalMs: null });
    const raw = await attacker(server.port);
    const before = await server.held();
    const fragment = clientFrame(0x0, Buffer.from('a'), { fin: false });
    const frames = [clientFrame(0x2, Buffer.from('a'), { fin: false })];
    for (let i = 1; i < 200_000; i++) frames.push(fragment);
    // A ping after them: its pong says that the server has parsed every fragment.
    frames.push(clientFrame(0x9, Buffer.from('done')));
    await raw.write(Buffer.concat(frames));
    await raw.readUntil((bytes) => hasPong(bytes, 'done'), 20_000, 'the pong after the fragments');
    const growth = (await server.held()) - before;
    // Before the fix: about 21 MiB (a Buffer view and its bookkeeping per fragment).
    expect(growth).toBeLessThan(2 * MiB);
    await wellBehaved(server.port);
    expect((await server.measure()).errors).toEqual([]);
  }, 60_000);

  it('a frame trickled one byte per TCP write holds about its size', async () => {
    const server = await MeasuredServer.start({ pingIntervalMs: null });
    const raw = await attacker(server.port);
    raw.socket.setNoDelay(true);
    const before = await server.held();
    const frame = clientFrame(0x2, Buffer.alloc(30_000, 0x62));
    // All but the last byte, one write each, each waiting for a turn of the loop so that the server reads it alone.
    for (let i = 0; i < frame.length - 1; i++) {
      raw.socket.write(frame.subarray(i, i + 1));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    const growth = (await server.held()) - before;
    // Before the fix: a Buffer view per read, about 80 bytes for each byte of the message.
    expect(growth).toBeLessThan(MiB);
    await raw.write(frame.subarray(frame.length - 1));
    await raw.readUntil((bytes) => bytes.length > 129 + 30_000, WAIT_MS, 'the echo of the trickled frame');
  }, 60_000);

  it('more than maxFragments frames in one message, empty ones included, close the connection with 1008 naming the limit', async () => {
    const server = await MeasuredServer.start({ pingIntervalMs: null });
    const raw = await attacker(server.port);
    const empty = clientFrame(0x0, Buffer.alloc(0), { fin: false });
    await raw.write(Buffer.concat([clientFrame(0x1, Buffer.alloc(0), { fin: false }), ...Array<Buffer>(16_384).fill(empty)]));
    const bytes = await raw.readUntilClose(WAIT_MS);
    expect(closeCodeIn(bytes)).toBe(1008);
    expect(closeReasonIn(bytes)).toBe('message in more than 16384 fragments (option maxFragments, env WEBSOCKETS_MAX_FRAGMENTS)');
    await wellBehaved(server.port);

    const limited = await MeasuredServer.start({ pingIntervalMs: null, env: { WEBSOCKETS_MAX_FRAGMENTS: '100' } });
    const exact = await attacker(limited.port);
    await exact.write(Buffer.concat([clientFrame(0x2, Buffer.from('a'), { fin: false }), ...Array<Buffer>(98).fill(clientFrame(0x0, Buffer.from('b'), { fin: false })), clientFrame(0x0, Buffer.from('c'))]));
    await exact.readUntil((received) => received.includes(`a${'b'.repeat(98)}c`), WAIT_MS, 'the echo of a message of exactly 100 fragments');
    const over = await attacker(limited.port);
    await over.write(Buffer.concat([clientFrame(0x2, Buffer.from('a'), { fin: false }), ...Array<Buffer>(100).fill(clientFrame(0x0, Buffer.from('b'), { fin: false }))]));
    const closed = await over.readUntilClose(WAIT_MS);
    expect(closeCodeIn(closed)).toBe(1008);
    expect(closeReasonIn(closed)).toContain('more than 100 fragments');
  }, 60_000);

  it('a ping flood from a peer that never reads: pongs count against the write bound and reading stops', async () => {
    // No keepalive: nothing but the write bound stands in the way.
    const server = await MeasuredServer.start({ pingIntervalMs: null });
    const raw = await attacker(server.port, false);
    const before = await server.held();
    const pings = Buffer.concat(Array.from({ length: 512 }, () => clientFrame(0x9, Buffer.alloc(125, 0x70))));
    const until = Date.now() + 1500;
    let written = 0;
    while (Date.now() < until) {
      if (raw.socket.write(pings)) written += pings.length;
      // The server stops reading: the kernel buffers fill and the writes back up; poll rather than wait for a drain.
      else await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const growth = (await server.held()) - before;
    // Before the fix the server queued every pong: hundreds of MiB within the same time.
    expect(growth).toBeLessThan(4 * MiB);
    // The server stopped reading: the attacker could not even write much (the kernel buffers fill up both ways).
    expect(written).toBeLessThan(64 * MiB);
    await wellBehaved(server.port);
  }, 60_000);
});

describe('CPU and event-loop time a peer can take', () => {
  it('releasing 100 000 queued sends when a peer that stopped reading resets is linear (no long block)', async () => {
    // No bound on what may wait (maxBufferedAmount), so that 51 MB do wait: the queue is what is measured here.
    const server = await MeasuredServer.start({ pingIntervalMs: null, maxBufferedAmount: null, spam: { count: 100_000, size: 512 } });
    const raw = await attacker(server.port, false);
    await new Promise((resolve) => setTimeout(resolve, 300));
    let longest = (await server.measure()).maxLagMs;
    raw.socket.resetAndDestroy();
    await withTimeout(
      (async () => {
        for (;;) {
          const { clients, maxLagMs } = await server.measure();
          longest = Math.max(longest, maxLagMs);
          if (clients === 0) break;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })(),
      20_000,
      'the reset connection to be released',
    );
    const { maxLagMs, errors } = await server.measure();
    // Before the fix: 4-7 s of blocked event loop, first while the kernel took the waiting sends (Array.shift() on a
    // queue of 100 000), then when the reset rejected each with an error of its own. Now 20-30 ms on a quiet machine;
    // the bound leaves room for a loaded one.
    expect(Math.max(longest, maxLagMs)).toBeLessThan(1000);
    expect(errors).toEqual([]);
    await wellBehaved(server.port);
  }, 60_000);

  it('a client flooding tiny messages leaves a well-behaved client its latency (no worse than ws on the same test)', async () => {
    const ours = await MeasuredServer.start();
    const oursLatency = await latencyDuringFlood(ours.port);
    const wsServer = await startWsEcho();
    const wsLatency = await latencyDuringFlood(wsServer.port);
    // Each connection handles at most EVENTS_PER_TURN (256) events per turn of the event loop, so a flood delays
    // others by one turn's budget, not by everything that one socket read delivered.
    // Measured here: ours p50 1.3-1.6 ms and p99 6-24 ms, ws p50 64-122 ms and p99 92-255 ms; the slack is for a
    // loaded machine, where both degrade.
    const both = { ours: oursLatency, ws: wsLatency };
    if (oursLatency.p50 > Math.max(wsLatency.p50, 50) || oursLatency.p99 > Math.max(wsLatency.p99 * 1.5, 250)) {
      throw new Error(`echo latency during the flood (ms): ${JSON.stringify(both)}`);
    }
    // 100 echoes in all, each bounded by 10 s; ws alone can take 30 s of it on a loaded machine.
  }, 120_000);
});

/** A `ws` echo server in a process of its own, stopped in afterEach. */
async function startWsEcho(): Promise<{ port: number }> {
  const script = `
    import { WebSocketServer } from 'ws';
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    server.on('connection', (ws) => { ws.on('error', () => {}); ws.on('message', (d, b) => ws.send(d, { binary: b })); });
    server.on('listening', () => console.log(JSON.stringify({ port: server.address().port })));
    process.stdin.on('end', () => process.exit(0)); process.stdin.resume();`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT });
  running.add(child);
  const lines = createInterface({ input: child.stdout });
  const [line] = (await withTimeout(once(lines, 'line'), 10_000, 'the ws server to listen')) as [string];
  return JSON.parse(line) as { port: number };
}

/**
 * Echo latency of a well-behaved client (50 messages, one at a time, 10 ms apart) while another process floods the
 * same server with 16-byte messages as fast as it can and reads the echoes.
 */
async function latencyDuringFlood(port: number): Promise<{ p50: number; p99: number }> {
  const script = `
    import net from 'node:net';
    const sock = net.connect(${port}, '127.0.0.1', () => {
      sock.write('GET / HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n');
      const one = Buffer.from([0x81, 0x90, 0, 0, 0, 0, ...Buffer.from('x'.repeat(16))]);
      const block = Buffer.concat(Array(4096).fill(one));
      const pump = () => { while (sock.write(block)); };
      sock.on('drain', pump);
      pump();
    });
    sock.on('data', () => {});
    sock.on('error', () => process.exit(0));
    process.stdin.on('end', () => process.exit(0)); process.stdin.resume();`;
  const flooder = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT });
  running.add(flooder as ChildProcessWithoutNullStreams);
  try {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const client = new WsLibrary(`ws://127.0.0.1:${port}/`);
    opened.push(client);
    await withTimeout(once(client, 'open'), WAIT_MS, 'the measured client to connect');
    const rtts: number[] = [];
    for (let i = 0; i < 50; i++) {
      const sentAt = performance.now();
      const echo = once(client, 'message');
      client.send(`p${i}`);
      await withTimeout(echo, 10_000, 'an echo during the flood');
      rtts.push(performance.now() - sentAt);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    client.terminate();
    rtts.sort((a, b) => a - b);
    return { p50: rtts[24]!, p99: rtts[49]! };
  } finally {
    flooder.stdin.end();
    flooder.kill();
  }
}
