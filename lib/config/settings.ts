/**
 * Every setting of the package in one table: its option name, its environment variable (when it has one) and its
 * default. Pure data: this module imports nothing, so that errors, config and the docs test can all read it.
 * `resolveConfig()` in `config.ts` turns options + environment + these defaults into a validated, frozen config.
 */

/** `major.minor` of this package, sent in the default `Server` / `User-Agent` header. A test checks it against package.json. */
export const PACKAGE_VERSION = '0.1';

/** The default identity: `Node.js/x.y.z nestjs-websockets/X.Y`, like Python websockets' `Python/x.y.z websockets/X.Y`. */
export const DEFAULT_IDENTITY = `Node.js/${process.versions.node} nestjs-websockets/${PACKAGE_VERSION}`;

/** How a setting's value is read from its environment variable. */
export type SettingKind =
  | 'bytes'
  | 'count'
  | 'ms'
  | 'header'
  | 'string'
  | 'path'
  | 'boolean'
  | 'window-bits'
  | 'mem-level'
  /** An option in ms whose variable is in seconds (decimals allowed), as Python websockets reads it. */
  | 'seconds'
  /** A decimal number of at least 1. */
  | 'factor'
  /** A proxy URL; its variables are the `*_PROXY` family (see `PROXY_VARIABLES`). */
  | 'proxy'
  /** A comma-separated list of hosts, domains, IPs, CIDR ranges and `host:port`, or `*`. */
  | 'host-list'
  /** File permissions: a number in an option (`0o660`), octal digits in the variable (`660`). */
  | 'mode'
  /** One of a fixed set of words (`close`, `drop`; `http`, `in-band`, `auto`). */
  | 'policy';

export interface SettingSpec {
  /** The option name in `WebSocketsOptions` (and in the module's options). */
  readonly option: string;
  /** The environment variable that sets it when the option is absent, or `null` when there is none. */
  readonly env: string | null;
  readonly kind: SettingKind;
  /** The default, as documented in docs/reference/options.md (whose table a test checks against this object). */
  readonly default: number | string | boolean | null;
  /** One line for the table of docs/reference/options.md. */
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
  // ws closes at 16 384 frames with 1008; each frame costs parsing work even when empty.
  maxFragments: setting({ option: 'maxFragments', env: 'WEBSOCKETS_MAX_FRAGMENTS', kind: 'count', default: 16_384,
    doc: 'Most frames in one incoming message; one more closes the connection with 1008.' }),
  readHighWaterMark: setting({ option: 'readHighWaterMark', env: 'WEBSOCKETS_READ_HIGH_WATER_MARK', kind: 'bytes', default: 65_536,
    doc: 'Bytes received and not yet taken by the application above which reading stops (the socket is paused).' }),
  writeHighWaterMark: setting({ option: 'writeHighWaterMark', env: 'WEBSOCKETS_WRITE_HIGH_WATER_MARK', kind: 'bytes', default: 32_768,
    doc: 'Buffered outgoing bytes above which `send()` waits.' }),
  // uWebSockets.js' maxBackpressure and Centrifugo's client queue limit are both 1 MiB.
  maxBufferedAmount: setting({ option: 'maxBufferedAmount', env: 'WEBSOCKETS_MAX_BUFFERED_AMOUNT', kind: 'bytes', default: 1_048_576,
    doc: 'Most bytes one connection may hold for sending (socket buffer, batch and waiting sends); past it the `slowConsumer` policy applies. `null` for no limit.' }),
  slowConsumer: setting({ option: 'slowConsumer', env: 'WEBSOCKETS_SLOW_CONSUMER', kind: 'policy', default: 'close',
    doc: '`close`: a send past `maxBufferedAmount` drops what waits and closes with 1013; `drop`: that message is not sent (`send()` resolves `false`).' }),
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

  // --- How a server refuses a handshake that its hook, guards or allowedOrigins turn down (a 4xx) ----------------
  // A browser sees an HTTP refusal only as a close with 1006, the same as a server that is down, so a page would
  // retry a bad token for ever. In-band, the refusal is a 101 followed at once by a close with 4000 + status. `auto`
  // does that only for requests with an Origin header: browsers always send one, and ws, Python websockets and this
  // package's connect() send none by default, so they keep the HTTP status their retry logic reads.
  refusals: setting({ option: 'refusals', env: 'WEBSOCKETS_REFUSALS', kind: 'policy', default: 'auto',
    doc: 'How a 4xx refusal (hook, guards, `allowedOrigins`) is sent: `http`, `in-band` (a 101 then a close with 4000 + status and the message as reason), or `auto` (in-band when the request has an `Origin` header, i.e. from a browser).' }),

