/**
 * Every setting of the package in one table: its option name, its environment variable (when it has one) and its
 * default. Pure data: this module imports nothing, so that errors, config and the README test can all read it.
 * `resolveConfig()` in `config.ts` turns options + environment + these defaults into a validated, frozen config.
 */

/** `major.minor` of this package, sent in the default `Server` / `User-Agent` header. A test checks it against package.json. */
export const PACKAGE_VERSION = '0.1';

/** The default identity: `Node.js/x.y.z nestjs-websockets/X.Y`, like Python websockets' `Python/x.y.z websockets/X.Y`. */
export const DEFAULT_IDENTITY = `Node.js/${process.versions.node} nestjs-websockets/${PACKAGE_VERSION}`;

/** How a setting's value is read from its environment variable. */
export type SettingKind = 'bytes' | 'count' | 'ms' | 'header' | 'string' | 'path' | 'boolean' | 'window-bits' | 'mem-level';

export interface SettingSpec {
  /** The option name in `WebSocketsOptions` (and in the module's options). */
  readonly option: string;
  /** The environment variable that sets it when the option is absent, or `null` when there is none. */
  readonly env: string | null;
  readonly kind: SettingKind;
  /** The default, as documented in the README table (which a test checks against this object). */
  readonly default: number | string | boolean | null;
  /** One line for the README table. */
  readonly doc: string;
}

function setting<const S extends SettingSpec>(spec: S): S {
  return spec;
}

