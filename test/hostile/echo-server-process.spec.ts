/**
 * The echo server (sample/echo-server.ts, what `npm run echo` runs) in a process of its own, started as an operator
 * would: with WEBSOCKETS_TLS_CERT / _KEY in its environment it serves wss and nothing in plain text (it used to
 * answer a plain-text handshake with 101: a silent downgrade); under `ulimit -n 64`, a burst of connections over the
 * file-descriptor limit is logged once, with the limit and the fix (it used to leave no trace while clients were
 * reset). Compiled once with tsc into node_modules/.cache.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { closePeers, connectPeer } from '../nest/ws-peer.js';
import { compileForChild, ROOT, type CompiledTree } from '../support/compile.js';
import { makeTestCertificates } from '../support/certs.js';
import { destroyRawConnections, rawConnect, waitUntil, withTimeout } from '../support/net.js';
import { describeWithPeer } from '../support/peers.js';
import { upgradeRequest } from './peer.js';

const BUILD_TIMEOUT_MS = 90_000;
const READY_TIMEOUT_MS = 15_000;
let compiled: CompiledTree;
const children = new Set<ChildProcess>();
/** Sockets of the connection bursts, destroyed after each test. */
const burstSockets = new Set<net.Socket>();

beforeAll(async () => {
  compiled = await compileForChild('echo-process-', ['sample/echo-server.ts'], { timeoutMs: BUILD_TIMEOUT_MS });
}, BUILD_TIMEOUT_MS + 5000);

afterEach(async () => {
  endBursts();
  destroyRawConnections();
  await closePeers();
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
  children.clear();
});

afterAll(() => {
  compiled?.remove();
});

/** A running echo server: its port, and everything it wrote to stderr so far. */
interface EchoServer {
  readonly port: number;
  readonly child: ChildProcess;
  stderr(): string;
}

/**
 * Starts the compiled echo server with `env` added to this process's environment (minus any WEBSOCKETS_* of its
 * own), through `bash -c` so that `shellPrefix` (a `ulimit`, say) applies to it; resolves once it printed its ready line.
 */
async function startEcho(env: Record<string, string>, shellPrefix = ''): Promise<EchoServer> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('WEBSOCKETS_')));
  const child = spawn('bash', ['-c', `${shellPrefix}exec "$0" "$1"`, process.execPath, compiled.entry('sample/echo-server.ts')], {
    cwd: ROOT,
    env: { ...clean, ...env, PORT: '0', NODE_NO_WARNINGS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const ready = new Promise<{ port: number }>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout.split('\n').find((candidate) => candidate.startsWith('{"ready"'));
      if (line !== undefined) resolve(JSON.parse(line) as { port: number });
    });
    child.once('exit', (code) => reject(new Error(`the echo server exited with ${code}: ${stdout}${stderr}`)));
  });
  const { port } = await withTimeout(ready, READY_TIMEOUT_MS, 'the echo server to be ready');
  return { port, child, stderr: () => stderr };
}

describeWithPeer('openssl', 'the echo server with WEBSOCKETS_TLS_CERT and WEBSOCKETS_TLS_KEY', () => {
  it('serves wss, and answers a plain-text handshake with nothing (no 101)', async () => {
    const certs = await makeTestCertificates();
    const echo = await startEcho({ WEBSOCKETS_TLS_CERT: certs.server.certFile, WEBSOCKETS_TLS_KEY: certs.server.keyFile });
    const peer = await connectPeer(`wss://localhost:${echo.port}/`, { ca: certs.ca.cert });
    peer.ws.send('over tls');
    expect(await peer.nextRaw()).toEqual({ data: Buffer.from('over tls'), isBinary: false });
    const plain = await rawConnect(echo.port);
    await plain.write(upgradeRequest());
    expect((await plain.readUntilClose(5000)).includes('HTTP/1.1 101')).toBe(false);
  }, 30_000);

  it('refuses to start with only one of the two, naming both variables', async () => {
    const certs = await makeTestCertificates();
    await expect(startEcho({ WEBSOCKETS_TLS_CERT: certs.server.certFile })).rejects.toThrow(
      /echo server failed to start: a TLS certificate is configured without its key; set option tls\.key, env WEBSOCKETS_TLS_KEY as well, or remove option tls\.cert, env WEBSOCKETS_TLS_CERT/,
    );
  }, 30_000);
});

