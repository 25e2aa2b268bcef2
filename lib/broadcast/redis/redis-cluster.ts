/**
 * The Redis bus against a Redis Cluster, with sharded pub/sub (Redis 7: `SPUBLISH` / `SSUBSCRIBE`): each channel
 * lives on the master that owns its hash slot, so the bus's channels (one per gateway, one for the cluster's control
 * messages, one per instance for replies) spread over the masters instead of every message going to every node, as
 * classic pub/sub does in a cluster. socket.io recommends the same for new deployments.
 *
 * Selected by the URL scheme: `redis+cluster://[user:password@]host:port[?node=host:port&node=...]` (`rediss+cluster://`
 * for TLS). One seed node is enough (ioredis learns the others from `CLUSTER SLOTS`); more `node` parameters help
 * when that one is down at start-up. The connection is ioredis's `Cluster` with `shardedSubscribers`, wrapped so that
 * the bus drives it like a single connection.
 */
import { once } from 'node:events';
import type { RedisConnection } from './redis-bus.js';

const SCHEMES: ReadonlySet<string> = new Set(['redis+cluster:', 'rediss+cluster:']);

/** Whether `url` selects a Redis Cluster. */
export function isRedisClusterUrl(url: string): boolean {
  const scheme = /^[a-z+]+:/i.exec(url)?.[0].toLowerCase();
  return scheme !== undefined && SCHEMES.has(scheme);
}

/** A cluster URL, parsed: its seed nodes, credentials and whether it is TLS. */
export interface RedisClusterUrl {
  readonly nodes: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  readonly username?: string;
  readonly password?: string;
  readonly tls: boolean;
}

const DEFAULT_PORT = 6379;

function hostPort(text: string, where: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(text);
  const port = match?.[2] === undefined ? DEFAULT_PORT : Number(match[2]);
  if (match === null || port < 1 || port > 65535) throw new TypeError(`${where}: ${JSON.stringify(text)} is not host:port`);
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

/**
 * Parses a `redis+cluster://` URL.
 * @throws TypeError for a URL that is not one, or a `node` parameter that is not `host:port`
 */
export function parseRedisClusterUrl(url: string): RedisClusterUrl {
  const parsed = new URL(url);
  if (!SCHEMES.has(parsed.protocol) || parsed.hostname === '') throw new TypeError(`not a redis+cluster:// URL with a host: ${JSON.stringify(url)}`);
  const nodes = [{ host: parsed.hostname.replace(/^\[|\]$/g, ''), port: parsed.port === '' ? DEFAULT_PORT : Number(parsed.port) }];
  for (const node of parsed.searchParams.getAll('node')) nodes.push(hostPort(node, 'redis+cluster:// parameter node'));
  return {
    nodes,
    ...(parsed.username === '' ? {} : { username: decodeURIComponent(parsed.username) }),
    ...(parsed.password === '' ? {} : { password: decodeURIComponent(parsed.password) }),
    tls: parsed.protocol === 'rediss+cluster:',
  };
}

/** The part of ioredis's `Cluster` this file uses. */
interface ClusterClient {
  readonly status: string;
  connect(): Promise<void>;
  spublish(channel: string, message: Buffer): Promise<number>;
  ssubscribe(channel: string): Promise<unknown>;
  sunsubscribe(channel: string): Promise<unknown>;
  quit(): Promise<unknown>;
  disconnect(reconnect?: boolean): void;
  on(event: string, listener: (...args: never[]) => void): unknown;
  once(event: string, listener: (...args: never[]) => void): unknown;
}

export type RedisClusterClass = new (nodes: RedisClusterUrl['nodes'], options: Record<string, unknown>) => ClusterClient;

/**
 * A `RedisConnection` over a Redis Cluster: `publish` is `SPUBLISH`, `subscribe` is one `SSUBSCRIBE` per channel
 * (channels of different slots cannot share one), and `messageBuffer` listeners get the sharded messages.
 * @param options the single-connection options of the bus (timeouts, retry strategy, connection name)
 * @param subscriber whether this connection subscribes (it then starts ioredis's sharded subscribers)
 */
export function redisClusterConnection(Cluster: RedisClusterClass, url: string, options: Record<string, unknown>, subscriber: boolean): RedisConnection {
  const { nodes, username, password, tls } = parseRedisClusterUrl(url);
  const connectTimeout = options.connectTimeout as number;
  const cluster = new Cluster(nodes, {
    lazyConnect: true,
    enableOfflineQueue: false,
    shardedSubscribers: subscriber,
    clusterRetryStrategy: options.retryStrategy,
    slotsRefreshTimeout: connectTimeout,
    redisOptions: {
      connectTimeout,
      connectionName: options.connectionName,
      maxRetriesPerRequest: 0,
      ...(username === undefined ? {} : { username }),
      ...(password === undefined ? {} : { password }),
      ...(tls ? { tls: {} } : {}),
    },
  });
  // The sharded subscribers connect after the cluster itself: `SSUBSCRIBE` has no connection until they are ready.
  let subscribersReady = false;
  cluster.on('subscribersReady', () => (subscribersReady = true));
  cluster.on('-subscriber', () => (subscribersReady = false));
  const whenSubscribersReady = async (): Promise<void> => {
    if (!subscriber || subscribersReady) return;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), connectTimeout);
    try {
      await once(cluster as unknown as NodeJS.EventEmitter, 'subscribersReady', { signal: ac.signal });
    } catch {
      throw new Error(`the sharded subscribers of the Redis Cluster were not ready within ${connectTimeout} ms`);
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    get status() {
      return cluster.status;
    },
    async connect() {
      const ready = whenSubscribersReady();
      ready.catch(() => undefined);
      await cluster.connect();
      await ready;
    },
    publish: (channel, message) => cluster.spublish(channel, message),
    async subscribe(...channels) {
      await whenSubscribersReady();
      return Promise.all(channels.map((channel) => cluster.ssubscribe(channel)));
    },
    unsubscribe: (...channels) => Promise.all(channels.map((channel) => cluster.sunsubscribe(channel))),
    quit: () => cluster.quit(),
    disconnect: (reconnect) => cluster.disconnect(reconnect),
    on(event: string, listener: (...args: never[]) => void) {
      return cluster.on(event === 'messageBuffer' ? 'smessageBuffer' : event, listener);
    },
  } as RedisConnection;
}