export const SETTINGS = {
  // --- Opening handshake (the seed's HTTP limits) ---------------------------------------------------------------
  // 8 KiB is the most common line limit of popular HTTP servers (and Python websockets' MAX_LINE_LENGTH).
  maxLineLength: setting({ option: 'maxLineLength', env: 'WEBSOCKETS_MAX_LINE_LENGTH', kind: 'bytes', default: 8192,
    doc: 'Longest request/status line and longest header line, CRLF included (414 / 431 on a server).' }),
  maxNumHeaders: setting({ option: 'maxNumHeaders', env: 'WEBSOCKETS_MAX_NUM_HEADERS', kind: 'count', default: 128,
    doc: 'Most header lines in a handshake request or response (431 on a server).' }),
  maxBodySize: setting({ option: 'maxBodySize', env: 'WEBSOCKETS_MAX_BODY_SIZE', kind: 'bytes', default: 1_048_576,
    doc: 'Largest body of a handshake response the client reads (a refusal such as 401 with a page).' }),
  serverHeader: setting({ option: 'serverHeader', env: 'WEBSOCKETS_SERVER', kind: 'header', default: DEFAULT_IDENTITY,
    doc: '`Server` header of every handshake response; `null` (or an empty variable) sends none.' }),
  userAgentHeader: setting({ option: 'userAgentHeader', env: 'WEBSOCKETS_USER_AGENT', kind: 'header', default: DEFAULT_IDENTITY,
    doc: '`User-Agent` header of the client\'s handshake request; `null` (or an empty variable) sends none.' }),

  // --- Messages and memory --------------------------------------------------------------------------------------
  maxMessageSize: setting({ option: 'maxMessageSize', env: 'WEBSOCKETS_MAX_MESSAGE_SIZE', kind: 'bytes', default: 1_048_576,
    doc: 'Largest message, after decompression; a larger one closes the connection with 1009.' }),
  readHighWaterMark: setting({ option: 'readHighWaterMark', env: 'WEBSOCKETS_READ_HIGH_WATER_MARK', kind: 'bytes', default: 65_536,
    doc: 'Bytes received and not yet taken by the application above which reading stops (the socket is paused).' }),
  writeHighWaterMark: setting({ option: 'writeHighWaterMark', env: 'WEBSOCKETS_WRITE_HIGH_WATER_MARK', kind: 'bytes', default: 32_768,
    doc: 'Buffered outgoing bytes above which `send()` waits.' }),
  writeLowWaterMark: setting({ option: 'writeLowWaterMark', env: 'WEBSOCKETS_WRITE_LOW_WATER_MARK', kind: 'bytes', default: 8_192,
    doc: 'Buffered outgoing bytes below which waiting `send()` calls resume.' }),

  // --- permessage-deflate (RFC 7692), tuned for memory -----------------------------------------------------------
  compression: setting({ option: 'compression', env: 'WEBSOCKETS_COMPRESSION', kind: 'boolean', default: true,
    doc: 'Negotiate permessage-deflate (`false`, or `off` in the variable, disables it).' }),
  serverMaxWindowBits: setting({ option: 'compression.serverMaxWindowBits', env: null, kind: 'window-bits', default: 12,
    doc: 'LZ77 window (8-15) of the server\'s compressor; a server asks at most this.' }),
  clientMaxWindowBits: setting({ option: 'compression.clientMaxWindowBits', env: null, kind: 'window-bits', default: 12,
    doc: 'LZ77 window (8-15) asked of the client\'s compressor when it offers `client_max_window_bits`.' }),
  memLevel: setting({ option: 'compression.memLevel', env: null, kind: 'mem-level', default: 5,
    doc: 'zlib memLevel (1-9) of the compressor.' }),
  compressionThreshold: setting({ option: 'compression.threshold', env: null, kind: 'bytes', default: 128,
    doc: 'Outgoing messages smaller than this are sent uncompressed.' }),

  // --- Timeouts (Python websockets' defaults); `null` turns one off ---------------------------------------------
  openTimeoutMs: setting({ option: 'openTimeoutMs', env: 'WEBSOCKETS_OPEN_TIMEOUT_MS', kind: 'ms', default: 10_000,
    doc: 'Time allowed for the opening handshake, in ms.' }),
  pingIntervalMs: setting({ option: 'pingIntervalMs', env: 'WEBSOCKETS_PING_INTERVAL_MS', kind: 'ms', default: 20_000,
    doc: 'Interval between keepalive pings, in ms.' }),
  pingTimeoutMs: setting({ option: 'pingTimeoutMs', env: 'WEBSOCKETS_PING_TIMEOUT_MS', kind: 'ms', default: 20_000,
    doc: 'Time to wait for a keepalive pong before closing with 1011, in ms.' }),
  closeTimeoutMs: setting({ option: 'closeTimeoutMs', env: 'WEBSOCKETS_CLOSE_TIMEOUT_MS', kind: 'ms', default: 10_000,
    doc: 'Time allowed for the closing handshake before the socket is destroyed, in ms.' }),

  // --- Connection limits: above them a server answers 503 with Retry-After before the upgrade ------------------
  // Off by default, as in ws and Python websockets: behind a reverse proxy every client has the proxy's address, so
  // a per-address default would refuse real users. `null` (or `off` in the variable) is "no limit"; 0 is refused.
  maxConnections: setting({ option: 'maxConnections', env: 'WEBSOCKETS_MAX_CONNECTIONS', kind: 'count', default: null,
    doc: 'Most connections a server holds at once, handshakes in progress included; `null` for no limit.' }),
  maxConnectionsPerAddress: setting({ option: 'maxConnectionsPerAddress', env: 'WEBSOCKETS_MAX_CONNECTIONS_PER_ADDRESS', kind: 'count', default: null,
    doc: 'Most connections from one client address at once, handshakes in progress included; `null` for no limit.' }),
  maxHandshakesPerSecondPerAddress: setting({ option: 'maxHandshakesPerSecondPerAddress', env: 'WEBSOCKETS_MAX_HANDSHAKES_PER_SECOND_PER_ADDRESS',
    kind: 'count', default: null,
    doc: 'New connections accepted per second from one client address (a burst of this many, refilled evenly); `null` for no limit.' }),

  // --- Deployment (used by the Node server and the Nest module) -------------------------------------------------
  host: setting({ option: 'host', env: 'WEBSOCKETS_HOST', kind: 'string', default: null,
    doc: 'Bind address of servers on their own port (Node\'s default: all interfaces).' }),
  tlsCert: setting({ option: 'tls.cert', env: 'WEBSOCKETS_TLS_CERT', kind: 'path', default: null,
    doc: 'Path of a PEM certificate chain; with `WEBSOCKETS_TLS_KEY`, turns on TLS (wss) on servers on their own port (`tls: false` opts out).' }),
  tlsKey: setting({ option: 'tls.key', env: 'WEBSOCKETS_TLS_KEY', kind: 'path', default: null,
    doc: 'Path of the PEM private key of `WEBSOCKETS_TLS_CERT`.' }),
  tlsCa: setting({ option: 'tls.ca', env: 'WEBSOCKETS_TLS_CA', kind: 'path', default: null,
    doc: 'Path of PEM CA certificates to trust (clients) or to verify client certificates (servers).' }),
  redisUrl: setting({ option: 'redisUrl', env: 'WEBSOCKETS_REDIS_URL', kind: 'string', default: null,
    doc: 'Redis URL of the broadcast bus for rooms across instances; none means in-process only.' }),
  redisChannelPrefix: setting({ option: 'redisChannelPrefix', env: 'WEBSOCKETS_REDIS_CHANNEL_PREFIX', kind: 'string', default: 'nestjs-websockets:',
    doc: 'Prefix of the Redis channels of the broadcast bus: apps that share one Redis but not their rooms use different ones.' }),
} as const;

export type SettingName = keyof typeof SETTINGS;

/** How a setting is named in messages: `option maxLineLength, env WEBSOCKETS_MAX_LINE_LENGTH`. */
export function describeSetting(name: SettingName): string {
  const spec: SettingSpec = SETTINGS[name];
  return spec.env === null ? `option ${spec.option}` : `option ${spec.option}, env ${spec.env}`;
}
