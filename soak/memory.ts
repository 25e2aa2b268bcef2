/**
 * `node --expose-gc dist/soak/memory.js [--connections N]`: the server's memory per connection, idle and in the
 * worst case an attacker can force with the default limits (a fragmented message held one byte short of
 * maxMessageSize, a peer that does not read while the server sends). Prints one JSON line (bytes per connection:
 * heap and arrayBuffers after gc, measured over N connections in this process).
 */
import net from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { WebSocketServer } from '../lib/node/server.js';
import type { WebSocket } from '../lib/node/websocket.js';

const { values } = parseArgs({ options: { connections: { type: 'string', default: '100' } } });
const N = Number(values.connections);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const REQUEST = Buffer.from(
  'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
    'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n',
  'latin1',
);

function frame(opcode: number, payload: Buffer, fin: boolean): Buffer {
  const head = Buffer.alloc(14);
  head[0] = (fin ? 0x80 : 0) | opcode;
  head[1] = 0x80 | 127;
  head.writeBigUInt64BE(BigInt(payload.length), 2);
  const key = randomBytes(4);
  key.copy(head, 10);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= key[i & 3]!;
  return Buffer.concat([head, body]);
}

function measure(): { heap: number; arrayBuffers: number } {
  for (let i = 0; i < 3; i++) gc!();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, arrayBuffers: m.arrayBuffers };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const server = new WebSocketServer({ port: 0, host: '127.0.0.1', env: {}, pingIntervalMs: null });
const serverSide: WebSocket[] = [];
server.on('connection', (ws: WebSocket) => {
  serverSide.push(ws);
  ws.on('error', () => undefined);
});
const { port } = (await server.listen()) as net.AddressInfo;
const sockets: net.Socket[] = [];

const base = measure();
for (let i = 0; i < N; i++) {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  socket.on('data', () => undefined);
  socket.write(REQUEST);
  sockets.push(socket);
}
while (serverSide.length < N) await sleep(10);
await sleep(100);
const idle = measure();

// Worst case: a fragmented binary message one byte short of the default maxMessageSize (1 MiB), never finished,
// and the server sending 1 MiB messages to a client that has stopped reading.
const limit = server.config.limits.maxMessageSize;
for (const socket of sockets) {
  socket.pause();
  socket.write(frame(0x2, Buffer.alloc(limit - 1, 1), false));
}
await sleep(1500);
for (const ws of serverSide) void ws.send(Buffer.alloc(limit, 2)).catch(() => undefined);
for (const ws of serverSide) void ws.send(Buffer.alloc(limit, 3)).catch(() => undefined);
await sleep(1500);
const worst = measure();
const perConnection = (a: { heap: number; arrayBuffers: number }, b: { heap: number; arrayBuffers: number }) => ({
  heap: Math.round((b.heap - a.heap) / N),
  arrayBuffers: Math.round((b.arrayBuffers - a.arrayBuffers) / N),
  total: Math.round((b.heap - a.heap + b.arrayBuffers - a.arrayBuffers) / N),
});
console.log(
  JSON.stringify({
    connections: N,
    node: process.version,
    idle: perConnection(base, idle),
    worstCase: perConnection(base, worst),
    maxReadBufferedAmount: Math.max(...serverSide.map((ws) => ws.maxReadBufferedAmount)),
    bufferedAmount: Math.max(...serverSide.map((ws) => ws.bufferedAmount)),
  }),
);
for (const socket of sockets) socket.destroy();
await server.close();
