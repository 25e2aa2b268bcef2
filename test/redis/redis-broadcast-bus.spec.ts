/**
 * `RedisBroadcastBus` against a real redis-server: the wire format, delivery between two buses (two instances)
 * exactly once, binary and text payloads, malformed messages, start-up failures (Redis unreachable, ioredis missing),
 * and Redis stopped and started again while the buses run.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { LoggerService } from '@nestjs/common';
import { checkRedisUrl } from '../../lib/config/index.js';
import { ConfigError } from '../../lib/errors.js';
import { newOrigin, type BroadcastEnvelope } from '../../lib/broadcast/broadcast-bus.js';
import {
  RedisBroadcastBus,
  RedisClientMissingError,
  RedisUnavailableError,
  decodeRedisMessage,
  encodeRedisMessage,
} from '../../lib/broadcast/redis/index.js';
import { freePort, WAIT_MS as ONE_WAIT, withTimeout } from '../support/net.js';
import { describeWithPeer } from '../support/peers.js';
import { startRedis, type RedisServer } from '../support/redis.js';

const WAIT_MS = 2 * ONE_WAIT;
const ID = Buffer.alloc(16, 0xab);

/** A logger that keeps what it is given. */
function memoryLogger(): LoggerService & { lines: string[] } {
  const lines: string[] = [];
  const keep = (level: string) => (message: unknown) => void lines.push(`${level}: ${String(message)}`);
  return { lines, log: keep('log'), error: keep('error'), warn: keep('warn'), debug: keep('debug'), verbose: keep('verbose') };
}

