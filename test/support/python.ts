/**
 * Python `websockets` as an independent peer: run inline code or the scripts in `test/support/python/` with
 * Debian's `/usr/bin/python3` as a child process, always under a time bound. The scripts work with the legacy API
 * (websockets < 13, Debian bookworm ships 10.4) and with the new asyncio API (`_compat.py` picks one).
 * Call these inside `describeWithPeer('python', ...)`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterAll } from '@jest/globals';
import { PYTHON_PATH } from './peers.js';
import { withTimeout } from './net.js';

/** Folder of the Python scripts. */
export const PYTHON_SCRIPTS_DIR = fileURLToPath(new URL('./python/', import.meta.url));

/** Default bound on a Python run. */
const DEFAULT_TIMEOUT_MS = 15_000;

/** How a Python run ended. */
export interface PythonResult {
  /** Exit status, or `null` when killed by a signal. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** True when the run was killed for going over its time bound. */
  readonly timedOut: boolean;
}

/** Options of a Python run. */
export interface PythonOptions {
  /** Killed (SIGKILL) after this many ms. @default 15000 */
  timeoutMs?: number;
  /** Extra environment variables. */
  env?: Readonly<Record<string, string>>;
}

/** The version of Python websockets, e.g. `10.4`. @throws Error when it cannot be imported */
export function pythonWebsocketsVersion(): string {
  const result = spawnSync(PYTHON_PATH, ['-c', 'import websockets; print(websockets.__version__)'], {
    encoding: 'utf8',
    timeout: DEFAULT_TIMEOUT_MS,
  });
  if (result.status !== 0) throw new Error(`cannot import websockets with ${PYTHON_PATH}: ${result.stderr || result.error?.message}`);
  return result.stdout.trim();
}

/** True when the installed websockets has the new asyncio API (`websockets.asyncio.client`, version 13 and later). */
export function hasAsyncioApi(): boolean {
  const [major = 0] = pythonWebsocketsVersion().split('.').map(Number);
  return major >= 13;
}

const running = new Set<ChildProcess>();
// A Python peer must never outlive its test file, even when a test forgets to stop it. (Not process.on('exit'):
// jest gives each test file its own copy of `process`, whose 'exit' never fires.) The scripts also bound their own
// lifetime, for a test process that is killed outright.
afterAll(() => {
  for (const child of running) child.kill('SIGKILL');
});

