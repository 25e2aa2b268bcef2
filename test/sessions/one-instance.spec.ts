/**
 * Resumable sessions on one instance, over real sockets: a TCP proxy in the test cuts the client's connection in the
 * middle of a stream of numbered room messages, and the client resumes with every message once, in order; after the
 * TTL it gets a fresh session (`resumed: false`) and the app is told; what the client emitted during a cut is
 * processed once; a request in flight at the cut settles with its reply; a wrong secret gets a fresh session and
 * leaves the real one resumable; plain WebSocket clients see no session; `app.close()` closes with 1012.
 */
import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { ConnectedSocket, MessageBody, SubscribeMessage, WebSocketGateway, WebSocketServer } from '@nestjs/websockets';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocketsClient, type CloseEvent, type OpenEvent } from '../../lib/client/node.js';
import {
  WebSocketsAdapter,
  WebSocketsModule,
  type GatewayWebSocket,
  type WebSocketsCloseInfo,
  type WebSocketsGatewayOptions,
  type WebSocketsGatewayServer,
  type WebSocketsModuleOptions,
} from '../../lib/nest/index.js';
import { AUTH_MARKER_SUBPROTOCOL } from '../../lib/protocol/bearer-subprotocol.js';
import { sessionSubprotocol } from '../../lib/protocol/session-subprotocol.js';
import { startCutProxy, type CutProxy } from '../support/cut-proxy.js';
import { waitUntil, withTimeout } from '../support/net.js';
import { closePeers, connectPeer } from '../nest/ws-peer.js';

const WAIT_MS = 10_000;
const FAST = { initialDelayMs: 20, maxDelayMs: 100 };

/** Asks for handleConnection on resumed sessions too. */
@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/h', handleResumedConnections: true })
class HandlingGateway {
  readonly resumed: Array<boolean | undefined> = [];

  handleConnection(client: GatewayWebSocket): void {
    this.resumed.push(client.session?.resumed);
  }
}

/** Opts out of sessions. */
@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/off', sessions: false })
class PlainGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() value: unknown): unknown {
    return value;
  }
}

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/s' })
class SessionGateway {
  @WebSocketServer()
  server!: WebSocketsGatewayServer;
  readonly connections: Array<{ readonly id: string; readonly resumed: boolean | undefined; readonly data: unknown }> = [];
  readonly disconnects: Array<{ readonly id: string; readonly close: WebSocketsCloseInfo }> = [];
  readonly processed: number[] = [];

  handleConnection(client: GatewayWebSocket): void {
    this.connections.push({ id: client.id, resumed: client.session?.resumed, data: (client.data as { tag?: unknown } | undefined)?.tag });
  }

  handleDisconnect(client: GatewayWebSocket, close: WebSocketsCloseInfo): void {
    this.disconnects.push({ id: client.id, close });
  }

  @SubscribeMessage('join')
  join(@ConnectedSocket() client: GatewayWebSocket, @MessageBody() room: string): string {
    this.server.join(client, room);
    (client.data as { tag?: string }).tag = `in ${room}`;
    return room;
  }

  @SubscribeMessage('count')
  count(@MessageBody() n: number): void {
    this.processed.push(n);
  }

  @SubscribeMessage('kick')
  kick(@ConnectedSocket() client: GatewayWebSocket): void {
    void client.close(1011, 'kicked');
  }

  @SubscribeMessage('slow')
  async slow(@MessageBody() value: string): Promise<string> {
    await sleep(300);
    return value;
  }
}

let app: INestApplication | undefined;
let proxy: CutProxy | undefined;
const clients: WebSocketsClient[] = [];

