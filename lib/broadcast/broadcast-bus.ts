/**
 * The seam between rooms/broadcast and where messages travel. A broadcast server delivers every broadcast to its own
 * clients at once and publishes it on its channel with its `origin` (one random id per server, `newOrigin()`); the
 * bus hands each envelope to every subscriber of the channel but the one with that origin, so that a bus shared by
 * several instances (`RedisBroadcastBus`, on Redis pub/sub) reaches every client of every instance exactly once. The
 * default bus is in-process: delivery is synchronous and nothing is serialized.
 */
import { randomBytes } from 'node:crypto';

/** Bytes of randomness in an origin. */
export const ORIGIN_BYTES = 16;

/** A fresh origin: 16 random bytes as 32 lowercase hex digits (the form every bus must carry intact). */
export function newOrigin(): string {
  return randomBytes(ORIGIN_BYTES).toString('hex');
}

/** One message on the bus. It must survive serialization: no functions, no client objects. */
export interface BroadcastEnvelope {
  /** The room to deliver to, or `null` for every client of the server. */
  readonly room: string | null;
  /** The payload: a string goes as a text message, a Buffer as a binary one. */
  readonly data: string | Buffer;
  /**
   * The `origin` of the server that published it (`newOrigin()`): the bus does not hand it back to the subscriber
   * with that origin, which has delivered it to its own clients already. Absent for a publisher that is not subscribed.
   */
  readonly origin?: string;
}

/** Called with each envelope published on a channel by another subscriber. */
export type BroadcastListener = (envelope: BroadcastEnvelope) => void;

/**
 * Where broadcasts travel. Channels are named after the server's port and path (`ws:0:/ws`), which are the same on
 * every instance of the app.
 */
export interface BroadcastBus {
  /** Hands `envelope` to every subscriber of `channel` but the one whose `origin` it carries. */
  publish(channel: string, envelope: BroadcastEnvelope): Promise<void>;
  /**
   * Starts delivering to `listener` what is published on `channel` with another origin than `origin`.
   * @param origin the subscriber's own origin (`newOrigin()`), which it publishes with
   * @returns a function that stops the delivery
   * @throws what connecting the bus throws (`RedisUnavailableError`, `RedisClientMissingError`)
   */
  subscribe(channel: string, origin: string, listener: BroadcastListener): Promise<() => Promise<void>>;
  /** Releases the bus's resources; called by the owner (the Nest adapter on `app.close()`) after every server closed. */
  close?(): Promise<void>;
  /** How the bus is doing, for health checks (`WebSocketsHealthIndicator`); never rejects. */
  health?(timeoutMs?: number): Promise<BroadcastBusHealth>;
}

/** What `BroadcastBus.health()` reports. */
export interface BroadcastBusHealth {
  /** `'in-process'`, `'redis'`, or a custom bus's own word. */
  readonly kind: string;
  /** Whether the bus can carry a broadcast now (Redis: the publishing connection is up and answers PING). */
  readonly reachable: boolean;
  /** Whether its subscriptions are in place (Redis: the subscribing connection is up; channels follow it). */
  readonly subscribed: boolean;
  /** Round trip to the bus in ms (Redis: PING), 0 in process, `null` when it could not be measured. */
  readonly lagMs: number | null;
  /** Why it is not reachable or not subscribed. */
  readonly error?: string;
}