  // --- Nest gateways: what one message or one client may cost -------------------------------------------------
  // 64 levels is System.Text.Json's default MaxDepth: far deeper than application messages nest, and shallow enough
  // that nothing recursive after the parser (ValidationPipe, class-transformer, JSON.stringify of a reply or of an
  // exception's cause) can overflow the stack. The message's own object is level 1.
  maxJsonDepth: setting({ option: 'maxJsonDepth', env: 'WEBSOCKETS_MAX_JSON_DEPTH', kind: 'count', default: 64,
    doc: 'Deepest nesting of arrays and objects the default message parser accepts (the message is level 1); deeper gets an exception frame.' }),
  // 128 is Centrifugo's default channel limit per client (socket.io has none): at about 313 B of membership per room,
  // at most 40 KiB per client, a few times an idle connection, where 300 000 joins cost 90 MiB without a limit.
  maxRoomsPerClient: setting({ option: 'maxRoomsPerClient', env: 'WEBSOCKETS_MAX_ROOMS_PER_CLIENT', kind: 'count', default: 128,
    doc: 'Most rooms one client of a gateway can be in; `join()` above it throws `RoomLimitError` (an exception frame); `null` for no limit.' }),
  // --- Client: proxies, redirects and reconnection --------------------------------------------------------------
  // The proxy variables are the de facto standard of curl, Go and Python rather than WEBSOCKETS_* names, so that a
  // machine's existing proxy configuration applies; lower case wins over upper case (see PROXY_VARIABLES).
  proxy: setting({ option: 'proxy', env: 'WSS_PROXY / WS_PROXY / HTTPS_PROXY / HTTP_PROXY / ALL_PROXY', kind: 'proxy', default: null,
    doc: 'Proxy of the client: `http://`, `https://`, `socks5://` or `socks5h://`, credentials in the URL; `null` connects directly. The variables (lower case too) apply by scheme, see [Proxies](#proxies).' }),
  noProxy: setting({ option: 'noProxy', env: 'NO_PROXY', kind: 'host-list', default: null,
    doc: 'Hosts that bypass the proxy of the environment: names (subdomains included), IPs, CIDR ranges, `host:port`, or `*`. Loopback always does.' }),
  maxRedirects: setting({ option: 'maxRedirects', env: 'WEBSOCKETS_MAX_REDIRECTS', kind: 'count', default: 10,
    doc: 'Most redirects the client follows (0: none).' }),
  // Python websockets' backoff (src/websockets/client.py): its variables are in seconds, so they are here too.
  backoffInitialDelayMs: setting({ option: 'backoffInitialDelayMs', env: 'WEBSOCKETS_BACKOFF_INITIAL_DELAY', kind: 'seconds', default: 5_000,
    doc: '`reconnect()`: the first retry waits a random time up to this, in ms (the variable is in seconds: `5`).' }),
  backoffMinDelayMs: setting({ option: 'backoffMinDelayMs', env: 'WEBSOCKETS_BACKOFF_MIN_DELAY', kind: 'seconds', default: 3_100,
    doc: '`reconnect()`: delay of the second retry, in ms (the variable is in seconds: `3.1`).' }),
  backoffFactor: setting({ option: 'backoffFactor', env: 'WEBSOCKETS_BACKOFF_FACTOR', kind: 'factor', default: 1.618,
    doc: '`reconnect()`: each later delay is the previous one times this (at least 1).' }),
  backoffMaxDelayMs: setting({ option: 'backoffMaxDelayMs', env: 'WEBSOCKETS_BACKOFF_MAX_DELAY', kind: 'seconds', default: 90_000,
    doc: '`reconnect()`: longest delay between attempts, `Retry-After` included, in ms (the variable is in seconds: `90`).' }),

