/**
 * The Redis bus through `WebSocketsModule`, in this process: `redisUrl` and WEBSOCKETS_REDIS_URL (precedence,
 * validation), start-up failure of `app.init()` when Redis is unreachable, two apps sharing rooms over a real
 * redis-server, and the `except()` forms of rooms and broadcast (on the in-process bus too).
 */
import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Module, type INestApplication, type LoggerService } from '@nestjs/common';
import { ConnectedSocket, MessageBody, SubscribeMessage, WebSocketGateway, WebSocketServer } from '@nestjs/websockets';
import { ConfigError } from '../../lib/errors.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import { InProcessBroadcastBus, type BroadcastBus } from '../../lib/broadcast/index.js';
import type { WebSocketsGatewayServer } from '../../lib/nest/gateway-server.js';
import { RedisUnavailableError } from '../../lib/errors.js';
import { WebSocketsModule } from '../../lib/nest/websockets.module.js';
import { WebSocketsService } from '../../lib/nest/websockets.service.js';
import { resolveWebSocketsOptions } from '../../lib/nest/websockets-options.js';
import type { WebSocketsGatewayOptions, WebSocketsModuleOptions } from '../../lib/nest/websockets-options.interface.js';
import { closePeers, connectPeer, type Peer } from '../nest/ws-peer.js';
import { freePort } from '../support/net.js';
import { describeWithPeer } from '../support/peers.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { CapturingLogger, closeNestApps, startNestApp } from '../support/nest-app.js';

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/ws' })
class RoomsGateway {
  @WebSocketServer()
  server!: WebSocketsGatewayServer;

  @SubscribeMessage('join')
  join(@ConnectedSocket() client: WebSocket, @MessageBody() room: string): string {
    this.server.join(client, room);
    return room;
  }

  @SubscribeMessage('to-room')
  async toRoom(@MessageBody() body: { room: string; text: string }): Promise<void> {
    await this.server.to(body.room).emit('said', body.text);
  }

  @SubscribeMessage('to-room-but-me')
  async toRoomButMe(@ConnectedSocket() client: WebSocket, @MessageBody() body: { room: string; text: string }): Promise<void> {
    const others = this.server.to(body.room).except(client);
    await others.emit('said', `${body.text} (${others.clients.size} local)`);
  }

  @SubscribeMessage('to-all-but-me')
  async toAllButMe(@ConnectedSocket() client: WebSocket, @MessageBody() text: string): Promise<void> {
    await this.server.except(client).emit('said', text);
  }

  @SubscribeMessage('bytes-to-all-but-me')
  async bytesToAllButMe(@ConnectedSocket() client: WebSocket, @MessageBody() hex: string): Promise<void> {
    await this.server.except(client).send(Buffer.from(hex, 'hex'));
  }
}


async function start(options: WebSocketsModuleOptions, logger: LoggerService | false = false): Promise<{ app: INestApplication; url: string }> {
  @Module({ imports: [WebSocketsModule.forRoot(options)], providers: [RoomsGateway] })
  class AppModule {}
  const started = await startNestApp({ imports: [AppModule], logger });
  return { app: started.app, url: started.url('/ws') };
}

async function joined(url: string, room: string): Promise<Peer> {
  const peer = await connectPeer(url);
  peer.send({ event: 'join', data: room });
  expect(await peer.next()).toEqual({ event: 'join', data: room });
  return peer;
}

afterEach(async () => {
  await closePeers();
  await closeNestApps();
});