/** Collects the envelopes a listener gets, with a wait for the next one. */
function inbox() {
  const received: BroadcastEnvelope[] = [];
  const waiters: Array<() => void> = [];
  return {
    received,
    listener: (envelope: BroadcastEnvelope) => {
      received.push(envelope);
      for (const wake of waiters.splice(0)) wake();
    },
    async count(n: number): Promise<BroadcastEnvelope[]> {
      while (received.length < n) await withTimeout(new Promise<void>((resolve) => waiters.push(resolve)), WAIT_MS, `${n} envelope(s)`);
      return received.slice(0, n);
    },
  };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('Redis wire format', () => {
  it('round-trips text, binary (every byte value) and room names, and carries the sender id', () => {
    const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    for (const envelope of [
      { room: null, data: 'hello' },
      { room: 'lobby', data: 'héllo 👋 ✓' },
      { room: 'salle 🏠', data: binary },
      { room: '', data: Buffer.alloc(0) },
      { room: null, data: '' },
    ] as const) {
      const decoded = decodeRedisMessage(encodeRedisMessage(ID, envelope));
      expect(decoded).toEqual({ origin: ID.toString('hex'), envelope: { ...envelope, origin: ID.toString('hex') } });
    }
  });

  it('copies a binary payload out of the Redis buffer', () => {
    const message = encodeRedisMessage(ID, { room: null, data: Buffer.from([1, 2, 3]) });
    const decoded = decodeRedisMessage(message);
    message.fill(0);
    expect('envelope' in decoded && decoded.envelope.data).toEqual(Buffer.from([1, 2, 3]));
  });

  it('refuses malformed messages with a reason, never throwing', () => {
    const good = encodeRedisMessage(ID, { room: 'r', data: 'x' });
    const withByte = (at: number, value: number) => Buffer.from(good).fill(value, at, at + 1);
    const cases: Array<[Buffer, string]> = [
      [Buffer.from('hello'), '5 bytes, shorter than the 22-byte header'],
      [withByte(0, 2), 'unknown format 2'],
      [withByte(1, 6), 'unknown flags 6'],
      [Buffer.from(good).fill(0xff, 18, 22), 'room length 4294967295 beyond the message'],
      [withByte(1, 0), 'a room length without a room'],
      [Buffer.concat([good.subarray(0, 22), Buffer.from([0x72]), Buffer.from([0xc3, 0x28])]), 'text payload is not UTF-8'],
      [Buffer.concat([Buffer.from(good.subarray(0, 18)), Buffer.from([0, 0, 0, 1, 0xff])]), 'room name is not UTF-8'],
    ];
    for (const [message, error] of cases) expect(decodeRedisMessage(message)).toEqual({ error });
  });
});

describe('RedisBroadcastBus options', () => {
  it('refuses a URL that is not redis:// or rediss://, naming the option and the variable', () => {
    for (const url of ['', 'http://127.0.0.1:6379', 'localhost:6379', 'redis://']) {
      expect(() => new RedisBroadcastBus({ url })).toThrow(ConfigError);
    }
    expect(() => checkRedisUrl('http://x', 'WEBSOCKETS_REDIS_URL')).toThrow(
      'WEBSOCKETS_REDIS_URL must be a redis:// or rediss:// URL such as redis://127.0.0.1:6379; got "http://x" (option redisUrl, env WEBSOCKETS_REDIS_URL)',
    );
    expect(() => new RedisBroadcastBus({ url: 'redis://h', reconnectMinDelayMs: 0 })).toThrow(
      'RedisBroadcastBus option reconnectMinDelayMs must be a positive integer (milliseconds); got 0',
    );
  });

  it('keeps the password out of the URL it shows', () => {
    const bus = new RedisBroadcastBus({ url: 'rediss://user:s3cret@redis.example:6380/2' });
    expect(bus.url).toBe('rediss://user:***@redis.example:6380/2');
  });

  it('names the package to install when ioredis cannot be loaded', async () => {
    const notFound = Object.assign(new Error("Cannot find package 'ioredis' imported from /app/dist/lib/broadcast/redis/redis-bus.js"), {
      code: 'ERR_MODULE_NOT_FOUND',
    });
    const bus = new RedisBroadcastBus({ url: 'redis://127.0.0.1:1' }, () => Promise.reject(notFound));
    const error = await bus.subscribe('ws:0:/ws', newOrigin(), () => undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RedisClientMissingError);
    expect(error).toMatchObject({
      code: 'WS_ERR_REDIS_CLIENT_MISSING',
      message:
        'a Redis URL is configured (option redisUrl, env WEBSOCKETS_REDIS_URL) but the ioredis package is not installed; install it with: npm install ioredis',
      cause: notFound,
    });
    // Any other loading failure is not disguised as a missing package.
    const broken = new RedisBroadcastBus({ url: 'redis://127.0.0.1:1' }, () => Promise.reject(new SyntaxError('bad')));
    await expect(broken.connect()).rejects.toThrow(SyntaxError);
  });
});

describe('RedisBroadcastBus start-up without Redis', () => {
  it('fails with RedisUnavailableError naming the URL, the reason and the settings, and retries nothing', async () => {
    const port = await freePort();
    const logger = memoryLogger();
    const bus = new RedisBroadcastBus({ url: `redis://:pw@127.0.0.1:${port}`, logger });
    const error = await bus.subscribe('ws:0:/ws', newOrigin(), () => undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect((error as Error).message).toBe(
      `cannot connect to Redis at redis://:***@127.0.0.1:${port} (option redisUrl, env WEBSOCKETS_REDIS_URL): ` +
        `connect ECONNREFUSED 127.0.0.1:${port}; start Redis, fix the URL, or unset it to keep broadcasts in this process`,
    );
    // The same failure for every later use.
    await expect(bus.connect()).rejects.toBe(error);
    await expect(bus.publish('ws:0:/ws', { room: null, data: 'x' })).rejects.toBe(error);
    expect(bus.connected).toBe(false);
    await bus.close();
  });
});

describeWithPeer('redis', 'RedisBroadcastBus on a real redis-server', () => {
  let redis: RedisServer;
  const buses: RedisBroadcastBus[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  });

  afterEach(async () => {
    await Promise.all(buses.splice(0).map((bus) => bus.close()));
    if (!redis.running) await redis.start();
  });

  afterAll(async () => {
    await redis?.close();
  });

  function bus(logger: LoggerService = memoryLogger(), channelPrefix?: string): RedisBroadcastBus {
    const created = new RedisBroadcastBus({ url: redis.url, logger, reconnectMinDelayMs: 50, reconnectMaxDelayMs: 400, channelPrefix });
    buses.push(created);
    return created;
  }

  it('delivers to the other instance once, and to the publisher\'s own process once (no echo from Redis)', async () => {
    const logger = memoryLogger();
    const a = bus(logger);
    const b = bus();
    const onA = inbox();
    const onB = inbox();
    await a.subscribe('ws:0:/ws', newOrigin(), onA.listener);
    await b.subscribe('ws:0:/ws', newOrigin(), onB.listener);
    expect(a.connected).toBe(true);
    expect(logger.lines).toContain(`log: broadcasts cross instances through Redis at ${redis.url} (instance ${a.instanceId})`);

    const fromA = { room: 'lobby', data: 'from a', origin: 'server-a' };
    const fromB = { room: null, data: Buffer.from([0, 255, 1]), origin: 'server-b' };
    const lastFromB = { room: null, data: 'last from b', origin: 'server-b' };
    const lastFromA = { room: null, data: 'last from a', origin: 'server-a' };
    await a.publish('ws:0:/ws', fromA);
    await b.publish('ws:0:/ws', fromB);
    await b.publish('ws:0:/ws', lastFromB);
    await a.publish('ws:0:/ws', lastFromA);
    // Redis delivers in publish order on each subscription, so once the other side's last message has arrived
    // remotely, any echo of an instance's own earlier messages would have arrived before it. Local delivery happens
    // at publish time, so the order between local and remote messages is not fixed: compare as sets.
    const has = (box: ReturnType<typeof inbox>, data: string): boolean => box.received.some((e) => e.data === data);
    await until(() => has(onA, 'last from b') && has(onA, 'last from a'), 'A receiving both last messages');
    await until(() => has(onB, 'last from a') && has(onB, 'last from b'), 'B receiving both last messages');
    const byData = (x: BroadcastEnvelope, y: BroadcastEnvelope): number => String(x.data).localeCompare(String(y.data));
    expect([...onA.received].sort(byData)).toEqual(
      [fromA, lastFromA, { ...fromB, origin: b.instanceId }, { ...lastFromB, origin: b.instanceId }].sort(byData),
    );
    expect([...onB.received].sort(byData)).toEqual(
      [fromB, lastFromB, { ...fromA, origin: a.instanceId }, { ...lastFromA, origin: a.instanceId }].sort(byData),
    );
  });

  it('keeps channels apart, and apps with different prefixes apart', async () => {
    const a = bus();
    const b = bus();
    const otherApp = bus(undefined, 'other-app:');
    const otherAppPeer = bus(undefined, 'other-app:');
    const onPath = inbox();
    const onOtherPath = inbox();
    const onOtherApp = inbox();
    await b.subscribe('ws:0:/ws', newOrigin(), onPath.listener);
    await b.subscribe('ws:0:/admin', newOrigin(), onOtherPath.listener);
    await otherApp.subscribe('ws:0:/ws', newOrigin(), onOtherApp.listener);
    await a.connect();
    await otherAppPeer.connect();
    await a.publish('ws:0:/ws', { room: null, data: 'one' });
    await a.publish('ws:0:/admin', { room: null, data: 'two' });
    // Redis keeps the order of what it was given: by the time a message published later arrives, earlier ones have.
    await otherAppPeer.publish('ws:0:/ws', { room: null, data: 'three' });
    await a.publish('ws:0:/ws', { room: null, data: 'four' });
    expect((await onOtherApp.count(1)).map((e) => e.data)).toEqual(['three']);
    expect((await onPath.count(2)).map((e) => e.data)).toEqual(['one', 'four']);
    expect((await onOtherPath.count(1)).map((e) => e.data)).toEqual(['two']);
    expect(onOtherApp.received).toHaveLength(1);
    expect(onPath.received).toHaveLength(2);
  });

  it('stops delivering after unsubscribe', async () => {
    const a = bus();
    const b = bus();
    const first = inbox();
    const second = inbox();
    const stopFirst = await b.subscribe('ws:0:/ws', newOrigin(), first.listener);
    await b.subscribe('ws:0:/ws', newOrigin(), second.listener);
    await a.connect();
    await a.publish('ws:0:/ws', { room: null, data: 'both' });
    await first.count(1);
    await stopFirst();
    await a.publish('ws:0:/ws', { room: null, data: 'second only' });
    await second.count(2);
    expect(first.received.map((e) => e.data)).toEqual(['both']);
  });

  it('drops malformed messages with a warning and goes on', async () => {
    const logger = memoryLogger();
    const b = bus(logger);
    const onB = inbox();
    await b.subscribe('ws:0:/ws', newOrigin(), onB.listener);
    expect((await redis.command('PUBLISH', 'nestjs-websockets:ws:0:/ws', 'not ours')).toString()).toBe(':1\r\n');
    const a = bus();
    await a.connect();
    await a.publish('ws:0:/ws', { room: null, data: 'valid' });
    expect((await onB.count(1)).map((e) => e.data)).toEqual(['valid']);
    expect(logger.lines).toContain(
      'warn: dropped a malformed message on Redis channel nestjs-websockets:ws:0:/ws: 8 bytes, shorter than the 22-byte header',
    );
  });

  it('isolates a listener that throws', async () => {
    const logger = memoryLogger();
    const a = bus();
    const b = bus(logger);
    const after = inbox();
    await b.subscribe('ws:0:/ws', newOrigin(), () => {
      throw new Error('listener bug');
    });
    await b.subscribe('ws:0:/ws', newOrigin(), after.listener);
    await a.connect();
    await a.publish('ws:0:/ws', { room: null, data: 'x' });
    await after.count(1);
    expect(logger.lines).toContain('error: a broadcast listener of ws:0:/ws threw: listener bug');
  });

  it('while Redis is down: local delivery goes on, the loss is logged; after it is back: reconnects and resubscribes', async () => {
    const logger = memoryLogger();
    const a = bus(logger);
    const b = bus();
    const localOnA = inbox();
    const onB = inbox();
    await a.subscribe('ws:0:/ws', newOrigin(), localOnA.listener);
    await b.subscribe('ws:0:/ws', newOrigin(), onB.listener);

    await redis.stop();
    await until(() => !a.connected && !b.connected, 'both buses to see Redis gone');
    expect(logger.lines.filter((line) => line.startsWith('error: lost the connection to Redis'))).toHaveLength(1);
    expect(logger.lines.find((line) => line.startsWith('error: lost'))).toMatch(
      /^error: lost the connection to Redis at redis:\/\/127\.0\.0\.1:\d+ \(.+\); broadcasts reach this instance's clients only until it is back; reconnecting with backoff \(50 ms to 400 ms\)$/,
    );
    // A second listener in A's process gets A's broadcast while Redis is away; nothing throws.
    await a.publish('ws:0:/ws', { room: null, data: 'while down', origin: 'elsewhere' });
    await a.publish('ws:0:/ws', { room: null, data: 'while down 2', origin: 'elsewhere' });
    expect(localOnA.received.map((e) => e.data)).toEqual(['while down', 'while down 2']);

    await redis.start();
    await until(() => a.connected && b.connected, 'both buses to reconnect');
    await until(() => logger.lines.some((line) => line.startsWith('log: reconnected')), 'the reconnection to be logged');
    expect(logger.lines.find((line) => line.startsWith('log: reconnected'))).toMatch(
      /^log: reconnected to Redis at redis:\/\/127\.0\.0\.1:\d+ after \d+ ms; 2 broadcast\(s\) reached this instance's clients only meanwhile$/,
    );
    // The 'ready' handler subscribes again; publish until B hears (the SUBSCRIBE may land just after 'ready').
    let sent = 0;
    while (onB.received.length === 0) {
      await a.publish('ws:0:/ws', { room: null, data: `after ${sent++}` });
      await new Promise((resolve) => setTimeout(resolve, 50));
      if (sent > 100) throw new Error('B never received a message after Redis came back');
    }
    expect(onB.received.every((e) => typeof e.data === 'string' && e.data.startsWith('after'))).toBe(true);
  });

  it('closes without hanging, twice, and publishing after close does not throw', async () => {
    const a = bus();
    await a.subscribe('ws:0:/ws', newOrigin(), () => undefined);
    await a.close();
    await a.close();
    await expect(a.publish('ws:0:/ws', { room: null, data: 'late' })).resolves.toBeUndefined();
  });
});
