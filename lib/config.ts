/**
 * Resolution of options: an explicit option, then the environment, then the default from `SETTINGS`.
 * Called once per server, client or module with the caller's `process.env` (this module never reads it), so that
 * tests can pass a literal environment and two servers can have different limits.
 */
import { ConfigError } from './errors.js';
import { PROXY_VARIABLES, SETTINGS, describeSetting, type SettingName } from './settings.js';

export { SETTINGS, DEFAULT_IDENTITY, PACKAGE_VERSION, PROXY_VARIABLES, describeSetting } from './settings.js';
export type { SettingName, SettingSpec } from './settings.js';

/** The environment as the caller passes it (usually `process.env`). */
export type Environment = Readonly<Record<string, string | undefined>>;

/** Compression settings; `false` turns permessage-deflate off. */
export interface CompressionOptions {
  /** LZ77 window bits (8-15) of the server's compressor. @default 12 */
  serverMaxWindowBits?: number;
  /** LZ77 window bits (8-15) asked of the client's compressor when it offers `client_max_window_bits`. @default 12 */
  clientMaxWindowBits?: number;
  /** Keep the server's compression context between messages. @default true */
  serverNoContextTakeover?: boolean;
  /** Ask the client not to keep its compression context between messages. @default false */
  clientNoContextTakeover?: boolean;
  /** zlib memLevel (1-9) of the compressor. @default 5 */
  memLevel?: number;
  /** Outgoing messages smaller than this many bytes are sent uncompressed. @default 128 */
  threshold?: number;
}

