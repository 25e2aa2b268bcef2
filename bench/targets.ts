/**
 * The benchmark's servers other than `npm run echo` (sample/echo-server.ts): `node dist/bench/targets.js NAME`.
 * Each listens on 127.0.0.1 on a free port, echoes, and prints `{"ready":true,"port":N,"pid":N}` like the sample.
 *
 * - `ws`: ws 8 with its defaults (no compression, 100 MiB messages).
 * - `ws-deflate`: the same with `perMessageDeflate: true` (ws's default compression settings).
 * - `nest-ours`: a Nest app with this package's `WebSocketsAdapter` and the echo gateway below.
 * - `nest-ws`: the same app and gateway with `@nestjs/platform-ws`'s `WsAdapter`.
 * - `nest-socketio-echo`: the same app and gateway with `@nestjs/platform-socket.io`'s `IoAdapter` (spoken to as
 *   Socket.IO v5 over Engine.IO v4 by the load client).
 * - `ws-tls`: ws 8 with its defaults on an `https.Server` (wss), with the certificate the bench made for the run
 *   (`BENCH_TLS_CERT`, `BENCH_TLS_KEY`: see bench/tls.ts); `ours-tls` is `npm run echo` with the same files.
 * - `tcp`: a raw TCP echo, the ceiling: it sends every byte back as it comes, with no framing at all.
 * - `nest-ours-rooms`, `nest-ws-rooms`, `nest-socketio`: the chat app of the room workloads (join a room, chat to it)
 *   on this package, on `@nestjs/platform-ws` with hand-written rooms, and on `@nestjs/platform-socket.io`
 *   (bench/room-targets.ts).
 *
 * Start-up is the same for every plain target: this file loads only `node:net` and `ws`, and the Nest apps
 * (bench/nest-targets.ts) are imported only for `nest-ours` and `nest-ws`. Before, the Nest imports were static here,
 * so `ws` and `ws-deflate` started with Nest loaded and a young generation already grown to ~16 MB, while `ours`
 * (sample/echo-server.ts, no Nest) started at ~2 MB and grew it during the idle workload's measured window: the
 * idle-memory ratio charged `ours` for V8's start-up growth that `ws` had already paid before its baseline.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { WebSocketServer as WsServer } from 'ws';

const HOST = '127.0.0.1';

function ready(port: number): void {
  process.stdout.write(`${JSON.stringify({ ready: true, port, pid: process.pid })}\n`);
}

function stopOnSignal(stop: () => Promise<void>): void {
  const handler = (): void => {
    stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', handler);
  process.once('SIGINT', handler);
}

async function startWs(perMessageDeflate: boolean): Promise<void> {
  const server = new WsServer({ host: HOST, port: 0, perMessageDeflate });
  server.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  ready((server.address() as net.AddressInfo).port);
  stopOnSignal(
    () =>
      new Promise<void>((resolve) => {
        for (const client of server.clients) client.terminate();
        server.close(() => resolve());
      }),
  );
}

/** ws on an HTTPS server: the wss peer of `ours-tls`, with the same certificate and Node's default TLS settings. */
async function startWsTls(): Promise<void> {
  const { BENCH_TLS_CERT: cert, BENCH_TLS_KEY: key } = process.env;
  if (cert === undefined || key === undefined) throw new Error('ws-tls needs BENCH_TLS_CERT and BENCH_TLS_KEY (set by bench/run.ts)');
  const httpsServer = https.createServer({ cert: readFileSync(cert), key: readFileSync(key) });
  const server = new WsServer({ server: httpsServer });
  server.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => httpsServer.listen(0, HOST, resolve));
  ready((httpsServer.address() as net.AddressInfo).port);
  stopOnSignal(
    () =>
      new Promise<void>((resolve) => {
        for (const client of server.clients) client.terminate();
        server.close();
        httpsServer.close(() => resolve());
      }),
  );
}

async function startNest(adapter: 'ours' | 'ws' | 'socketio'): Promise<void> {
  // Nest is loaded here and only here (see bench/nest-targets.ts): the plain targets start without it, like `ours`.
  const { listenNest } = await import('./nest-targets.js');
  const app = await listenNest(adapter, HOST);
  ready((app.getHttpServer().address() as net.AddressInfo).port);
  stopOnSignal(() => app.close());
}

async function startRooms(target: 'nest-ours-rooms' | 'nest-ws-rooms' | 'nest-socketio'): Promise<void> {
  const { listenRooms } = await import('./room-targets.js');
  const app = await listenRooms(target, HOST);
  ready((app.getHttpServer().address() as net.AddressInfo).port);
  stopOnSignal(() => app.close());
}

async function startTcp(): Promise<void> {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  ready((server.address() as net.AddressInfo).port);
  stopOnSignal(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
      }),
  );
}

async function main(name: string | undefined): Promise<void> {
  switch (name) {
    case 'ws':
      return startWs(false);
    case 'ws-deflate':
      return startWs(true);
    case 'nest-ours':
      return startNest('ours');
    case 'nest-ws':
      return startNest('ws');
    case 'nest-socketio-echo':
      return startNest('socketio');
    case 'ws-tls':
      return startWsTls();
    case 'tcp':
      return startTcp();
    case 'nest-ours-rooms':
    case 'nest-ws-rooms':
    case 'nest-socketio':
      return startRooms(name);
    default:
      throw new Error(`unknown target ${JSON.stringify(name)}: use ws, ws-deflate, ws-tls, nest-ours, nest-ws, nest-socketio-echo, tcp, nest-ours-rooms, nest-ws-rooms or nest-socketio`);
  }
}

main(process.argv[2]).catch((error: unknown) => {
  process.stderr.write(`target failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
