/**
 * The outgoing bound (issue 13): `maxBufferedAmount`, the two slow-consumer policies, volatile sends, and
 * broadcasts built once. Boundaries are tested within one tick, before anything is written, where
 * `bufferedAmount` is exact; the stuck member of a room is tested against a server in a process of its own
 * (test/hostile/fixtures/measured-server.ts), whose buffers are measured after gc.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { createInterface, type Interface } from 'node:readline';
import WsLibrary from 'ws';
import { SlowConsumerError } from '../../lib/errors.js';
import { PreparedMessage } from '../../lib/protocol/prepared-message.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import type { Measure } from '../hostile/fixtures/measured-server.js';
import { closeCodeIn, upgradeRequest } from '../hostile/peer.js';
import { ROOT, compileForChild, type CompiledTree } from '../support/compile.js';
import { rawConnect, withTimeout } from '../support/net.js';
import { Harness, WAIT_MS, next, wsClosed } from './harness.js';

const harness = new Harness();
afterEach(() => harness.cleanup());

const HIGH = 16_384;
const LOW = 4096;
const MAX = 65_536;
/** The frame header of a payload of 126-65535 bytes, counted in bufferedAmount with the payload. */
const HEADER_16 = 4;

/** A server connection and a `ws` client that does not read (its socket paused). */
async function stalled(options: Record<string, unknown>): Promise<{ ws: WebSocket; client: WsLibrary }> {
  const { server, url } = await harness.listen({ writeHighWaterMark: HIGH, writeLowWaterMark: LOW, maxBufferedAmount: MAX, compression: false, ...options });
  const connected = next<[WebSocket]>(server, 'connection');
  const client = await harness.wsClient(`${url}/`, { perMessageDeflate: false });
  const [ws] = await connected;
  return { ws, client };
}

