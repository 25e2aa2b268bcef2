/**
 * `npm run bench:http2`: WebSockets over HTTP/2 (RFC 8441) against WebSockets over HTTP/1.1, both wss, same server
 * (one listener with `http2: true` serves both), same client (`connect()` with and without `http2`).
 *
 * - handshake rate: connections opened per second (50 at a time): over HTTP/1.1 each one is a TCP and TLS handshake
 *   of its own, over HTTP/2 a stream on the one session;
 * - memory per connection: the server's heap + external + array buffers after a forced GC, with N idle connections
 *   open, minus the same with none, over N (and RSS for the record); the process is fresh for each protocol;
 * - echo throughput: C connections each keeping W messages of S bytes in flight for T seconds; over HTTP/2 all of
 *   them share one TCP connection (one congestion window, one kernel buffer), over HTTP/1.1 each has its own.
 *
 * The server runs in its own process (`node --expose-gc dist/bench/http2.js server`); the figures are medians over
 * the rounds, the two protocols alternating in order. Writes bench/http2-latest.md.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { connect } from '../lib/node/client.js';
import { WebSocketServer } from '../lib/node/server.js';
import type { WebSocket } from '../lib/node/websocket.js';

const HOST = '127.0.0.1';
const QUICK = process.argv.includes('--quick');
const ROUNDS = QUICK ? 1 : 3;
const HANDSHAKES = QUICK ? 200 : 1000;
const HANDSHAKE_CONCURRENCY = 50;
const IDLE_CONNECTIONS = QUICK ? 200 : 1000;
const ECHO_CONNECTIONS = 10;
const ECHO_WINDOW = 8;
const ECHO_SIZE = 16 * 1024;
const ECHO_SECONDS = QUICK ? 1.5 : 4;

type Protocol = 'h1' | 'h2';
const PROTOCOLS: readonly Protocol[] = ['h1', 'h2'];

interface MemoryReport {
  readonly heap: number;
  readonly rss: number;
  readonly clients: number;
}

// --- the server process --------------------------------------------------------------------------------------

async function serve(certFile: string, keyFile: string): Promise<void> {
  const server = new WebSocketServer({
    host: HOST,
    port: 0,
    tls: { cert: readFileSync(certFile), key: readFileSync(keyFile) },
    http2: true,
    pingIntervalMs: null,
    maxBufferedAmount: null,
    env: {},
  });
  server.on('connection', (ws: WebSocket) => {
    ws.on('message', (data: string | Buffer, isBinary: boolean) => void ws.send(data, { binary: isBinary }));
  });
  server.on('error', () => undefined);
  const address = await server.listen();
  const port = typeof address === 'string' ? 0 : address.port;
  process.stdout.write(`${JSON.stringify({ ready: true, port })}\n`);
  const gc = (globalThis as { gc?: () => void }).gc;
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'memory') {
      for (let i = 0; i < 3; i++) gc?.();
      await new Promise((resolve) => setTimeout(resolve, 200));
      gc?.();
      const usage = process.memoryUsage();
      const report: MemoryReport = { heap: usage.heapUsed + usage.external + usage.arrayBuffers, rss: usage.rss, clients: server.clients.size };
      process.stdout.write(`${JSON.stringify(report)}\n`);
    } else if (line === 'exit') {
      await server.close();
      process.exit(0);
    }
  }
}

// --- the measuring process -----------------------------------------------------------------------------------

class ServerProcess {
  readonly #child: ChildProcess;
  readonly #lines: AsyncIterator<string>;
  port = 0;

  constructor(certFile: string, keyFile: string) {
    this.#child = spawn(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), 'server', certFile, keyFile], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.#lines = createInterface({ input: this.#child.stdout! })[Symbol.asyncIterator]();
  }

  async start(): Promise<void> {
    this.port = (JSON.parse(await this.#line()) as { port: number }).port;
  }

  async memory(): Promise<MemoryReport> {
    this.#child.stdin!.write('memory\n');
    return JSON.parse(await this.#line()) as MemoryReport;
  }

  async stop(): Promise<void> {
    this.#child.stdin!.write('exit\n');
    await new Promise((resolve) => this.#child.once('exit', resolve));
  }

  async #line(): Promise<string> {
    const next = await this.#lines.next();
    if (next.done === true) throw new Error('the server process ended');
    return next.value;
  }
}

function open(port: number, protocol: Protocol, ca: Buffer): Promise<WebSocket> {
  return connect(`wss://localhost:${port}/`, { ca, http2: protocol === 'h2', pingIntervalMs: null, compression: false, env: {} });
}

async function closeAll(sockets: WebSocket[]): Promise<void> {
  await Promise.all(sockets.map((ws) => ws.close().catch(() => undefined)));
}

/** Connections opened per second, `HANDSHAKE_CONCURRENCY` at a time, each closed once open. */
async function handshakeRate(port: number, protocol: Protocol, ca: Buffer): Promise<number> {
  let started = 0;
  const opened: WebSocket[] = [];
  const begin = performance.now();
  const worker = async (): Promise<void> => {
    while (started < HANDSHAKES) {
      started++;
      opened.push(await open(port, protocol, ca));
    }
  };
  await Promise.all(Array.from({ length: HANDSHAKE_CONCURRENCY }, worker));
  const rate = HANDSHAKES / ((performance.now() - begin) / 1000);
  await closeAll(opened);
  return rate;
}

