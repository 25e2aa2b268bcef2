/**
 * The option types of the Nest integration: the module's options (`WebSocketsModule.forRoot()`), the per-gateway
 * options (`@WebSocketGateway<WebSocketsGatewayOptions>({ ... })`), the message parser and the handshake guards.
 * Every limit, timeout and compression option comes from `WebSocketsOptions` in `lib/config.ts`, with the same
 * environment variables and defaults.
 */
import type { CanActivate, Type } from '@nestjs/common';
import type { TlsOptions } from 'node:tls';
import type { ClusterTiming, Environment, GatewayLimits, GatewayPorts, ResolvedConfig, ResolvedGatewayPorts, SessionSettings, WebSocketsOptions } from '../config/index.js';
import type { BroadcastBus } from '../broadcast/broadcast-bus.js';

/**
 * TLS settings of gateways on their own port (and, through `httpsOptions()`, of the app's server): Node's
 * `tls.TlsOptions` (`key`, `cert`, `ca`, `pfx`, `passphrase`, `minVersion`, `requestCert`, ...). `key`, `cert` and
 * `ca` may also come from the files named by `WEBSOCKETS_TLS_KEY`, `WEBSOCKETS_TLS_CERT` and `WEBSOCKETS_TLS_CA`.
 */
export type WebSocketsTlsOptions = TlsOptions;

/**
 * What happens to a message that the parser refuses (invalid JSON, no `event`) or whose event no gateway handles:
 * - `'exception'` (default): the client gets `{ "event": "exception", "data": { "status": "error", "message": ... } }`
 *   (with the message's `id` when it had one) and the connection stays open;
 * - `'ignore'`: nothing is sent (logged at debug level);
 * - `'close'`: the connection is closed with 1008 (policy violation).
 */
export type InvalidMessagePolicy = 'exception' | 'ignore' | 'close';

/** A message as the adapter dispatches it: the handler for `event` gets `data`; a reply carries `id` back. */
export interface ParsedMessage {
  /** Name of the `@SubscribeMessage()` handler. */
  readonly event: string;
  /** What `@MessageBody()` receives. */
  readonly data?: unknown;
  /** Correlation id: every reply to this message (results and exception frames) carries it back unchanged. */
  readonly id?: string | number;
  /** W3C trace context sent with the message (`"traceparent"` at its top level): the parent of the handler's span. */
  readonly traceparent?: string;
  /** W3C `tracestate` that goes with `traceparent`. */
  readonly tracestate?: string;
}

/**
 * Turns one incoming message into `{ event, data, id? }`. Throw (any error) to refuse the message: the
 * `invalidMessages` policy applies and the error's message is what the client is told, with the `id` that the error
 * carries (`new InvalidMessageError(reason, id)`), else the top-level `"id"` of the message read as JSON text, best
 * effort. The default parser takes JSON text (and binary frames holding UTF-8 JSON):
 * `{ "event": string, "data"?: any, "id"?: string | number }`, no deeper than `maxJsonDepth`.
 *
 * A custom parser runs on every message a client sends, before any guard: it must bound its own work. Refuse input
 * nested or sized beyond what the application needs before building objects from it (`maxJsonDepth` applies only
 * to the default parser; `exceedsJsonDepth()` is its check), and never recurse once per level of the input.
 */
export type MessageParser = (data: string | Buffer, isBinary: boolean) => ParsedMessage;

/**
 * A guard that runs during the opening handshake, before the 101 response: Nest's own `CanActivate`, given an
 * `ExecutionContext` of type `'http'` whose request is the `WebSocketsHandshakeRequest` (so guards written for HTTP,
 * e.g. a bearer-token guard that reads `request.headers.authorization`, work unchanged). `false` refuses with 403;
 * a thrown `HttpException` refuses with its status and message (`UnauthorizedException` gives 401); any other error
 * gives 500 and is logged. A class is resolved from the app with dependency injection.
 */
export type HandshakeGuard = Type<CanActivate> | CanActivate;

