/**
 * What the default message parser's depth bound costs (issue 12): the default parser (depth scan, then
 * `JSON.parse`) against `JSON.parse` alone on typical messages of 32 B to 64 KiB, and what it costs to refuse the
 * deep message of the attack (300 000 levels, 600 KB) with its id, against what `JSON.parse` alone spent on it.
 * Prints medians over rounds, in µs per message.
 *
 * With `--sample <main.js>`, it also starts that build of the sample app in a child process and sends it the attack
 * over a socket, compressed (`join` nested 300 000 deep, about 680 bytes on the wire), and prints the server's CPU time per
 * attack message (from /proc, so Linux only) and what the attacker got back. Give it an older build to compare.
 *
 *   npm run bench:json            (or: node dist/bench/json-depth.js [--sample dist/sample/main.js])
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, realpathSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { createJsonMessageParser } from '../lib/nest/message-parser.js';

/** A message like those applications exchange: an object of short strings, numbers and small nested objects. */
function typicalMessage(approxSize: number): string {
  const items: unknown[] = [];
  const message = { event: 'update', data: { items }, id: 12345 };
  for (let i = 0; JSON.stringify(message).length < approxSize; i++) {
    items.push({ id: i, name: `item ${i}`, price: i * 1.25, tags: ['a', 'b'], owner: { name: 'alice', active: i % 2 === 0 } });
  }
  if (items.length > 0 && JSON.stringify(message).length > approxSize * 1.5) items.pop();
  return JSON.stringify(message);
}

const MESSAGES: ReadonlyArray<readonly [string, string]> = [
  ['32 B echo', JSON.stringify({ event: 'echo', data: 'hello!' })],
  ['1 KiB object', typicalMessage(1024)],
  ['16 KiB object', typicalMessage(16 * 1024)],
  ['64 KiB object', typicalMessage(64 * 1024)],
  ['64 KiB string', JSON.stringify({ event: 'chat', data: { text: 'x'.repeat(64 * 1024 - 40) }, id: 1 })],
];

const DEEP = 300_000;

/** The attack's message: a `join` whose room is nested `depth` levels deep, with its id at the end. */
function deepJoin(depth: number, id: number): string {
  return `{"event":"join","data":{"room":${'['.repeat(depth)}${']'.repeat(depth)}},"id":${id}}`;
}

/** How much work a run does. */
export interface JsonDepthBenchOptions {
  /** Timed rounds per message; figures are their medians. */
  readonly rounds: number;
  /** Milliseconds of calls per round (at least one call). */
  readonly roundMs: number;
  /** Nesting of the attack's message. */
  readonly depth: number;
}

/** The published figures. */
export const FULL_RUN: JsonDepthBenchOptions = { rounds: 9, roundMs: 20, depth: DEEP };

/** One line of the table: µs per message with `JSON.parse` alone and with the default parser. */
export interface JsonDepthRow {
  readonly label: string;
  readonly size: number;
  readonly jsonParseUs: number;
  readonly parserUs: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Median µs per call of `fn(text)` over `rounds` rounds of about `roundMs` each. */
function time(fn: (text: string) => unknown, text: string, { rounds, roundMs }: JsonDepthBenchOptions): number {
  let calls = 1;
  for (;;) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) fn(text);
    if (Number(process.hrtime.bigint() - start) > roundMs * 1e6) break;
    calls *= 2;
  }
  const perCall: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) fn(text);
    perCall.push(Number(process.hrtime.bigint() - start) / calls / 1000);
  }
  return median(perCall);
}

function refuse(parse: (data: string, isBinary: boolean) => unknown, text: string): unknown {
  try {
    return parse(text, false);
  } catch (error) {
    return error;
  }
}

/**
 * Times the typical messages and the attack's, prints the table and returns its rows (the attack's last).
 * @throws Error when the default parser does not refuse the attack's message with its id
 */
