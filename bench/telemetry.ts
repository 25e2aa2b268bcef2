/**
 * `npm run bench:telemetry [-- --rounds 5 --seconds 3]`: what OpenTelemetry costs the Nest adapter, measured in one
 * run on the same machine, for three servers (bench/telemetry-target.ts): `off` (the API installed, no provider),
 * `metrics` (the SDK with a periodic reader) and `traces` (metrics, plus a span per message). Two workloads:
 *
 * - echo: 50 connections x 10 requests in flight, `{"event":"echo","data":"<32 B>"}`, replies per second;
 * - fan-out: 200 clients; one sends 1000 `fanout` requests at once and each goes to all 200: deliveries per second,
 *   from the first request to the last delivery.
 *
 * Each round starts every server fresh, in rotated order. Two figures per workload: the rate, and the server's CPU
 * time per message (utime + stime from /proc over the measured window). The goal (at most 10 % slower) is read on
 * the CPU time per message, `off / metrics` >= 0.90, taken within each round, median over rounds: on a shared
 * machine (other processes on its two cores) the rate follows the neighbours' load, while the CPU the server spends
 * per message does much less. The load comes from this process, through this package's Node client.
 * Writes bench/telemetry.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
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
/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const CLOCK_TICKS = 100;

/** utime + stime of a process, in seconds (/proc/<pid>/stat fields 14 and 15). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** A workload's figures: messages per second, and the server's CPU microseconds per message. */
interface Figures {
  readonly rate: number;
  readonly cpuUs: number;
}

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
async function echo(port: number, pid: number, seconds: number): Promise<Figures> {
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
  const cpuBefore = cpuSeconds(pid);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  counting = false;
  const cpu = cpuSeconds(pid) - cpuBefore;
  const rate = replies / ((performance.now() - started) / 1000);
  const counted = replies;
  running = false;
  for (const ws of sockets) ws.terminate();
  return { rate, cpuUs: (cpu * 1e6) / counted };
}

/** Deliveries per second of FANOUT_MESSAGES broadcasts to FANOUT_CLIENTS clients. */
async function fanout(port: number, pid: number): Promise<Figures> {
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
  const cpuBefore = cpuSeconds(pid);
  for (let i = 0; i < FANOUT_MESSAGES; i++) void sockets[0]!.send(message);
  await done;
  const cpu = cpuSeconds(pid) - cpuBefore;
  const rate = expected / ((performance.now() - started) / 1000);
  for (const ws of sockets) ws.terminate();
  return { rate, cpuUs: (cpu * 1e6) / expected };
}

async function main(): Promise<void> {
  const rounds = option('rounds', 5);
  const seconds = option('seconds', 3);
  const results: Record<Mode, { echo: Figures[]; fanout: Figures[] }> = { off: { echo: [], fanout: [] }, metrics: { echo: [], fanout: [] }, traces: { echo: [], fanout: [] } };
  for (let round = 0; round < rounds; round++) {
    const order = MODES.map((_, i) => MODES[(i + round) % MODES.length]!);
    for (const mode of order) {
      const { child, port } = await startTarget(mode);
      try {
        results[mode].echo.push(await echo(port, child.pid!, seconds));
        results[mode].fanout.push(await fanout(port, child.pid!));
      } finally {
        await stopTarget(child);
      }
      const [e, f] = [results[mode].echo.at(-1)!, results[mode].fanout.at(-1)!];
      process.stderr.write(`round ${round + 1}/${rounds} ${mode}: echo ${formatNumber(e.rate)}/s ${e.cpuUs.toFixed(1)} us, fan-out ${formatNumber(f.rate)}/s ${f.cpuUs.toFixed(2)} us\n`);
    }
  }
  const cell = (values: readonly number[], suffix = ''): string => {
    const { median, min, max } = summarize(values);
    return `${formatNumber(median)}${suffix} (${formatNumber(min)}-${formatNumber(max)})`;
  };
  const rates = (workload: 'echo' | 'fanout', mode: Mode): number[] => results[mode][workload].map((figures) => figures.rate);
  const cpus = (workload: 'echo' | 'fanout', mode: Mode): number[] => results[mode][workload].map((figures) => figures.cpuUs);
  // Both read as "speed relative to off": > 1 faster, < 1 slower.
  const rateRatio = (workload: 'echo' | 'fanout', mode: Mode): number[] => pairedRatios(rates(workload, mode), rates(workload, 'off'));
  const cpuRatio = (workload: 'echo' | 'fanout', mode: Mode): number[] => pairedRatios(cpus(workload, 'off'), cpus(workload, mode));
  const us = (values: readonly number[]): string => {
    const { median, min, max } = summarize(values);
    return `${median.toFixed(2)} (${min.toFixed(2)}-${max.toFixed(2)})`;
  };
  const lines = [
    `Run of ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC: ${rounds} rounds of ${seconds} s, each server started fresh per round, order rotated.`,
    `Machine: ${os.cpus()[0]?.model ?? 'unknown'} x ${os.cpus().length}, Node ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} at the end.`,
    'Medians (min-max over rounds); ratios within each round. Goal on the server CPU per message (see bench/telemetry.ts).',
    '',
    '| goal | measured | met |',
    '|---|---|---|',
    ...(['echo', 'fanout'] as const).map((workload) => {
      const median = summarize(cpuRatio(workload, 'metrics')).median;
      return `| ${workload === 'echo' ? 'Nest echo' : 'Nest fan-out'}: CPU per message off / metrics >= ${GOAL} | ${cell(cpuRatio(workload, 'metrics'), 'x')} | ${median >= GOAL ? 'yes' : 'no'} |`;
    }),
    '',
    '| server | echo replies/s | echo CPU us/msg | fan-out deliveries/s | fan-out CPU us/delivery | echo rate / off | echo CPU off / this | fan-out rate / off | fan-out CPU off / this |',
    '|---|---|---|---|---|---|---|---|---|',
    ...MODES.map(
      (mode) =>
        `| ${mode} | ${cell(rates('echo', mode))} | ${us(cpus('echo', mode))} | ${cell(rates('fanout', mode))} | ${us(cpus('fanout', mode))} | ` +
        (mode === 'off' ? '1 | 1 | 1 | 1 |' : `${cell(rateRatio('echo', mode), 'x')} | ${cell(cpuRatio('echo', mode), 'x')} | ${cell(rateRatio('fanout', mode), 'x')} | ${cell(cpuRatio('fanout', mode), 'x')} |`),
    ),
    '',
  ];
  writeFileSync(path.join(HERE, '..', '..', 'bench', 'telemetry.md'), lines.join('\n'));
  process.stdout.write(lines.join('\n'));
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error instanceof Error ? error.stack : error)}\n`);
  process.exitCode = 1;
});
