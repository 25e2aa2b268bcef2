/**
 * Resolution of options: an explicit option, then the environment, then the default from `SETTINGS`.
 * Called once per server, client or module with the caller's `process.env` (this module never reads it), so that
 * tests can pass a literal environment and two servers can have different limits.
 */
import { ConfigError } from './errors.js';
import { SETTINGS, describeSetting, type SettingName } from './settings.js';

export { SETTINGS, DEFAULT_IDENTITY, PACKAGE_VERSION, describeSetting } from './settings.js';
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
   * Bytes received and not yet taken by the application above which the socket is paused and parsing stops.
   * @default 65536, or WEBSOCKETS_READ_HIGH_WATER_MARK
   */
  readHighWaterMark?: number;
  /** Buffered outgoing bytes above which `send()` waits. @default 32768, or WEBSOCKETS_WRITE_HIGH_WATER_MARK */
  writeHighWaterMark?: number;
  /** Buffered outgoing bytes below which waiting sends resume. @default 8192, or WEBSOCKETS_WRITE_LOW_WATER_MARK */
  writeLowWaterMark?: number;
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
}

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
  readonly compression: ResolvedCompression | null;
  readonly openTimeoutMs: number | null;
  readonly pingIntervalMs: number | null;
  readonly pingTimeoutMs: number | null;
  readonly closeTimeoutMs: number | null;
  readonly connectionLimits: ConnectionLimits;
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
  const expected = min === 1 && max === Number.MAX_SAFE_INTEGER ? `a positive integer (${unit})` : `an integer from ${min} to ${max} (${unit})`;
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

/** The TLS fields that may come from a file named by a variable (`WEBSOCKETS_TLS_CERT`, `_KEY`, `_CA`). */
export type TlsFileField = 'cert' | 'key' | 'ca';

/** The setting of each TLS file field. */
const TLS_FILE_SETTINGS: Readonly<Record<TlsFileField, 'tlsCert' | 'tlsKey' | 'tlsCa'>> = Object.freeze({ cert: 'tlsCert', key: 'tlsKey', ca: 'tlsCa' });

/**
 * Which TLS files to read: for each of `cert`, `key` and `ca` that the `tls` option leaves out, the path its variable
 * names (an unset or empty variable names none). The option wins field by field. This module reads no file: the
 * node layer reads these paths (`readTlsFiles`).
 * @param option the fields the `tls` option gives (only whether each is present matters here)
 * @throws ConfigError when a certificate ends up without its key, or a key without its certificate; the message
 *   names both options and both variables
 */
export function resolveTlsFiles(
  option: Readonly<Partial<Record<TlsFileField, unknown>>> | undefined,
  env: Environment,
): Readonly<Partial<Record<TlsFileField, string>>> {
  const files: Partial<Record<TlsFileField, string>> = {};
  for (const field of Object.keys(TLS_FILE_SETTINGS) as TlsFileField[]) {
    if (option?.[field] !== undefined) continue;
    const file = env[SETTINGS[TLS_FILE_SETTINGS[field]].env];
    if (file !== undefined && file !== '') files[field] = file;
  }
  const hasCert = option?.cert !== undefined || files.cert !== undefined;
  const hasKey = option?.key !== undefined || files.key !== undefined;
  if (hasCert !== hasKey) {
    const [given, missing] = hasCert ? (['tlsCert', 'tlsKey'] as const) : (['tlsKey', 'tlsCert'] as const);
    throw new ConfigError(
      `a TLS ${given === 'tlsCert' ? 'certificate' : 'key'} is configured without its ` +
        `${missing === 'tlsCert' ? 'certificate' : 'key'}; set ${describeSetting(missing)} as well, ` +
        `or remove ${describeSetting(given)}`,
      SETTINGS[missing].option,
      undefined,
    );
  }
  return Object.freeze(files);
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
  return Object.freeze({
    limits,
    serverHeader: resolveHeader('serverHeader', options.serverHeader, env),
    userAgentHeader: resolveHeader('userAgentHeader', options.userAgentHeader, env),
    readHighWaterMark: resolveInteger('readHighWaterMark', options.readHighWaterMark, env, 'bytes'),
    writeHighWaterMark,
    writeLowWaterMark,
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
  });
}