/** Options shared by the server, the client and the Nest module. Every field is optional. */
export interface WebSocketsOptions {
  /**
   * Longest request or status line, and longest header line, accepted in the opening handshake, in bytes, CRLF
   * included. A server answers a longer request line with 414 and a longer header line with 431.
   * @default 8192, or the WEBSOCKETS_MAX_LINE_LENGTH environment variable
   */
  maxLineLength?: number;
  /** Most header lines in a handshake (431 on a server). @default 128, or WEBSOCKETS_MAX_NUM_HEADERS */
  maxNumHeaders?: number;
  /** Largest handshake response body a client reads, in bytes. @default 1048576, or WEBSOCKETS_MAX_BODY_SIZE */
  maxBodySize?: number;
  /**
   * `Server` header of every handshake response; `null` sends none.
   * @default `Node.js/x.y.z nestjs-websockets/X.Y`, or WEBSOCKETS_SERVER (an empty value sends none)
   */
  serverHeader?: string | null;
  /**
   * `User-Agent` header of the client's request; `null` sends none.
   * @default `Node.js/x.y.z nestjs-websockets/X.Y`, or WEBSOCKETS_USER_AGENT (an empty value sends none)
   */
  userAgentHeader?: string | null;
  /**
   * Largest incoming message, in bytes, after decompression. A larger one closes the connection with 1009.
   * @default 1048576, or WEBSOCKETS_MAX_MESSAGE_SIZE
   */
  maxMessageSize?: number;
  /**
   * Most frames (fragments) in one incoming message; one more closes the connection with 1008. Bounds the work a
   * peer can cause with a flood of tiny or empty continuation frames.
   * @default 16384, or WEBSOCKETS_MAX_FRAGMENTS
   */
  maxFragments?: number;
  /**
   * Bytes received and not yet taken by the application above which the socket is paused and parsing stops.
   * @default 65536, or WEBSOCKETS_READ_HIGH_WATER_MARK
   */
  readHighWaterMark?: number;
  /** Buffered outgoing bytes above which `send()` waits. @default 32768, or WEBSOCKETS_WRITE_HIGH_WATER_MARK */
  writeHighWaterMark?: number;
  /** Buffered outgoing bytes below which waiting sends resume. @default 8192, or WEBSOCKETS_WRITE_LOW_WATER_MARK */
  writeLowWaterMark?: number;
  /**
   * Most bytes one connection may hold for sending: the socket's write buffer, this tick's batch and the sends
   * waiting for them. A send that would pass it applies the `slowConsumer` policy; a single message larger than
   * the bound is still sent when nothing else is waiting. `null` for no limit (not recommended: a peer that stops
   * reading then makes the server keep everything sent to it).
   * @default 1048576, or WEBSOCKETS_MAX_BUFFERED_AMOUNT (`off` for no limit)
   */
  maxBufferedAmount?: number | null;
  /**
   * What a send past `maxBufferedAmount` does. `'close'`: the waiting sends are dropped (they reject with
   * `SlowConsumerError`) and the connection is closed with 1013, its socket destroyed within `closeTimeoutMs`.
   * `'drop'`: that message is not sent; `send()` resolves `false` and the connection emits `'drop'`.
   * @default 'close', or WEBSOCKETS_SLOW_CONSUMER
   */
  slowConsumer?: SlowConsumerPolicy;
  /** permessage-deflate settings, or `false` to turn it off. @default on, or WEBSOCKETS_COMPRESSION=off */
  compression?: CompressionOptions | boolean;
  /** Time allowed for the opening handshake, in ms; `null` for none. @default 10000, or WEBSOCKETS_OPEN_TIMEOUT_MS */
  openTimeoutMs?: number | null;
  /** Interval between keepalive pings, in ms; `null` for none. @default 20000, or WEBSOCKETS_PING_INTERVAL_MS */
  pingIntervalMs?: number | null;
  /** Time to wait for a keepalive pong, in ms; `null` for none. @default 20000, or WEBSOCKETS_PING_TIMEOUT_MS */
  pingTimeoutMs?: number | null;
  /** Time allowed for the closing handshake, in ms; `null` for none. @default 10000, or WEBSOCKETS_CLOSE_TIMEOUT_MS */
  closeTimeoutMs?: number | null;
  /**
   * Most connections a server holds at once, handshakes in progress included; above it the server answers 503 with
   * `Retry-After` before the upgrade. `null` for no limit (0 is refused).
   * @default null, or WEBSOCKETS_MAX_CONNECTIONS (`off` for no limit)
   */
  maxConnections?: number | null;
  /**
   * Most connections from one client address at once, handshakes in progress included (503 with `Retry-After` above
   * it). Behind a reverse proxy every client has the proxy's address. `null` for no limit.
   * @default null, or WEBSOCKETS_MAX_CONNECTIONS_PER_ADDRESS (`off` for no limit)
   */
  maxConnectionsPerAddress?: number | null;
  /**
   * New connections accepted per second from one client address: a burst of this many, then one every 1/N s (a
   * token bucket); above it 503 with `Retry-After`. `null` for no limit.
   * @default null, or WEBSOCKETS_MAX_HANDSHAKES_PER_SECOND_PER_ADDRESS (`off` for no limit)
   */
  maxHandshakesPerSecondPerAddress?: number | null;
  /**
   * How a server sends a refusal in the 4xx range decided after the request was read as a valid upgrade: by its
   * handshake hook (Nest handshake guards: 401, 403, 404 ...) or by `allowedOrigins` (403). `'http'`: an HTTP
   * response with the status, which a browser's page never sees (it gets a close with 1006). `'in-band'`: a 101,
   * then at once a close with 4000 + status (4401, 4403 ...) and the refusal's message as reason (cut to 123 bytes),
   * which the page's `close` event shows. `'auto'`: in-band when the request carries an `Origin` header (browsers
   * always send one; ws, Python websockets and `connect()` send none unless told to), else HTTP. Malformed requests,
   * handshake limits (414, 431), connection limits (503 with `Retry-After`), 5xx and unknown paths on a server's own
   * port are always HTTP.
   * @default 'auto', or WEBSOCKETS_REFUSALS
   */
  refusals?: RefusalMode;
}

/** What a send past `maxBufferedAmount` does (see `WebSocketsOptions.slowConsumer`). */
export type SlowConsumerPolicy = 'close' | 'drop';

/** How a server sends a 4xx refusal of a handshake (see `WebSocketsOptions.refusals`). */
export type RefusalMode = 'http' | 'in-band' | 'auto';

/** Limits on connections, enforced by a server before the upgrade; `null` is no limit. */
export interface ConnectionLimits {
  readonly maxConnections: number | null;
  readonly maxConnectionsPerAddress: number | null;
  readonly maxHandshakesPerSecondPerAddress: number | null;
}

/** The limits that the sans-I/O core needs. */
export interface Limits {
  readonly maxLineLength: number;
  readonly maxNumHeaders: number;
  readonly maxBodySize: number;
  readonly maxMessageSize: number;
  readonly maxFragments: number;
}

