/**
 * Protocol-core benchmark (issue 3): frame parsing + unmasking of client frames (32 B, 64 KiB, 1 MiB) by this
 * package's Connection against `ws`'s own Receiver on the same bytes, in the same process and run, and the
 * handshake request parse rate. Prints medians over rounds and the ratio ours / ws (higher is better for us).
 *
 *   npm run bench:protocol            (or: node dist/bench/protocol.js [--quick])
 *
 * `runProtocolBench()` is exported for test/bench.spec.ts, which runs it on a few frames; importing this module does
 * not start a run.
 */
import { randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Connection } from '../lib/protocol/connection.js';
import { encodeFrame } from '../lib/protocol/frame-writer.js';
import { Opcode } from '../lib/protocol/frame.js';
import { RequestParser } from '../lib/protocol/handshake.js';
import { resolveConfig } from '../lib/config/index.js';

/** ws's frame parser: a Writable that emits 'message'; @types/ws does not declare it. */
interface WsReceiver {
  on(event: 'message' | 'error', listener: (arg: unknown) => void): void;
  write(chunk: Buffer): boolean;
}
// ws's ESM entry exports only the WebSocket class as default; its CommonJS entry carries Receiver.
const Receiver = (createRequire(import.meta.url)('ws') as { Receiver: new (options: object) => WsReceiver }).Receiver;

const MAX = 16 * 1024 * 1024;

/** How much work a run does. */
export interface ProtocolBenchOptions {
  /** Timed rounds per workload; figures are their medians. */
  readonly rounds: number;
  /** Bytes of frames parsed per round, for 32 B frames and for the larger ones (at least `minFrames` frames). */
  readonly smallBytes: number;
  readonly largeBytes: number;
  readonly minFrames: number;
  /** Handshake requests parsed per round. */
  readonly handshakeRequests: number;
}

/** The published figures (`npm run bench:protocol`). */
export const FULL_RUN: ProtocolBenchOptions = { rounds: 7, smallBytes: 8 * 1024 * 1024, largeBytes: 128 * 1024 * 1024, minFrames: 20, handshakeRequests: 100_000 };
/** `--quick`: fewer rounds and handshakes. */
export const QUICK_RUN: ProtocolBenchOptions = { ...FULL_RUN, rounds: 3, handshakeRequests: 20_000 };

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

/** One workload's medians: a rate of this package's parser, of ws's (null where there is none) and ws time / ours. */
export interface ProtocolRow {
  readonly name: string;
  /** `M msg/s` (32 B frames), `GB/s` (large frames) or `k req/s` (handshakes). */
  readonly unit: string;
  readonly ours: number;
  readonly ws: number | null;
  readonly ratio: number | null;
}

async function frames(label: string, size: number, totalBytes: number, options: ProtocolBenchOptions, log: (line: string) => void): Promise<ProtocolRow> {
  const count = Math.max(options.minFrames, Math.floor(totalBytes / size));
  const reads = clientStream(size, count);
  timeOurs(reads, count);
  await timeWs(reads, count); // warm-up
  const ours: number[] = [];
  const theirs: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < options.rounds; r++) {
    // Alternate the order each round so that neither side always runs on a warmer machine.
    let o: number, w: number;
    if (r % 2 === 0) { o = timeOurs(reads, count); w = await timeWs(reads, count); }
    else { w = await timeWs(reads, count); o = timeOurs(reads, count); }
    ours.push(o); theirs.push(w); ratios.push(w / o);
    log(`  ${label} round ${r + 1}/${options.rounds}: ratio ${(w / o).toFixed(2)}x`);
  }
  const large = size >= 65536;
  const rate = (ns: number): number => (large ? (count * size) / (ns / 1e9) / 1e9 : count / (ns / 1e9) / 1e6);
  return { name: label, unit: large ? 'GB/s' : 'M msg/s', ours: rate(median(ours)), ws: rate(median(theirs)), ratio: median(ratios) };
}

function handshakes(options: ProtocolBenchOptions): ProtocolRow {
  const limits = resolveConfig({}, {}).limits;
  const request = Buffer.from(
    'GET /chat?room=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n' +
      'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n' +
      'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36\r\n\r\n',
  );
  const n = options.handshakeRequests;
  const rates: number[] = [];
  for (let r = 0; r < options.rounds; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      if (new RequestParser(limits).push(request) === null) throw new Error('incomplete');
    }
    rates.push(n / (Number(process.hrtime.bigint() - start) / 1e9));
  }
  return { name: 'handshake request parse', unit: 'k req/s', ours: median(rates) / 1000, ws: null, ratio: null };
}

/** Runs the four workloads; `log` receives each round's ratio as it is measured. */
export async function runProtocolBench(options: ProtocolBenchOptions, log: (line: string) => void = () => undefined): Promise<ProtocolRow[]> {
  return [
    await frames('32 B frames', 32, options.smallBytes, options, log),
    await frames('64 KiB frames', 64 * 1024, options.largeBytes, options, log),
    await frames('1 MiB frames', 1024 * 1024, options.largeBytes, options, log),
    handshakes(options),
  ];
}

/** The Markdown table of a run, as printed by `npm run bench:protocol`. */
export function renderProtocolTable(rows: readonly ProtocolRow[], rounds: number): string {
  const lines = [
    '',
    `Protocol core vs ws ${'8'} Receiver, Node ${process.version}, ${rounds} rounds, medians (ratio = ws time / our time)`,
    '',
    '| workload | nestjs-websockets | ws Receiver | ratio |',
    '|---|---|---|---|',
  ];
  for (const row of rows) {
    const digits = row.unit === 'k req/s' ? 0 : 2;
    const ws = row.ws === null ? "n/a (ws uses Node's http parser)" : `${row.ws.toFixed(digits)} ${row.unit}`;
    const ratio = row.ratio === null ? '' : `${row.ratio.toFixed(2)}x`;
    lines.push(`| ${row.name} | ${row.ours.toFixed(digits)} ${row.unit} | ${ws} | ${ratio} |`);
  }
  return `${lines.join('\n')}\n`;
}

// Only when run as a script, not when a test imports runProtocolBench() (see bench/run.ts for the realpath).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  const options = process.argv.includes('--quick') ? QUICK_RUN : FULL_RUN;
  const rows = await runProtocolBench(options, (line) => process.stderr.write(`${line}\n`));
  process.stdout.write(renderProtocolTable(rows, options.rounds));
}
