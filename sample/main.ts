/**
 * `npm start`: builds and runs the sample on $PORT (default 3000), or on the Unix socket WEBSOCKETS_SOCKET_PATH
 * (with WEBSOCKETS_SOCKET_PERMISSIONS, e.g. 660), behind a reverse proxy on the same machine. With
 * WEBSOCKETS_TLS_CERT and WEBSOCKETS_TLS_KEY (file paths) it serves https and wss; SIGTERM closes every WebSocket
 * with 1001 before the process exits. SAMPLE_PLATFORM=fastify runs it on Fastify (platform.ts); its metrics are at
 * http://127.0.0.1:9464/metrics (SAMPLE_METRICS_PORT, `off` for none; metrics.ts).
 */
import 'reflect-metadata';
import { chmodSync } from 'node:fs';
import { Logger } from '@nestjs/common';
import { resolveSocketPath, resolveSocketPermissions } from '../lib/config/index.js';
import { WebSocketsModule } from '../lib/nest/index.js';
import { removeStaleSocket } from '../lib/node/unix-socket.js';
import { AppModule } from './app.module.js';
import { startMetrics } from './metrics.js';
import { createSampleApp, samplePlatform } from './platform.js';

/** The port when $PORT is not set. */
const DEFAULT_PORT = 3000;
const MAX_PORT = 65_535;

async function bootstrap(): Promise<void> {
  // .env is already in process.env: ConfigModule.forRoot() loaded it when AppModule was imported.
  const socketPath = resolveSocketPath(undefined, process.env);
  const socketPermissions = resolveSocketPermissions(undefined, process.env);
  const raw = process.env.PORT;
  const port = raw === undefined || raw === '' ? DEFAULT_PORT : Number(raw);
  if (!/^\d*$/.test(raw ?? '') || port > MAX_PORT) {
    throw new Error(`PORT must be an integer from 0 to ${MAX_PORT}; got ${JSON.stringify(raw)} (set it in the environment or in .env)`);
  }
  const platform = samplePlatform();
  // Before the app: the adapter instruments its gateways when a meter provider is registered.
  const stopMetrics = await startMetrics();
  // The app's own server takes the same TLS settings as the module (read from WEBSOCKETS_TLS_*).
  const httpsOptions = WebSocketsModule.httpsOptions();
  // WebSocketsModule (imported by AppModule) makes the app use WebSocketsAdapter: no useWebSocketAdapter() needed.
  const app = await createSampleApp(AppModule, platform, httpsOptions);
  // The metrics server ends with the process: the shutdown hooks re-raise SIGTERM once the app is closed.
  void stopMetrics;
  // SIGTERM / SIGINT run app.close(): clients get 1001 (going away), then the process exits.
  app.enableShutdownHooks();
  const scheme = httpsOptions === undefined ? 'http' : 'https';
  if (socketPath !== null) {
    // A socket file left by a process that died would make listen() fail with EADDRINUSE; a live one still does.
    await removeStaleSocket(socketPath);
    await app.listen(socketPath);
    try {
      if (socketPermissions !== null) chmodSync(socketPath, socketPermissions);
    } catch (error) {
      await app.close();
      throw error;
    }
    new Logger('Sample').log(`chat page and WebSocket (/ws) on the Unix socket ${socketPath}: ${scheme === 'https' ? 'wss' : 'ws'}+unix:${socketPath}:/ws`);
    return;
  }
  // Fastify listens on localhost only unless told; Express on every interface: the same for both here.
  await (platform === 'fastify' ? app.listen(port, '0.0.0.0') : app.listen(port));
  new Logger('Sample').log(`${platform === 'fastify' ? '(Fastify) ' : ''}chat page at ${scheme}://localhost:${port}/, WebSocket at ${scheme === 'https' ? 'wss' : 'ws'}://localhost:${port}/ws`);
}

bootstrap().catch((error: unknown) => {
  new Logger('Sample').error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exitCode = 1;
});