/** Resolved permessage-deflate settings, or `null` when compression is off. */
export interface ResolvedCompression {
  readonly serverMaxWindowBits: number;
  readonly clientMaxWindowBits: number;
  readonly serverNoContextTakeover: boolean;
  readonly clientNoContextTakeover: boolean;
  readonly memLevel: number;
  readonly threshold: number;
}

export interface ResolvedConfig {
  readonly limits: Limits;
  readonly serverHeader: string | null;
  readonly userAgentHeader: string | null;
  readonly readHighWaterMark: number;
  readonly writeHighWaterMark: number;
  readonly writeLowWaterMark: number;
  /** `Number.MAX_SAFE_INTEGER` when there is no limit. */
  readonly maxBufferedAmount: number;
  readonly slowConsumer: SlowConsumerPolicy;
  readonly compression: ResolvedCompression | null;
  readonly openTimeoutMs: number | null;
  readonly pingIntervalMs: number | null;
  readonly pingTimeoutMs: number | null;
  readonly closeTimeoutMs: number | null;
  readonly connectionLimits: ConnectionLimits;
  readonly refusals: RefusalMode;
}

const POSITIVE_INTEGER = /^\d+$/;

function invalid(name: SettingName, value: unknown, expected: string, from: 'option' | 'env'): ConfigError {
  const spec = SETTINGS[name];
  const where = from === 'env' && spec.env !== null ? spec.env : `option ${spec.option}`;
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return new ConfigError(`${where} must be ${expected}; got ${shown} (${describeSetting(name)})`, spec.option, value);
}

/** A positive safe integer from an option, else the environment (strictly `/^\d+$/`), else the default. */
function resolveInteger(name: SettingName, option: unknown, env: Environment, unit: string, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  const spec = SETTINGS[name];
  const expected =
    max !== Number.MAX_SAFE_INTEGER
      ? `an integer from ${min} to ${max} (${unit})`
      : min === 1
        ? `a positive integer (${unit})`
        : min === 0
          ? `a non-negative integer (${unit})`
          : `an integer of at least ${min} (${unit})`;
  if (option !== undefined) {
    if (typeof option !== 'number' || !Number.isSafeInteger(option) || option < min || option > max) {
      throw invalid(name, option, expected, 'option');
    }
    return option;
  }
  const raw = spec.env === null ? undefined : env[spec.env];
  if (raw !== undefined && raw !== '') {
    const value = Number(raw);
    if (!POSITIVE_INTEGER.test(raw) || !Number.isSafeInteger(value) || value < min || value > max) {
      throw invalid(name, raw, expected, 'env');
    }
    return value;
  }
  return spec.default as number;
}

/** Like `resolveInteger`, but `null` (option) or `off`/`none` (environment) turns the timeout off. */
function resolveTimeout(name: SettingName, option: unknown, env: Environment): number | null {
  if (option === null) return null;
  const spec = SETTINGS[name];
  const raw = spec.env === null ? undefined : env[spec.env];
  if (option === undefined && raw !== undefined && /^(off|none)$/i.test(raw)) return null;
  return resolveInteger(name, option, env, 'milliseconds, or off');
}

/** Like `resolveInteger`, but `null` (option) or `off`/`none` (environment) means no limit, and so does a `null` default. */
function resolveOptionalCount(name: SettingName, option: unknown, env: Environment, unit: string): number | null {
  if (option === null) return null;
  const spec = SETTINGS[name];
  const raw = spec.env === null ? undefined : env[spec.env];
  if (option === undefined) {
    if (raw !== undefined && /^(off|none)$/i.test(raw)) return null;
    if (raw === undefined || raw === '') return spec.default as number | null;
  }
  return resolveInteger(name, option, env, `${unit}, or ${option === undefined ? 'off' : 'null'} for no limit`);
}

