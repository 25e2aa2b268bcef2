/**
 * The Redis broadcast bus of a Nest app (`redisUrl`, `WEBSOCKETS_REDIS_URL`; `redisChannelPrefix`,
 * `WEBSOCKETS_REDIS_CHANNEL_PREFIX`): resolved and checked here, at start-up, so that a bad URL is a `ConfigError`
 * before anything connects.
 */
import { ConfigError } from '../errors.js';
import { SETTINGS, describeSetting } from './settings.js';
import type { Environment } from './setting-values.js';

/** The Redis settings of the broadcast bus; `url` is `null` when broadcasts stay in the process. */
export interface ResolvedRedis {
  readonly url: string | null;
  readonly channelPrefix: string;
}

/** `redis+cluster://` (and `rediss+cluster://`) select a Redis Cluster with sharded pub/sub. */
const REDIS_SCHEMES: ReadonlySet<string> = new Set(['redis:', 'rediss:', 'redis+cluster:', 'rediss+cluster:']);

/** Every `node` parameter of a cluster URL is `host:port`. */
function clusterNodesValid(url: URL): boolean {
  if (!url.protocol.endsWith('+cluster:')) return true;
  return url.searchParams.getAll('node').every((node) => /^(\[[^\]]+\]|[^:/?#\s]+):\d{1,5}$/.test(node));
}

/**
 * Checks a Redis URL (`redis://` or `rediss://`, with a host; `redis+cluster://` for a Redis Cluster).
 * @param where how the message names where the URL came from (`option redisUrl`, `WEBSOCKETS_REDIS_URL`)
 * @returns the URL with its password masked, for messages and logs
 * @throws ConfigError naming `where`, the value and the expected form
 */
export function checkRedisUrl(url: unknown, where = 'option redisUrl'): string {
  let parsed: URL | undefined;
  try {
    parsed = typeof url === 'string' ? new URL(url) : undefined;
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || !REDIS_SCHEMES.has(parsed.protocol) || parsed.hostname === '' || !clusterNodesValid(parsed)) {
    const shown = typeof url === 'string' ? JSON.stringify(url) : String(url);
    throw new ConfigError(
      `${where} must be a redis:// or rediss:// URL such as redis://127.0.0.1:6379, or redis+cluster://host:port` +
        `[?node=host:port...] for a Redis Cluster; got ${shown} (${describeSetting('redisUrl')})`,
      'redisUrl',
      url,
    );
  }
  if (parsed.password !== '') parsed.password = '***';
  return parsed.toString();
}

/**
 * The Redis URL (option, `null` for none; else the variable, empty for none) and the channel prefix (option, any
 * string; else the variable; else the default).
 * @param where how messages name the options' owner (`WebSocketsModule`)
 * @throws ConfigError for a URL that is not redis:// or rediss://, or a prefix that is not a string
 */
export function resolveRedis(options: { readonly redisUrl?: unknown; readonly redisChannelPrefix?: unknown }, env: Environment, where: string): Readonly<ResolvedRedis> {
  return Object.freeze({ url: resolveUrl(options.redisUrl, env, where), channelPrefix: resolvePrefix(options.redisChannelPrefix, env, where) });
}

function resolveUrl(option: unknown, env: Environment, where: string): string | null {
  if (option === null) return null;
  if (option !== undefined) {
    checkRedisUrl(option, `${where} option redisUrl`);
    return option as string;
  }
  const name = SETTINGS.redisUrl.env;
  const raw = env[name];
  if (raw === undefined || raw === '') return null;
  checkRedisUrl(raw, name);
  return raw;
}

function resolvePrefix(option: unknown, env: Environment, where: string): string {
  if (option !== undefined) {
    if (typeof option !== 'string') {
      throw new ConfigError(`${where} option redisChannelPrefix must be a string; got ${String(option)}`, 'redisChannelPrefix', option);
    }
    return option;
  }
  const fromEnv = env[SETTINGS.redisChannelPrefix.env];
  return fromEnv === undefined || fromEnv === '' ? SETTINGS.redisChannelPrefix.default : fromEnv;
}
