/**
 * `npm run bench:telemetry [-- --rounds 5 --seconds 3]`: what OpenTelemetry costs the Nest adapter, measured in one
 * run on the same machine, for three servers (bench/telemetry-target.ts): `off` (the API installed, no provider),
 * `metrics` (the SDK with a periodic reader) and `traces` (metrics, plus a span per message). Two workloads:
 *
 * - echo: 50 connections x 10 requests in flight, `{"event":"echo","data":"<32 B>"}`, replies per second;
 * - fan-out: 200 clients; one sends 1000 `fanout` requests at once and each goes to all 200: deliveries per second,
 *   from the first request to the last delivery.
 *
 * Each round starts every server fresh, in rotated order; the ratio `metrics / off` is taken within each round and
 * its median reported against the goal (at most 10 % slower: >= 0.90). The load comes from this process, through
 * this package's Node client: absolute figures are the client's as much as the server's; compare the ratios.
 * Writes bench/telemetry.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { connect } from '../lib/node/client.js';
import type { WebSocket } from '../lib/node/websocket.js';
import { formatNumber, pairedRatios, summarize } from './stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const TARGET = path.join(HERE, 'telemetry-target.js');
const MODES = ['off', 'metrics', 'traces'] as const;
type Mode = (typeof MODES)[number];
const ECHO_CONNECTIONS = 50;
const IN_FLIGHT = 10;
const FANOUT_CLIENTS = 200;
const FANOUT_MESSAGES = 1000;
const PAYLOAD = 'x'.repeat(32);
const GOAL = 0.9;

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  const raw = at >= 0 ? process.argv[at + 1] : undefined;
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer; got ${raw}`);
  return value;
}

async function startTarget(mode: Mode): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [TARGET], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TELEMETRY: mode } });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  return { child, port: (JSON.parse(line) as { port: number }).port };
}

async function stopTarget(child: ChildProcess): Promise<void> {
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

async function open(port: number, count: number): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < count; i += 50) {
    sockets.push(...(await Promise.all(Array.from({ length: Math.min(50, count - i) }, () => connect(`ws://127.0.0.1:${port}/ws`, { compression: false })))));
  }
  return sockets;
}

/** Replies per second over `seconds`, after one second of warm-up. */
async function echo(port: number, seconds: number): Promise<number> {
  const sockets = await open(port, ECHO_CONNECTIONS);
  const message = JSON.stringify({ event: 'echo', data: PAYLOAD });
  let counting = false;
  let replies = 0;
  let running = true;
  for (const ws of sockets) {
    ws.on('message', () => {
      if (counting) replies++;
      if (running) void ws.send(message).catch(() => undefined);
    });
    for (let i = 0; i < IN_FLIGHT; i++) void ws.send(message);
  }
  await new Promise((resolve) => setTimeout(resolve, 1000));
  counting = true;
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  counting = false;
  const rate = replies / ((performance.now() - started) / 1000);
  running = false;
  for (const ws of sockets) ws.terminate();
  return rate;
}

/** Deliveries per second of FANOUT_MESSAGES broadcasts to FANOUT_CLIENTS clients. */
async function fanout(port: number): Promise<number> {
  const sockets = await open(port, FANOUT_CLIENTS);
  const expected = FANOUT_CLIENTS * FANOUT_MESSAGES;
  let delivered = 0;
  const done = new Promise<void>((resolve) => {
    for (const ws of sockets) {
      ws.on('message', () => {
        if (++delivered === expected) resolve();
      });
    }
  });
  const message = JSON.stringify({ event: 'fanout', data: PAYLOAD });
  const started = performance.now();
  for (let i = 0; i < FANOUT_MESSAGES; i++) void sockets[0]!.send(message);
  await done;
  const rate = expected / ((performance.now() - started) / 1000);
  for (const ws of sockets) ws.terminate();
  return rate;
}

async function main(): Promise<void> {
  const rounds = option('rounds', 5);
  const seconds = option('seconds', 3);
  const results: Record<Mode, { echo: number[]; fanout: number[] }> = { off: { echo: [], fanout: [] }, metrics: { echo: [], fanout: [] }, traces: { echo: [], fanout: [] } };
  for (let round = 0; round < rounds; round++) {
    const order = MODES.map((_, i) => MODES[(i + round) % MODES.length]!);
    for (const mode of order) {
      const { child, port } = await startTarget(mode);
      try {
        results[mode].echo.push(await echo(port, seconds));
        results[mode].fanout.push(await fanout(port));
      } finally {
        await stopTarget(child);
      }
      process.stderr.write(`round ${round + 1}/${rounds} ${mode}: echo ${formatNumber(results[mode].echo.at(-1)!)}/s, fan-out ${formatNumber(results[mode].fanout.at(-1)!)}/s\n`);
    }
  }
  const cell = (values: readonly number[], suffix = ''): string => {
    const { median, min, max } = summarize(values);
    return `${formatNumber(median)}${suffix} (${formatNumber(min)}-${formatNumber(max)})`;
  };
  const ratio = (workload: 'echo' | 'fanout', mode: Mode): number[] => pairedRatios(results[mode][workload], results.off[workload]);
  const lines = [
    `Run of ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC: ${rounds} rounds of ${seconds} s, each server started fresh per round, order rotated.`,
    `Machine: ${os.cpus()[0]?.model ?? 'unknown'} x ${os.cpus().length}, Node ${process.version}. Medians (min-max over rounds); ratios within each round.`,
    '',
    '| goal | measured | met |',
    '|---|---|---|',
    ...(['echo', 'fanout'] as const).map((workload) => {
      const median = summarize(ratio(workload, 'metrics')).median;
      return `| ${workload === 'echo' ? 'Nest echo' : 'Nest fan-out'}, metrics on / off >= ${GOAL} | ${cell(ratio(workload, 'metrics'), 'x')} | ${median >= GOAL ? 'yes' : 'no'} |`;
    }),
    '',
    '| server | echo replies/s | fan-out deliveries/s | echo / off | fan-out / off |',
    '|---|---|---|---|---|',
    ...MODES.map((mode) => `| ${mode} | ${cell(results[mode].echo)} | ${cell(results[mode].fanout)} | ${mode === 'off' ? '1' : cell(ratio('echo', mode), 'x')} | ${mode === 'off' ? '1' : cell(ratio('fanout', mode), 'x')} |`),
    '',
  ];
  writeFileSync(path.join(HERE, '..', '..', 'bench', 'telemetry.md'), lines.join('\n'));
  process.stdout.write(lines.join('\n'));
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error instanceof Error ? error.stack : error)}\n`);
  process.exitCode = 1;
});