/** An identity header: an explicit option (string, or `null` for none), else the variable (empty: none), else the default. */
function resolveHeader(name: 'serverHeader' | 'userAgentHeader', option: unknown, env: Environment): string | null {
  const spec = SETTINGS[name];
  if (option !== undefined) {
    if (option === null) return null;
    if (typeof option !== 'string' || !isHeaderValue(option)) {
      throw invalid(name, option, 'a string of visible ASCII characters and spaces, or null for no header', 'option');
    }
    return option === '' ? null : option;
  }
  const raw = env[spec.env];
  if (raw !== undefined) {
    if (raw === '') return null;
    if (!isHeaderValue(raw)) throw invalid(name, raw, 'visible ASCII characters and spaces, or empty for no header', 'env');
    return raw;
  }
  return spec.default;
}

/** RFC 9110 field-value characters, restricted to printable ASCII so that nothing can split a header. */
export function isHeaderValue(value: string): boolean {
  return /^[\x20-\x7e]*$/.test(value);
}

const POLICIES: readonly SlowConsumerPolicy[] = ['close', 'drop'];
const REFUSAL_MODES: readonly RefusalMode[] = ['http', 'in-band', 'auto'];

/** One word of `choices`: the option, else the variable, else the default. */
function resolveWord<const T extends string>(name: 'slowConsumer' | 'refusals', choices: readonly T[], option: unknown, env: Environment): T {
  const expected = choices.map((choice) => JSON.stringify(choice)).join(', ').replace(/, ([^,]*)$/, ' or $1');
  if (option !== undefined) {
    if (!choices.includes(option as T)) throw invalid(name, option, expected, 'option');
    return option as T;
  }
  const raw = env[SETTINGS[name].env];
  if (raw === undefined || raw === '') return SETTINGS[name].default as T;
  if (!choices.includes(raw as T)) throw invalid(name, raw, expected, 'env');
  return raw as T;
}

function resolveCompression(option: unknown, env: Environment): ResolvedCompression | null {
  if (option === false) return null;
  if (option === undefined) {
    const raw = env[SETTINGS.compression.env];
    if (raw !== undefined && raw !== '') {
      if (/^(off|false|0|no)$/i.test(raw)) return null;
      if (!/^(on|true|1|yes)$/i.test(raw)) throw invalid('compression', raw, '"on" or "off"', 'env');
    }
  }
  if (option !== undefined && option !== true && (typeof option !== 'object' || option === null)) {
    throw invalid('compression', option, 'true, false or an object of compression options', 'option');
  }
  const o = (typeof option === 'object' && option !== null ? option : {}) as CompressionOptions;
  const bool = (value: unknown, name: string, fallback: boolean): boolean => {
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') {
      throw new ConfigError(`option compression.${name} must be a boolean; got ${String(value)}`, `compression.${name}`, value);
    }
    return value;
  };
  const none: Environment = {};
  return Object.freeze({
    serverMaxWindowBits: resolveInteger('serverMaxWindowBits', o.serverMaxWindowBits, none, 'window bits', 8, 15),
    clientMaxWindowBits: resolveInteger('clientMaxWindowBits', o.clientMaxWindowBits, none, 'window bits', 8, 15),
    serverNoContextTakeover: bool(o.serverNoContextTakeover, 'serverNoContextTakeover', false),
    clientNoContextTakeover: bool(o.clientNoContextTakeover, 'clientNoContextTakeover', false),
    memLevel: resolveInteger('memLevel', o.memLevel, none, 'zlib memLevel', 1, 9),
    threshold: o.threshold === 0 ? 0 : resolveInteger('compressionThreshold', o.threshold, none, 'bytes'),
  });
}

/**
 * Resolves options against the environment and the defaults, validates them and freezes the result.
 * @param options what the caller passed explicitly; `undefined` fields fall back to the environment
 * @param env usually `process.env`; tests pass a literal object
 * @throws ConfigError naming the option or variable, the value and what is expected
 */