  // --- Deployment (used by the Node server and the Nest module) -------------------------------------------------
  host: setting({ option: 'host', env: 'WEBSOCKETS_HOST', kind: 'string', default: null,
    doc: 'Bind address of servers on their own port (Node\'s default: all interfaces).' }),
  tlsCert: setting({ option: 'tls.cert', env: 'WEBSOCKETS_TLS_CERT', kind: 'path', default: null,
    doc: 'Path of a PEM certificate chain; with `WEBSOCKETS_TLS_KEY`, turns on TLS (wss) on servers on their own port (`tls: false` opts out).' }),
  tlsKey: setting({ option: 'tls.key', env: 'WEBSOCKETS_TLS_KEY', kind: 'path', default: null,
    doc: 'Path of the PEM private key of `WEBSOCKETS_TLS_CERT`.' }),
  tlsCa: setting({ option: 'tls.ca', env: 'WEBSOCKETS_TLS_CA', kind: 'path', default: null,
    doc: 'Path of PEM CA certificates to trust (clients) or to verify client certificates (servers).' }),
  http2: setting({ option: 'http2', env: 'WEBSOCKETS_HTTP2', kind: 'boolean', default: false,
    doc: 'Servers on their own TLS port also speak HTTP/2 (ALPN `h2` and `http/1.1`) and accept WebSockets as extended CONNECT streams (RFC 8441); needs TLS.' }),
  socketPath: setting({ option: 'socketPath', env: 'WEBSOCKETS_SOCKET_PATH', kind: 'path', default: null,
    doc: 'Unix domain socket to listen on instead of a TCP port (the variable is read by the sample app and `npm run echo`).' }),
  socketPermissions: setting({ option: 'socketPermissions', env: 'WEBSOCKETS_SOCKET_PERMISSIONS', kind: 'mode', default: null,
    doc: 'Permissions of that socket file (octal, e.g. `660`: connecting needs write permission); none: what the umask gives.' }),
  redisUrl: setting({ option: 'redisUrl', env: 'WEBSOCKETS_REDIS_URL', kind: 'string', default: null,
    doc: 'Redis URL of the broadcast bus for rooms across instances; none means in-process only.' }),
  redisChannelPrefix: setting({ option: 'redisChannelPrefix', env: 'WEBSOCKETS_REDIS_CHANNEL_PREFIX', kind: 'string', default: 'nestjs-websockets:',
    doc: 'Prefix of the Redis channels of the broadcast bus: apps that share one Redis but not their rooms use different ones.' }),
  // socket.io's Redis adapter waits 5 s for the other servers (requestsTimeout), beats every 5 s and forgets a
  // server after 10 s; one missed beat more here, so that a loaded instance is not dropped for one late beat.
  clusterTimeoutMs: setting({ option: 'clusterTimeoutMs', env: 'WEBSOCKETS_CLUSTER_TIMEOUT_MS', kind: 'ms', default: 5000,
    doc: 'Bound on a cluster-wide operation (`fetchClients()`, `count()`, `join()`, `serverSideRequest()` ...) waiting for the other instances; beyond it `ClusterTimeoutError` names the silent ones.' }),
  clusterHeartbeatMs: setting({ option: 'clusterHeartbeatMs', env: 'WEBSOCKETS_CLUSTER_HEARTBEAT_MS', kind: 'ms', default: 5000,
    doc: 'Interval of the heartbeat each instance publishes on the bus, by which the others know it is alive.' }),
  clusterExpiryMs: setting({ option: 'clusterExpiryMs', env: 'WEBSOCKETS_CLUSTER_EXPIRY_MS', kind: 'ms', default: 15_000,
    doc: 'An instance silent this long is dead: operations stop waiting for it and its presence entries are removed.' }),
  verboseLogs: setting({ option: 'verboseLogs', env: 'WEBSOCKETS_VERBOSE_LOGS', kind: 'boolean', default: false,
    doc: 'Logs routine events (each connection, refused handshake and invalid message) at the `verbose` level; off, the metrics count them.' }),
  gatewayPorts: setting({ option: 'gatewayPorts', env: 'WEBSOCKETS_GATEWAY_PORTS', kind: 'string', default: null,
    doc: 'Ports that gateways on a port of their own listen on instead of `@WebSocketGateway(port)`\'s: `{ 8081: 9001, \'*\': 0 }`, or `8081=9001,*=0` in the variable (`*`: every gateway; 0: a port the system picks, for tests).' }),

