/**
 * Sessions with the Redis bus, two apps in this process sharing rooms through a real redis-server, behind a TCP proxy
 * that the test cuts: what another instance publishes to a room reaches a session waiting on its own instance, once
 * and in order; a client that comes back on the other instance gets a fresh session (`resumed: false`, nothing
 * replayed: sessions do not move between instances yet), and its old instance tells its app when the TTL ends.
 */
import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { ConnectedSocket, MessageBody, SubscribeMessage, WebSocketGateway, WebSocketServer } from '@nestjs/websockets';
import type { AddressInfo } from 'node:net';
import { WebSocketsClient, type OpenEvent } from '../../lib/client/node.js';
import {
  WebSocketsAdapter,
  WebSocketsModule,
  type GatewayWebSocket,
  type WebSocketsGatewayOptions,
  type WebSocketsGatewayServer,
} from '../../lib/nest/index.js';
import { startCutProxy, type CutProxy } from '../support/cut-proxy.js';
import { waitUntil } from '../support/net.js';
import { describeWithPeer } from '../support/peers.js';
import { startRedis, type RedisServer } from '../support/redis.js';

const WAIT_MS = 10_000;

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/s' })
class RoomGateway {
  @WebSocketServer()
  server!: WebSocketsGatewayServer;
  disconnects = 0;

  handleDisconnect(): void {
    this.disconnects++;
  }

  @SubscribeMessage('join')
  join(@ConnectedSocket() client: GatewayWebSocket, @MessageBody() room: string): string {
    this.server.join(client, room);
    return room;
  }
}

describeWithPeer('redis', 'sessions with the Redis bus, two instances', () => {
  let redis: RedisServer;
  const apps: INestApplication[] = [];
  const clients: WebSocketsClient[] = [];
  let proxy: CutProxy | undefined;

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.close();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await proxy?.close();
    proxy = undefined;
    for (const app of apps.splice(0)) await app.close();
  });

  async function instance(): Promise<{ readonly gateway: RoomGateway; readonly port: number }> {
    const moduleRef = await Test.createTestingModule({
      imports: [WebSocketsModule.forRoot({ env: {}, sessions: true, sessionTtlMs: 500, redisUrl: redis.url })],
      providers: [RoomGateway],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    app.useWebSocketAdapter(new WebSocketsAdapter(app));
    await app.listen(0, '127.0.0.1');
    apps.push(app);
    return { gateway: app.get(RoomGateway), port: (app.getHttpServer().address() as AddressInfo).port };
  }

  function client(port: number): { readonly client: WebSocketsClient; readonly opens: OpenEvent[]; readonly received: unknown[] } {
    const created = new WebSocketsClient(`ws://127.0.0.1:${port}/s`, { session: true, reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
    clients.push(created);
    const opens: OpenEvent[] = [];
    const received: unknown[] = [];
    created.on('open', (event) => opens.push(event));
    created.on('n', (n) => received.push(n));
    return { client: created, opens, received };
  }

  it('a session waiting on instance A keeps what instance B publishes to its room, and resumes with it in order', async () => {
    const a = await instance();
    const b = await instance();
    proxy = await startCutProxy([a.port, b.port]);
    const { client: c, opens, received } = client(proxy.port);
    await waitUntil(() => opens.length === 1, WAIT_MS, 'open');
    await c.request('join', 'r');
    proxy.block();
    proxy.cut();
    await waitUntil(() => a.gateway.server.clients.size === 0, WAIT_MS, 'A saw the cut');
    for (let n = 0; n < 50; n++) await b.gateway.server.to('r').emit('n', n);
    // The bus is asynchronous: published is not yet delivered on A.
    await new Promise((resolve) => setTimeout(resolve, 100));
    proxy.unblock();
    await waitUntil(() => opens.length === 2 && received.length === 50, WAIT_MS, 'the resume on A');
    expect(opens[1]!.resumed).toBe(true);
    expect(received).toEqual(Array.from({ length: 50 }, (_, n) => n));
    expect(a.gateway.disconnects).toBe(0);
  });

  it('a client that comes back on the other instance gets resumed false, never a partial replay; A tells its app at the TTL', async () => {
    const a = await instance();
    const b = await instance();
    proxy = await startCutProxy([a.port]);
    const { client: c, opens, received } = client(proxy.port);
    await waitUntil(() => opens.length === 1, WAIT_MS, 'open');
    await c.request('join', 'r');
    proxy.setUpstreams([b.port]);
    proxy.cut();
    await b.gateway.server.to('r').emit('n', 'missed');
    await waitUntil(() => opens.length === 2, WAIT_MS, 'the reconnection to B');
    expect(opens[1]!.resumed).toBe(false);
    await waitUntil(() => a.gateway.disconnects === 1, WAIT_MS, "A's session expired");
    expect(received).toEqual([]);
    expect(b.gateway.server.clients.size).toBe(1);
  });
});