export function resolveConfig(options: WebSocketsOptions = {}, env: Environment = {}): Readonly<ResolvedConfig> {
  const limits: Limits = Object.freeze({
    maxLineLength: resolveInteger('maxLineLength', options.maxLineLength, env, 'bytes'),
    maxNumHeaders: resolveInteger('maxNumHeaders', options.maxNumHeaders, env, 'headers'),
    maxBodySize: resolveInteger('maxBodySize', options.maxBodySize, env, 'bytes'),
    maxMessageSize: resolveInteger('maxMessageSize', options.maxMessageSize, env, 'bytes'),
    maxFragments: resolveInteger('maxFragments', options.maxFragments, env, 'frames'),
  });
  const writeHighWaterMark = resolveInteger('writeHighWaterMark', options.writeHighWaterMark, env, 'bytes');
  const writeLowWaterMark = resolveInteger('writeLowWaterMark', options.writeLowWaterMark, env, 'bytes');
  if (writeLowWaterMark > writeHighWaterMark) {
    throw new ConfigError(
      `writeLowWaterMark (${writeLowWaterMark}) must not exceed writeHighWaterMark (${writeHighWaterMark})`,
      'writeLowWaterMark',
      writeLowWaterMark,
    );
  }
  const maxBufferedAmount =
    resolveOptionalCount('maxBufferedAmount', options.maxBufferedAmount, env, 'bytes') ?? Number.MAX_SAFE_INTEGER;
  if (maxBufferedAmount < writeHighWaterMark) {
    throw new ConfigError(
      `maxBufferedAmount (${maxBufferedAmount}) must not be under writeHighWaterMark (${writeHighWaterMark}) (${describeSetting('maxBufferedAmount')})`,
      'maxBufferedAmount',
      maxBufferedAmount,
    );
  }
  return Object.freeze({
    limits,
    serverHeader: resolveHeader('serverHeader', options.serverHeader, env),
    userAgentHeader: resolveHeader('userAgentHeader', options.userAgentHeader, env),
    readHighWaterMark: resolveInteger('readHighWaterMark', options.readHighWaterMark, env, 'bytes'),
    writeHighWaterMark,
    writeLowWaterMark,
    maxBufferedAmount,
    slowConsumer: resolveWord('slowConsumer', POLICIES, options.slowConsumer, env),
    compression: resolveCompression(options.compression, env),
    openTimeoutMs: resolveTimeout('openTimeoutMs', options.openTimeoutMs, env),
    pingIntervalMs: resolveTimeout('pingIntervalMs', options.pingIntervalMs, env),
    pingTimeoutMs: resolveTimeout('pingTimeoutMs', options.pingTimeoutMs, env),
    closeTimeoutMs: resolveTimeout('closeTimeoutMs', options.closeTimeoutMs, env),
    connectionLimits: Object.freeze({
      maxConnections: resolveOptionalCount('maxConnections', options.maxConnections, env, 'connections'),
      maxConnectionsPerAddress: resolveOptionalCount('maxConnectionsPerAddress', options.maxConnectionsPerAddress, env, 'connections'),
      maxHandshakesPerSecondPerAddress: resolveOptionalCount(
        'maxHandshakesPerSecondPerAddress',
        options.maxHandshakesPerSecondPerAddress,
        env,
        'handshakes per second',
      ),
    }),
    refusals: resolveWord('refusals', REFUSAL_MODES, options.refusals, env),
  });
}

/** Limits of the Nest gateway layer: what one message may nest, and how many rooms one client may be in. */
export interface GatewayLimits {
  /** Deepest nesting of arrays and objects the default message parser accepts (the message itself is level 1). */
  readonly maxJsonDepth: number;
  /** Most rooms one client can be in, or `null` for no limit. */
  readonly maxRoomsPerClient: number | null;
}

/**
 * Resolves the gateway limits (module or gateway options) against the environment and the defaults.
 * @throws ConfigError naming the option or variable, the value and what is expected
 */
export function resolveGatewayLimits(
  options: { readonly maxJsonDepth?: unknown; readonly maxRoomsPerClient?: unknown } = {},
  env: Environment = {},
): Readonly<GatewayLimits> {
  return Object.freeze({
    maxJsonDepth: resolveInteger('maxJsonDepth', options.maxJsonDepth, env, 'levels of nesting'),
    maxRoomsPerClient: resolveOptionalCount('maxRoomsPerClient', options.maxRoomsPerClient, env, 'rooms'),
  });
}

// --- Client: redirects, reconnection and proxies ------------------------------------------------------------------

/**
 * Most redirects `connect()` follows: the option, else WEBSOCKETS_MAX_REDIRECTS, else 10. 0 follows none.
 * @throws ConfigError for a negative or fractional number
 */
export function resolveMaxRedirects(option: unknown, env: Environment): number {
  return resolveInteger('maxRedirects', option, env, 'redirects', 0);
}

