/**
 * Real proxies for the client's tests, started on 127.0.0.1 on free ports: Debian's tinyproxy (HTTP CONNECT, with or
 * without Basic authentication, in the foreground with a config file in a temp dir) and microsocks (SOCKS5, with or
 * without a user). `stopProxies()` in `afterAll` kills every one started and removes its files.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MICROSOCKS_PATH, TINYPROXY_PATH } from './peers.js';
import { freePort } from './net.js';

/** A proxy process, listening. */
export interface ProxyPeer {
  /** `http://127.0.0.1:PORT` or `socks5://127.0.0.1:PORT`, without credentials. */
  readonly url: string;
  readonly port: number;
  /** What the proxy printed so far (tinyproxy logs each request: `CONNECT 127.0.0.1:PORT HTTP/1.1`). */
  output(): string;
  /** Kills the process and waits for it to exit. */
  stop(): Promise<void>;
}

/** A user name and password. */
export interface Credentials {
  readonly user: string;
  readonly password: string;
}

const READY_TIMEOUT_MS = 5000;
/** freePort() is racy: another process can take the port before the proxy binds it. */
const START_ATTEMPTS = 3;
const running = new Set<ProxyPeer>();

/** tinyproxy as an HTTP CONNECT proxy; with `basicAuth`, it answers 407 without the right credentials. */
export async function startTinyproxy(options: { basicAuth?: Credentials; connectPorts?: readonly number[] } = {}): Promise<ProxyPeer> {
  return start('tinyproxy', async (port, dir) => {
    const lines = [
      `Port ${port}`,
      'Listen 127.0.0.1',
      'Timeout 30',
      'MaxClients 20',
      // Info logs every request line, which the tests read to see that a connection went through the proxy.
      'LogLevel Info',
      'Allow 127.0.0.1',
      ...(options.basicAuth === undefined ? [] : [`BasicAuth ${options.basicAuth.user} ${options.basicAuth.password}`]),
      ...(options.connectPorts ?? []).map((p) => `ConnectPort ${p}`),
    ];
    const conf = path.join(dir, 'tinyproxy.conf');
    writeFileSync(conf, `${lines.join('\n')}\n`);
    return spawn(TINYPROXY_PATH, ['-d', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  });
}

/** microsocks as a SOCKS5 proxy; with `auth`, it accepts only that user name and password (RFC 1929). */
export async function startMicrosocks(options: { auth?: Credentials } = {}): Promise<ProxyPeer> {
  return start('socks5', async (port) => {
    const auth = options.auth === undefined ? [] : ['-u', options.auth.user, '-P', options.auth.password];
    return spawn(MICROSOCKS_PATH, ['-i', '127.0.0.1', '-p', String(port), ...auth], { stdio: ['ignore', 'pipe', 'pipe'] });
  });
}

/** Kills every proxy still running; call it in `afterAll`. */
export async function stopProxies(): Promise<void> {
  await Promise.all([...running].map((proxy) => proxy.stop()));
}

async function start(scheme: 'tinyproxy' | 'socks5', launch: (port: number, dir: string) => Promise<ChildProcess>): Promise<ProxyPeer> {
  let lastError: unknown;
  for (let i = 0; i < START_ATTEMPTS; i++) {
    const port = await freePort();
    const dir = mkdtempSync(path.join(tmpdir(), `nestjs-websockets-${scheme}-`));
    const child = await launch(port, dir);
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = once(child, 'exit');
    const proxy: ProxyPeer = {
      url: `${scheme === 'tinyproxy' ? 'http' : 'socks5'}://127.0.0.1:${port}`,
      port,
      output: () => output,
      stop: async () => {
        running.delete(proxy);
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited;
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
    running.add(proxy);
    try {
      await waitUntilListening(port, child);
      return proxy;
    } catch (error) {
      lastError = new Error(`${scheme} did not start on port ${port}: ${(error as Error).message}; output: ${output}`);
      await proxy.stop();
    }
  }
  throw lastError;
}

/** Polls until the port accepts a connection, or fails when the process exits first or the time is up. */
async function waitUntilListening(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited with ${child.exitCode ?? child.signalCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`not listening after ${READY_TIMEOUT_MS} ms`);
}
