/**
 * A real `redis-server` (Debian package redis-server) for the tests: started on 127.0.0.1 at a free port with no
 * persistence (`--save '' --appendonly no`), stopped after. It can be stopped and started again on the same port, to
 * test what the broadcast bus does while Redis is away. Use inside `describeWithPeer('redis', ...)`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, withTimeout } from './net.js';

/** Bound on start-up and shutdown of the server. */
const REDIS_START_MS = 10_000;
const REDIS_STOP_MS = 10_000;

/** A running (or stopped) redis-server. */
export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** Whether the process is up. */
  readonly running: boolean;
  /** Sends one command (RESP) on a fresh connection and resolves with the raw reply. */
  command(...args: Array<string | Buffer>): Promise<Buffer>;
  /** Stops the server (SIGTERM, SIGKILL after the bound). Safe to call twice. */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  /** Stops it for good and removes its directory. Safe to call twice. */
  close(): Promise<void>;
}

/** Encodes a command as a RESP array of bulk strings. */
function resp(args: ReadonlyArray<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === 'string' ? Buffer.from(arg) : arg;
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/**
 * Starts `redis-server` on 127.0.0.1 at a free port; resolves once it accepts connections.
 * @param extraArgs more arguments (`--cluster-enabled yes` ...): its directory is its own, so a restart keeps its files
 */
export async function startRedis(extraArgs: readonly string[] = []): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nestjs-websockets-redis-'));
  let child: ChildProcess | undefined;
  let output = '';

  const start = async (): Promise<void> => {
    output = '';
    const process_ = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'notice', ...extraArgs],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = process_;
    process_.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    process_.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = once(process_, 'exit').then(([code]) => {
      throw new Error(`redis-server exited with ${String(code)} before accepting connections:\n${output}`);
    });
    const ready = (async () => {
      // Poll with PING: the log line's wording differs between Redis versions.
      for (;;) {
        const reply = await command(port, ['PING']).catch(() => undefined);
        if (reply?.toString() === '+PONG\r\n') return;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    await withTimeout(Promise.race([ready, exited]), REDIS_START_MS, `redis-server to start on port ${port}`);
    exited.catch(() => undefined);
  };

  const stop = async (): Promise<void> => {
    const process_ = child;
    child = undefined;
    if (process_ === undefined || process_.exitCode !== null || process_.signalCode !== null) return;
    const exited = once(process_, 'exit');
    process_.kill('SIGTERM');
    const timer = setTimeout(() => process_.kill('SIGKILL'), REDIS_STOP_MS);
    await exited;
    clearTimeout(timer);
  };

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    command: (...args) => command(port, args),
    start,
    stop,
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One command on a fresh connection: resolves with the first reply chunk (enough for the simple replies tests use). */
async function command(port: number, args: ReadonlyArray<string | Buffer>): Promise<Buffer> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  try {
    await withTimeout(once(socket, 'connect'), 2000, `a connection to redis on port ${port}`);
    socket.write(resp(args));
    const [chunk] = (await withTimeout(once(socket, 'data'), 2000, 'a reply from redis')) as [Buffer];
    return chunk;
  } finally {
    socket.destroy();
  }
}