/** The backoff of `reconnect()`, in ms (the options' unit); the variables are in seconds, as in Python websockets. */
export interface BackoffOptions {
  /** The first retry waits a random time from 0 up to this, in ms. @default 5000, or WEBSOCKETS_BACKOFF_INITIAL_DELAY (s) */
  backoffInitialDelayMs?: number;
  /** The second retry waits this, in ms (more than 0). @default 3100, or WEBSOCKETS_BACKOFF_MIN_DELAY (s) */
  backoffMinDelayMs?: number;
  /** Each later delay is the previous one times this (at least 1). @default 1.618, or WEBSOCKETS_BACKOFF_FACTOR */
  backoffFactor?: number;
  /** Longest delay, `Retry-After` included, in ms. @default 90000, or WEBSOCKETS_BACKOFF_MAX_DELAY (s) */
  backoffMaxDelayMs?: number;
}

/** Resolved backoff, in ms. */
export interface ResolvedBackoff {
  readonly initialDelayMs: number;
  readonly minDelayMs: number;
  readonly factor: number;
  readonly maxDelayMs: number;
}

// Seconds with an optional decimal part, as Python's float() would take them, but nothing else ("5s", "1e3", "-1").
const DECIMAL = /^\d+(?:\.\d+)?$/;

/** A delay in ms from an option (a non-negative safe integer, at least `min`), else its variable in seconds. */
function resolveDelayMs(name: SettingName, option: unknown, env: Environment, min: number): number {
  const spec = SETTINGS[name];
  const expected = min === 0 ? 'a non-negative integer (milliseconds)' : `an integer of at least ${min} (milliseconds)`;
  if (option !== undefined) {
    if (typeof option !== 'number' || !Number.isSafeInteger(option) || option < min) throw invalid(name, option, expected, 'option');
    return option;
  }
  const raw = spec.env === null ? undefined : env[spec.env];
  if (raw !== undefined && raw !== '') {
    const ms = Math.round(Number(raw) * 1000);
    if (!DECIMAL.test(raw) || !Number.isSafeInteger(ms) || ms < min) {
      throw invalid(name, raw, `a number of seconds (e.g. 3.1)${min > 0 ? ' above 0' : ''}`, 'env');
    }
    return ms;
  }
  return spec.default as number;
}

/**
 * The backoff of `reconnect()`: each value from its option (ms), else its variable (seconds, decimals allowed),
 * else Python websockets' default (5 s, 3.1 s, x1.618, 90 s).
 * @throws ConfigError for a value that is not a number, a factor below 1, a minimum delay of 0, or a maximum delay
 *   below the minimum delay
 */
export function resolveBackoff(options: BackoffOptions, env: Environment): Readonly<ResolvedBackoff> {
  const initialDelayMs = resolveDelayMs('backoffInitialDelayMs', options.backoffInitialDelayMs, env, 0);
  // A minimum of 0 would make every delay 0: a client that hammers the server in a loop.
  const minDelayMs = resolveDelayMs('backoffMinDelayMs', options.backoffMinDelayMs, env, 1);
  const maxDelayMs = resolveDelayMs('backoffMaxDelayMs', options.backoffMaxDelayMs, env, 1);
  let factor: number = SETTINGS.backoffFactor.default;
  const rawFactor = env[SETTINGS.backoffFactor.env];
  if (options.backoffFactor !== undefined) {
    const option: unknown = options.backoffFactor;
    if (typeof option !== 'number' || !Number.isFinite(option) || option < 1) throw invalid('backoffFactor', option, 'a number of at least 1', 'option');
    factor = option;
  } else if (rawFactor !== undefined && rawFactor !== '') {
    if (!DECIMAL.test(rawFactor) || Number(rawFactor) < 1) throw invalid('backoffFactor', rawFactor, 'a number of at least 1 (e.g. 1.618)', 'env');
    factor = Number(rawFactor);
  }
  if (maxDelayMs < minDelayMs) {
    throw new ConfigError(
      `backoffMaxDelayMs (${maxDelayMs} ms) must not be below backoffMinDelayMs (${minDelayMs} ms) ` +
        `(${describeSetting('backoffMaxDelayMs')}; ${describeSetting('backoffMinDelayMs')})`,
      'backoffMaxDelayMs',
      maxDelayMs,
    );
  }
  return Object.freeze({ initialDelayMs, minDelayMs, factor, maxDelayMs });
}

