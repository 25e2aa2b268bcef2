/**
 * Validation and resolution of the Nest integration's options, at start-up. Limits, compression and timeouts go
 * through `resolveConfig()` (option, then environment, then default); this module adds the Nest-only options, the
 * bind host, TLS from files, and a check for misspelt option names. Every error is a `ConfigError` whose message
 * names the option, the value and the fix.
 */
import { ConfigError } from '../errors.js';
import { SETTINGS, resolveClusterTiming, resolveConfig, resolveGatewayLimits, resolveGatewayPorts, resolveHost, resolveVerboseLogs, resolveRedis, resolveSessions, type Environment } from '../config/index.js';
import { SOCKET_IO_ONLY_OPTIONS } from './websockets.constants.js';
import { resolveTlsOptions } from './tls-options.js';
import type {
  ResolvedWebSocketsOptions,
  WebSocketsGatewayOptions,
  WebSocketsModuleOptions,
  WebSocketsServerOptions,
} from './websockets-options.interface.js';

/** The options of resumable sessions (see `resolveSessions`). */
const SESSION_OPTIONS: readonly string[] = ['sessions', 'sessionTtlMs', 'sessionMaxBufferedBytes', 'maxDetachedSessions'];
const SESSION_NEST_OPTIONS: readonly string[] = [...SESSION_OPTIONS, 'handleResumedConnections'];

/** Option names of `WebSocketsOptions` (from the settings table, so they cannot drift). */
const CORE_OPTIONS: readonly string[] = [
  ...new Set(Object.values(SETTINGS).map((spec) => spec.option).filter((name) => !name.includes('.'))),
].filter(
  (name) =>
    !['serverMaxWindowBits', 'clientMaxWindowBits', 'memLevel', 'compressionThreshold', 'redisUrl', 'redisChannelPrefix', 'gatewayPorts', 'verboseLogs', 'maxJsonDepth', 'maxRoomsPerClient', 'clusterTimeoutMs', 'clusterHeartbeatMs', 'clusterExpiryMs', ...SESSION_OPTIONS].includes(name),
);

const SERVER_OPTIONS: readonly string[] = [
  ...CORE_OPTIONS,
  'subprotocols',
  'allowedOrigins',
  'allowMissingOrigin',
  'handshakeGuards',
  'messageParser',
  'invalidMessages',
  'maxJsonDepth',
  'maxRoomsPerClient',
  ...SESSION_NEST_OPTIONS,
];

/** Every option the module accepts. */
export const MODULE_OPTION_NAMES: readonly string[] = Object.freeze([...SERVER_OPTIONS, 'tls', 'broadcastBus', 'redisUrl', 'redisChannelPrefix', 'clusterTimeoutMs', 'clusterHeartbeatMs', 'clusterExpiryMs', 'gatewayPorts', 'verboseLogs', 'env']);

/** Every option a gateway accepts (besides socket.io's, which only warn). */
export const GATEWAY_OPTION_NAMES: readonly string[] = Object.freeze([...SERVER_OPTIONS, 'path', 'tls', 'namespace', 'socketPath', 'socketPermissions']);

const INVALID_MESSAGE_POLICIES = ['exception', 'ignore', 'close'] as const;

/** RFC 6455 §4.1 / RFC 7230 §3.2.6: a subprotocol is a token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return `a function`;
  if (Array.isArray(value)) return `an array`;
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : String(value);
}

function optionError(where: string, name: string, value: unknown, expected: string): ConfigError {
  return new ConfigError(`${where} option ${name} must be ${expected}; got ${show(value)}`, name, value);
}

/** Levenshtein distance, for "did you mean" on misspelt option names (short strings only). */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

