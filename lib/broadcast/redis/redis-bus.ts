/**
 * `RedisBroadcastBus`: rooms and broadcast across processes and machines over Redis pub/sub, the way socket.io's
 * Redis adapter does it for socket.io. Each instance of the app keeps its own room membership; only published
 * messages cross Redis, one Redis channel per gateway channel (`<prefix><port>:<path>`).
 *
 * - The client is `ioredis`, an optional peer dependency loaded with a dynamic `import()` the first time the bus
 *   connects: an app that never sets WEBSOCKETS_REDIS_URL never loads it, and one that sets it without the package
 *   gets `RedisClientMissingError`, which names the package to install.
 * - Delivery is exactly once per member: the publishing server delivers to its own clients at once (so a broadcast
 *   keeps its order with the sends around it and reaches local clients while Redis is away), the bus hands it to the
 *   other subscribers of this process at once too, and each message carries the publisher's 16-byte origin, by
 *   which the bus drops its own messages when Redis echoes them back.
 * - Start-up: `connect()` (called by the first `subscribe()`) makes one attempt; an unreachable Redis rejects with
 *   `RedisUnavailableError`, which `WebSocketsModule` turns into a failed `app.init()` / `app.listen()`.
 * - Once connected, a lost connection is logged (the `logger` option; Nest's logger in a Nest app), retried with exponential backoff and jitter,
 *   and the channels are subscribed again when it is back. Meanwhile publishing only reaches local clients (Redis
 *   pub/sub keeps nothing for absent subscribers either); the number of broadcasts that did not cross is logged when
 *   the connection is back. Nothing throws out of an event handler.
 *
 * Wire format of one Redis message (binary-safe, so a binary payload is never re-encoded):
 *   u8 format (1) | u8 flags (1 binary, 2 has room) | 16 bytes origin | u32 BE room length | room | payload
 *
 * A little over 400 lines: connecting, reconnecting and resubscribing share the state of the two Redis connections
 * (publisher and subscriber), and the wire format is kept next to the code that writes and reads it.
 */
import { isUtf8 } from 'node:buffer';
import { checkRedisUrl } from '../../config/redis.js';
import { SETTINGS } from '../../config/settings.js';
import { ConfigError, RedisClientMissingError, RedisUnavailableError } from '../../errors.js';
import { ORIGIN_BYTES, newOrigin, type BroadcastBus, type BroadcastEnvelope, type BroadcastListener } from '../broadcast-bus.js';
import type { BroadcastLogger } from '../logger.js';

/** The npm package the bus loads. */
const REDIS_CLIENT_PACKAGE = 'ioredis';

/** Options of `new RedisBroadcastBus()`. `WebSocketsModule` builds one from `redisUrl` / WEBSOCKETS_REDIS_URL. */
export interface RedisBroadcastBusOptions {
  /** `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS. */
  url: string;
  /**
   * Prefix of the Redis channel names. Redis pub/sub ignores the database number, so apps that share one Redis
   * need different prefixes. @default 'nestjs-websockets:'
   */
  channelPrefix?: string;
  /** First reconnection delay after the connection is lost, in ms; each attempt doubles it. @default 100 */
  reconnectMinDelayMs?: number;
  /** Longest reconnection delay, in ms. @default 5000 */
  reconnectMaxDelayMs?: number;
  /** Bound on connecting (the start-up attempt and each reconnection), in ms. @default 5000 */
  connectTimeoutMs?: number;
  /** Where connection events go. @default `console` (a Nest app passes its `Logger`) */
  logger?: BroadcastLogger;
}

/** The part of an ioredis client the bus uses, typed here so that this package's types never name ioredis. */
interface RedisConnection {
  readonly status: string;
  connect(): Promise<void>;
  publish(channel: string, message: Buffer): Promise<number>;
  subscribe(...channels: string[]): Promise<unknown>;
  unsubscribe(...channels: string[]): Promise<unknown>;
  quit(): Promise<unknown>;
  disconnect(reconnect?: boolean): void;
  on(event: 'messageBuffer', listener: (channel: Buffer, message: Buffer) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'ready' | 'close' | 'end', listener: () => void): unknown;
  on(event: 'reconnecting', listener: (delayMs: number) => void): unknown;
}

type RedisConnectionClass = new (url: string, options: Record<string, unknown>) => RedisConnection;

/** How the bus loads the client: `import('ioredis')`. Tests replace it to check the missing-package error. */
export type RedisClientLoader = () => Promise<unknown>;