/** The proxy schemes the client speaks. */
export type ProxyScheme = 'http' | 'https' | 'socks5' | 'socks5h';

/** A proxy URL, parsed and checked. */
export interface ProxyUrl {
  readonly scheme: ProxyScheme;
  /** Host name or IP, without the brackets of an IPv6 literal. */
  readonly host: string;
  /** The URL's port, else 80 (http), 443 (https) or 1080 (SOCKS). */
  readonly port: number;
  /** The URL's user name and password, percent-decoded; `null` when it has none. */
  readonly credentials: { readonly username: string; readonly password: string } | null;
  /** The URL without its credentials, for messages: `socks5h://127.0.0.1:1080`. */
  readonly href: string;
}

/** Where the environment's proxy for one scheme comes from. */
export interface ProxyVariable {
  /** The variable as found (`https_proxy` or `HTTPS_PROXY`). */
  readonly name: string;
  readonly value: string;
}

/** The proxy configuration of a client, before a URL picks from it. */
export type ResolvedProxy =
  /** `proxy: null`: always connect directly. */
  | { readonly mode: 'none' }
  /** An explicit `proxy`: used for every URL, loopback included, `noProxy` ignored. */
  | { readonly mode: 'fixed'; readonly proxy: ProxyUrl }
  /** The environment: one variable per scheme (or none), and the hosts that bypass it. */
  | {
      readonly mode: 'environment';
      readonly ws: ProxyVariable | null;
      readonly wss: ProxyVariable | null;
      /** Entries of `noProxy` / NO_PROXY, split at commas and whitespace. */
      readonly noProxy: readonly string[];
    };

/** What the client's proxy settings can be. */
export interface ProxyOptions {
  /**
   * The proxy: a URL (`http://user:password@proxy:3128`, `socks5h://proxy:1080`), `null` for none, or absent to
   * follow the environment.
   */
  proxy?: string | URL | null;
  /** Hosts that bypass the environment's proxy, as NO_PROXY lists them (a string, or its entries). */
  noProxy?: string | readonly string[] | null;
}

const PROXY_DEFAULT_PORTS: Readonly<Record<ProxyScheme, number>> = { http: 80, https: 443, socks5: 1080, socks5h: 1080 };
const PROXY_URL_HINT = 'a proxy URL: http://, https://, socks5:// or socks5h://[user:password@]host[:port]';

/**
 * Parses and checks a proxy URL. A value without a scheme (`proxy.example:3128`) is taken as `http://`, as curl and
 * Go do.
 * @param where what to name in the message: `option proxy`, or the variable it came from (`HTTPS_PROXY`)
 * @throws ConfigError for an unsupported scheme, a missing host, a path, query or fragment, or bad percent-encoding
 */
export function parseProxyUrl(value: string | URL, where: string): ProxyUrl {
  const text = String(value).trim();
  const fail = (why: string): ConfigError =>
    new ConfigError(`${where} must be ${PROXY_URL_HINT}; got ${JSON.stringify(redactUrl(text))} (${why})`, 'proxy', redactUrl(text));
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`);
  } catch {
    throw fail('not a URL');
  }
  const scheme = url.protocol.slice(0, -1);
  if (!(scheme in PROXY_DEFAULT_PORTS)) throw fail(`scheme ${scheme} is not supported`);
  const host = url.hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw fail('no host');
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') throw fail('a proxy URL has no path, query or fragment');
  const port = url.port === '' ? PROXY_DEFAULT_PORTS[scheme as ProxyScheme] : Number(url.port);
  let credentials: ProxyUrl['credentials'] = null;
  if (url.username !== '' || url.password !== '') {
    try {
      credentials = Object.freeze({ username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) });
    } catch {
      throw fail('bad percent-encoding in the credentials');
    }
  }
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return Object.freeze({ scheme: scheme as ProxyScheme, host, port, credentials, href: `${scheme}://${shownHost}:${port}` });
}

/** A URL with its password replaced, for messages. */
function redactUrl(text: string): string {
  return text.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:***@');
}

