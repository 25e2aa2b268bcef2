/**
 * What the adapter logs, read through the app's logger: routine events (a connection, a refused handshake, an
 * invalid message) nothing by default and `verbose` lines with `verboseLogs`; a shutdown one line that says how many
 * connections it closed and how; a start-up error (a port in use, Redis unreachable) once.
 */
import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import type { INestApplication, LoggerService } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { WebSocketsAdapter, type WebSocketsModuleOptions } from '../../lib/nest/index.js';
import { freePort } from '../support/net.js';
import { TelemetryAppModule } from './fixtures/telemetry-app.js';
import { OwnPortAppModule } from '../testing/fixtures/own-port-app.js';
import { closePeers, connectPeer, refusal } from './ws-peer.js';

/** A logger that keeps `[level, context, message]` of every line. */
class Lines implements LoggerService {
  readonly lines: Array<[string, string, string]> = [];
  #add(level: string, message: unknown, context: unknown): void {
    this.lines.push([level, String(context ?? ''), String(message)]);
  }
  log(message: unknown, context?: unknown): void {
    this.#add('log', message, context);
  }
  error(message: unknown, _trace?: unknown, context?: unknown): void {
    this.#add('error', message, context);
  }
  warn(message: unknown, context?: unknown): void {
    this.#add('warn', message, context);
  }
  debug(message: unknown, context?: unknown): void {
    this.#add('debug', message, context);
  }
  verbose(message: unknown, context?: unknown): void {
    this.#add('verbose', message, context);
  }
  /** The lines of the adapter and the Redis bus. */
  ours(): Array<[string, string]> {
    return this.lines.filter(([, context]) => context === 'WebSocketsAdapter' || context === 'RedisBroadcastBus').map(([level, , message]) => [level, message]);
  }
}

let app: INestApplication | undefined;

afterEach(async () => {
  await closePeers();
  await app?.close();
  app = undefined;
});

async function start(logger: Lines, options: WebSocketsModuleOptions = {}): Promise<number> {
  const moduleRef = await Test.createTestingModule({ imports: [TelemetryAppModule] }).compile();
  app = moduleRef.createNestApplication({ logger });
  app.useWebSocketAdapter(new WebSocketsAdapter(app, options));
  await app.listen(0, '127.0.0.1');
  return (app.getHttpServer().address() as AddressInfo).port;
}

async function routineTraffic(port: number): Promise<void> {
  expect((await refusal(`ws://127.0.0.1:${port}/otel?deny=1`)).status).toBe(403);
  expect((await refusal(`ws://127.0.0.1:${port}/nowhere`)).status).toBe(404);
  const peer = await connectPeer(`ws://127.0.0.1:${port}/otel`);
  peer.ws.send('not json');
  expect(await peer.next()).toMatchObject({ event: 'exception' });
}

describe('logs', () => {
  it('say nothing of routine events by default', async () => {
    const logger = new Lines();
    await routineTraffic(await start(logger));
    expect(logger.ours()).toEqual([]);
  });

  it('log them at verbose with verboseLogs', async () => {
    const logger = new Lines();
    await routineTraffic(await start(logger, { verboseLogs: true }));
    const lines = logger.ours();
    expect(lines.map(([level]) => level)).toEqual(['verbose', 'verbose', 'verbose', 'verbose', 'verbose']);
    expect(lines.map(([, message]) => message.replace(/\d+\.\d+\.\d+\.\d+/g, 'IP'))).toEqual([
      'handshake from IP refused by Object',
      'Gateway TelemetryGateway: handshake refused with 403 (refused by the handshake hook with HTTP 403) from IP',
      'no gateway at /nowhere: refused with 404 (from IP)',
      'Gateway TelemetryGateway: connection from IP',
      'invalid message from IP: invalid JSON',
    ]);
  });

  it('log one line per server at shutdown: how many connections, and how they closed', async () => {
    const logger = new Lines();
    const port = await start(logger);
    await Promise.all([connectPeer(`ws://127.0.0.1:${port}/otel`), connectPeer(`ws://127.0.0.1:${port}/otel`)]);
    await app!.close();
    app = undefined;
    const lines = logger.ours();
    expect(lines).toHaveLength(1);
    expect(lines[0]![0]).toBe('log');
    expect(lines[0]![1]).toMatch(/^Gateway TelemetryGateway: shutdown closed 2 connection\(s\) with 1001 in \d+ ms: 2 answered the close, 0 cut after closeTimeoutMs$/);
  });

  it('leave an unreachable Redis to the rejection of app.listen(), which the app logs once (sample/main.ts)', async () => {
    const logger = new Lines();
    const moduleRef = await Test.createTestingModule({ imports: [TelemetryAppModule] }).compile();
    app = moduleRef.createNestApplication({ logger });
    app.useWebSocketAdapter(new WebSocketsAdapter(app, { redisUrl: `redis://127.0.0.1:${await freePort()}` }));
    const failure = await app.listen(0, '127.0.0.1').then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toMatchObject({ code: 'WS_ERR_REDIS_UNAVAILABLE' });
    expect(logger.lines.filter(([level]) => level === 'error' || level === 'warn')).toEqual([]);
  });

  it('log a port in use once, naming the port and the fix', async () => {
    const holder = net.createServer();
    const busy = await freePort();
    await new Promise<void>((resolve) => holder.listen(busy, '127.0.0.1', resolve));
    try {
      const logger = new Lines();
      const moduleRef = await Test.createTestingModule({ imports: [OwnPortAppModule] }).compile();
      app = moduleRef.createNestApplication({ logger });
      app.useWebSocketAdapter(new WebSocketsAdapter(app, { host: '127.0.0.1', gatewayPorts: { 8181: busy, '*': 0 } }));
      await app.listen(0, '127.0.0.1').catch(() => undefined);
      const errors = logger.lines.filter(([level, , message]) => level === 'error' && message.includes(String(busy)));
      expect(errors).toHaveLength(1);
      expect(errors[0]![2]).toContain(`Gateway EventsGateway: cannot listen on 127.0.0.1:${busy}: listen EADDRINUSE`);
    } finally {
      holder.close();
    }
  });
});