/** Options a gateway can set for itself, and the module for every gateway (the gateway's win). */
export interface WebSocketsServerOptions extends WebSocketsOptions {
  /** Subprotocols the server accepts, in order of preference; the first one the client also offers is chosen. */
  subprotocols?: readonly string[];
  /**
   * Origins allowed to connect (exact strings such as `https://example.com`, or RegExps). A browser's request from
   * another origin is refused with 403. `undefined` allows every origin.
   */
  allowedOrigins?: ReadonlyArray<string | RegExp>;
  /** Whether a request without an `Origin` header (not from a browser) is allowed when `allowedOrigins` is set. @default true */
  allowMissingOrigin?: boolean;
  /** Guards run during the handshake, in order; the module's run before the gateway's. */
  handshakeGuards?: readonly HandshakeGuard[];
  /** Parser of incoming messages. @default JSON `{ event, data, id? }` */
  messageParser?: MessageParser;
  /** Policy for messages the parser refuses and events no handler takes. @default 'exception' */
  invalidMessages?: InvalidMessagePolicy;
  /**
   * Deepest nesting of arrays and objects the default parser accepts, the message's own object being level 1. A
   * deeper message is refused before `JSON.parse` (the `invalidMessages` policy: by default an exception frame with
   * code `WS_ERR_MESSAGE_TOO_DEEP` and the message's `id`). A custom `messageParser` does its own bounding.
   * @default 64, or WEBSOCKETS_MAX_JSON_DEPTH
   */
  maxJsonDepth?: number;
  /**
   * Most rooms one client can be in at once; `join()` beyond it throws `RoomLimitError` (inside a handler, an
   * exception frame with code `WS_ERR_ROOM_LIMIT` and the request's `id`). `null` for no limit.
   * @default 128, or WEBSOCKETS_MAX_ROOMS_PER_CLIENT (`off` for no limit)
   */
  maxRoomsPerClient?: number | null;
  /**
   * Resumable sessions for the clients of `nestjs-websockets/client` that ask for one (`session: true`): a client
   * that reconnects within `sessionTtlMs` gets its rooms, `client.data` and what it missed, once and in order, or is
   * told `resumed: false`. A gateway opts out with `sessions: false`. See docs/topics/sessions.md.
   * @default false, or WEBSOCKETS_SESSIONS (`on`/`off`)
   */
  sessions?: boolean;
  /** How long a session whose connection dropped is kept, in ms. @default 120000, or WEBSOCKETS_SESSION_TTL_MS */
  sessionTtlMs?: number;
  /**
   * Most bytes of messages one session keeps for its client (sent and not yet acknowledged, or missed while away);
   * a session that needs more cannot be resumed (its client gets `resumed: false`).
   * @default 1048576, or WEBSOCKETS_SESSION_MAX_BUFFERED_BYTES
   */
  sessionMaxBufferedBytes?: number;
  /**
   * Most sessions without a connection one instance keeps; when full, the one detached the longest is ended (the
   * gateway's `handleDisconnect` runs for it) to make room. @default 10000, or WEBSOCKETS_MAX_DETACHED_SESSIONS
   */
  maxDetachedSessions?: number;
  /**
   * Whether `handleConnection` runs again for a resumed session (`client.session.resumed` is then true). By default
   * it does not: the client's rooms and `client.data` are restored, and its side effects would happen twice.
   * `handleDisconnect` runs once per session either way, when it ends. @default false
   */
  handleResumedConnections?: boolean;
}

/** Options of `WebSocketsModule.forRoot()` / `forRootAsync()` (and of `new WebSocketsAdapter(app, options)`). */
export interface WebSocketsModuleOptions extends WebSocketsServerOptions {
  /** Bind address of gateways on their own port. @default all interfaces, or WEBSOCKETS_HOST */
  host?: string;
  /**
   * TLS of gateways on their own port (wss). Fields not given here are read from the files named by
   * WEBSOCKETS_TLS_CERT, WEBSOCKETS_TLS_KEY and WEBSOCKETS_TLS_CA. The app's own server takes the same settings
   * through `WebSocketsModule.httpsOptions()` given to `NestFactory.create()`.
   */
  tls?: WebSocketsTlsOptions;
  /**
   * Carries `broadcast()` and `to(room).send()` to every instance. Give a `RedisBroadcastBus` to tune it (channel
   * prefix, backoff); it wins over `redisUrl`. @default a `RedisBroadcastBus` when `redisUrl` is set, else in-process
   */
  broadcastBus?: BroadcastBus;
  /**
   * Redis URL (`redis://[[user]:password@]host[:port]`, or `rediss://` for TLS) of the broadcast bus that shares
   * rooms across instances; it needs the optional peer `ioredis`. `null` keeps broadcasts in-process even when the
   * variable is set. The app fails to start when Redis cannot be reached.
   * @default none (in-process), or WEBSOCKETS_REDIS_URL
   */
  redisUrl?: string | null;
  /**
   * Prefix of the Redis channels of the bus built from `redisUrl`: apps that share one Redis but must not share
   * their rooms use different prefixes. `''` for none.
   * @default 'nestjs-websockets:', or WEBSOCKETS_REDIS_CHANNEL_PREFIX
   */
  redisChannelPrefix?: string;
  /**
   * How long a cluster-wide operation (`fetchClients()`, `count()`, `join()`, `leave()`, `disconnect()`,
   * `serverSideRequest()`) waits for the other instances before `ClusterTimeoutError`; each call can give its own
   * `{ timeoutMs }`. @default 5000, or WEBSOCKETS_CLUSTER_TIMEOUT_MS
   */
  clusterTimeoutMs?: number;
  /** Interval of the heartbeat each instance publishes on the bus. @default 5000, or WEBSOCKETS_CLUSTER_HEARTBEAT_MS */
  clusterHeartbeatMs?: number;
  /**
   * Silence after which an instance is dead: operations stop waiting for it and its presence entries go (more than
   * `clusterHeartbeatMs`). @default 15000, or WEBSOCKETS_CLUSTER_EXPIRY_MS
   */
  clusterExpiryMs?: number;
  /**
   * The ports that gateways on a port of their own listen on, instead of the one in `@WebSocketGateway(port)`: keys
   * are decorator ports, or `'*'` for every gateway; 0 lets the system pick (what tests want; the testing kit sets
   * `{ '*': 0 }`, and `WebSocketsService.servers()` tells the port each got).
   * @default none, or WEBSOCKETS_GATEWAY_PORTS (`8081=9001,*=0`)
   */
  gatewayPorts?: GatewayPorts;
  /**
   * Logs routine events (each connection, refused handshake and invalid message) at the `verbose` level. Off, they
   * are not logged (Nest's default logger prints every level); the OpenTelemetry metrics count them.
   * @default false, or WEBSOCKETS_VERBOSE_LOGS
   */
  verboseLogs?: boolean;
  /**
   * Gateways on a TLS port of their own also speak HTTP/2 (ALPN `h2` beside `http/1.1`) and take WebSockets as
   * extended CONNECT streams (RFC 8441); a gateway's own `http2` wins. Gateways on the app's server follow the app's
   * server (Fastify with `http2: true`). See docs/topics/http2.md. @default false, or WEBSOCKETS_HTTP2
   */
  http2?: boolean;
  /** The environment to read the WEBSOCKETS_* variables from. @default process.env */
  env?: Environment;
}