const defaultLoader: RedisClientLoader = () => import('ioredis');

const FORMAT = 1;
const FLAG_BINARY = 1;
const FLAG_ROOM = 2;
const ID_BYTES = ORIGIN_BYTES;
const ROOM_LENGTH_AT = 2 + ID_BYTES;
const HEADER_BYTES = ROOM_LENGTH_AT + 4;

const DEFAULT_PREFIX = SETTINGS.redisChannelPrefix.default;
const DEFAULT_MIN_DELAY_MS = 100;
const DEFAULT_MAX_DELAY_MS = 5000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
/** Repeated warnings of one kind (malformed messages, failed publishes) are logged at most once per this period. */
const WARN_PERIOD_MS = 10_000;

/** Encodes an envelope with its publisher's origin (16 bytes), in one allocation. */
export function encodeRedisMessage(origin: Buffer, envelope: BroadcastEnvelope): Buffer {
  const room = envelope.room === null ? null : Buffer.from(envelope.room, 'utf8');
  const roomLength = room === null ? 0 : room.length;
  const text = typeof envelope.data === 'string';
  const payloadLength = text ? Buffer.byteLength(envelope.data as string, 'utf8') : (envelope.data as Buffer).length;
  const message = Buffer.allocUnsafe(HEADER_BYTES + roomLength + payloadLength);
  message[0] = FORMAT;
  message[1] = (text ? 0 : FLAG_BINARY) | (room === null ? 0 : FLAG_ROOM);
  origin.copy(message, 2, 0, ID_BYTES);
  message.writeUInt32BE(roomLength, ROOM_LENGTH_AT);
  room?.copy(message, HEADER_BYTES);
  const at = HEADER_BYTES + roomLength;
  if (text) message.write(envelope.data as string, at, 'utf8');
  else (envelope.data as Buffer).copy(message, at);
  return message;
}

/** A decoded Redis message, or why it is not one of ours. */
export type DecodedRedisMessage = { readonly origin: string; readonly envelope: BroadcastEnvelope } | { readonly error: string };

/** Decodes a message of `encodeRedisMessage()`; never throws. The payload is copied out of `message`. */
export function decodeRedisMessage(message: Buffer): DecodedRedisMessage {
  if (message.length < HEADER_BYTES) return { error: `${message.length} bytes, shorter than the ${HEADER_BYTES}-byte header` };
  if (message[0] !== FORMAT) return { error: `unknown format ${message[0]}` };
  const flags = message[1]!;
  if ((flags & ~(FLAG_BINARY | FLAG_ROOM)) !== 0) return { error: `unknown flags ${flags}` };
  const roomLength = message.readUInt32BE(ROOM_LENGTH_AT);
  if (roomLength > message.length - HEADER_BYTES) return { error: `room length ${roomLength} beyond the message` };
  if ((flags & FLAG_ROOM) === 0 && roomLength !== 0) return { error: 'a room length without a room' };
  const roomBytes = message.subarray(HEADER_BYTES, HEADER_BYTES + roomLength);
  if (!isUtf8(roomBytes)) return { error: 'room name is not UTF-8' };
  const payload = message.subarray(HEADER_BYTES + roomLength);
  let data: string | Buffer;
  if ((flags & FLAG_BINARY) !== 0) {
    data = Buffer.from(payload);
  } else {
    if (!isUtf8(payload)) return { error: 'text payload is not UTF-8' };
    data = payload.toString('utf8');
  }
  const origin = message.toString('hex', 2, 2 + ID_BYTES);
  const room = (flags & FLAG_ROOM) === 0 ? null : roomBytes.toString('utf8');
  return { origin, envelope: { room, data, origin } };
}

function positiveMs(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new ConfigError(`RedisBroadcastBus option ${name} must be a positive integer (milliseconds); got ${String(value)}`, name, value);
  }
  return value;
}

/**
 * Disconnects without reconnecting. Not on an ended connection: ioredis would then wait its `disconnectTimeout` for
 * a 'close' that already happened, holding the process for 2 s.
 */
function stop(connection: RedisConnection): void {
  if (connection.status !== 'end') connection.disconnect(false);
}

function reasonOf(error: unknown): string {
  if (typeof error !== 'object' || error === null) return String(error);
  const { message, code } = error as { message?: unknown; code?: unknown };
  const text = typeof message === 'string' && message !== '' ? message : String(error);
  return typeof code === 'string' && !text.includes(code) ? `${code} ${text}` : text;
}

