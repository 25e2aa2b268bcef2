/**
 * WebSocketsAdapter end to end, the options a gateway or the module can set: per-gateway overrides of the module's
 * limits, compression and subprotocols; allowed origins (403); a custom message parser for a binary format; a
 * custom BroadcastBus; closeClient(); and handshake guards that read metadata through getClass() / getHandler().
 * A real Nest app on 127.0.0.1 port 0, and the `ws` package as the client.
 */
import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import { Injectable, SetMetadata, type CanActivate, type ExecutionContext, type INestApplication, type Type } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ConnectedSocket, MessageBody, SubscribeMessage, WebSocketGateway, WebSocketServer } from '@nestjs/websockets';
import WsClient from 'ws';
import { CloseCode } from '../../lib/protocol/close-codes.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import { InProcessBroadcastBus, type BroadcastBus, type BroadcastEnvelope, type BroadcastListener } from '../../lib/broadcast/index.js';
import type { WebSocketsGatewayServer } from '../../lib/nest/gateway-server.js';
import { WebSocketsAdapter } from '../../lib/nest/websockets.adapter.js';
import type { MessageParser, WebSocketsGatewayOptions, WebSocketsModuleOptions } from '../../lib/nest/websockets-options.interface.js';
import { closePeers, connectPeer, refusal, WAIT_MS } from './ws-peer.js';
import { withTimeout } from '../support/net.js';
import { closeNestApps, startNestApp } from '../support/nest-app.js';

/** Echo and rooms, the handlers every gateway below shares. */
class EchoHandlers {
  @WebSocketServer()
  server!: WebSocketsGatewayServer;

  readonly clients: WebSocket[] = [];

  handleConnection(client: WebSocket): void {
    this.clients.push(client);
  }

  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown): unknown {
    return data;
  }

  @SubscribeMessage('join')
  join(@ConnectedSocket() client: WebSocket, @MessageBody() room: string): string {
    this.server.join(client, room);
    return room;
  }

  @SubscribeMessage('say')
  say(@MessageBody() body: { room: string; text: string }): void {
    void this.server.to(body.room).emit('said', body.text);
  }
}

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/small', maxMessageSize: 64, compression: false, subprotocols: ['small.v1'] })
class SmallGateway extends EchoHandlers {}

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/big' })
class BigGateway extends EchoHandlers {}

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/origins', allowedOrigins: ['https://good.example', /^https:\/\/[a-z]+\.trusted\.example$/] })
class OriginsGateway extends EchoHandlers {}

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/browsers-only', allowedOrigins: ['https://good.example'], allowMissingOrigin: false })
class BrowsersOnlyGateway extends EchoHandlers {}

/**
 * A binary format: one byte giving the length n of the event name, n bytes of ASCII event name, then the payload.
 * Text frames are refused.
 */
const binaryParser: MessageParser = (data, isBinary) => {
  if (!isBinary || typeof data === 'string') throw new Error('this gateway speaks binary frames only');
  const length = data[0];
  if (length === undefined || length === 0 || data.length < 1 + length) throw new Error(`truncated frame of ${data.length} bytes`);
  return { event: data.subarray(1, 1 + length).toString('latin1'), data: data.subarray(1 + length) };
};

function binaryMessage(event: string, payload: number[]): Buffer {
  return Buffer.concat([Buffer.from([event.length]), Buffer.from(event, 'latin1'), Buffer.from(payload)]);
}

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/binary', messageParser: binaryParser })
class BinaryGateway {
  @SubscribeMessage('sum')
  sum(@MessageBody() data: Buffer): number {
    return data.reduce((total, byte) => total + byte, 0);
  }

  @SubscribeMessage('reverse')
  reverse(@MessageBody() data: Buffer): number[] {
    return [...data].reverse();
  }
}

/** `@Public()`: a handshake needs no token, on a gateway class or on its handleConnection. */
const PUBLIC = 'test:public';
const Public = (): ClassDecorator & MethodDecorator => SetMetadata(PUBLIC, true);

/** A module-wide handshake guard that reads `@Public()` as HTTP guards do, with Reflector. */
@Injectable()
class PublicOrTokenGuard implements CanActivate {
  static readonly seen: Array<{ gateway: unknown; handler: unknown }> = [];
  constructor(private readonly reflector: Reflector) {}
  canActivate(context: ExecutionContext): boolean {
    PublicOrTokenGuard.seen.push({ gateway: context.getClass(), handler: context.getHandler() });
    if (this.reflector.getAllAndOverride<boolean | undefined>(PUBLIC, [context.getHandler(), context.getClass()]) === true) return true;
    return context.switchToHttp().getRequest<{ query: Record<string, unknown> }>().query.token === 'secret';
  }
}

@Public()
@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/public-class' })
class PublicClassGateway extends EchoHandlers {}

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/public-handler' })
class PublicHandlerGateway extends EchoHandlers {
  @Public()
  override handleConnection(client: WebSocket): void {
    super.handleConnection(client);
  }
}

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/private' })
class PrivateGateway extends EchoHandlers {}