function start(args: readonly string[], options: PythonOptions): ChildProcess {
  const child = spawn(PYTHON_PATH, ['-u', ...args], {
    cwd: PYTHON_SCRIPTS_DIR,
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

/** Collects the output of a child until it exits, killing it after `timeoutMs`. */
function collect(child: ChildProcess, timeoutMs: number): Promise<PythonResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  return new Promise<PythonResult>((resolve, reject) => {
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    // 'close' (not 'exit') so that all of stdout and stderr has been read.
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** Runs inline Python code (`python3 -c code args...`) and resolves with its output once it exits. */
export function runPythonCode(code: string, args: readonly string[] = [], options: PythonOptions = {}): Promise<PythonResult> {
  return collect(start(['-c', code, ...args], options), options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
}

/** Runs a script of `test/support/python/` (e.g. `client.py`) and resolves with its output once it exits. */
export function runPythonScript(script: string, args: readonly string[] = [], options: PythonOptions = {}): Promise<PythonResult> {
  return collect(start([script, ...args], options), options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
}

/** A long-running Python process whose stdout is read as JSON lines. */
export interface PythonProcess {
  readonly child: ChildProcess;
  /** Every JSON line printed so far, parsed. */
  events(): ReadonlyArray<Record<string, unknown>>;
  /** Resolves with the first event (past or future) that matches, or rejects after `ms` or when the process exits. */
  waitForEvent(predicate: (event: Record<string, unknown>) => boolean, ms: number, what: string): Promise<Record<string, unknown>>;
  /** SIGTERM, then SIGKILL after 3 s; resolves with the output. Safe to call twice. */
  stop(): Promise<PythonResult>;
}

/** Starts a script of `test/support/python/` that prints JSON lines, such as `echo_server.py`. */
export function spawnPythonScript(script: string, args: readonly string[] = [], options: PythonOptions = {}): PythonProcess {
  const child = start([script, ...args], options);
  const result = collect(child, options.timeoutMs ?? 60_000);
  const parsed: Record<string, unknown>[] = [];
  const listeners = new Set<() => void>();
  let buffer = '';
  let exited = false;
  child.stdout?.on('data', (chunk: string) => {
    buffer += chunk;
    let newline: number;
    while ((newline = buffer.indexOf('\n')) !== -1) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line !== '') parsed.push(JSON.parse(line) as Record<string, unknown>);
    }
    for (const listener of [...listeners]) listener();
  });
  const markExited = (): void => {
    exited = true;
    for (const listener of [...listeners]) listener();
  };
  result.then(markExited, markExited);

  return {
    child,
    events: () => parsed,
    waitForEvent(predicate, ms, what) {
      let listener: () => void = () => undefined;
      const found = new Promise<Record<string, unknown>>((resolve, reject) => {
        listener = (): void => {
          const event = parsed.find(predicate);
          if (event !== undefined) resolve(event);
          else if (exited) {
            void result.then(
              (r) => reject(new Error(`python ${script} exited (${r.code ?? r.signal}) before ${what}: ${r.stderr.trim()}`)),
              reject,
            );
          }
        };
        listeners.add(listener);
        listener();
      });
      return withTimeout(found, ms, what).finally(() => listeners.delete(listener));
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await once(child, 'exit').catch(() => undefined);
        clearTimeout(killer);
      }
      return result;
    },
  };
}

/** A running Python websockets echo server (`echo_server.py`). */
export interface PythonEchoServer {
  readonly port: number;
  readonly process: PythonProcess;
  stop(): Promise<PythonResult>;
}

/** Options of the Python echo server. */
export interface PythonEchoServerOptions {
  host?: string;
  /** Serve wss with these PEM files. */
  tls?: { readonly certFile: string; readonly keyFile: string };
  /** Accept permessage-deflate. @default true */
  compression?: boolean;
  maxSize?: number;
  subprotocols?: readonly string[];
  /** Bound on the start. @default 10000 */
  startTimeoutMs?: number;
}

/** Starts `echo_server.py` on a free port and resolves once it listens. Stop it in `afterEach`. */
export async function startPythonEchoServer(options: PythonEchoServerOptions = {}): Promise<PythonEchoServer> {
  const args = ['--host', options.host ?? '127.0.0.1', '--port', '0'];
  if (options.tls) args.push('--certfile', options.tls.certFile, '--keyfile', options.tls.keyFile);
  if (options.compression === false) args.push('--no-compression');
  if (options.maxSize !== undefined) args.push('--max-size', String(options.maxSize));
  for (const subprotocol of options.subprotocols ?? []) args.push('--subprotocol', subprotocol);
  const server = spawnPythonScript('echo_server.py', args);
  try {
    const ready = await server.waitForEvent((e) => e.event === 'ready', options.startTimeoutMs ?? 10_000, 'python echo server ready');
    return { port: ready.port as number, process: server, stop: () => server.stop() };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/** An event printed by `client.py`. */
export type PythonClientEvent =
  | { readonly event: 'open'; readonly subprotocol: string | null; readonly headers: ReadonlyArray<readonly [string, string]> }
  | { readonly event: 'message'; readonly type: 'text'; readonly data: string }
  | { readonly event: 'message'; readonly type: 'binary'; readonly hex: string }
  | { readonly event: 'closed'; readonly code: number | null; readonly reason: string }
  | { readonly event: 'error'; readonly type: string; readonly message: string };

/** Options of the Python client. */
export interface PythonClientOptions {
  /** Messages to send in order: strings as text, Buffers as binary. */
  messages?: ReadonlyArray<string | Buffer>;
  /** Replies to read; @default one per message sent */
  expect?: number;
  /** CA file to trust for wss. */
  cafile?: string;
  /** Offer permessage-deflate. @default true */
  compression?: boolean;
  maxSize?: number;
  subprotocols?: readonly string[];
  headers?: Readonly<Record<string, string>>;
  closeCode?: number;
  closeReason?: string;
  /** Bound on the whole run, in ms. @default 10000 */
  timeoutMs?: number;
}

/** Runs `client.py` against `url` and resolves with its events (an `error` event when it failed) and its output. */
export async function runPythonClient(url: string, options: PythonClientOptions = {}): Promise<{ events: PythonClientEvent[]; result: PythonResult }> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const args = [url, '--timeout', String(timeoutMs / 1000)];
  for (const message of options.messages ?? []) {
    if (typeof message === 'string') args.push(`--text=${message}`);
    else args.push(`--binary=${message.toString('hex')}`);
  }
  if (options.expect !== undefined) args.push('--expect', String(options.expect));
  if (options.cafile !== undefined) args.push('--cafile', options.cafile);
  if (options.compression === false) args.push('--no-compression');
  if (options.maxSize !== undefined) args.push('--max-size', String(options.maxSize));
  for (const subprotocol of options.subprotocols ?? []) args.push('--subprotocol', subprotocol);
  for (const [name, value] of Object.entries(options.headers ?? {})) args.push(`--header=${name}:${value}`);
  if (options.closeCode !== undefined) args.push('--close-code', String(options.closeCode));
  if (options.closeReason !== undefined) args.push(`--close-reason=${options.closeReason}`);
  // The script bounds itself; the extra 5 s cover the interpreter's start-up.
  const result = await runPythonScript('client.py', args, { timeoutMs: timeoutMs + 5000 });
  const events = result.stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as PythonClientEvent);
  return { events, result };
}