/** Rejects a name that is not an option, suggesting the closest one. */
function checkNames(where: string, options: object, known: readonly string[], ignored: readonly string[] = []): void {
  for (const name of Object.keys(options)) {
    if (known.includes(name) || ignored.includes(name)) continue;
    const closest = [...known].sort((a, b) => distance(name, a) - distance(name, b))[0];
    const hint = closest !== undefined && distance(name, closest) <= 3 ? `; did you mean ${closest}?` : '';
    throw new ConfigError(`${where} has an unknown option ${name}${hint} (the options are: ${known.join(', ')})`, name, undefined);
  }
}

/** Validates the options that the module and a gateway share (the Nest-only ones; `resolveConfig` checks the rest). */
function checkServerOptions(where: string, options: WebSocketsServerOptions): void {
  const { subprotocols, allowedOrigins, allowMissingOrigin, handshakeGuards, messageParser, invalidMessages } = options;
  if (subprotocols !== undefined) {
    if (!Array.isArray(subprotocols)) throw optionError(where, 'subprotocols', subprotocols, 'an array of subprotocol names');
    for (const name of subprotocols) {
      if (typeof name !== 'string' || !TOKEN.test(name)) {
        throw optionError(where, 'subprotocols', name, 'an array of tokens (letters, digits and !#$%&\'*+-.^_`|~)');
      }
    }
  }
  if (allowedOrigins !== undefined) {
    if (!Array.isArray(allowedOrigins)) {
      throw optionError(where, 'allowedOrigins', allowedOrigins, 'an array of origins (strings such as "https://example.com", or RegExps)');
    }
    for (const origin of allowedOrigins) {
      if (typeof origin !== 'string' && !(origin instanceof RegExp)) {
        throw optionError(where, 'allowedOrigins', origin, 'an array of origins (strings such as "https://example.com", or RegExps)');
      }
    }
  }
  if (allowMissingOrigin !== undefined && typeof allowMissingOrigin !== 'boolean') {
    throw optionError(where, 'allowMissingOrigin', allowMissingOrigin, 'true or false');
  }
  if (handshakeGuards !== undefined) {
    if (!Array.isArray(handshakeGuards)) throw optionError(where, 'handshakeGuards', handshakeGuards, 'an array of guards');
    for (const guard of handshakeGuards) {
      const ok =
        typeof guard === 'function' ||
        (typeof guard === 'object' && guard !== null && typeof (guard as { canActivate?: unknown }).canActivate === 'function');
      if (!ok) throw optionError(where, 'handshakeGuards', guard, 'an array of guard classes or objects with a canActivate() method');
    }
  }
  if (messageParser !== undefined && typeof messageParser !== 'function') {
    throw optionError(where, 'messageParser', messageParser, 'a function (data, isBinary) => { event, data, id? }');
  }
  if (invalidMessages !== undefined && !(INVALID_MESSAGE_POLICIES as readonly unknown[]).includes(invalidMessages)) {
    throw optionError(where, 'invalidMessages', invalidMessages, `one of ${INVALID_MESSAGE_POLICIES.map((p) => `"${p}"`).join(', ')}`);
  }
}

function checkHost(where: string, host: unknown): void {
  if (host !== undefined && (typeof host !== 'string' || host === '')) {
    throw optionError(where, 'host', host, 'a non-empty string (an IP address or a host name)');
  }
}

/**
 * Validates the module's options and resolves them against the environment.
 * @param raw what `forRoot()` was given (or `forRootAsync()`'s factory returned)
 * @param env the environment; `raw.env` wins over it
 * @throws ConfigError naming the option (or variable), the value and what is expected
 */