/** A bus that records what goes through it, over an in-process bus that stands for Redis and the other instances. */
class RecordingBus implements BroadcastBus {
  readonly network = new InProcessBroadcastBus();
  readonly published: Array<{ channel: string; envelope: BroadcastEnvelope }> = [];
  readonly subscribed: string[] = [];
  readonly unsubscribed: string[] = [];
  closed = 0;

  async publish(channel: string, envelope: BroadcastEnvelope): Promise<void> {
    this.published.push({ channel, envelope });
    await this.network.publish(channel, envelope);
  }

  async subscribe(channel: string, origin: string, listener: BroadcastListener): Promise<() => Promise<void>> {
    this.subscribed.push(channel);
    const stop = await this.network.subscribe(channel, origin, listener);
    return async () => {
      this.unsubscribed.push(channel);
      await stop();
    };
  }

  async close(): Promise<void> {
    this.closed += 1;
  }
}

let app: INestApplication | undefined;

async function start(gateways: Type[], options: WebSocketsModuleOptions = {}): Promise<{ url: string; app: INestApplication; adapter: WebSocketsAdapter }> {
  const started = await startNestApp({ providers: gateways, options });
  app = started.app;
  return { url: started.url(), app, adapter: started.adapter };
}

afterEach(async () => {
  await closePeers();
  await closeNestApps();
  app = undefined;
});

describe('per-gateway options', () => {
  it("override the module's: a gateway's own maxMessageSize gives 1009 where another gateway takes the message", async () => {
    const { url } = await start([SmallGateway, BigGateway], { maxMessageSize: 4096 });
    const text = 'x'.repeat(100);
    const big = await connectPeer(`${url}/big`);
    big.send({ event: 'echo', data: text });
    expect(await big.next()).toEqual({ event: 'echo', data: text });
    const small = await connectPeer(`${url}/small`);
    small.send({ event: 'echo', data: 'ok' });
    expect(await small.next()).toEqual({ event: 'echo', data: 'ok' });
    small.send({ event: 'echo', data: text });
    expect((await small.closed).code).toBe(CloseCode.MESSAGE_TOO_BIG);
    // The module's limit still holds where the gateway sets none.
    big.send({ event: 'echo', data: 'y'.repeat(5000) });
    expect((await big.closed).code).toBe(CloseCode.MESSAGE_TOO_BIG);
  });

  it('override compression and subprotocols per gateway', async () => {
    const { url } = await start([SmallGateway, BigGateway]);
    const open = async (path: string, protocols: string[]): Promise<WsClient> => {
      const ws = new WsClient(`${url}${path}`, protocols);
      await withTimeout(new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject)), WAIT_MS, `the ${path} handshake`);
      return ws;
    };
    // ws fails a handshake that answers none of the subprotocols it offered, so /big gets none.
    const big = await open('/big', []);
    expect([big.extensions, big.protocol]).toEqual([expect.stringMatching(/^permessage-deflate/), '']);
    const small = await open('/small', ['other', 'small.v1']);
    expect([small.extensions, small.protocol]).toEqual(['', 'small.v1']);
    for (const ws of [big, small]) ws.terminate();
  });
});

describe('allowed origins', () => {
  it('refuses an Origin that is not listed with 403 (in-band: 4403), and accepts listed strings, matching RegExps and no Origin', async () => {
    const { url } = await start([OriginsGateway, BrowsersOnlyGateway, BigGateway]);
    // The default refusals: 'auto' sends a browser's refusal in-band, where its page can read it.
    for (const origin of ['https://evil.example', 'https://good.example.evil.example', 'http://good.example']) {
      const refused = await connectPeer(`${url}/origins`, { origin });
      expect(await refused.closed).toEqual({ code: 4403, reason: `origin not allowed: ${origin}` });
    }
    for (const origin of ['https://good.example', 'https://chat.trusted.example', undefined]) {
      const peer = await connectPeer(`${url}/origins`, origin === undefined ? {} : { origin });
      peer.send({ event: 'echo', data: origin ?? 'none' });
      expect(await peer.next()).toEqual({ event: 'echo', data: origin ?? 'none' });
    }
    // allowMissingOrigin: false refuses clients that send no Origin.
    expect((await refusal(`${url}/browsers-only`)).status).toBe(403);
    await connectPeer(`${url}/browsers-only`, { origin: 'https://good.example' });
    // A gateway without allowedOrigins takes any origin.
    await connectPeer(`${url}/big`, { origin: 'https://evil.example' });
  });

  it("applies the module's allowedOrigins to every gateway that sets none, with its refusals setting", async () => {
    const { url } = await start([BigGateway], { allowedOrigins: ['https://app.example'], refusals: 'http' });
    expect(await refusal(`${url}/big`, { origin: 'https://evil.example' })).toEqual({
      status: 403,
      body: 'Failed to open a WebSocket connection: origin not allowed: https://evil.example.\n',
    });
    await connectPeer(`${url}/big`, { origin: 'https://app.example' });
  });
});

