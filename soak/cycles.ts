/**
 * `node --expose-gc dist/soak/cycles.js [--cycles N]`: connect/disconnect cycles against a server in this process,
 * then checks that the heap (after gc), the file descriptors (/proc/self/fd) and the active handles and timers
 * (process.getActiveResourcesInfo()) are back to their baseline. Prints one JSON line; exit code 1 if not.
 *
 * The cycles mix the ways connections end: a clean close from our client, a `ws` client that terminates (no close
 * handshake), a raw socket that resets half-way through its request, and a raw socket that resets mid-frame.
 * Run by test/hostile/process.spec.ts with 2000 cycles.
 */
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { parseArgs } from 'node:util';
import WsLibrary from 'ws';
import { connect } from '../lib/node/client.js';
import { WebSocketServer } from '../lib/node/server.js';

const { values } = parseArgs({ options: { cycles: { type: 'string', default: '2000' }, concurrency: { type: 'string', default: '8' } } });
const CYCLES = Number(values.cycles);
const CONCURRENCY = Number(values.concurrency);
const REQUEST =
  'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
/** Slack allowed over the baseline heap: V8's caches move by about this much; a leak of 1 KiB per cycle exceeds it. */
const HEAP_SLACK = 2 * 1024 * 1024;

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc!();
  }
}

function resources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of process.getActiveResourcesInfo()) counts[name] = (counts[name] ?? 0) + 1;
  return counts;
}

function fds(): number {
  return readdirSync('/proc/self/fd').length;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const server = new WebSocketServer({ port: 0, host: '127.0.0.1', env: {}, openTimeoutMs: 2000, closeTimeoutMs: 2000 });
server.on('connection', (ws) => ws.on('message', (data: string | Buffer, isBinary: boolean) => void ws.send(data, { binary: isBinary }).catch(() => undefined)));
server.on('error', (error: Error) => {
  console.error(error);
  process.exitCode = 1;
});
const { port } = (await server.listen()) as net.AddressInfo;
const url = `ws://127.0.0.1:${port}/`;

async function rawReset(bytes: string | Buffer): Promise<void> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  socket.write(bytes);
  await sleep(1);
  socket.resetAndDestroy();
  await once(socket, 'close');
}

async function cycle(i: number): Promise<void> {
  switch (i % 4) {
    case 0: {
      const ws = await connect(url, { env: {}, pingIntervalMs: null });
      await ws.send(`hello ${i}`);
      for await (const message of ws) {
        if (message !== `hello ${i}`) throw new Error(`echo ${String(message)}`);
        break;
      }
      await ws.close();
      break;
    }
    case 1: {
      const ws = new WsLibrary(url);
      ws.on('error', () => undefined);
      await once(ws, 'open');
      ws.terminate();
      await once(ws, 'close');
      break;
    }
    case 2:
      await rawReset(REQUEST.slice(0, 60));
      break;
    default:
      // A full request, then the first bytes of a masked 1000-byte binary frame, then RST.
      await rawReset(Buffer.concat([Buffer.from(REQUEST, 'latin1'), Buffer.from([0x82, 0xfe, 0x03, 0xe8, 1, 2, 3, 4, 9, 9])]));
  }
}

async function run(count: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) await cycle(next++);
    }),
  );
  // The server sees the last closes a little after the clients.
  for (let waited = 0; server.clients.size > 0 && waited < 5000; waited += 10) await sleep(10);
}

await run(200); // warm-up: JIT, pools and caches reach their steady size
await settle();
const before = { heapUsed: process.memoryUsage().heapUsed, fds: fds(), resources: resources() };
const started = Date.now();
await run(CYCLES);
await sleep(50);
await settle();
const after = { heapUsed: process.memoryUsage().heapUsed, fds: fds(), resources: resources() };

const problems: string[] = [];
if (after.heapUsed > before.heapUsed + HEAP_SLACK) problems.push(`heap grew by ${after.heapUsed - before.heapUsed} bytes`);
if (after.fds > before.fds) problems.push(`file descriptors: ${before.fds} before, ${after.fds} after`);
for (const [name, count] of Object.entries(after.resources)) {
  if (count > (before.resources[name] ?? 0)) problems.push(`${name}: ${before.resources[name] ?? 0} before, ${count} after`);
}
if (server.clients.size !== 0) problems.push(`${server.clients.size} connections still open`);
console.log(JSON.stringify({ cycles: CYCLES, ms: Date.now() - started, before, after, ok: problems.length === 0, problems }));
await server.close();
process.exitCode = problems.length === 0 ? (process.exitCode ?? 0) : 1;
