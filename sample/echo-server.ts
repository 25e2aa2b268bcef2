/**
 * `npm run echo`: a plain echo server on the Node layer (no Nest), for benchmarks and interop tests.
 *
 * Listens on 127.0.0.1 at `$PORT` (0 or unset picks a free port), or on the Unix socket `$WEBSOCKETS_SOCKET_PATH`
 * (with `$WEBSOCKETS_SOCKET_PERMISSIONS`, e.g. 660), prints one JSON line `{"ready":true,"port":N,"pid":N}` (or
 * `{"ready":true,"socketPath":"...","pid":N}`) once it listens, echoes text as text and binary as binary with the
 * library's defaults (1 MiB messages, permessage-deflate accepted when offered, `WEBSOCKETS_*` variables honoured:
 * WEBSOCKETS_TLS_CERT and WEBSOCKETS_TLS_KEY make it wss), and stops cleanly on SIGTERM and SIGINT (close 1001 to every client, then exit 0).
 */
import { resolveSocketPath } from '../lib/config/index.js';
import { WebSocketServer } from '../lib/node/server.js';

const HOST = '127.0.0.1';

/** Reads `$PORT`: digits only, 0-65535; anything else is a usage error. */
function portFromEnv(raw: string | undefined): number {
  if (raw === undefined || raw === '') return 0;
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65_535) {
    process.stderr.write(`PORT must be an integer from 0 to 65535; got ${JSON.stringify(raw)}\n`);
    process.exit(2);
  }
  return port;
}

async function main(): Promise<void> {
  const socketPath = resolveSocketPath(undefined, process.env);
  const server = new WebSocketServer(
    socketPath === null ? { host: HOST, port: portFromEnv(process.env.PORT) } : { socketPath },
  );
  server.on('connection', (ws) => {
    ws.on('message', (data: string | Buffer, isBinary: boolean) => {
      // A send that fails because the peer went away is not the echo server's problem.
      ws.send(data, { binary: isBinary }).catch(() => undefined);
    });
    ws.on('error', () => undefined);
  });
  server.on('error', (error: Error) => process.stderr.write(`echo server: ${error.message}\n`));

  const address = await server.listen();
  const where = typeof address === 'string' ? { socketPath: address } : { port: address.port };
  process.stdout.write(`${JSON.stringify({ ready: true, ...where, pid: process.pid })}\n`);

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`echo server: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`echo server failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