/** The bus over Redis pub/sub. Give it to the module (`broadcastBus`), or set `redisUrl` / WEBSOCKETS_REDIS_URL. */
export class RedisBroadcastBus implements BroadcastBus {
  /** This bus's id (hex): the origin of what is published without one, and the name of its Redis connections. */
  readonly instanceId: string;
  /** The URL without its password. */
  readonly url: string;
  /** Prefix of the Redis channel names. */
  readonly channelPrefix: string;
  readonly #url: string;
  /** The origins of this process's subscribers, and the bus's own: what Redis echoes back with them is dropped. */
  readonly #localOrigins = new Set<string>();
  readonly #minDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #connectTimeoutMs: number;
  readonly #logger: BroadcastLogger;
  readonly #load: RedisClientLoader;
  /** Channel -> origin -> listener. */
  readonly #listeners = new Map<string, Map<string, BroadcastListener>>();
  readonly #ready = new Set<RedisConnection>();
  readonly #lastWarning = new Map<string, number>();
  #publisher: RedisConnection | undefined;
  #subscriber: RedisConnection | undefined;
  #connecting: Promise<void> | undefined;
  #started = false;
  #closed = false;
  /** When the connection was lost (ms since the epoch), and how many broadcasts stayed local since. */
  #outage: { since: number; notSent: number } | null = null;

  /**
   * @param options the URL and tuning; nothing connects until `connect()` or the first `subscribe()`
   * @param loader @internal how the client package is loaded (tests)
   * @throws ConfigError for a URL that is not `redis://` / `rediss://`, or a delay that is not a positive integer
   */
  constructor(options: RedisBroadcastBusOptions, loader: RedisClientLoader = defaultLoader) {
    this.url = checkRedisUrl(options.url, 'RedisBroadcastBus option url');
    this.#url = options.url;
    this.channelPrefix = options.channelPrefix ?? DEFAULT_PREFIX;
    if (typeof this.channelPrefix !== 'string') {
      throw new ConfigError(`RedisBroadcastBus option channelPrefix must be a string; got ${String(this.channelPrefix)}`, 'channelPrefix', this.channelPrefix);
    }
    this.#minDelayMs = positiveMs('reconnectMinDelayMs', options.reconnectMinDelayMs, DEFAULT_MIN_DELAY_MS);
    this.#maxDelayMs = Math.max(this.#minDelayMs, positiveMs('reconnectMaxDelayMs', options.reconnectMaxDelayMs, DEFAULT_MAX_DELAY_MS));
    this.#connectTimeoutMs = positiveMs('connectTimeoutMs', options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS);
    this.#logger = options.logger ?? console;
    this.#load = loader;
    this.instanceId = newOrigin();
    this.#localOrigins.add(this.instanceId);
  }

  /** True while both connections (publishing and subscribing) are up. */
  get connected(): boolean {
    return this.#ready.size === 2;
  }

  /**
   * Loads the client and connects (once; later calls return the same promise). One attempt: an unreachable Redis
   * fails start-up rather than leaving instances silently apart. Reconnection with backoff starts only after the
   * first success.
   * @throws RedisClientMissingError when ioredis is not installed
   * @throws RedisUnavailableError when Redis cannot be reached
   */
  connect(): Promise<void> {
    this.#connecting ??= this.#start();
    return this.#connecting;
  }