/** The first set variable of `names`; lower case wins, and an empty lower-case variable hides the upper-case one. */
function proxyVariable(names: readonly string[], env: Environment): ProxyVariable | null {
  for (const upper of names) {
    const lower = upper.toLowerCase();
    const lowerValue = env[lower];
    if (lowerValue !== undefined) {
      if (lowerValue.trim() !== '') return { name: lower, value: lowerValue };
      continue;
    }
    // CGI puts a request's `Proxy:` header in HTTP_PROXY (httpoxy, CVE-2016-5385): under CGI, only http_proxy counts.
    if (upper === 'HTTP_PROXY' && env.REQUEST_METHOD !== undefined) continue;
    const upperValue = env[upper];
    if (upperValue !== undefined && upperValue.trim() !== '') return { name: upper, value: upperValue };
  }
  return null;
}

/**
 * The client's proxy settings: `proxy: null` turns proxies off; an explicit `proxy` is used for every URL; otherwise
 * the environment applies: WSS_PROXY or WS_PROXY, then HTTPS_PROXY, then (ws only) HTTP_PROXY, then ALL_PROXY, each
 * also in lower case (which wins), with `noProxy` / NO_PROXY. A variable's URL is checked when a connection uses it,
 * so a bad HTTP_PROXY does not break a wss:// client that never reads it.
 * @throws ConfigError for an invalid explicit `proxy` or `noProxy`
 */
export function resolveProxy(options: ProxyOptions, env: Environment): ResolvedProxy {
  if (options.proxy === null) return Object.freeze({ mode: 'none' });
  if (options.proxy !== undefined) {
    if (typeof options.proxy !== 'string' && !(options.proxy instanceof URL)) {
      throw new ConfigError(`option proxy must be ${PROXY_URL_HINT}, or null for none; got ${String(options.proxy)}`, 'proxy', options.proxy);
    }
    return Object.freeze({ mode: 'fixed', proxy: parseProxyUrl(options.proxy, 'option proxy') });
  }
  let list: string;
  const option: unknown = options.noProxy;
  if (option !== undefined && option !== null) {
    if (typeof option === 'string') list = option;
    else if (Array.isArray(option) && option.every((entry) => typeof entry === 'string')) list = option.join(',');
    else throw invalid('noProxy', option, 'a comma-separated string or an array of host names', 'option');
  } else {
    list = env.no_proxy ?? env.NO_PROXY ?? '';
  }
  return Object.freeze({
    mode: 'environment',
    ws: proxyVariable(PROXY_VARIABLES.ws, env),
    wss: proxyVariable(PROXY_VARIABLES.wss, env),
    noProxy: Object.freeze(list.split(/[\s,]+/).filter((entry) => entry !== '')),
  });
}

// --- Unix domain sockets --------------------------------------------------------------------------------------------

/**
 * The Unix socket path to listen on: the option, else WEBSOCKETS_SOCKET_PATH, else `null` (a TCP port). The sample
 * app and the echo server call it with `process.env`; `WebSocketServer` takes the option only, so that a variable
 * meant for one server does not move every server of the process.
 * @throws ConfigError for an option that is not a non-empty string
 */
export function resolveSocketPath(option: unknown, env: Environment): string | null {
  if (option !== undefined && option !== null) {
    if (typeof option !== 'string' || option === '') throw invalid('socketPath', option, 'a file path', 'option');
    return option;
  }
  const raw = env[SETTINGS.socketPath.env];
  return raw === undefined || raw === '' ? null : raw;
}

/**
 * Permissions of a Unix socket file: the option (`0o660`), else WEBSOCKETS_SOCKET_PERMISSIONS in octal (`660` or
 * `0660`), else `null` (what the umask gives).
 * @throws ConfigError for a value outside 0-0o777 or a variable that is not three octal digits
 */
export function resolveSocketPermissions(option: unknown, env: Environment): number | null {
  if (option !== undefined && option !== null) {
    if (typeof option !== 'number' || !Number.isInteger(option) || option < 0 || option > 0o777) {
      throw invalid('socketPermissions', option, 'permission bits from 0 to 0o777 (e.g. 0o660)', 'option');
    }
    return option;
  }
  const raw = env[SETTINGS.socketPermissions.env];
  if (raw === undefined || raw === '') return null;
  if (!/^0?[0-7]{3}$/.test(raw)) throw invalid('socketPermissions', raw, 'three octal digits (e.g. 660)', 'env');
  return parseInt(raw, 8);
}
