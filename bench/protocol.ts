/**
 * Protocol-core benchmark (issue 3): frame parsing + unmasking of client frames (32 B, 64 KiB, 1 MiB) by this
 * package's Connection against `ws`'s own Receiver on the same bytes, in the same process and run, and the
 * handshake request parse rate. Prints medians over rounds and the ratio ours / ws (higher is better for us).
 *
 *   npm run bench:protocol            (or: node dist/bench/protocol.js [--quick])
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { Connection } from '../lib/protocol/connection.js';
import { encodeFrame } from '../lib/protocol/frame-writer.js';
import { Opcode } from '../lib/protocol/frame.js';
import { RequestParser } from '../lib/protocol/handshake.js';
import { resolveConfig } from '../lib/config.js';

/** ws's frame parser: a Writable that emits 'message'; @types/ws does not declare it. */
interface WsReceiver {
  on(event: 'message' | 'error', listener: (arg: unknown) => void): void;
  write(chunk: Buffer): boolean;
}
// ws's ESM entry exports only the WebSocket class as default; its CommonJS entry carries Receiver.
const Receiver = (createRequire(import.meta.url)('ws') as { Receiver: new (options: object) => WsReceiver }).Receiver;

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 3 : 7;
const MAX = 16 * 1024 * 1024;

/** One stream of `count` masked binary frames of `size` bytes, as a client sends them, cut into 64 KiB reads. */
function clientStream(size: number, count: number): Buffer[] {
  const payload = randomBytes(size);
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const mask = randomBytes(4);
    frames.push(...encodeFrame(Opcode.BINARY, Buffer.from(payload), { maskKey: mask }));
  }
  const all = Buffer.concat(frames);
  const reads: Buffer[] = [];
  for (let at = 0; at < all.length; at += 65536) reads.push(all.subarray(at, Math.min(all.length, at + 65536)));
  return reads;
}

/** Fresh copies: both parsers unmask in place, so each run gets its own bytes. */
function copy(reads: Buffer[]): Buffer[] {
  return reads.map((b) => Buffer.from(b));
}

function timeOurs(reads: Buffer[], count: number): number {
  const input = copy(reads);
  const conn = new Connection({ side: 'server', maxMessageSize: MAX });
  let seen = 0;
  const start = process.hrtime.bigint();
  for (const chunk of input) {
    conn.receiveData(chunk);
    for (let ev = conn.nextEvent(); ev !== undefined; ev = conn.nextEvent()) seen++;
  }
  const ns = Number(process.hrtime.bigint() - start);
  if (seen !== count) throw new Error(`ours parsed ${seen} of ${count} messages`);
  return ns;
}

function timeWs(reads: Buffer[], count: number): Promise<number> {
  const input = copy(reads);
  return new Promise((resolve, reject) => {
    const receiver = new Receiver({ isServer: true, maxPayload: MAX, allowSynchronousEvents: true });
    let seen = 0;
    let start = 0n;
    receiver.on('message', () => {
      if (++seen === count) resolve(Number(process.hrtime.bigint() - start));
    });
    receiver.on('error', reject);
    start = process.hrtime.bigint();
    for (const chunk of input) receiver.write(chunk);
  });
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

interface Row { name: string; ours: string; ws: string; ratio: string }
const rows: Row[] = [];

async function frames(label: string, size: number, totalBytes: number): Promise<void> {
  const count = Math.max(20, Math.floor(totalBytes / size));
  const reads = clientStream(size, count);
  timeOurs(reads, count);
  await timeWs(reads, count); // warm-up
  const ours: number[] = [];
  const theirs: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate the order each round so that neither side always runs on a warmer machine.
    let o: number, w: number;
    if (r % 2 === 0) { o = timeOurs(reads, count); w = await timeWs(reads, count); }
    else { w = await timeWs(reads, count); o = timeOurs(reads, count); }
    ours.push(o); theirs.push(w); ratios.push(w / o);
    process.stderr.write(`  ${label} round ${r + 1}/${ROUNDS}: ratio ${(w / o).toFixed(2)}x\n`);
  }
  const rate = (ns: number): string =>
    size >= 65536 ? `${((count * size) / (ns / 1e9) / 1e9).toFixed(2)} GB/s` : `${((count / (ns / 1e9)) / 1e6).toFixed(2)} M msg/s`;
  rows.push({ name: label, ours: rate(median(ours)), ws: rate(median(theirs)), ratio: `${median(ratios).toFixed(2)}x` });
}

function handshakes(): void {
  const limits = resolveConfig({}, {}).limits;
  const request = Buffer.from(
    'GET /chat?room=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n' +
      'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n' +
      'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36\r\n\r\n',
  );
  const n = quick ? 20000 : 100000;
  const rates: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      if (new RequestParser(limits).push(request) === null) throw new Error('incomplete');
    }
    rates.push(n / (Number(process.hrtime.bigint() - start) / 1e9));
  }
  rows.push({ name: 'handshake request parse', ours: `${(median(rates) / 1000).toFixed(0)} k req/s`, ws: 'n/a (ws uses Node\'s http parser)', ratio: '' });
}

await frames('32 B frames', 32, 8 * 1024 * 1024);
await frames('64 KiB frames', 64 * 1024, 128 * 1024 * 1024);
await frames('1 MiB frames', 1024 * 1024, 128 * 1024 * 1024);
handshakes();

console.log(`\nProtocol core vs ws ${'8'} Receiver, Node ${process.version}, ${ROUNDS} rounds, medians (ratio = ws time / our time)\n`);
console.log('| workload | nestjs-websockets | ws Receiver | ratio |');
console.log('|---|---|---|---|');
for (const r of rows) console.log(`| ${r.name} | ${r.ours} | ${r.ws} | ${r.ratio} |`);
