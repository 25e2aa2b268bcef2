/**
 * `npm run bench [-- --quick] [-- --workload NAME]`: the benchmark suite of issue 6 (and the room workloads of issue 13).
 *
 * For each workload and each round, every target is started fresh in its own process, measured by the load client
 * (bench/client.ts, another process) and stopped; the order of the targets rotates from round to round. The server's
 * CPU time and memory are read from /proc. Figures are medians over the rounds with their range, and ratios are
 * computed within each round before taking their median. Writes bench/results/<time>.{json,md,svg}, and after a full
 * run also bench/latest.md and bench/latest.svg.
 *
 * `measure()` is exported for test/bench.spec.ts, which runs it on a tiny job against targets it compiles itself;
 * importing this module does not start a run.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ClientJob } from './client.js';
import { renderMarkdown, renderSvg, type RunResult, type Sample } from './report.js';
import { formatNumber } from './stats.js';
import { benchCertificate } from './tls.js';
import { JOB_DEFAULTS, TARGETS, workloads, type Workload } from './workloads.js';

/** The compiled tree this file runs from (dist/, mirroring the repository) and the package root above it. */
const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROOT = path.dirname(DIST);
/** Longest a single measurement may take before its processes are killed and the round is marked failed. */
const RUN_TIMEOUT_MS = 120_000;
/** Time for a target's memory to settle after a forced garbage collection. */
const SETTLE_MS = 400;
/**
 * How often the peak workloads sample the server's RSS, in ms, besides reading VmHWM: the bomb lasts a few hundred ms,
 * the slow consumer seconds (and its sampler must not take CPU from the server it measures).
 */
const PEAK_SAMPLE_MS: Partial<Record<ClientJob['kind'], number>> = { bomb: 5, 'slow-consumer': 50 };

interface Options {
  readonly quick: boolean;
  /** Only these workloads (--workload a or --workload a,b), or all of them. */
  readonly only: readonly string[] | null;
  readonly rounds: number;
  /** Only these targets (--targets a,b), for profiling one server. */
  readonly targets: readonly string[] | null;
}

/**
 * Reads the flags. `npm run bench --quick` (without `--`) hands the flag to npm, which passes it on as
 * `npm_config_quick`; both spellings work.
 */
function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv): Options {
  const fromNpm = (name: string): string | undefined => (env[`npm_config_${name}`] === '' ? undefined : env[`npm_config_${name}`]);
  const quick = argv.includes('--quick') || fromNpm('quick') === 'true';
  let workload: string | null = fromNpm('workload') ?? null;
  let targets: string[] | null = null;
  let rounds = fromNpm('rounds') !== undefined ? Number(fromNpm('rounds')) : quick ? 2 : 5;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--workload') workload = argv[++i] ?? null;
    else if (arg.startsWith('--workload=')) workload = arg.slice('--workload='.length);
    else if (arg === '--rounds') rounds = Number(argv[++i]);
    else if (arg === '--targets') targets = (argv[++i] ?? '').split(',');
    else if (arg !== '--quick') throw new Error(`unknown argument ${arg}: use --quick, --workload NAME[,NAME], --rounds N, --targets A,B`);
  }
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds takes a positive integer');
  return { quick, only: workload === null ? null : workload.split(','), rounds, targets };
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process, in seconds (/proc/<pid>/stat fields 14 and 15). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** A `/proc/<pid>/status` field in bytes (VmRSS, VmHWM). */
function statusBytes(pid: number, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match === null ? Number.NaN : Number(match[1]) * 1024;
}

/** Resets VmHWM to the current RSS (Linux 4.0+); false when the kernel refuses. */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs node with the soft fd limit raised to the hard one (10 000 idle connections need 10 000 descriptors). */
function spawnNode(args: readonly string[], ipc: boolean, cwd: string, extraEnv: NodeJS.ProcessEnv = {}): ChildProcess {
  const env: NodeJS.ProcessEnv = {};
  // Each target runs with its defaults: none of this package's WEBSOCKETS_* variables leak in (the wss targets get
  // the bench's certificate, and only that, through extraEnv).
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('WEBSOCKETS_')) env[key] = value;
  Object.assign(env, extraEnv);
  env.PORT = '0';
  return spawn('/bin/sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', process.execPath, ...args], {
    cwd,
    env,
    stdio: ipc ? ['ignore', 'inherit', 'inherit', 'ipc'] : ['ignore', 'pipe', 'inherit'],
  });
}