/**
 * Opens `count` TCP connections to `port` at once, each sending an upgrade request; resolves once each has connected
 * or failed. `lost()` counts those the server's side closed without a byte of answer: over the descriptor limit the
 * kernel resets them (or closes them, when the request had not arrived yet) before the server sees them.
 */
async function connectionBurst(port: number, count: number): Promise<{ lost: () => number }> {
  const lost = new Set<net.Socket>();
  await Promise.all(
    Array.from({ length: count }, async () => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      burstSockets.add(socket);
      let answered = false;
      socket.on('data', () => (answered = true));
      socket.on('error', () => undefined);
      socket.once('close', () => {
        if (!answered && burstSockets.has(socket)) lost.add(socket);
        burstSockets.delete(socket);
      });
      // Resolved by 'connect' or 'close', never rejected: a reset by the kernel over the limit (ECONNRESET) is one of
      // the outcomes counted, and `once(socket, 'connect')` would reject with it.
      await withTimeout(
        new Promise<void>((resolve) => {
          socket.once('connect', () => resolve());
          socket.once('close', () => resolve());
        }),
        5000,
        'a connection of the burst',
      );
      if (!socket.destroyed) socket.write(upgradeRequest());
    }),
  );
  return { lost: () => lost.size };
}

/** Connects a peer, trying again (for up to 10 s) while the server is still at its descriptor limit. */
async function untilConnected(url: string): Promise<Awaited<ReturnType<typeof connectPeer>>> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await connectPeer(url);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Destroys the sockets of the bursts so far (they no longer count as lost). */
function endBursts(): void {
  const sockets = [...burstSockets];
  burstSockets.clear();
  for (const socket of sockets) socket.destroy();
}

describe('the echo server at the file-descriptor limit (ulimit -n 64)', () => {
  const FD_LIMIT = 64;
  /** More connections than the process can hold with 64 descriptors. */
  const BURST = 100;
  const lines = (echo: EchoServer): string[] => echo.stderr().split('\n').filter((line) => line.includes('file descriptors'));

  it('logs it once per burst, with the limit and the fix, and serves again once descriptors are free', async () => {
    const echo = await startEcho({}, `ulimit -n ${FD_LIMIT}; `);
    const first = await connectionBurst(echo.port, BURST);
    await waitUntil(() => lines(echo).length > 0, 10_000, 'the log line', 50);
    const [line] = lines(echo);
    expect(line).toMatch(
      new RegExp(
        `^echo server: the process is out of file descriptors \\(EMFILE: its limit is ${FD_LIMIT}, ulimit -n\\): ` +
          `new clients are reset by the operating system before the server sees them; this server holds \\d+ ` +
          `connections\\. Set maxConnections \\(option maxConnections, env WEBSOCKETS_MAX_CONNECTIONS\\) below the limit ` +
          `so that clients over it get 503, or raise the limit \\(ulimit -n, LimitNOFILE= in a systemd unit\\)$`,
      ),
    );
    // Clients over the limit were dropped by the kernel, unseen by the server.
    await waitUntil(() => first.lost() > 0, 10_000, 'clients dropped over the limit', 50);
    // The burst goes on (the connections stay, more arrive): still one line.
    await connectionBurst(echo.port, 20);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(lines(echo).length).toBe(1);

    endBursts();
    // The server frees the burst's descriptors as it sees their closes; until then a new client can still be reset.
    const peer = await untilConnected(`ws://127.0.0.1:${echo.port}/`);
    peer.ws.send('after the burst');
    expect(await peer.nextRaw()).toEqual({ data: Buffer.from('after the burst'), isBinary: false });
    await closePeers();

    // Once the probe (every second) has found a free descriptor the burst is over, and the next one is logged again.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    await connectionBurst(echo.port, BURST);
    await waitUntil(() => lines(echo).length === 2, 10_000, 'a second log line', 50);
  }, 60_000);
});

describe('the compiled echo server', () => {
  it('starts in plain text without the TLS variables', async () => {
    const echo = await startEcho({});
    const peer = await connectPeer(`ws://127.0.0.1:${echo.port}/`);
    peer.ws.send('plain');
    expect(await peer.nextRaw()).toEqual({ data: Buffer.from('plain'), isBinary: false });
  }, 30_000);
});