describe('maxBufferedAmount: the boundary, within one tick', () => {
  it("'close': exactly the bound may wait; one byte more drops what waits, rejects with SlowConsumerError and closes with 1013", async () => {
    const { ws, client } = await stalled({});
    const messages: Buffer[] = [];
    client.on('message', (data: Buffer) => messages.push(data));
    // Sent at once (nothing buffered yet), then counted as batched until the next tick.
    const first = ws.send(Buffer.alloc(32_768, 1));
    expect(ws.bufferedAmount).toBe(32_768 + HEADER_16);
    // Over the high water mark: this one waits, and fills the bound exactly.
    const exact = MAX - ws.bufferedAmount;
    const waiting = ws.send(Buffer.alloc(exact, 2));
    expect(ws.bufferedAmount).toBe(MAX);
    const errors: Error[] = [];
    ws.on('error', (error: Error) => errors.push(error));
    const over = ws.send(Buffer.alloc(1, 3));
    await expect(over).rejects.toBeInstanceOf(SlowConsumerError);
    await expect(waiting).rejects.toThrow(
      'more than 65536 bytes waiting to be sent to a peer that does not read them (option maxBufferedAmount, env WEBSOCKETS_MAX_BUFFERED_AMOUNT)',
    );
    expect(errors.map((error) => (error as SlowConsumerError).code)).toEqual(['WS_ERR_SLOW_CONSUMER']);
    // What waited is freed at once: only the batch already made is left.
    expect(ws.bufferedAmount).toBeLessThanOrEqual(32_768 + HEADER_16 + 128);
    expect(await first).toBe(true);
    const [code, reason] = await wsClosed(client);
    expect(code).toBe(1013);
    expect(reason).toBe('send buffer over 65536 bytes (option maxBufferedAmount, env WEBSOCKETS_MAX_BUFFERED_AMOUNT)');
    expect(messages.map((m) => m.length)).toEqual([32_768]);
  });

  it("'drop': the message over the bound is skipped (false, 'drop'), what waited is still delivered in order", async () => {
    const { ws, client } = await stalled({ slowConsumer: 'drop' });
    const socket = (client as unknown as { _socket: import('node:net').Socket })._socket;
    socket.pause();
    const dropped: Array<string | Buffer> = [];
    ws.on('drop', (data: string | Buffer) => dropped.push(data));
    const first = ws.send(Buffer.alloc(32_768, 1));
    const waiting = ws.send(Buffer.alloc(MAX - ws.bufferedAmount, 2));
    const over = ws.send('one byte too many');
    expect(await over).toBe(false);
    expect(dropped).toEqual(['one byte too many']);
    const received: number[] = [];
    client.on('message', (data: Buffer) => received.push(data[0]!));
    socket.resume();
    expect(await first).toBe(true);
    expect(await waiting).toBe(true);
    await withTimeout(
      (async () => {
        while (received.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
      })(),
      WAIT_MS,
      'both messages',
    );
    expect(received).toEqual([1, 2]);
    expect(ws.readyState).toBe(ws.OPEN);
  });

  it('a single message larger than the bound is sent when nothing else waits', async () => {
    const { ws, client } = await stalled({});
    const big = Buffer.alloc(3 * MAX, 7);
    const received = next<[Buffer]>(client, 'message');
    expect(ws.bufferedAmount).toBe(0);
    expect(await ws.send(big)).toBe(true);
    const [data] = await received;
    expect(data.equals(big)).toBe(true);
  });

  it("volatile sends are dropped above writeHighWaterMark whatever the policy, and sent below it", async () => {
    const { ws, client } = await stalled({ maxBufferedAmount: null });
    const dropped: Array<string | Buffer> = [];
    ws.on('drop', (data: string | Buffer) => dropped.push(data));
    const received: string[] = [];
    client.on('message', (data: Buffer) => received.push(data.toString()));
    expect(await ws.send('kept', { volatile: true })).toBe(true);
    void ws.send(Buffer.alloc(HIGH + 1));
    expect(await ws.send('position 1', { volatile: true })).toBe(false);
    expect(dropped).toEqual(['position 1']);
    await withTimeout(
      (async () => {
        while (received.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
      })(),
      WAIT_MS,
      'the two messages sent',
    );
    expect(await ws.send('position 2', { volatile: true })).toBe(true);
  });
});

describe('broadcasts built once', () => {
  it('a broadcast to 1000 members allocates one frame, and each member receives it', async () => {
    const { server, url } = await harness.listen({ compression: false, maxConnections: null });
    const count = 1000;
    const clients: WsLibrary[] = [];
    for (let i = 0; i < count; i += 100) {
      clients.push(...(await Promise.all(Array.from({ length: 100 }, () => harness.wsClient(`${url}/`, { perMessageDeflate: false })))));
    }
    await withTimeout(
      (async () => {
        while (server.clients.size < count) await new Promise((resolve) => setTimeout(resolve, 10));
      })(),
      WAIT_MS,
      'every member on the server',
    );
    const received = Promise.all(clients.map((client) => next<[Buffer]>(client, 'message')));
    const allocUnsafe = Buffer.allocUnsafe;
    let allocated = 0;
    Buffer.allocUnsafe = (size: number): Buffer<ArrayBuffer> => {
      allocated += size;
      return allocUnsafe(size);
    };
    try {
      const message = JSON.stringify({ event: 'chat', data: { text: 'x'.repeat(60) } });
      expect(server.broadcast(message)).toBe(count);
      // The batches are written at the next tick: count what that allocates too.
      await new Promise((resolve) => process.nextTick(resolve));
      // One frame: a 2-byte header and the payload, once, for 1000 members.
      const frame = 2 + Buffer.byteLength(message);
      expect(allocated).toBeLessThanOrEqual(2 * frame);
    } finally {
      Buffer.allocUnsafe = allocUnsafe;
    }
    for (const [data] of await received) expect(data.toString()).toContain('"event":"chat"');
  }, 30_000);

  it('compressing members get their own compressed copy; the others share the frame', async () => {
    const { server, url } = await harness.listen({});
    const plain = await harness.wsClient(`${url}/`, { perMessageDeflate: false });
    const deflate = await harness.wsClient(`${url}/`, { perMessageDeflate: true });
    await withTimeout(
      (async () => {
        while (server.clients.size < 2) await new Promise((resolve) => setTimeout(resolve, 10));
      })(),
      WAIT_MS,
      'both members',
    );
    const text = 'compressible '.repeat(100);
    const both = Promise.all([next<[Buffer]>(plain, 'message'), next<[Buffer]>(deflate, 'message')]);
    expect(server.broadcast(new PreparedMessage(text))).toBe(2);
    const [[a], [b]] = await both;
    expect([a.toString(), b.toString()]).toEqual([text, text]);
  });
});

// --- a stuck member among healthy ones, against a server in its own process ------------------------------------

const MiB = 1024 * 1024;
let compiled: CompiledTree;
const children = new Set<ChildProcessWithoutNullStreams>();

beforeAll(async () => {
  compiled = await compileForChild('slow-consumer-', ['test/hostile/fixtures/measured-server.ts'], { timeoutMs: 90_000 });
}, 95_000);

afterAll(async () => {
  for (const child of children) {
    child.stdin.end();
    if (child.exitCode === null) await once(child, 'exit');
  }
  compiled?.remove();
});

async function roomServer(options: Record<string, unknown>): Promise<{ port: number; measure(): Promise<Measure> }> {
  const child = spawn(process.execPath, ['--expose-gc', compiled.entry('test/hostile/fixtures/measured-server.ts'), JSON.stringify({ room: true, pingIntervalMs: null, ...options })], { cwd: ROOT });
  children.add(child);
  const lines: Interface = createInterface({ input: child.stdout });
  const [line] = (await withTimeout(once(lines, 'line'), 10_000, 'the room server to listen')) as [string];
  return {
    port: (JSON.parse(line) as { port: number }).port,
    measure: async () => {
      const answer = once(lines, 'line');
      child.stdin.write('measure\n');
      const [reply] = (await withTimeout(answer, 20_000, 'a measure')) as [string];
      return JSON.parse(reply) as Measure;
    },
  };
}

/**
 * 20 healthy members, one stuck member (its socket paused), and a publisher that sends `COUNT` numbered chat
 * messages of about 1.9 KB, each broadcast by the server to every member.
 */
async function stuckMemberRun(policy: 'close' | 'drop'): Promise<{ growth: number; stuck: Buffer; measure: Measure; healthy: string[][]; closes: number[] }> {
  const COUNT = 4000;
  const server = await roomServer({ slowConsumer: policy, closeTimeoutMs: 1000 });
  const url = `ws://127.0.0.1:${server.port}/`;
  const healthy = await Promise.all(Array.from({ length: 20 }, () => harness.wsClient(url, { perMessageDeflate: false })));
  const seen = healthy.map(() => [] as string[]);
  const done = Promise.all(
    healthy.map(
      (client, i) =>
        new Promise<void>((resolve) => {
          client.on('message', (data: Buffer) => {
            seen[i]!.push(data.subarray(0, 12).toString());
            if (seen[i]!.length === COUNT) resolve();
          });
        }),
    ),
  );
  const stuck = await rawConnect(server.port);
  await stuck.write(upgradeRequest());
  await stuck.readUntil((bytes) => bytes.includes('\r\n\r\n'), WAIT_MS, 'the stuck member’s 101');
  stuck.socket.pause();
  const before = await server.measure();
  const publisher = await harness.wsClient(`${url}publish`, { perMessageDeflate: false });
  const filler = 'y'.repeat(1900);
  // A chat pace that the healthy members keep up with (at most 400 messages, 760 KB, behind): the stuck member is
  // the only one that falls behind.
  for (let i = 0; i < COUNT; i++) {
    publisher.send(`m${String(i).padStart(10, '0')} ${filler}`);
    if (i % 200 === 199) {
      await withTimeout(
        (async () => {
          while (seen.some((messages) => messages.length < i - 400)) await new Promise((resolve) => setTimeout(resolve, 2));
        })(),
        WAIT_MS,
        'the healthy members to keep up',
      );
    }
  }
  await withTimeout(done, 30_000, 'every healthy member to get every message');
  const after = await server.measure();
  stuck.socket.resume();
  const bytes = policy === 'close' ? await stuck.readUntilClose(15_000) : stuck.received();
  const closes = (await server.measure()).closes;
  return { growth: after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers), stuck: bytes, measure: after, healthy: seen, closes };
}

const expected = Array.from({ length: 4000 }, (_, i) => `m${String(i).padStart(10, '0')} `);

describe('a member that stops reading, among 20 that read', () => {
  it("'close': the server holds at most about maxBufferedAmount for it, closes it with 1013, and every other member gets everything in order", async () => {
    const { growth, stuck, healthy, closes } = await stuckMemberRun('close');
    for (const messages of healthy) expect(messages).toEqual(expected);
    // What waited is dropped at once: 0.5-0.7 MB measured (the socket's own buffer until it is destroyed).
    expect(growth).toBeLessThan(3 * MiB);
    // The server closed it with 1013 and says so. The member itself sees the close frame only if it reads within
    // closeTimeoutMs: the frame waits behind what the socket already holds for it, which cannot be taken back, and
    // a socket destroyed at the timeout drops what Node had not handed to the kernel yet. When it does arrive, it
    // says 1013; nothing else ever does.
    expect(closes).toEqual([1013]);
    const seenByMember = closeCodeIn(stuck);
    if (seenByMember !== undefined) expect(seenByMember).toBe(1013);
  }, 60_000);

  it("'drop': the stuck member misses messages while 'drop' events are counted, and every other member gets everything", async () => {
    const { growth, measure, healthy } = await stuckMemberRun('drop');
    for (const messages of healthy) expect(messages).toEqual(expected);
    // The bound (1 MiB of waiting messages) plus their frames' headers, their promises and the socket's buffer:
    // 2.0-2.1 MB measured.
    expect(growth).toBeLessThan(3 * MiB);
    expect(measure.drops).toBeGreaterThan(0);
    expect(measure.closes).toEqual([]);
  }, 60_000);
});