interface Started {
  readonly child: ChildProcess;
  readonly port: number;
  readonly pid: number;
}

/** Where `measure()` finds its compiled scripts, and how long its windows are. */
export interface MeasureOptions {
  /** --quick: shorter warm-up and measured windows than the workload's own. */
  readonly quick: boolean;
  /**
   * A compiled tree mirroring the repository (dist/ for `npm run bench`) holding bench/client.js, bench/gc-hook.js
   * and the scripts of the targets measured (TARGETS names them under dist/). Processes start in its parent.
   */
  readonly built: string;
}

/** A target's script, which TARGETS names relative to the package root as `dist/...`, inside `built`. */
function targetScript(name: string, built: string): string[] {
  const [script, ...args] = TARGETS[name]!.script;
  return [path.join(built, path.relative('dist', script!)), ...args];
}

async function startTarget(name: string, options: MeasureOptions): Promise<Started> {
  // BENCH_TARGET_NODE_OPTIONS adds node flags to every target, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile.
  const extra = (process.env.BENCH_TARGET_NODE_OPTIONS ?? '').split(' ').filter((flag) => flag !== '');
  const gcHook = pathToFileURL(path.join(options.built, 'bench', 'gc-hook.js')).href;
  const tls = TARGETS[name]!.tls === true ? benchCertificate() : undefined;
  // `ours-tls` is `npm run echo` with its TLS variables; `ws-tls` reads the same files from BENCH_TLS_*.
  const env: NodeJS.ProcessEnv =
    tls === undefined ? {} : { WEBSOCKETS_TLS_CERT: tls.certFile, WEBSOCKETS_TLS_KEY: tls.keyFile, BENCH_TLS_CERT: tls.certFile, BENCH_TLS_KEY: tls.keyFile };
  const child = spawnNode(['--expose-gc', '--import', gcHook, ...extra, ...targetScript(name, options.built)], false, path.dirname(options.built), env);
  const lines = createInterface({ input: child.stdout! });
  const ready = await new Promise<{ port: number; pid: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s`)), 30_000);
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before it was ready`)));
    lines.on('line', (line) => {
      try {
        const parsed = JSON.parse(line) as { ready?: boolean; port?: number; pid?: number };
        if (parsed.ready === true && typeof parsed.port === 'number' && typeof parsed.pid === 'number') {
          clearTimeout(timer);
          resolve({ port: parsed.port, pid: parsed.pid });
        }
      } catch {
        // Not the ready line: a log line of the target.
      }
    });
  });
  child.removeAllListeners('exit');
  return { child, ...ready };
}

/** Ends a child process with `signal` (SIGKILL after 5 s) and waits until it has exited. */
async function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/**
 * One target in one round: start it, run the load client against it, read /proc, stop it; both processes have
 * exited when it resolves. Once the target is up, a failed measurement resolves too, as a sample with `error` set
 * and a NaN value; it rejects when the target does not start.
 */
