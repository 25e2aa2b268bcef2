/**
 * The sample app and the echo server on a Unix socket, as processes started the way a user (or systemd, behind
 * nginx) would: WEBSOCKETS_SOCKET_PATH and WEBSOCKETS_SOCKET_PERMISSIONS in the environment, no port. Our client
 * reaches them with `ws+unix:` URLs; SIGTERM stops them and removes the socket file.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from '../../lib/node/client.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import { compileForChild, ROOT } from '../support/compile.js';
import { WAIT_MS, withTimeout } from '../support/net.js';

const BUILD_TIMEOUT_MS = 120_000;
const READY_TIMEOUT_MS = 30_000;

let buildDir: string;
let socketDir: string;
const children = new Set<ChildProcess>();
const clients: WebSocket[] = [];

beforeAll(async () => {
  const compiled = await compileForChild('nestjs-websockets-socket-path-', ['sample/main.ts', 'sample/echo-server.ts'], {
    parent: tmpdir(),
    timeoutMs: BUILD_TIMEOUT_MS,
  });
  buildDir = compiled.dir;
  mkdirSync(path.join(buildDir, 'node_modules'));
  for (const name of readdirSync(path.join(ROOT, 'node_modules'))) {
    if (!name.startsWith('.')) symlinkSync(path.join(ROOT, 'node_modules', name), path.join(buildDir, 'node_modules', name));
  }
  socketDir = mkdtempSync(path.join(tmpdir(), 'nestjs-websockets-socket-path-run-'));
}, BUILD_TIMEOUT_MS + 10_000);

afterEach(async () => {
  for (const ws of clients.splice(0)) ws.terminate();
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
  children.clear();
});

afterAll(() => {
  for (const dir of [buildDir, socketDir]) if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** Starts a compiled entry with `env` and resolves once a line of its output matches `ready`. */
async function start(entry: string, env: Record<string, string>, ready: RegExp): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, [path.join(buildDir, entry)], {
    cwd: buildDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    // No PORT, no token: the socket path is what decides where it listens.
    env: { PATH: process.env.PATH ?? '', NO_COLOR: '1', NODE_NO_WARNINGS: '1', ...env },
  });
  children.add(child);
  let output = '';
  const line = new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const found = output.split('\n').find((candidate) => ready.test(candidate));
      if (found !== undefined) resolve(found);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${entry} exited with ${code}: ${output}`)));
  });
  return { child, line: await withTimeout(line, READY_TIMEOUT_MS, `${entry} to be ready`) };
}

/** SIGTERM, then how the process ended: `0`, or the signal that Nest's shutdown hooks re-raise once the app is closed. */
async function stop(child: ChildProcess): Promise<number | string | null> {
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
  child.kill('SIGTERM');
  const [code, signal] = await withTimeout(exited, WAIT_MS, 'exit after SIGTERM');
  return code ?? signal;
}

async function reply(ws: WebSocket, message: string): Promise<string> {
  const next = withTimeout(once(ws, 'message') as Promise<[string]>, WAIT_MS, 'a reply');
  await ws.send(message);
  return (await next)[0];
}

describe('on a Unix socket (WEBSOCKETS_SOCKET_PATH)', () => {
  it('the sample app serves its gateway at /ws, with the permissions of WEBSOCKETS_SOCKET_PERMISSIONS', async () => {
    const file = path.join(socketDir, 'sample.sock');
    const { child, line } = await start('sample/main.js', { WEBSOCKETS_SOCKET_PATH: file, WEBSOCKETS_SOCKET_PERMISSIONS: '660' }, /on the Unix socket/);
    expect(line).toContain(`ws+unix:${file}:/ws`);
    expect(statSync(file).mode & 0o777).toBe(0o660);
    const ws = await connect(`ws+unix:${file}:/ws`, { env: {}, pingIntervalMs: null });
    clients.push(ws);
    expect(JSON.parse(await reply(ws, JSON.stringify({ event: 'echo', data: 'over a socket' })))).toEqual({ event: 'echo', data: 'over a socket' });
    const closed = withTimeout(once(ws, 'close') as Promise<[number]>, WAIT_MS, 'close 1001');
    expect(await stop(child)).toBe('SIGTERM');
    expect((await closed)[0]).toBe(1001);
    expect(existsSync(file)).toBe(false);
  });

  it('the echo server prints the socket path in its ready line and echoes', async () => {
    const file = path.join(socketDir, 'echo.sock');
    const { child, line } = await start('sample/echo-server.js', { WEBSOCKETS_SOCKET_PATH: file }, /^\{"ready"/);
    expect(JSON.parse(line)).toEqual({ ready: true, socketPath: file, pid: child.pid });
    const ws = await connect(`ws+unix:${file}`, { env: {}, pingIntervalMs: null });
    clients.push(ws);
    expect(await reply(ws, 'echo me')).toBe('echo me');
    expect(await stop(child)).toBe(0);
    expect(existsSync(file)).toBe(false);
  });
});