describe('redisUrl and WEBSOCKETS_REDIS_URL', () => {
  const url = 'redis://127.0.0.1:6379';

  it('takes the option, else the variable; null or an empty variable keeps broadcasts in-process', () => {
    expect(resolveWebSocketsOptions({ env: {} }).redisUrl).toBeNull();
    expect(resolveWebSocketsOptions({ env: { WEBSOCKETS_REDIS_URL: url } }).redisUrl).toBe(url);
    expect(resolveWebSocketsOptions({ env: { WEBSOCKETS_REDIS_URL: '' } }).redisUrl).toBeNull();
    expect(resolveWebSocketsOptions({ redisUrl: 'rediss://r:6380', env: { WEBSOCKETS_REDIS_URL: url } }).redisUrl).toBe('rediss://r:6380');
    expect(resolveWebSocketsOptions({ redisUrl: null, env: { WEBSOCKETS_REDIS_URL: url } }).redisUrl).toBeNull();
  });

  it('refuses a URL that is not redis:// or rediss://, naming where it came from', () => {
    expect(() => resolveWebSocketsOptions({ env: { WEBSOCKETS_REDIS_URL: 'localhost:6379' } })).toThrow(
      new ConfigError(
        'WEBSOCKETS_REDIS_URL must be a redis:// or rediss:// URL such as redis://127.0.0.1:6379, or redis+cluster://host:port' +
          '[?node=host:port...] for a Redis Cluster; got "localhost:6379" (option redisUrl, env WEBSOCKETS_REDIS_URL)',
        'redisUrl',
        'localhost:6379',
      ),
    );
    expect(() => resolveWebSocketsOptions({ redisUrl: 42 as unknown as string, env: {} })).toThrow(
      'WebSocketsModule option redisUrl must be a redis:// or rediss:// URL such as redis://127.0.0.1:6379, or redis+cluster://host:port' +
        '[?node=host:port...] for a Redis Cluster; got 42 (option redisUrl, env WEBSOCKETS_REDIS_URL)',
    );
  });

  it('stops app.init() with RedisUnavailableError when Redis cannot be reached, and logs nothing of its own about it', async () => {
    const port = await freePort();
    const logger = new CapturingLogger();
    const error = await start({ redisUrl: `redis://127.0.0.1:${port}`, env: {} }, logger).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect((error as Error).message).toContain(`cannot connect to Redis at redis://127.0.0.1:${port} (option redisUrl, env WEBSOCKETS_REDIS_URL)`);
    // The failed start reports it (Nest prints it once); a line of ours would print it a second time (regression: the
    // sample printed it three times).
    expect(logger.lines.filter((line) => line.includes('Redis'))).toEqual([]);
  });

  it('uses a given broadcastBus over redisUrl', async () => {
    const bus: BroadcastBus = new InProcessBroadcastBus();
    const port = await freePort();
    // Nothing listens on the port: the app starts because the given bus wins.
    const { app, url } = await start({ broadcastBus: bus, redisUrl: `redis://127.0.0.1:${port}`, env: {} });
    expect(app.get(WebSocketsService).options.redisUrl).toBe(`redis://127.0.0.1:${port}`);
    const peer = await joined(url, 'lobby');
    peer.send({ event: 'to-room', data: { room: 'lobby', text: 'hi' } });
    expect(await peer.next()).toEqual({ event: 'said', data: 'hi' });
  });
});

describe('redisChannelPrefix and WEBSOCKETS_REDIS_CHANNEL_PREFIX', () => {
  it('takes the option (even empty), else a non-empty variable, else the default', () => {
    expect(resolveWebSocketsOptions({ env: {} }).redisChannelPrefix).toBe('nestjs-websockets:');
    expect(resolveWebSocketsOptions({ env: { WEBSOCKETS_REDIS_CHANNEL_PREFIX: 'shop:' } }).redisChannelPrefix).toBe('shop:');
    expect(resolveWebSocketsOptions({ env: { WEBSOCKETS_REDIS_CHANNEL_PREFIX: '' } }).redisChannelPrefix).toBe('nestjs-websockets:');
    expect(resolveWebSocketsOptions({ redisChannelPrefix: 'blog:', env: { WEBSOCKETS_REDIS_CHANNEL_PREFIX: 'shop:' } }).redisChannelPrefix).toBe('blog:');
    expect(resolveWebSocketsOptions({ redisChannelPrefix: '', env: { WEBSOCKETS_REDIS_CHANNEL_PREFIX: 'shop:' } }).redisChannelPrefix).toBe('');
  });

  it('refuses a prefix that is not a string', () => {
    expect(() => resolveWebSocketsOptions({ redisChannelPrefix: 7 as unknown as string, env: {} })).toThrow(ConfigError);
    expect(() => resolveWebSocketsOptions({ redisChannelPrefix: 7 as unknown as string, env: {} })).toThrow(/redisChannelPrefix/);
  });
});

describe('except()', () => {
  it('leaves out the sender (or any client) from a room and from a broadcast, on one instance', async () => {
    const { url } = await start({ env: {} });
    const [alice, bob, carol] = await Promise.all([joined(url, 'lobby'), joined(url, 'lobby'), joined(url, 'kitchen')]);
    alice.send({ event: 'to-room-but-me', data: { room: 'lobby', text: 'psst' } });
    expect(await bob.next()).toEqual({ event: 'said', data: 'psst (1 local)' });
    bob.send({ event: 'to-all-but-me', data: 'all but bob' });
    for (const peer of [alice, carol]) expect(await peer.next()).toEqual({ event: 'said', data: 'all but bob' });
    carol.send({ event: 'bytes-to-all-but-me', data: '00ff' });
    for (const peer of [alice, bob]) expect(await peer.nextRaw()).toEqual({ data: Buffer.from([0, 255]), isBinary: true });
    // Each sender's own next message is the one it sends itself now: nothing of the above reached it.
    for (const peer of [alice, bob, carol]) {
      peer.send({ event: 'join', data: 'x' });
      expect(await peer.next()).toEqual({ event: 'join', data: 'x' });
    }
  });
});