async function start(options: WebSocketsModuleOptions = {}): Promise<{ readonly gateway: SessionGateway; readonly direct: string; readonly viaProxy: string }> {
  const moduleRef = await Test.createTestingModule({
    imports: [WebSocketsModule.forRoot({ env: {}, sessions: true, ...options })],
    providers: [SessionGateway, HandlingGateway, PlainGateway],
  }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  app.useWebSocketAdapter(new WebSocketsAdapter(app));
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  proxy = await startCutProxy([port]);
  return { gateway: app.get(SessionGateway), direct: `ws://127.0.0.1:${port}/s`, viaProxy: `ws://127.0.0.1:${proxy.port}/s` };
}

function client(url: string): { readonly client: WebSocketsClient; readonly opens: OpenEvent[]; readonly closes: CloseEvent[] } {
  const created = new WebSocketsClient(url, { session: true, reconnect: FAST });
  clients.push(created);
  const opens: OpenEvent[] = [];
  const closes: CloseEvent[] = [];
  created.on('open', (event) => opens.push(event));
  created.on('close', (event) => closes.push(event));
  return { client: created, opens, closes };
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await closePeers();
  await proxy?.close();
  proxy = undefined;
  await app?.close();
  app = undefined;
});

describe('one instance', () => {
  it('a cut in the middle of a stream of room messages: the client resumes and has every message once, in order', async () => {
    const { gateway, viaProxy } = await start();
    const { client: c, opens } = client(viaProxy);
    const received: number[] = [];
    c.on('n', (n) => received.push(n as number));
    await waitUntil(() => opens.length === 1, WAIT_MS, 'open');
    expect(await c.request('join', 'r')).toBe('r');
    expect(c.sessionId).toBe(gateway.connections[0]!.id);

    const TOTAL = 400;
    for (let n = 0; n < TOTAL; n++) {
      void gateway.server.to('r').emit('n', n);
      if (n === 150) proxy!.cut();
      if (n % 10 === 9) await sleep(2);
    }
    await waitUntil(() => received.length >= TOTAL, WAIT_MS, `${TOTAL} messages`);
    await sleep(50);
    expect(received).toEqual(Array.from({ length: TOTAL }, (_, n) => n));
    expect(opens.map((event) => event.resumed)).toEqual([false, true]);
    // One session for the app: handleConnection once (a resumed one skips it), no disconnect; the new connection has
    // the session's id, its rooms and its client.data.
    expect(gateway.connections).toEqual([{ id: c.sessionId, resumed: false, data: undefined }]);
    expect(gateway.disconnects).toEqual([]);
    const now = [...gateway.server.clients][0]! as GatewayWebSocket;
    expect([now.id, now.session, (now.data as { tag: string }).tag]).toEqual([c.sessionId, { id: c.sessionId, resumed: true }, 'in r']);
    expect(gateway.server.roomsOf(now)).toEqual(new Set(['r']));
  });

  it('after the TTL: resumed false, a fresh session, and the app told once', async () => {
    const { gateway, viaProxy } = await start({ sessionTtlMs: 300 });
    const { client: c, opens } = client(viaProxy);
    await waitUntil(() => opens.length === 1, WAIT_MS, 'open');
    await c.request('join', 'r');
    const first = c.sessionId;
    proxy!.block();
    proxy!.cut();
    await waitUntil(() => gateway.disconnects.length === 1, WAIT_MS, 'the app told of the expired session');
    expect(gateway.disconnects[0]).toEqual({ id: first, close: { code: 1006, reason: '' } });
    // Published while the session was detached, then expired: not for the fresh session.
    void gateway.server.to('r').emit('n', 1);
    proxy!.unblock();
    await waitUntil(() => opens.length === 2, WAIT_MS, 'the reconnection');
    expect(opens[1]).toMatchObject({ resumed: false, reconnected: true });
    expect(c.sessionId).not.toBe(first);
    expect(gateway.connections.map((entry) => entry.resumed)).toEqual([false, false]);
    expect(gateway.server.rooms.size).toBe(0);
  });

  it('client to server: what the client emits around a cut is processed once, in order', async () => {
    const { gateway, viaProxy } = await start();
    const { client: c, opens } = client(viaProxy);
    await waitUntil(() => opens.length === 1, WAIT_MS, 'open');
    const TOTAL = 300;
    for (let n = 0; n < TOTAL; n++) {
      c.emit('count', n);
      if (n === 120) proxy!.cut();
      if (n % 10 === 9) await sleep(2);
    }
    await waitUntil(() => gateway.processed.length >= TOTAL, WAIT_MS, `${TOTAL} messages processed`);
    await sleep(300);
    expect(gateway.processed).toEqual(Array.from({ length: TOTAL }, (_, n) => n));
    expect(opens.map((event) => event.resumed)).toEqual([false, true]);
  });

  it('a request in flight at the cut settles with its reply after the resume', async () => {
    const { viaProxy } = await start();
    const { client: c, opens } = client(viaProxy);
    await waitUntil(() => opens.length === 1, WAIT_MS, 'open');
    const reply = c.request('slow', 'answer', { timeoutMs: WAIT_MS });
    await sleep(50);
    proxy!.cut();
    expect(await withTimeout(reply, WAIT_MS, 'the reply')).toBe('answer');
    expect(opens.map((event) => event.resumed)).toEqual([false, true]);
  });

  it('a resume with the right id and a wrong secret gets a fresh session; the real one stays resumable', async () => {
    const { gateway, direct, viaProxy } = await start();
    const { client: c, opens } = client(viaProxy);
    const received: number[] = [];
    c.on('n', (n) => received.push(n as number));
    await waitUntil(() => opens.length === 1, WAIT_MS, 'open');
    await c.request('join', 'r');
    const id = c.sessionId!;
    const thief = await connectPeer(direct, {}, [AUTH_MARKER_SUBPROTOCOL, sessionSubprotocol({ id, secret: 'A'.repeat(43), received: 0 })]);
    const hello = (await thief.next()) as { event: string; data: { id: string; resumed: boolean } };
    expect(hello.event).toBe('$session');
    expect(hello.data.resumed).toBe(false);
    expect(hello.data.id).not.toBe(id);
    proxy!.cut();
    void gateway.server.to('r').emit('n', 7);
    await waitUntil(() => opens.length === 2 && received.length === 1, WAIT_MS, 'the real client resumed');
    expect(opens[1]!.resumed).toBe(true);
    expect(received).toEqual([7]);
    expect(thief.pending()).toBe(0);
  });

  it('session ids are 128 random bits: distinct, base64url, and a plain client sees no session frame', async () => {
    const { gateway, direct } = await start();
    const ids = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const peer = await connectPeer(direct, {}, [AUTH_MARKER_SUBPROTOCOL, sessionSubprotocol(null)]);
      const hello = (await peer.next()) as { data: { id: string; secret: string } };
      expect(hello.data.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(hello.data.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
      ids.add(hello.data.id);
      peer.ws.close();
    }
    expect(ids.size).toBe(50);
    const plain = await connectPeer(direct);
    plain.send({ event: 'join', data: 'p', id: 1 });
    expect(await plain.next()).toEqual({ event: 'join', data: 'p', id: 1 });
    expect(gateway.connections.at(-1)!.resumed).toBeUndefined();
  });

  it('over sessionMaxBufferedBytes while away: resumed false and the app told, never a partial replay', async () => {
    const { gateway, viaProxy } = await start({ sessionMaxBufferedBytes: 1000 });
    const { client: c, opens } = client(viaProxy);
    const received: unknown[] = [];
    c.on('n', (n) => received.push(n));
    await waitUntil(() => opens.length === 1, WAIT_MS, 'open');
    await c.request('join', 'r');
    proxy!.block();
    proxy!.cut();
    await waitUntil(() => gateway.server.clients.size === 0, WAIT_MS, 'the server saw the cut');
    // 30 messages of about 70 bytes: the first 14 fit, the 15th passes the bound.
    for (let n = 0; n < 30; n++) void gateway.server.to('r').emit('n', `${'x'.repeat(40)} ${n}`);
    expect(gateway.disconnects.map((entry) => entry.id)).toEqual([c.sessionId]);
    proxy!.unblock();
    await waitUntil(() => opens.length === 2, WAIT_MS, 'the reconnection');
    await sleep(50);
    expect(opens[1]!.resumed).toBe(false);
    expect(received).toEqual([]);
  });

  it('maxDetachedSessions: when full, the session detached the longest is ended to make room', async () => {
    const { gateway, viaProxy } = await start({ maxDetachedSessions: 1 });
    const a = client(viaProxy);
    const b = client(viaProxy);
    await waitUntil(() => a.opens.length === 1 && b.opens.length === 1, WAIT_MS, 'both open');
    const before = [a.client.sessionId, b.client.sessionId];
    proxy!.block();
    proxy!.cut();
    await waitUntil(() => gateway.server.clients.size === 0 && gateway.disconnects.length === 1, WAIT_MS, 'one session evicted');
    const evicted = gateway.disconnects[0]!.id;
    expect(before).toContain(evicted);
    proxy!.unblock();
    await waitUntil(() => a.opens.length === 2 && b.opens.length === 2, WAIT_MS, 'both back');
    expect([a.opens[1]!.resumed, b.opens[1]!.resumed]).toEqual(before.map((id) => id !== evicted));
    expect(gateway.disconnects).toHaveLength(1);
  });

  it('a connection the app closes ends its session: the client comes back with resumed false', async () => {
    const { gateway, viaProxy } = await start();
    const { client: c, opens } = client(viaProxy);
    await waitUntil(() => opens.length === 1, WAIT_MS, 'open');
    const first = c.sessionId;
    c.emit('kick');
    await waitUntil(() => opens.length === 2, WAIT_MS, 'the reconnection');
    expect(opens[1]!.resumed).toBe(false);
    expect(gateway.disconnects).toEqual([{ id: first, close: { code: 1011, reason: 'kicked' } }]);
    expect(gateway.connections).toHaveLength(2);
  });

  it('a gateway with handleResumedConnections: true sees each resume in handleConnection', async () => {
    await start();
    const { client: c, opens } = client(`ws://127.0.0.1:${proxy!.port}/h`);
    await waitUntil(() => opens.length === 1, WAIT_MS, 'open');
    proxy!.cut();
    await waitUntil(() => opens.length === 2, WAIT_MS, 'the resume');
    expect(opens[1]!.resumed).toBe(true);
    expect(app!.get(HandlingGateway).resumed).toEqual([false, true]);
    await c.close();
  });

  it('a client that asks a gateway without sessions goes on without one, and says so', async () => {
    await start();
    const { client: c, opens } = client(`ws://127.0.0.1:${proxy!.port}/off`);
    const errors: Error[] = [];
    c.on('error', (error) => errors.push(error));
    const reply = c.request('echo', 'queued until open');
    await waitUntil(() => opens.length === 1, WAIT_MS, 'open without a session');
    expect(opens[0]!.resumed).toBe(false);
    expect(c.sessionId).toBeNull();
    expect(errors.map((error) => error.message)).toEqual([expect.stringContaining('no $session frame came') as unknown as string]);
    expect(await reply).toBe('queued until open');
  });

  it('app.close() closes session clients with 1012, which the client takes as reconnect now', async () => {
    const { viaProxy } = await start();
    const { client: c, opens, closes } = client(viaProxy);
    await waitUntil(() => opens.length === 1, WAIT_MS, 'open');
    await app!.close();
    app = undefined;
    await waitUntil(() => closes.length >= 1, WAIT_MS, 'the close');
    expect(closes[0]).toEqual({ code: 1012, reason: 'service restart', willReconnect: true });
    await c.close();
  });
});