  /**
   * Delivers `envelope` to the other subscribers of `channel` in this process at once, then publishes it to Redis
   * for the other instances. While Redis is away the message stays local (counted, and logged when it is back):
   * it resolves either way once Redis has taken it or it has been left out.
   * @throws RedisClientMissingError / RedisUnavailableError when the bus never connected
   */
  async publish(channel: string, envelope: BroadcastEnvelope): Promise<void> {
    this.#deliver(channel, envelope);
    await this.connect();
    const publisher = this.#publisher;
    if (this.#closed || publisher === undefined) return;
    if (!this.#ready.has(publisher)) {
      this.#notSent();
      return;
    }
    try {
      // A publisher subscribed here travels with its own origin; any other publish with the bus's.
      const origin = envelope.origin !== undefined && this.#localOrigins.has(envelope.origin) ? envelope.origin : this.instanceId;
      await publisher.publish(this.channelPrefix + channel, encodeRedisMessage(Buffer.from(origin, 'hex'), envelope));
    } catch (error) {
      // The connection dropped with the message in flight: the outage handler logs it; count it as not sent.
      this.#notSent();
      this.#warnAtMostPeriodically('publish', `a broadcast on ${channel} did not reach Redis: ${reasonOf(error)}`);
    }
  }

  /**
   * Connects if needed and subscribes to `channel`; what other subscribers publish on it goes to `listener`.
   * @param origin the subscriber's own origin (`newOrigin()`: 32 hex digits), which it publishes with
   * @returns a function that stops the delivery (and unsubscribes from Redis when it was the last listener)
   * @throws RedisClientMissingError / RedisUnavailableError at start-up; TypeError for an origin of another form
   */
  async subscribe(channel: string, origin: string, listener: BroadcastListener): Promise<() => Promise<void>> {
    checkOrigin(origin);
    await this.connect();
    let listeners = this.#listeners.get(channel);
    if (listeners === undefined) {
      listeners = new Map();
      this.#listeners.set(channel, listeners);
      const subscriber = this.#subscriber;
      // While the connection is down, the 'ready' handler subscribes every channel in #listeners.
      if (subscriber !== undefined && this.#ready.has(subscriber)) await subscriber.subscribe(this.channelPrefix + channel);
    }
    listeners.set(origin, listener);
    this.#localOrigins.add(origin);
    return async () => {
      if (listeners.get(origin) === listener) {
        listeners.delete(origin);
        this.#localOrigins.delete(origin);
      }
      if (listeners.size > 0 || this.#listeners.get(channel) !== listeners) return;
      this.#listeners.delete(channel);
      const subscriber = this.#subscriber;
      if (!this.#closed && subscriber !== undefined && this.#ready.has(subscriber)) {
        await subscriber.unsubscribe(this.channelPrefix + channel).catch((error: unknown) => this.#logger.debug?.(reasonOf(error)));
      }
    };
  }

  /** Closes both connections (QUIT when connected); stops reconnecting. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    await this.#connecting?.catch(() => undefined);
    await Promise.all(
      [this.#publisher, this.#subscriber].map(async (connection) => {
        if (connection === undefined) return;
        if (this.#ready.has(connection)) await connection.quit().catch(() => stop(connection));
        else stop(connection);
      }),
    );
    this.#ready.clear();
  }

  async #start(): Promise<void> {
    const Redis = await this.#loadClass();
    const lastError = new Map<RedisConnection, unknown>();
    const options = {
      lazyConnect: true,
      // Fail fast while disconnected instead of queueing without bound; the bus counts what stays local.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // The bus subscribes again itself on 'ready', so that it also covers channels added during an outage.
      autoResubscribe: false,
      connectTimeout: this.#connectTimeoutMs,
      retryStrategy: (attempt: number) => this.#retryDelay(attempt),
    };
    const publisher = new Redis(this.#url, { ...options, connectionName: `nestjs-websockets:pub:${this.instanceId}` });
    const subscriber = new Redis(this.#url, { ...options, connectionName: `nestjs-websockets:sub:${this.instanceId}` });
    this.#publisher = publisher;
    this.#subscriber = subscriber;
    for (const connection of [publisher, subscriber]) {
      connection.on('error', (error) => {
        lastError.set(connection, error);
        if (this.#started) this.#lost(error);
      });
      connection.on('close', () => {
        this.#ready.delete(connection);
        if (this.#started && !this.#closed) this.#lost(undefined);
      });
      connection.on('reconnecting', (delayMs) => this.#logger.debug?.(`reconnecting to Redis at ${this.url} in ${delayMs} ms`));
      connection.on('ready', () => this.#onReady(connection));
    }
    subscriber.on('messageBuffer', (channel, message) => this.#onMessage(channel, message));
    try {
      await Promise.all([publisher.connect(), subscriber.connect()]);
    } catch (error) {
      stop(publisher);
      stop(subscriber);
      const cause = lastError.get(publisher) ?? lastError.get(subscriber) ?? error;
      throw new RedisUnavailableError(this.url, reasonOf(cause), { cause });
    }
    if (this.#closed) return;
    this.#started = true;
    this.#logger.log(`broadcasts cross instances through Redis at ${this.url} (instance ${this.instanceId})`);
  }

  async #loadClass(): Promise<RedisConnectionClass> {
    let module: unknown;
    try {
      module = await this.#load();
    } catch (error) {
      const { code, message } = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; message?: unknown };
      const missing =
        (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && typeof message === 'string' && message.includes(REDIS_CLIENT_PACKAGE);
      if (missing) throw new RedisClientMissingError({ cause: error });
      throw error;
    }
    const exports = (module ?? {}) as { Redis?: unknown; default?: unknown };
    const Redis = exports.Redis ?? exports.default;
    if (typeof Redis !== 'function') {
      throw new RedisClientMissingError({ cause: new Error(`${REDIS_CLIENT_PACKAGE} has no Redis export`) });
    }
    return Redis as RedisConnectionClass;
  }

  /** ioredis's retryStrategy: none before the first connection or after close(); else exponential with jitter. */
  #retryDelay(attempt: number): number | null {
    if (!this.#started || this.#closed) return null;
    const ceiling = Math.min(this.#maxDelayMs, this.#minDelayMs * 2 ** Math.min(attempt - 1, 30));
    // "Equal jitter": instances that lost Redis together do not all come back in the same millisecond.
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  #lost(error: unknown): void {
    if (this.#closed) return;
    if (this.#outage !== null) {
      if (error !== undefined) this.#logger.debug?.(`Redis at ${this.url} still unreachable: ${reasonOf(error)}`);
      return;
    }
    this.#outage = { since: Date.now(), notSent: 0 };
    const reason = error === undefined ? 'connection closed' : reasonOf(error);
    this.#logger.error(
      `lost the connection to Redis at ${this.url} (${reason}); broadcasts reach this instance's clients only until it ` +
        `is back; reconnecting with backoff (${this.#minDelayMs} ms to ${this.#maxDelayMs} ms)`,
    );
  }

  #onReady(connection: RedisConnection): void {
    this.#ready.add(connection);
    if (connection === this.#subscriber && this.#started) {
      const channels = [...this.#listeners.keys()].map((channel) => this.channelPrefix + channel);
      if (channels.length > 0) {
        connection.subscribe(...channels).catch((error: unknown) => this.#logger.error(`cannot subscribe again after reconnecting: ${reasonOf(error)}`));
      }
    }
    if (this.connected && this.#outage !== null) {
      const { since, notSent } = this.#outage;
      this.#outage = null;
      this.#logger.log(
        `reconnected to Redis at ${this.url} after ${Date.now() - since} ms; ${notSent} broadcast(s) reached this ` +
          `instance's clients only meanwhile`,
      );
    }
  }

  #notSent(): void {
    if (this.#outage !== null) this.#outage.notSent++;
  }

  #onMessage(redisChannel: Buffer, message: Buffer): void {
    // Published in this process, back from Redis: this process's subscribers have it already.
    if (message.length >= 2 + ID_BYTES && this.#localOrigins.has(message.toString('hex', 2, 2 + ID_BYTES))) return;
    const name = redisChannel.toString('utf8');
    if (!name.startsWith(this.channelPrefix)) return;
    const channel = name.slice(this.channelPrefix.length);
    if (!this.#listeners.has(channel)) return;
    const decoded = decodeRedisMessage(message);
    if ('error' in decoded) {
      this.#warnAtMostPeriodically('malformed', `dropped a malformed message on Redis channel ${name}: ${decoded.error}`);
      return;
    }
    this.#deliver(channel, decoded.envelope);
  }

  #deliver(channel: string, envelope: BroadcastEnvelope): void {
    const listeners = this.#listeners.get(channel);
    if (listeners === undefined) return;
    for (const [origin, listener] of [...listeners]) {
      if (origin === envelope.origin) continue;
      try {
        listener(envelope);
      } catch (error) {
        this.#logger.error(`a broadcast listener of ${channel} threw: ${reasonOf(error)}`);
      }
    }
  }

  #warnAtMostPeriodically(kind: string, message: string): void {
    const now = Date.now();
    const last = this.#lastWarning.get(kind);
    if (last !== undefined && now - last < WARN_PERIOD_MS) {
      this.#logger.debug?.(message);
      return;
    }
    this.#lastWarning.set(kind, now);
    this.#logger.warn(message);
  }
}

/** Checks a subscriber's origin: `newOrigin()`'s 32 hex digits, the form the wire carries. */
function checkOrigin(origin: string): void {
  if (!ORIGIN_PATTERN.test(origin)) throw new TypeError(`a broadcast origin must be 32 hex digits (newOrigin()); got ${JSON.stringify(origin)}`);
}

const ORIGIN_PATTERN = /^[0-9a-f]{32}$/;