export async function measure(workload: Workload, targetName: string, round: number, options: MeasureOptions): Promise<Sample> {
  const server = await startTarget(targetName, options);
  const socketIo = TARGETS[targetName]!.socketIo === true;
  const tlsCa = TARGETS[targetName]!.tls === true ? benchCertificate().certFile : null;
  const job: ClientJob = {
    ...JOB_DEFAULTS,
    ...workload.job,
    // --quick: shorter windows too (the rounds are fewer as well).
    ...(options.quick ? { warmupMs: 300, durationMs: 1000 } : {}),
    port: server.port,
    path: targetName.startsWith('nest') ? '/ws' : '/',
    raw: targetName === 'tcp',
    nestJson: targetName.startsWith('nest') && !socketIo,
    socketIo,
    tlsCa,
  };
  const sampleMs = PEAK_SAMPLE_MS[workload.job.kind];
  const client = spawnNode([path.join(options.built, 'bench', 'client.js')], true, path.dirname(options.built));
  const pid = server.pid;
  let cpuStart = 0;
  let timeStart = 0;
  let serverCpuPercent = Number.NaN;
  let baseline = Number.NaN;
  let held = Number.NaN;
  let peakSampled = 0;
  let peakReset = false;
  /** The peak read when the client said its load was over (slow consumer), before it lets the server drain. */
  let peakMeasured = Number.NaN;
  let sampler: NodeJS.Timeout | undefined;
  let opened: Record<string, unknown> = {};
  try {
    const result = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no result within ${RUN_TIMEOUT_MS / 1000} s`)), RUN_TIMEOUT_MS);
      client.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`load client exited with ${code}`));
      });
      client.on('message', (message: Record<string, unknown>) => {
        void (async () => {
          switch (message.type) {
            case 'mark':
              if (message.phase === 'start') {
                cpuStart = cpuSeconds(pid);
                timeStart = performance.now();
              } else {
                serverCpuPercent = ((cpuSeconds(pid) - cpuStart) / ((performance.now() - timeStart) / 1000)) * 100;
              }
              break;
            case 'warm':
              process.kill(pid, 'SIGUSR2');
              await sleep(SETTLE_MS);
              baseline = statusBytes(pid, 'VmRSS');
              if (sampleMs !== undefined) {
                peakReset = resetPeak(pid);
                peakSampled = baseline;
                sampler = setInterval(() => {
                  try {
                    peakSampled = Math.max(peakSampled, statusBytes(pid, 'VmRSS'));
                  } catch {
                    // The target is gone: the outcome says how.
                  }
                }, sampleMs);
              }
              client.send({ cmd: 'go' });
              break;
            case 'measured':
              clearInterval(sampler);
              peakMeasured = peak(pid, peakSampled, peakReset);
              client.send({ cmd: 'finish' });
              break;
            case 'opened':
              opened = message;
              process.kill(pid, 'SIGUSR2');
              await sleep(SETTLE_MS);
              held = statusBytes(pid, 'VmRSS');
              client.send({ cmd: 'finish' });
              break;
            case 'result':
              clearTimeout(timer);
              client.removeAllListeners('exit');
              resolve(message);
              break;
            case 'error':
              clearTimeout(timer);
              client.removeAllListeners('exit');
              reject(new Error(String(message.message)));
              break;
            default:
              break;
          }
        })().catch(reject);
      });
      client.send(job);
    });
    let value: number;
    const detail: Record<string, unknown> = { ...result };
    delete detail.type;
    switch (workload.job.kind) {
      case 'echo':
        value = Number(result.messagesPerSecond);
        break;
      case 'handshake':
        value = Number(result.handshakesPerSecond);
        break;
      case 'idle':
      case 'deflate-memory':
        value = (held - baseline) / Number(opened.open) / 1024;
        Object.assign(detail, { baselineBytes: baseline, heldBytes: held });
        break;
      case 'bomb':
      case 'slow-consumer': {
        clearInterval(sampler);
        const peakBytes = Number.isNaN(peakMeasured) ? peak(pid, peakSampled, peakReset) : peakMeasured;
        value = (peakBytes - baseline) / 1024 / 1024;
        Object.assign(detail, { baselineBytes: baseline, peakBytes, peakFromKernel: peakReset, alive: server.child.exitCode === null });
        break;
      }
      case 'fanout':
        value = Number(result.deliveriesPerSecond);
        break;
      default:
        value = Number.NaN;
    }
    return { round, target: targetName, value, serverCpuPercent, clientCpuPercent: Number(result.clientCpuPercent), detail };
  } catch (error) {
    return { round, target: targetName, value: Number.NaN, serverCpuPercent, clientCpuPercent: Number.NaN, detail: {}, error: String(error) };
  } finally {
    clearInterval(sampler);
    // The client has reported or failed: it need not end cleanly, only before the next measurement starts.
    await stop(client, 'SIGKILL');
    await stop(server.child, 'SIGTERM');
  }
}

/** The highest RSS seen: the sampled one, or the kernel's VmHWM since the reset when it took one. */
function peak(pid: number, sampled: number, fromKernel: boolean): number {
  try {
    return fromKernel ? Math.max(sampled, statusBytes(pid, 'VmHWM')) : sampled;
  } catch {
    // The target died: the sampled peak is all there is.
    return sampled;
  }
}

function describe(sample: Sample, workload: Workload): string {
  if (sample.error !== undefined) return `${sample.target} FAILED (${sample.error})`;
  let text = `${sample.target} ${formatNumber(sample.value)}`;
  if (workload.outcomes !== undefined) {
    const outcomes = (sample.detail.outcomes as string[] | undefined) ?? [];
    const counts = new Map<string, number>();
    for (const outcome of outcomes) counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
    text += ` [${[...counts].map(([outcome, n]) => `${n}x ${outcome}`).join(', ')}]`;
  }
  if (Number.isFinite(sample.serverCpuPercent)) text += ` (cpu ${sample.serverCpuPercent.toFixed(0)}%)`;
  return text;
}

function machine(): RunResult['machine'] {
  const cpus = os.cpus();
  let fdLimit = 'unknown';
  try {
    fdLimit = execFileSync('/bin/sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
  } catch {
    // Left unknown.
  }
  return {
    cpu: `${cpus[0]?.model ?? 'unknown'} x ${cpus.length}`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    fdLimit,
  };
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2), process.env);
  const all = workloads(options.quick);
  const unknown = (options.only ?? []).filter((name) => !all.some((workload) => workload.name === name));
  if (unknown.length > 0) throw new Error(`unknown workload ${unknown.join(', ')}: use one of ${all.map((w) => w.name).join(', ')}`);
  const named = options.only === null ? all : all.filter((workload) => options.only!.includes(workload.name));
  const selected = options.targets === null ? named : named.map((workload) => ({ ...workload, targets: workload.targets.filter((t) => options.targets!.includes(t)) }));
  const started = new Date();
  const run: RunResult = { started: started.toISOString(), quick: options.quick, rounds: options.rounds, machine: machine(), workloads: [] };
  process.stdout.write(`nestjs-websockets benchmark: ${options.rounds} rounds, ${run.machine.cpu}, Node ${run.machine.node}\n`);
  for (const workload of selected) {
    process.stdout.write(`\n${workload.name}: ${workload.title}\n`);
    const samples: Sample[] = [];
    for (let round = 0; round < options.rounds; round++) {
      const order = workload.targets.map((_, i) => workload.targets[(i + round) % workload.targets.length]!);
      const roundSamples: Sample[] = [];
      for (const target of order) {
        roundSamples.push(
          await measure(workload, target, round, { quick: options.quick, built: DIST }).catch((error: unknown) => ({
            round, target, value: Number.NaN, serverCpuPercent: Number.NaN, clientCpuPercent: Number.NaN, detail: {}, error: String(error),
          })),
        );
      }
      samples.push(...roundSamples);
      const ratios = workload.pairs.filter(([a, b]) => order.includes(a) && order.includes(b)).map(([a, b]) => {
        const x = roundSamples.find((s) => s.target === a)?.value ?? Number.NaN;
        const y = roundSamples.find((s) => s.target === b)?.value ?? Number.NaN;
        return `${a}/${b} ${(x / y).toFixed(2)}x`;
      });
      process.stdout.write(
        `  round ${round + 1}/${options.rounds} ${workload.unit}: ${roundSamples.map((s) => describe(s, workload)).join('; ')}` +
          (ratios.length > 0 ? ` | ${ratios.join(', ')}` : '') +
          '\n',
      );
    }
    run.workloads.push({
      name: workload.name, title: workload.title, unit: workload.unit, higherIsBetter: workload.higherIsBetter, targets: [...workload.targets],
      pairs: workload.pairs.map(([a, b]) => [a, b] as [string, string]), samples, ...(workload.outcomes === undefined ? {} : { outcomes: workload.outcomes }),
    });
  }
  run.finished = new Date().toISOString();

  const markdown = renderMarkdown(run);
  const svg = renderSvg(run);
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const resultsDir = path.join(ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(path.join(resultsDir, `${stamp}.json`), `${JSON.stringify(run, null, 2)}\n`);
  writeFileSync(path.join(resultsDir, `${stamp}.md`), markdown);
  writeFileSync(path.join(resultsDir, `${stamp}.svg`), svg);
  if (!options.quick && options.only === null && options.targets === null) {
    writeFileSync(path.join(ROOT, 'bench', 'latest.md'), markdown);
    writeFileSync(path.join(ROOT, 'bench', 'latest.svg'), svg);
  }
  process.stdout.write(`\n${markdown}\nWrote bench/results/${stamp}.{json,md,svg}${!options.quick && options.only === null && options.targets === null ? ', bench/latest.md and bench/latest.svg' : ''}\n`);
  // HTTP/2 against HTTP/1.1 (issue 22) is measured by its own runner, which starts one server speaking both: part of
  // every run that is not narrowed to some workloads or targets (it writes bench/http2-latest.md on a full one).
  if (options.only === null && options.targets === null) {
    process.stdout.write('\nhttp2: WebSockets over HTTP/2 against HTTP/1.1, both wss (bench/http2.ts)\n');
    execFileSync(process.execPath, [path.join(DIST, 'bench', 'http2.js'), ...(options.quick ? ['--quick'] : [])], { stdio: 'inherit' });
  }
}

// Only when run as a script (`node dist/bench/run.js`), not when a test imports measure(). Node resolves links in
// import.meta.url, hence the realpath of the script named on the command line.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