/**
 * Per-gateway options: `@WebSocketGateway<WebSocketsGatewayOptions>(port?, { path: '/ws', ... })`. They override
 * the module's. A gateway without a port shares the app's HTTP(S) server; with a port, it gets its own listener on
 * the module's `host`, with the module's TLS.
 */
export interface WebSocketsGatewayOptions extends WebSocketsServerOptions {
  /** The path served; `/ws` matches `/ws` and `/ws/`, and the query string is ignored. @default every path */
  path?: string;
  /** Bind address of a gateway on its own port; overrides the module's `host`. */
  host?: string;
  /** TLS of a gateway on its own port, or `false` for plain ws even when the module has TLS. @default the module's */
  tls?: WebSocketsTlsOptions | false;
  /** HTTP/2 beside HTTP/1.1 on the gateway's own TLS port (RFC 8441). @default the module's */
  http2?: boolean;
  /**
   * A Unix domain socket to listen on instead of a TCP port (`@WebSocketGateway({ socketPath: '/run/app/ws.sock' })`,
   * no port): for a sidecar or a reverse proxy on the same machine. A stale socket file is replaced, a live one is
   * not. Gateways with the same `socketPath` share its listener, as gateways on one port do.
   */
  socketPath?: string;
  /** Permissions of that socket file, e.g. `0o660` (connecting needs write permission). @default what the umask gives */
  socketPermissions?: number;
  /** Not supported (socket.io only): a gateway with a namespace fails to start with an error that says so. */
  namespace?: never;
}

/** The module's options after validation: what `WebSocketsService.options` gives. */
export interface ResolvedWebSocketsOptions {
  /** The options as given (after `forRootAsync`'s factory), without the TLS material read from files. */
  readonly raw: Readonly<WebSocketsModuleOptions>;
  /** Limits, compression and timeouts resolved against the environment and the defaults (`resolveConfig()`). */
  readonly config: Readonly<ResolvedConfig>;
  /** The module's `maxJsonDepth` and `maxRoomsPerClient`, resolved the same way (a gateway's own options win). */
  readonly gatewayLimits: Readonly<GatewayLimits>;
  /** The module's session settings (`sessions`, `sessionTtlMs`, ...), resolved the same way (a gateway's own win). */
  readonly sessions: Readonly<SessionSettings>;
  /** Bind address of gateways on their own port, or `null` for Node's default (all interfaces). */
  readonly host: string | null;
  /** The TLS options with the key, certificate and CA read from the environment's files, or `null` for none. */
  readonly tls: Readonly<WebSocketsTlsOptions> | null;
  /** The Redis URL of the broadcast bus (option `redisUrl`, else WEBSOCKETS_REDIS_URL), or `null` for in-process. */
  readonly redisUrl: string | null;
  /** The channel prefix of that bus (option `redisChannelPrefix`, else WEBSOCKETS_REDIS_CHANNEL_PREFIX, else the default). */
  readonly redisChannelPrefix: string;
  /** The timing of the cluster-wide operations (`clusterTimeoutMs`, `clusterHeartbeatMs`, `clusterExpiryMs`). */
  readonly cluster: Readonly<ClusterTiming>;
  /** Decorator port to the port listened on (option `gatewayPorts`, else WEBSOCKETS_GATEWAY_PORTS); empty when none. */
  readonly gatewayPorts: ResolvedGatewayPorts;
  /** Whether routine events are logged at `verbose` (option `verboseLogs`, else WEBSOCKETS_VERBOSE_LOGS). */
  readonly verboseLogs: boolean;
  /** The environment the options were resolved against. */
  readonly env: Environment;
}
