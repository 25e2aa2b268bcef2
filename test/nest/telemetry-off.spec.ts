/**
 * OpenTelemetry off: without `@opentelemetry/api`, or with it but no provider registered, the adapter instruments
 * nothing (gateway connections are plain `GatewayWebSocket`s, messages take no measuring path), and it works as before.
 */
import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { metrics } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { AddressInfo } from 'node:net';
import { GatewayWebSocket, WebSocketsAdapter } from '../../lib/nest/index.js';
import { openTelemetryApi, setOpenTelemetryLoader } from '../../lib/nest/telemetry/opentelemetry-api.js';
import { WebSocketsTelemetry } from '../../lib/nest/telemetry/websockets-telemetry.js';
import { TelemetryAppModule } from './fixtures/telemetry-app.js';
import { closePeers, connectPeer } from './ws-peer.js';

let app: INestApplication | undefined;

afterEach(async () => {
  await closePeers();
  await app?.close();
  app = undefined;
  setOpenTelemetryLoader(undefined);
  metrics.disable();
});

/** Whether the server-side connection of a client that just connected (after its echo) is instrumented. */
async function instrumented(): Promise<boolean> {
  const moduleRef = await Test.createTestingModule({ imports: [TelemetryAppModule] }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  const adapter = new WebSocketsAdapter(app);
  app.useWebSocketAdapter(adapter);
  await app.listen(0, '127.0.0.1');
  const peer = await connectPeer(`ws://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}/otel`);
  peer.send({ event: 'echo', data: 'still works', id: 1 });
  expect(await peer.next()).toEqual({ event: 'echo', data: 'still works', id: 1 });
  const [client] = adapter.servers().find((server) => server.path === '/otel')!.server.clients;
  expect(client).toBeInstanceOf(GatewayWebSocket);
  // Off, a connection carries no telemetry field at all (not even an undefined one).
  return Object.hasOwn(client!, 'telemetry');
}

describe('OpenTelemetry off', () => {
  it('without @opentelemetry/api: nothing is loaded, nothing instrumented', async () => {
    setOpenTelemetryLoader(() => null);
    expect(openTelemetryApi()).toBeNull();
    expect(WebSocketsTelemetry.create()).toBeNull();
    expect(await instrumented()).toBe(false);
  });

  it('with the API but no provider registered: nothing instrumented', async () => {
    expect(openTelemetryApi()).not.toBeNull();
    expect(WebSocketsTelemetry.create()).toBeNull();
    expect(await instrumented()).toBe(false);
  });

  it('with a meter provider registered before the app starts: connections are instrumented', async () => {
    metrics.setGlobalMeterProvider(new MeterProvider());
    const telemetry = WebSocketsTelemetry.create();
    expect([telemetry?.metrics, telemetry?.traces]).toEqual([true, false]);
    expect(await instrumented()).toBe(true);
  });
});