/** Bytes of server memory per idle connection, and the RSS growth per connection. */
async function memoryPerConnection(server: ServerProcess, protocol: Protocol, ca: Buffer): Promise<{ heap: number; rss: number }> {
  const before = await server.memory();
  const sockets: WebSocket[] = [];
  for (let i = 0; i < IDLE_CONNECTIONS; i += HANDSHAKE_CONCURRENCY) {
    sockets.push(...(await Promise.all(Array.from({ length: Math.min(HANDSHAKE_CONCURRENCY, IDLE_CONNECTIONS - i) }, () => open(server.port, protocol, ca)))));
  }
  const after = await server.memory();
  if (after.clients !== IDLE_CONNECTIONS) throw new Error(`the server holds ${after.clients} connections, not ${IDLE_CONNECTIONS}`);
  await closeAll(sockets);
  return { heap: (after.heap - before.heap) / IDLE_CONNECTIONS, rss: (after.rss - before.rss) / IDLE_CONNECTIONS };
}

/** Echoed bytes per second with `ECHO_CONNECTIONS` connections, `ECHO_WINDOW` messages in flight on each. */
async function echoThroughput(port: number, protocol: Protocol, ca: Buffer): Promise<number> {
  const sockets = await Promise.all(Array.from({ length: ECHO_CONNECTIONS }, () => open(port, protocol, ca)));
  const payload = Buffer.alloc(ECHO_SIZE, 0x61);
  let bytes = 0;
  let running = true;
  const begin = performance.now();
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          let inFlight = 0;
          ws.on('message', (data: Buffer) => {
            bytes += data.length;
            inFlight--;
            if (running) {
              inFlight++;
              void ws.send(payload);
            } else if (inFlight === 0) resolve();
          });
          for (let i = 0; i < ECHO_WINDOW; i++) {
            inFlight++;
            void ws.send(payload);
          }
          setTimeout(() => {
            running = false;
          }, ECHO_SECONDS * 1000);
        }),
    ),
  );
  const rate = bytes / ((performance.now() - begin) / 1000);
  await closeAll(sockets);
  return rate;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function measure(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nestjs-websockets-bench-http2-'));
  try {
    const certFile = path.join(dir, 'cert.pem');
    const keyFile = path.join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile,
      '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
    const ca = readFileSync(certFile);
    const results: Record<Protocol, { handshakes: number[]; heap: number[]; rss: number[]; echo: number[] }> = {
      h1: { handshakes: [], heap: [], rss: [], echo: [] },
      h2: { handshakes: [], heap: [], rss: [], echo: [] },
    };
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? PROTOCOLS : [...PROTOCOLS].reverse();
      for (const protocol of order) {
        // A fresh server per protocol and round: the memory baseline is not the other protocol's leftovers.
        const server = new ServerProcess(certFile, keyFile);
        await server.start();
        const memory = await memoryPerConnection(server, protocol, ca);
        results[protocol].heap.push(memory.heap);
        results[protocol].rss.push(memory.rss);
        results[protocol].handshakes.push(await handshakeRate(server.port, protocol, ca));
        results[protocol].echo.push(await echoThroughput(server.port, protocol, ca));
        await server.stop();
        process.stderr.write(`round ${round + 1}/${ROUNDS} ${protocol} done\n`);
      }
    }
    const m = (protocol: Protocol, key: 'handshakes' | 'heap' | 'rss' | 'echo'): number => median(results[protocol][key]);
    const row = (name: string, key: 'handshakes' | 'heap' | 'rss' | 'echo', unit: (v: number) => string): string =>
      `| ${name} | ${unit(m('h1', key))} | ${unit(m('h2', key))} | ${(m('h2', key) / m('h1', key)).toFixed(2)} |`;
    const kib = (v: number): string => `${(v / 1024).toFixed(1)} KiB`;
    const lines = [
      '# WebSockets over HTTP/2 against HTTP/1.1 (both wss)',
      '',
      `Node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), ${new Date().toISOString()}; `
        + `medians of ${ROUNDS} round(s); server in its own process, client in this one, over 127.0.0.1.`,
      '',
      '| measure | HTTP/1.1 | HTTP/2 | HTTP/2 ÷ HTTP/1.1 |',
      '|---|---|---|---|',
      row(`handshakes per second (${HANDSHAKES}, ${HANDSHAKE_CONCURRENCY} at a time)`, 'handshakes', (v) => v.toFixed(0)),
      row(`server memory per idle connection (heap + external, ${IDLE_CONNECTIONS} open)`, 'heap', kib),
      row('server RSS growth per idle connection', 'rss', kib),
      row(`echo throughput (${ECHO_CONNECTIONS} connections × ${ECHO_WINDOW} × ${ECHO_SIZE / 1024} KiB in flight, ${ECHO_SECONDS} s)`, 'echo', (v) => `${(v / 1048576).toFixed(1)} MiB/s`),
      '',
    ];
    const report = lines.join('\n');
    process.stdout.write(report);
    if (!QUICK) writeFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'http2-latest.md'), report);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'server') {
  void serve(process.argv[3]!, process.argv[4]!);
} else {
  measure().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`${String((error as Error).stack ?? error)}\n`);
      process.exit(1);
    },
  );
}