  // --- Sessions (resumable connections of `nestjs-websockets/client`, see docs/topics/sessions.md) ---------------
  sessions: setting({ option: 'sessions', env: 'WEBSOCKETS_SESSIONS', kind: 'boolean', default: false,
    doc: 'Resumable sessions for clients that ask for one (`on`/`off`): what they missed while away is replayed once, in order, or they are told `resumed: false`.' }),
  sessionTtlMs: setting({ option: 'sessionTtlMs', env: 'WEBSOCKETS_SESSION_TTL_MS', kind: 'ms', default: 120_000,
    doc: 'How long a session whose connection dropped is kept for its client to resume it, in ms.' }),
  sessionMaxBufferedBytes: setting({ option: 'sessionMaxBufferedBytes', env: 'WEBSOCKETS_SESSION_MAX_BUFFERED_BYTES', kind: 'bytes', default: 1_048_576,
    doc: 'Most bytes of messages a session keeps for its client (sent and not acknowledged, or missed while away); beyond it the session cannot be resumed.' }),
  maxDetachedSessions: setting({ option: 'maxDetachedSessions', env: 'WEBSOCKETS_MAX_DETACHED_SESSIONS', kind: 'count', default: 10_000,
    doc: 'Most sessions an instance keeps without a connection; when full, the one detached the longest is ended to make room.' }),
} as const;

export type SettingName = keyof typeof SETTINGS;

/**
 * Where the client looks for a proxy, in order, by the scheme of the URL it connects to. `ws://` prefers the proxy
 * for HTTPS over the one for HTTP (RFC 6455 §4.1 advises it: an HTTPS proxy tunnels with CONNECT), as Python
 * websockets does; `ALL_PROXY` (curl's) comes last. Each name is also read in lower case, which wins when set.
 */
export const PROXY_VARIABLES = {
  ws: ['WS_PROXY', 'HTTPS_PROXY', 'HTTP_PROXY', 'ALL_PROXY'],
  wss: ['WSS_PROXY', 'HTTPS_PROXY', 'ALL_PROXY'],
} as const;

/** The layer that reads a setting: the layers below it never see it (the Nest module resolves everything once). */
export type SettingLayer = 'protocol' | 'node' | 'broadcast' | 'nest';

/** Which layer reads each setting (a setting read by several is listed at the lowest). */
export const SETTING_LAYERS: Readonly<Record<SettingName, SettingLayer>> = Object.freeze({
  maxLineLength: 'protocol',
  maxNumHeaders: 'protocol',
  maxBodySize: 'protocol',
  serverHeader: 'protocol',
  userAgentHeader: 'protocol',
  maxMessageSize: 'protocol',
  maxFragments: 'protocol',
  readHighWaterMark: 'node',
  writeHighWaterMark: 'node',
  maxBufferedAmount: 'node',
  slowConsumer: 'node',
  writeLowWaterMark: 'node',
  compression: 'protocol',
  serverMaxWindowBits: 'protocol',
  clientMaxWindowBits: 'protocol',
  memLevel: 'node',
  compressionThreshold: 'protocol',
  openTimeoutMs: 'node',
  pingIntervalMs: 'node',
  pingTimeoutMs: 'node',
  closeTimeoutMs: 'node',
  maxConnections: 'node',
  maxConnectionsPerAddress: 'node',
  maxHandshakesPerSecondPerAddress: 'node',
  refusals: 'node',
  maxJsonDepth: 'nest',
  maxRoomsPerClient: 'broadcast',
  proxy: 'node',
  noProxy: 'node',
  maxRedirects: 'node',
  backoffInitialDelayMs: 'node',
  backoffMinDelayMs: 'node',
  backoffFactor: 'node',
  backoffMaxDelayMs: 'node',
  host: 'node',
  tlsCert: 'node',
  tlsKey: 'node',
  tlsCa: 'node',
  http2: 'node',
  socketPath: 'node',
  socketPermissions: 'node',
  redisUrl: 'broadcast',
  redisChannelPrefix: 'broadcast',
  clusterTimeoutMs: 'broadcast',
  clusterHeartbeatMs: 'broadcast',
  clusterExpiryMs: 'broadcast',
  verboseLogs: 'nest',
  gatewayPorts: 'nest',
  sessions: 'nest',
  sessionTtlMs: 'broadcast',
  sessionMaxBufferedBytes: 'broadcast',
  maxDetachedSessions: 'broadcast',
});

/** How a setting is named in messages: `option maxLineLength, env WEBSOCKETS_MAX_LINE_LENGTH`. */
export function describeSetting(name: SettingName): string {
  const spec: SettingSpec = SETTINGS[name];
  return spec.env === null ? `option ${spec.option}` : `option ${spec.option}, env ${spec.env}`;
}
