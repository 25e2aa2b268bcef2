/**
 * `WebSocketsHealthIndicator` through `@nestjs/terminus`, over HTTP: up with a real redis-server (servers,
 * connections against maxConnections, the bus reachable and subscribed with its round trip), down (503) once Redis is
 * stopped, up again when it is back; down when a server is full, degraded near its limit. And the bus in use is
 * reachable through `WebSocketsService.bus`.
 */
import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller, Get, Module, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import type { AddressInfo } from 'node:net';
import { InProcessBroadcastBus } from '../../lib/broadcast/index.js';
import { RedisBroadcastBus } from '../../lib/broadcast/redis/redis-bus.js';
import { WebSocketsAdapter, WebSocketsHealthIndicator, WebSocketsModule, WebSocketsService, type WebSocketsModuleOptions } from '../../lib/nest/index.js';
import { ATTRIBUTES, METRIC_NAMES } from '../../lib/nest/telemetry/websockets-telemetry.js';
import { closePeers, connectPeer } from '../nest/ws-peer.js';
import { waitUntil } from '../support/net.js';
import { describeWithPeer } from '../support/peers.js';
import { startRedis, type RedisServer } from '../support/redis.js';

@WebSocketGateway({ path: '/ws' })
class HealthGateway {
  @SubscribeMessage('ping')
  ping(): string {
    return 'pong';
  }
}

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly websockets: WebSocketsHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check(): Promise<unknown> {
    return this.health.check([() => this.websockets.isHealthy('websockets')]);
  }
}

let app: INestApplication | undefined;

/** A reader that collects when asked. */
class TestReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

async function start(options: WebSocketsModuleOptions): Promise<number> {
  @Module({ imports: [TerminusModule, WebSocketsModule.forRoot({ env: {}, ...options })], controllers: [HealthController], providers: [HealthGateway] })
  class HealthAppModule {}
  const moduleRef = await Test.createTestingModule({ imports: [HealthAppModule] }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  app.useWebSocketAdapter(new WebSocketsAdapter(app));
  await app.listen(0, '127.0.0.1');
  return (app.getHttpServer().address() as AddressInfo).port;
}

async function health(port: number): Promise<{ status: number; body: { status: string; details: { websockets: Record<string, unknown> } } }> {
  const response = await fetch(`http://127.0.0.1:${port}/health`);
  return { status: response.status, body: (await response.json()) as { status: string; details: { websockets: Record<string, unknown> } } };
}

afterEach(async () => {
  await closePeers();
  await app?.close();
  app = undefined;
});

describe('WebSocketsHealthIndicator, in process', () => {
  it('is up with the servers and their connections, down when a server is full, degraded near its limit', async () => {
    const port = await start({ maxConnections: 2 });
    expect(app!.get(WebSocketsService).bus).toBeInstanceOf(InProcessBroadcastBus);
    const up = await health(port);
    expect(up.status).toBe(200);
    expect(up.body.details.websockets).toEqual({
      status: 'up',
      servers: [{ port, path: '/ws', listening: true, connections: 0, maxConnections: 2 }],
      bus: { kind: 'in-process', reachable: true, subscribed: true, lagMs: 0 },
    });
    await connectPeer(`ws://127.0.0.1:${port}/ws`);
    const degraded = await app!.get(WebSocketsHealthIndicator).isHealthy('ws', { degradedAt: 0.5 });
    expect(degraded.ws).toMatchObject({ status: 'degraded', message: 'port ' + port + ' path /ws has 1 of maxConnections 2' });
    await connectPeer(`ws://127.0.0.1:${port}/ws`);
    const full = await health(port);
    expect(full.status).toBe(503);
    expect(full.body.details.websockets).toMatchObject({ status: 'down', message: `port ${port} path /ws is full (2 of maxConnections 2)` });
  });
});

describeWithPeer('redis', 'WebSocketsHealthIndicator with a Redis bus', () => {
  let redis: RedisServer;

  beforeAll(async () => {
    redis = await startRedis();
  });

  afterAll(async () => {
    await redis?.close();
  });

  it('is up while Redis answers, down (503) once it is stopped, up again when it is back', async () => {
    const port = await start({ redisUrl: redis.url });
    const bus = app!.get(WebSocketsService).bus;
    expect(bus).toBeInstanceOf(RedisBroadcastBus);
    const up = await health(port);
    expect(up.status).toBe(200);
    expect(up.body.details.websockets).toMatchObject({ status: 'up', bus: { kind: 'redis', reachable: true, subscribed: true } });
    const lagMs = (up.body.details.websockets.bus as { lagMs: number }).lagMs;
    expect(lagMs).toBeGreaterThan(0);
    expect(lagMs).toBeLessThan(1000);

    await redis.stop();
    await waitUntil(() => !(bus as RedisBroadcastBus).connected, 5000, 'the bus to notice Redis stopped');
    const down = await health(port);
    expect(down.status).toBe(503);
    expect(down.body.details.websockets).toMatchObject({
      status: 'down',
      bus: { kind: 'redis', reachable: false, subscribed: false, lagMs: null },
      message: expect.stringContaining('the redis bus is unreachable: not connected to Redis at redis://127.0.0.1:'),
    });

    await redis.start();
    await waitUntil(() => (bus as RedisBroadcastBus).connected, 10_000, 'the bus to reconnect');
    expect((await health(port)).status).toBe(200);
  });

  it('reports the round trip to Redis as the websocket.server.bus.lag gauge, measured once subscribed', async () => {
    const reader = new TestReader();
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
    try {
      await start({ redisUrl: redis.url });
      const lag = async (): Promise<Array<{ attributes: Record<string, unknown>; value: number }>> => {
        const { resourceMetrics } = await reader.collect();
        const metric = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics).find((m) => m.descriptor.name === METRIC_NAMES.busLag);
        return (metric?.dataPoints ?? []) as Array<{ attributes: Record<string, unknown>; value: number }>;
      };
      const deadline = Date.now() + 5000;
      while ((await lag()).length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      const [point] = await lag();
      expect(point?.attributes).toEqual({ [ATTRIBUTES.bus]: 'redis' });
      expect(point!.value).toBeGreaterThan(0);
      expect(point!.value).toBeLessThan(1);
    } finally {
      metrics.disable();
    }
  });
});