describe('a custom message parser', () => {
  it('reads a binary format, dispatches to the handlers and refuses what it throws on', async () => {
    const { url } = await start([BinaryGateway]);
    const peer = await connectPeer(`${url}/binary`);
    peer.ws.send(binaryMessage('sum', [1, 2, 3, 250]));
    expect(await peer.next()).toEqual({ event: 'sum', data: 256 });
    peer.ws.send(binaryMessage('reverse', [0, 1, 255]));
    expect(await peer.next()).toEqual({ event: 'reverse', data: [255, 1, 0] });
    peer.ws.send('{"event":"sum","data":[1]}');
    expect(await peer.next()).toEqual({ event: 'exception', data: { status: 'error', message: 'this gateway speaks binary frames only' } });
    peer.ws.send(Buffer.from([9, 0x73]));
    expect(await peer.next()).toEqual({ event: 'exception', data: { status: 'error', message: 'truncated frame of 2 bytes' } });
    peer.ws.send(binaryMessage('nope', []));
    expect(await peer.next()).toEqual({ event: 'exception', data: { status: 'error', message: 'unknown event "nope"' } });
    peer.ws.send(binaryMessage('sum', [7]));
    expect(await peer.next()).toEqual({ event: 'sum', data: 7 });
  });
});

describe('a custom BroadcastBus', () => {
  it('carries room messages and broadcasts, delivers what other instances publish, and is closed with the app', async () => {
    const bus = new RecordingBus();
    const { url, app: started } = await start([BigGateway], { broadcastBus: bus });
    expect(bus.subscribed).toEqual(['ws:0:/big']);
    const [alice, bob] = await Promise.all([connectPeer(`${url}/big`), connectPeer(`${url}/big`)]);
    alice!.send({ event: 'join', data: 'lobby' });
    expect(await alice!.next()).toEqual({ event: 'join', data: 'lobby' });
    bob!.send({ event: 'say', data: { room: 'lobby', text: 'hello' } });
    expect(await alice!.next()).toEqual({ event: 'said', data: 'hello' });
    // (The envelope may carry more, such as the publisher's origin.)
    expect(bus.published).toMatchObject([{ channel: 'ws:0:/big', envelope: { room: 'lobby', data: '{"event":"said","data":"hello"}' } }]);

    // Another instance publishes on the same channel: this instance's clients get it, text as text, binary as binary.
    await bus.network.publish('ws:0:/big', { room: null, data: 'from elsewhere' });
    await bus.network.publish('ws:0:/big', { room: 'lobby', data: Buffer.from([1, 2, 3]) });
    for (const peer of [alice!, bob!]) expect((await peer.nextRaw()).data.toString()).toBe('from elsewhere');
    expect(await alice!.nextRaw()).toEqual({ data: Buffer.from([1, 2, 3]), isBinary: true });
    expect(bob!.pending()).toBe(0);

    await started.close();
    app = undefined;
    expect(bus.unsubscribed).toEqual(['ws:0:/big']);
    expect(bus.closed).toBe(1);
  });
});

describe('closeClient', () => {
  it('closes a client with 1013 (try again later), and does nothing for one already closed', async () => {
    const { url, app: started, adapter } = await start([BigGateway]);
    const peer = await connectPeer(`${url}/big`);
    peer.send({ event: 'echo', data: 1 });
    await peer.next();
    const [client] = started.get(BigGateway).clients;
    adapter.closeClient(client!);
    expect(await peer.closed).toEqual({ code: CloseCode.TRY_AGAIN_LATER, reason: 'server starting' });
    expect(() => adapter.closeClient(client!)).not.toThrow();
  });
});

describe('handshake guards and metadata', () => {
  it('give a module-wide guard the gateway as getClass() and its handleConnection as getHandler()', async () => {
    PublicOrTokenGuard.seen.length = 0;
    const { url } = await start([PublicClassGateway, PublicHandlerGateway, PrivateGateway], { handshakeGuards: [PublicOrTokenGuard] });
    await connectPeer(`${url}/public-class`);
    await connectPeer(`${url}/public-handler`);
    expect(await refusal(`${url}/private`)).toEqual({ status: 403, body: 'Forbidden' });
    await connectPeer(`${url}/private?token=secret`);
    expect(PublicOrTokenGuard.seen).toEqual([
      { gateway: PublicClassGateway, handler: PublicClassGateway.prototype.handleConnection },
      { gateway: PublicHandlerGateway, handler: PublicHandlerGateway.prototype.handleConnection },
      { gateway: PrivateGateway, handler: PrivateGateway.prototype.handleConnection },
      { gateway: PrivateGateway, handler: PrivateGateway.prototype.handleConnection },
    ]);
  });
});