export function runJsonDepthBench(options: JsonDepthBenchOptions = FULL_RUN): JsonDepthRow[] {
  const parser = createJsonMessageParser();
  const attack = deepJoin(options.depth, 42);
  const refusal = refuse(parser, attack) as { code?: unknown; id?: unknown };
  if (refusal.code !== 'WS_ERR_MESSAGE_TOO_DEEP' || refusal.id !== 42) throw new Error(`the attack's message was not refused with its id: ${String(refusal)}`);
  const rows: JsonDepthRow[] = [];
  for (const [label, text] of [...MESSAGES, [`attack, ${options.depth} deep`, attack] as const]) {
    rows.push({ label, size: text.length, jsonParseUs: time(JSON.parse, text, options), parserUs: time((t) => refuse(parser, t), text, options) });
  }
  console.log(`Node ${process.version}; median µs per message (the attack: refused with its id)`);
  console.log('message              | size (B) | JSON.parse | default parser | ratio');
  for (const row of rows) {
    console.log(
      `${row.label.padEnd(20)} | ${String(row.size).padStart(8)} | ${row.jsonParseUs.toFixed(2).padStart(10)} | ` +
        `${row.parserUs.toFixed(2).padStart(14)} | ${(row.parserUs / row.jsonParseUs).toFixed(3)}`,
    );
  }
  return rows;
}

/** CPU time (user + system) of process `pid` so far, in ms; /proc counts in ticks of 10 ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Waits until the process has used no CPU for `quietMs` (it has finished what it was given). */
async function settle(pid: number, quietMs = 300): Promise<void> {
  let last = cpuMs(pid);
  for (;;) {
    await sleep(quietMs);
    const now = cpuMs(pid);
    if (now === last) return;
    last = now;
  }
}

/** Sends `count` attack messages to the sample at `main` and reports the server's CPU per message. */
export async function runSampleAttack(main: string, count = 10): Promise<void> {
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  const child = spawn(process.execPath, [main], { env: { ...process.env, PORT: String(port), SAMPLE_TOKEN: '' }, stdio: 'ignore' });
  try {
    let ws: WebSocket | undefined;
    for (let attempt = 0; ws === undefined; attempt++) {
      const candidate = new WebSocket(`ws://127.0.0.1:${port}/ws`, { perMessageDeflate: { threshold: 0 } });
      try {
        await once(candidate, 'open');
        ws = candidate;
      } catch (error) {
        if (attempt > 100) throw error;
        await sleep(100);
      }
    }
    const replies: string[] = [];
    ws.on('message', (data: Buffer) => replies.push(data.toString().slice(0, 160)));
    let wire = 0;
    await settle(child.pid!);
    const before = cpuMs(child.pid!);
    const socket = (ws as unknown as { _socket: net.Socket })._socket;
    for (let i = 0; i < count; i++) {
      const bytes = socket.bytesWritten;
      await new Promise<void>((resolve) => ws.send(deepJoin(DEEP, i), () => resolve()));
      wire = socket.bytesWritten - bytes;
      // An echo after each: the well-behaved traffic the attack competes with.
      ws.send('{"event":"echo","data":"probe"}');
    }
    await settle(child.pid!);
    const spent = cpuMs(child.pid!) - before;
    console.log(`sample ${main}: ${count} attack messages (${wire} bytes on the wire each), each followed by an echo`);
    console.log(`  server CPU: ${spent} ms in all, ${(spent / count).toFixed(1)} ms per attack message`);
    const answers = replies.filter((r) => !r.includes('"probe"'));
    console.log(`  answers to the attack: ${answers.length} of ${count}${answers.length > 0 ? `, e.g. ${answers[0]}` : ''}`);
    ws.terminate();
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  runJsonDepthBench();
  const at = process.argv.indexOf('--sample');
  if (at !== -1) await runSampleAttack(process.argv[at + 1] ?? 'dist/sample/main.js');
}