export function resolveWebSocketsOptions(raw: WebSocketsModuleOptions | undefined, env: Environment = process.env): ResolvedWebSocketsOptions {
  const where = 'WebSocketsModule';
  if (raw === undefined || raw === null) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`${where} options must be an object; got ${show(raw)}`, 'options', raw);
  }
  checkNames(where, raw, MODULE_OPTION_NAMES);
  const effectiveEnv = raw.env ?? env;
  checkServerOptions(where, raw);
  checkHost(where, raw.host);
  const { broadcastBus } = raw;
  if (
    broadcastBus !== undefined &&
    (typeof broadcastBus !== 'object' || broadcastBus === null || typeof broadcastBus.publish !== 'function' || typeof broadcastBus.subscribe !== 'function')
  ) {
    throw optionError(where, 'broadcastBus', broadcastBus, 'an object with publish() and subscribe() (a BroadcastBus)');
  }
  const config = resolveConfig(raw, effectiveEnv);
  const gatewayLimits = resolveGatewayLimits(raw, effectiveEnv);
  const sessions = resolveSessions(raw, effectiveEnv);
  const host = resolveHost(raw.host, effectiveEnv);
  const tls = resolveTlsOptions(raw.tls, effectiveEnv);
  const redis = resolveRedis(raw, effectiveEnv, where);
  const redisUrl = redis.url;
  const redisChannelPrefix = redis.channelPrefix;
  const gatewayPorts = resolveGatewayPorts(raw.gatewayPorts, effectiveEnv);
  const verboseLogs = resolveVerboseLogs(raw.verboseLogs, effectiveEnv);
  const cluster = resolveClusterTiming(raw, effectiveEnv);
  return Object.freeze({ raw: Object.freeze({ ...raw }), config, gatewayLimits, host, tls, redisUrl, redisChannelPrefix, cluster, gatewayPorts, verboseLogs, sessions, env: effectiveEnv });
}

/** What `checkGatewayOptions` found: the options to use, and the socket.io-only names to warn about. */
export interface CheckedGatewayOptions {
  readonly options: WebSocketsGatewayOptions;
  readonly ignored: readonly string[];
}

/**
 * Validates a gateway's options (what `@WebSocketGateway()` was given).
 * @param gateway how messages name the gateway (`Gateway ChatGateway`)
 * @throws ConfigError for a namespace, an unknown option or an invalid value
 */
export function checkGatewayOptions(gateway: string, options: Record<string, unknown>): CheckedGatewayOptions {
  const where = gateway;
  if (options.namespace !== undefined) {
    throw new ConfigError(
      `${where} has a namespace (${show(options.namespace)}), which only socket.io supports; remove the namespace ` +
        `option and give each gateway its own path instead (@WebSocketGateway({ path: '/chat' }))`,
      'namespace',
      options.namespace,
    );
  }
  const ignored = Object.keys(options).filter((name) => name in SOCKET_IO_ONLY_OPTIONS);
  checkNames(where, options, GATEWAY_OPTION_NAMES, ignored);
  const kept: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(options)) if (!ignored.includes(name)) kept[name] = value;
  checkServerOptions(where, kept as WebSocketsServerOptions);
  checkHost(where, kept.host);
  if (kept.path !== undefined && (typeof kept.path !== 'string' || !kept.path.startsWith('/'))) {
    throw optionError(where, 'path', kept.path, 'a string that starts with "/" (e.g. "/ws")');
  }
  if (kept.tls !== undefined && kept.tls !== false && (typeof kept.tls !== 'object' || kept.tls === null)) {
    throw optionError(where, 'tls', kept.tls, 'TLS options (key, cert, ...) or false');
  }
  if (kept.socketPath !== undefined && (typeof kept.socketPath !== 'string' || kept.socketPath === '')) {
    throw optionError(where, 'socketPath', kept.socketPath, 'a file path (e.g. "/run/app/ws.sock")');
  }
  if (kept.socketPermissions !== undefined) {
    const mode = kept.socketPermissions;
    if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0 || mode > 0o777) {
      throw optionError(where, 'socketPermissions', mode, 'permission bits from 0 to 0o777 (e.g. 0o660)');
    }
    if (kept.socketPath === undefined) {
      throw new ConfigError(`${where} has socketPermissions but no socketPath: they are the permissions of that socket file`, 'socketPermissions', mode);
    }
  }
  return { options: kept as WebSocketsGatewayOptions, ignored };
}