describeWithPeer('redis', 'two apps in this process sharing rooms through a real redis-server', () => {
  let redis: RedisServer;

  beforeAll(async () => {
    redis = await startRedis();
  });

  afterAll(async () => {
    await redis?.close();
  });

  it('delivers room and except() messages once on each app, text and binary, and closes the bus with the app', async () => {
    const [one, two] = await Promise.all([
      start({ env: { WEBSOCKETS_REDIS_URL: redis.url } }),
      start({ redisUrl: redis.url, env: {} }),
    ]);
    const [a1, a2, b1] = await Promise.all([joined(one.url, 'lobby'), joined(one.url, 'lobby'), joined(two.url, 'lobby')]);
    a1.send({ event: 'to-room', data: { room: 'lobby', text: 'one' } });
    for (const peer of [a1, a2, b1]) expect(await peer.next()).toEqual({ event: 'said', data: 'one' });
    b1.send({ event: 'to-room-but-me', data: { room: 'lobby', text: 'two' } });
    expect(await a1.next()).toEqual({ event: 'said', data: 'two (0 local)' });
    expect(await a2.next()).toEqual({ event: 'said', data: 'two (0 local)' });
    a2.send({ event: 'bytes-to-all-but-me', data: 'c328ff' });
    for (const peer of [a1, b1]) expect(await peer.nextRaw()).toEqual({ data: Buffer.from([0xc3, 0x28, 0xff]), isBinary: true });
    // Alternate instances: a duplicate of an earlier message would arrive before this one.
    b1.send({ event: 'to-room', data: { room: 'lobby', text: 'three' } });
    for (const peer of [a1, a2, b1]) expect(await peer.next()).toEqual({ event: 'said', data: 'three' });
    a1.send({ event: 'to-room', data: { room: 'lobby', text: 'four' } });
    for (const peer of [a1, a2, b1]) expect(await peer.next()).toEqual({ event: 'said', data: 'four' });
    expect([a1, a2, b1].map((peer) => peer.pending())).toEqual([0, 0, 0]);

    // app.close() closes the bus: its connections leave Redis.
    const names = async () => (await redis.command('CLIENT', 'LIST')).toString();
    expect((await names()).match(/name=nestjs-websockets:/g)).toHaveLength(4);
    await closePeers();
    await one.app.close();
    expect((await names()).match(/name=nestjs-websockets:/g)).toHaveLength(2);
  });

  it('keeps apps with different channel prefixes apart on one Redis, and shares rooms between apps with the same', async () => {
    const [shopOne, blog, shopTwo] = await Promise.all([
      start({ redisUrl: redis.url, redisChannelPrefix: 'shop:', env: {} }),
      start({ redisUrl: redis.url, env: {} }),
      start({ env: { WEBSOCKETS_REDIS_URL: redis.url, WEBSOCKETS_REDIS_CHANNEL_PREFIX: 'shop:' } }),
    ]);
    const [s1, b1, s2] = await Promise.all([joined(shopOne.url, 'lobby'), joined(blog.url, 'lobby'), joined(shopTwo.url, 'lobby')]);
    const channels = (await redis.command('PUBSUB', 'CHANNELS', '*')).toString();
    expect(channels).toMatch(/shop:/);
    expect(channels).toMatch(/nestjs-websockets:/);

    s1.send({ event: 'to-room', data: { room: 'lobby', text: 'for the shop' } });
    for (const peer of [s1, s2]) expect(await peer.next()).toEqual({ event: 'said', data: 'for the shop' });
    b1.send({ event: 'to-room', data: { room: 'lobby', text: 'for the blog' } });
    expect(await b1.next()).toEqual({ event: 'said', data: 'for the blog' });
    // A round trip on each shop peer: a blog message that leaked to them would have arrived before its reply.
    for (const peer of [s1, s2]) {
      peer.send({ event: 'join', data: 'x' });
      expect(await peer.next()).toEqual({ event: 'join', data: 'x' });
    }
    // And the blog peer never saw the shop's message: its next one is its own join.
    b1.send({ event: 'join', data: 'y' });
    expect(await b1.next()).toEqual({ event: 'join', data: 'y' });
  });
});
