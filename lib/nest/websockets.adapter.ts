/**
 * `WebSocketsAdapter`: Nest's `WebSocketAdapter` contract on this package's own server.
 * `app.useWebSocketAdapter(new WebSocketsAdapter(app))`, then decorate gateways as usual.
 *
 * This file keeps the contract only; its collaborators have files named after them:
 * - `GatewayRegistry`: the app's gateways, read once per gateway server in `create()`;
 * - `GatewayListeners`: the HTTP(S) listeners of gateways with a port of their own (gateways without one share the
 *   app's server, routed by path by the node layer);
 * - `HandshakeGuards`: Nest guards run before the 101;
 * - `MessageDispatch`: parsing, routing to handlers, replies with their `id`, exception frames;
 * - `GatewayWebSocket`: the class of gateway connections (`sendEvent()`, the ids of Nest's exception frames);
 * - `guardLifecycleHooks` (lifecycle-hooks.ts): the workaround for a Nest limitation, with the Nest issue at its top.
 *
 * `app.close()` sends 1001 to every client, waits up to `closeTimeoutMs`, then destroys what is left, and closes every
 * listener it opened, and logs one line per server with how many connections that closed.
 *
 * A little over 400 lines: `create()` wires one server from the resolved options (listener, guards, parser, bus,
 * OpenTelemetry), and splitting that wiring apart would pass most of its locals around.
 */
import { Logger, type INestApplicationContext, type WebSocketAdapter, type WsMessageHandler } from '@nestjs/common';
import http from 'node:http';
import type { Http2SecureServer } from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { Observable } from 'rxjs';
import type { BroadcastBus } from '../broadcast/broadcast-bus.js';
import { InProcessBroadcastBus } from '../broadcast/in-process-bus.js';
import { RedisBroadcastBus } from '../broadcast/redis/redis-bus.js';
import { listenPortOf, pickWebSocketsOptions, resolveConfig, resolveGatewayLimits, resolveHttp2, resolveSessions, type ResolvedConfig } from '../config/index.js';
import { ConfigError, NoEndpointError, type HandshakeError, type RoomLimitError } from '../errors.js';
import { isHttp2Server } from '../node/http2-server.js';
import { WebSocketServer, type HandshakeInfo } from '../node/server.js';
import { WebSocket } from '../node/websocket.js';
import { CloseCode } from '../protocol/close-codes.js';
import { messageContext } from './exception-frames.js';
import { GatewayWebSocket } from './gateway-websocket.js';
import { GatewayListeners, type HttpLikeServer, type ListenTarget } from './gateway-listeners.js';
import { GatewayRegistry, gatewayName } from './gateway-registry.js';
import { GatewaySessions } from './gateway-sessions.js';
import { WebSocketsGatewayServer } from './gateway-server.js';
import { HandshakeGuards } from './handshake-guards.js';
import { skipResumedConnections } from './resumed-connections.js';
import { SessionWebSocket } from './session-websocket.js';
import { toHandshakeRequest, type WebSocketsHandshakeRequest } from './handshake-request.js';
import { guardLifecycleHooks } from './lifecycle-hooks.js';
import { DEFAULT_MESSAGE_SETTINGS, MessageDispatch, type MessageSettings } from './message-dispatch.js';
import { createJsonMessageParser } from './message-parser.js';
import { SOCKET_IO_ONLY_OPTIONS } from './websockets.constants.js';
import { checkGatewayOptions, resolveWebSocketsOptions } from './websockets-options.js';
import type { ResolvedWebSocketsOptions, WebSocketsGatewayOptions, WebSocketsModuleOptions } from './websockets-options.interface.js';
import { WebSocketsService, describeServer, type WebSocketsServerInfo } from './websockets.service.js';
import { WebSocketsTelemetry } from './telemetry/websockets-telemetry.js';

/** What `handleDisconnect(client, close)` receives as its second argument. */
export interface WebSocketsCloseInfo {
  /**
   * The close code: the peer's (1000, 1001, ...; 1005 when its close frame had none); when the peer sent no close
   * frame, the one the server sent (1009 for a message over the limit, 1011 for a keepalive timeout, 1013 for a slow
   * consumer, 1001 on shutdown); 1006 when neither side sent one (the connection dropped).
   */
  readonly code: number;
  /** The close reason ('' when none). */
  readonly reason: string;
}

/** `OnGatewayConnection` with this adapter's types. */
export interface OnWebSocketsConnection {
  handleConnection(client: WebSocket, request: WebSocketsHandshakeRequest): unknown;
}

/** `OnGatewayDisconnect` with this adapter's types: the second argument is `{ code, reason }`. */
export interface OnWebSocketsDisconnect {
  handleDisconnect(client: WebSocket, close: WebSocketsCloseInfo): unknown;
}

/** How often the bus's round trip is measured while OpenTelemetry metrics are on. */
const BUS_PROBE_INTERVAL_MS = 10_000;

/**
 * The app's server: an `http.Server`, an `https.Server` (which is a `tls.Server`, not an `http.Server`), or an HTTP/2
 * server (`@nestjs/platform-fastify` with `http2: true`), whose gateways then take WebSockets over HTTP/2 (RFC 8441)
 * and, with `allowHTTP1`, over HTTP/1.1.
 */
type AppServer = HttpLikeServer | Http2SecureServer;

function isHttpServer(value: unknown): value is AppServer {
  return value instanceof http.Server || value instanceof https.Server || (typeof value === 'object' && value !== null && isHttp2Server(value));
}

/** The adapter. Give it the app (or an HTTP server) and, optionally, options that override the module's. */
export class WebSocketsAdapter implements WebSocketAdapter<WebSocketsGatewayServer, WebSocket, WebSocketsGatewayOptions> {
  /** Set by Nest from `NestFactory.create(..., { forceCloseConnections })`: close without waiting for clients. */
  forceCloseConnections = false;

  readonly #logger = new Logger(WebSocketsAdapter.name);
  #httpServer: AppServer | undefined;
  /** The app whose HTTP server is read when first needed (an adapter made before the app's server exists). */
  readonly #app: INestApplicationContext | undefined;
  /** OpenTelemetry, when `@opentelemetry/api` is installed and a provider is registered; decided at the first `create()`. */
  #telemetry: WebSocketsTelemetry | null | undefined;
  readonly #adapterOptions: WebSocketsModuleOptions | undefined;
  readonly #registry: GatewayRegistry;
  readonly #listeners = new GatewayListeners(this.#logger);
  readonly #guards: HandshakeGuards;
  /** Logs a routine event (a connection, a refusal, an invalid message) only with `verboseLogs`. */
  readonly #routine = (message: string): void => {
    if (this.options.verboseLogs) this.#logger.verbose(message);
  };
  readonly #dispatch = new MessageDispatch(this.#logger, this.#routine);
  #resolved: ResolvedWebSocketsOptions | undefined;
  #service: WebSocketsService | undefined;
  #bus: BroadcastBus | undefined;
  readonly #servers = new Set<WebSocketsGatewayServer>();
  readonly #messageSettings = new WeakMap<WebSocketsGatewayServer, MessageSettings>();
  readonly #clientServer = new WeakMap<WebSocket, WebSocketsGatewayServer>();
  /** The resumable sessions of the servers that have `sessions` on. */
  readonly #sessions = new WeakMap<WebSocketsGatewayServer, GatewaySessions>();
  readonly #warned = new Set<string>();
  readonly #names = new WeakMap<WebSocketsGatewayServer, string>();
  #busProbe: NodeJS.Timeout | undefined;
  readonly #gatewayNames = new WeakMap<WebSocketsGatewayServer, readonly string[]>();
  /** Records a room limit hit while a message is handled, for its exception frame (see `MessageContext`). */
  readonly #onRoomLimit = (error: RoomLimitError): void => {
    const context = messageContext.getStore();
    if (context !== undefined) context.limitError = error;
  };

  /**
   * @param appOrHttpServer the Nest app (its HTTP server hosts gateways without a port, and its `WebSocketsModule`
   *   options apply), or an HTTP(S) server
   * @param options override the module's options (or stand in for them when the module is not imported)
   */
  constructor(appOrHttpServer?: INestApplicationContext | AppServer, options?: WebSocketsModuleOptions) {
    let app: INestApplicationContext | undefined;
    if (isHttpServer(appOrHttpServer)) {
      this.#httpServer = appOrHttpServer;
    } else if (appOrHttpServer !== undefined) {
      app = appOrHttpServer;
      this.#httpServer = httpServerOf(app);
    }
    this.#app = app;
    this.#adapterOptions = options;
    this.#registry = new GatewayRegistry(app);
    this.#guards = new HandshakeGuards(this.#registry, this.#logger, this.#routine);
  }

  /** The options in force: the module's (when imported), overridden by the adapter's. */
  get options(): ResolvedWebSocketsOptions {
    if (this.#resolved === undefined) {
      this.#service = this.#registry.lookup(WebSocketsService);
      const moduleOptions = this.#service?.options;
      if (moduleOptions !== undefined && this.#adapterOptions === undefined) this.#resolved = moduleOptions;
      else this.#resolved = resolveWebSocketsOptions({ ...moduleOptions?.raw, ...this.#adapterOptions }, moduleOptions?.env ?? process.env);
    }
    return this.#resolved;
  }

  /** The broadcast bus in use (made by the first `create()`), or `undefined` before. */
  get bus(): BroadcastBus | undefined {
    return this.#bus;
  }

  /** The live gateway servers, in the order they were created. */
  servers(): WebSocketsServerInfo[] {
    return [...this.#servers].map(describeServer);
  }

  /**
   * Creates the server of one port and path (Nest calls it once per pair). The options are resolved here, once: the
   * node-layer server takes the resolved configuration as it is.
   * @throws ConfigError for a namespace, an unknown or invalid option, a port-0 gateway without an HTTP app, or a
   *   port shared by gateways that disagree on TLS
   */
  create(port: number, options: WebSocketsGatewayOptions = {}): WebSocketsGatewayServer {
    const gateways = this.#registry.gateways();
    const entry = gateways.find((candidate) => candidate.port === port && candidate.path === options.path);
    const name = gatewayName(entry, port, options.path);
    const checked = checkGatewayOptions(name, options as Record<string, unknown>);
    for (const ignored of checked.ignored) this.#warnIgnored(ignored, name);
    const gateway = checked.options;
    const resolved = this.options;
    guardLifecycleHooks(gateways, this.#logger);
    this.#telemetry ??= WebSocketsTelemetry.create();
    const telemetry = this.#telemetry;
    // Every gateway bound to this server, in the order Nest binds them to a client (for span and metric names).
    const gatewayNames = gateways.filter((candidate) => candidate.port === port && candidate.path === options.path).map((candidate) => candidate.metatype.name);
    const gatewayLabel = gatewayNames[0] ?? name;

    // The gateway's settings win over the module's; without any of its own, the module's resolution is reused.
    const own = pickWebSocketsOptions(gateway);
    const config: Readonly<ResolvedConfig> =
      Object.keys(own).length === 0 ? resolved.config : resolveConfig({ ...pickWebSocketsOptions(resolved.raw), ...own }, resolved.env);
    const guards = [...(resolved.raw.handshakeGuards ?? []), ...(gateway.handshakeGuards ?? [])];
    let gatewayServer: WebSocketsGatewayServer | undefined;
    const sessionSettings = resolveSessions(
      {
        sessions: gateway.sessions ?? resolved.raw.sessions,
        sessionTtlMs: gateway.sessionTtlMs ?? resolved.raw.sessionTtlMs,
        sessionMaxBufferedBytes: gateway.sessionMaxBufferedBytes ?? resolved.raw.sessionMaxBufferedBytes,
        maxDetachedSessions: gateway.maxDetachedSessions ?? resolved.raw.maxDetachedSessions,
      },
      resolved.env,
    );
    const sessions = sessionSettings.enabled
      ? new GatewaySessions({ ttlMs: sessionSettings.ttlMs, maxBufferedBytes: sessionSettings.maxBufferedBytes, maxDetached: sessionSettings.maxDetached }, this.#logger, name)
      : undefined;
    const nodeOptions = {
      config,
      path: gateway.path,
      subprotocols: toArray(gateway.subprotocols ?? resolved.raw.subprotocols),
      allowedOrigins: gateway.allowedOrigins ?? resolved.raw.allowedOrigins,
      allowMissingOrigin: gateway.allowMissingOrigin ?? resolved.raw.allowMissingOrigin,
      handshake: guards.length === 0 ? attachRequest : (info: HandshakeInfo) => this.#guards.check(info, guards, entry, gatewayServer),
      WebSocket: sessions === undefined ? GatewayWebSocket : SessionWebSocket,
    };

    let node: WebSocketServer;
    let secure: boolean;
    let address: () => AddressInfo | null;
    if (port !== 0 && gateway.socketPath !== undefined) {
      throw new ConfigError(
        `${name} has both a port (${port}) and a socketPath; a gateway listens on one of them: remove the port or the socketPath`,
        'socketPath',
        gateway.socketPath,
      );
    }
    this.#httpServer ??= this.#app === undefined ? undefined : httpServerOf(this.#app);
    if (port === 0 && gateway.socketPath === undefined) {
      if (this.#httpServer === undefined) {
        throw new ConfigError(
          `${name} has no port and there is no HTTP server to share; give it a port ` +
            `(@WebSocketGateway(8080, { ... })) or create the app with NestFactory.create()`,
          'port',
          port,
        );
      }
      if (gateway.http2 !== undefined) {
        throw new ConfigError(
          `${name} has the http2 option but no port: it shares the app's server, which speaks HTTP/2 when the app's ` +
            `does (NestFactory.create(AppModule, new FastifyAdapter({ http2: true, https: ... }))); remove the option or give the gateway a port`,
          'http2',
          gateway.http2,
        );
      }
      if (gateway.tls !== undefined && gateway.tls !== false) {
        throw new ConfigError(
          `${name} has tls options but no port: it shares the app's server, whose TLS is the app's; configure TLS on the ` +
            `app (NestFactory.create(AppModule, { httpsOptions: WebSocketsModule.httpsOptions() })) or give the gateway a port`,
          'tls',
          undefined,
        );
      }
      node = new WebSocketServer({ ...nodeOptions, server: this.#httpServer });
      secure = this.#httpServer instanceof tls.Server;
      const httpServer = this.#httpServer;
      address = () => {
        const value = httpServer.address();
        return value !== null && typeof value === 'object' ? value : null;
      };
    } else {
      const tls = gateway.tls === false ? null : (gateway.tls ?? resolved.tls);
      const target: ListenTarget =
        gateway.socketPath !== undefined
          ? { socketPath: gateway.socketPath, permissions: gateway.socketPermissions ?? null }
          : { port, host: gateway.host ?? resolved.host ?? undefined, listenPort: listenPortOf(resolved.gatewayPorts, port) };
      // HTTP/2 beside HTTP/1.1 on the gateway's own TLS listener: the gateway's option, else the module's, else
      // WEBSOCKETS_HTTP2 (a ConfigError at start-up without TLS, as for the node layer's servers).
      const http2On = resolveHttp2(gateway.http2 ?? resolved.raw.http2, resolved.env, tls !== null);
      const listener = this.#listeners.get(target, tls, config, name, http2On);
      node = new WebSocketServer({ ...nodeOptions, server: listener.server });
      secure = listener.secure;
      address = () => {
        const value = listener.server.address();
        return value !== null && typeof value === 'object' ? value : null;
      };
    }
    node.on('error', (error: Error) => this.#logger.error(`${name}: ${error.message}`, error.stack));
    node.on('handshakeError', (error: HandshakeError, info: HandshakeInfo | undefined) => {
      // A path no gateway owns reaches the first server of the HTTP server: it is no gateway's refusal.
      if (error instanceof NoEndpointError) {
        this.#routine(`no gateway at ${error.path}: refused with 404 (from ${error.remoteAddress ?? 'an unknown address'})`);
        return;
      }
      telemetry?.handshakeRefused(gatewayLabel, error, info);
      // Routine (a scanner, an expired token): only with verboseLogs, so that Nest's default logger stays quiet.
      this.#routine(`${name}: handshake refused with ${error.httpStatus} (${error.message}) from ${info?.remoteAddress ?? 'an unknown address'}`);
    });
    if (resolved.verboseLogs) node.on('connection', (client: WebSocket) => this.#logger.verbose(`${name}: connection from ${client.remoteAddress}`));

    this.#bus ??=
      resolved.raw.broadcastBus ??
      (resolved.redisUrl !== null
        ? new RedisBroadcastBus({ url: resolved.redisUrl, channelPrefix: resolved.redisChannelPrefix, logger: new Logger(RedisBroadcastBus.name) })
        : new InProcessBroadcastBus());
    this.#service?.attachBus(this.#bus);
    // The gateway's limits win over the module's, which win over the environment.
    const limits = resolveGatewayLimits(
      {
        maxJsonDepth: gateway.maxJsonDepth ?? resolved.raw.maxJsonDepth,
        maxRoomsPerClient: gateway.maxRoomsPerClient !== undefined ? gateway.maxRoomsPerClient : resolved.raw.maxRoomsPerClient,
      },
      resolved.env,
    );
    gatewayServer = new WebSocketsGatewayServer({
      server: node,
      port,
      socketPath: gateway.socketPath ?? null,
      path: gateway.path ?? null,
      secure,
      bus: this.#bus,
      logger: this.#logger,
      address,
      maxRoomsPerClient: limits.maxRoomsPerClient,
      onRoomLimit: this.#onRoomLimit,
      cluster: resolved.cluster,
      ...(telemetry?.metrics === true ? { onDelivered: telemetry.broadcastDelivered(gatewayLabel) } : {}),
      sessions,
    });
    if (sessions !== undefined) {
      if ((gateway.handleResumedConnections ?? resolved.raw.handleResumedConnections) !== true) {
        skipResumedConnections(gateways.filter((candidate) => candidate.port === port && candidate.path === options.path));
      }
      sessions.server = gatewayServer;
      this.#sessions.set(gatewayServer, sessions);
    }
    const customParser = gateway.messageParser ?? resolved.raw.messageParser;
    this.#messageSettings.set(gatewayServer, {
      parser: customParser ?? createJsonMessageParser({ maxDepth: limits.maxJsonDepth }),
      customParser: customParser !== undefined,
      policy: gateway.invalidMessages ?? resolved.raw.invalidMessages ?? 'exception',
    });
    this.#servers.add(gatewayServer);
    this.#names.set(gatewayServer, name);
    if (telemetry !== null) {
      this.#gatewayNames.set(gatewayServer, gatewayNames.length > 0 ? gatewayNames : [gatewayLabel]);
      telemetry.observe(gatewayServer, gatewayLabel);
      if (telemetry.metrics) this.#probeBus(telemetry);
    }
    if (this.#service !== undefined) {
      // WebSocketsService awaits ready() at bootstrap: a bus that cannot start fails the app, reported once by Nest.
      this.#service.track(gatewayServer);
    } else {
      // Without the module nothing awaits it: this line is the only report.
      gatewayServer.ready().catch((error: unknown) => this.#logger.error(`${name}: cannot subscribe to its broadcast channel: ${String(error)}`));
    }
    return gatewayServer;
  }

  /** Calls `callback(client, request)` for each new connection (Nest's `handleConnection` arguments). */
  bindClientConnect(server: WebSocketsGatewayServer, callback: (client: WebSocket, request: WebSocketsHandshakeRequest) => void): void {
    server.webSocketServer.on('connection', (client: WebSocket, info: HandshakeInfo) => {
      this.#clientServer.set(client, server);
      const request = (client.data as WebSocketsHandshakeRequest | undefined) ?? toHandshakeRequest(info);
      const sessions = this.#sessions.get(server);
      if (sessions === undefined) callback(client, request);
      else sessions.connect(client, request, (restored) => callback(client, restored));
    });
  }

  /** Calls `callback({ code, reason })` once the connection is closed (Nest passes it on to `handleDisconnect`). */
  bindClientDisconnect(client: WebSocket, callback: (close: WebSocketsCloseInfo) => void): void {
    // A session's client: once, when its session ends (see gateway-sessions.ts).
    const server = this.#clientServer.get(client);
    if (server !== undefined && this.#sessions.get(server)?.bindDisconnect(client, callback) === true) return;
    // 'close' is emitted once: `on` spares each connection the wrapper and state that `once` allocates.
    client.on('close', (code: number, reason: string) => callback(Object.freeze({ code, reason })));
  }

  /** Refuses a client that connected while the app was still starting: 1013 (try again later). */
  closeClient(client: WebSocket): void {
    if (client.readyState === WebSocket.OPEN) {
      client.close(CloseCode.TRY_AGAIN_LATER, 'server starting').catch((error: unknown) => this.#logger.debug(String(error)));
    }
  }

  /**
   * Binds one gateway's message handlers to a client. Nest calls it once per gateway on a shared server, so the
   * handlers accumulate; the client's messages are read once, by one loop, and dispatched to all of them. Nest's
   * `transform` (RxJS around every result) is not used: MessageDispatch gives results the same meaning without it.
   */
  bindMessageHandlers(client: WebSocket, handlers: WsMessageHandler[], _transform?: (data: unknown) => Observable<unknown>): void {
    const server = this.#clientServer.get(client);
    const settings = (server !== undefined ? this.#messageSettings.get(server) : undefined) ?? DEFAULT_MESSAGE_SETTINGS;
    const telemetry = this.#telemetry;
    if (telemetry !== null && telemetry !== undefined && server !== undefined) {
      this.#dispatch.bind(client, handlers, settings, { telemetry, gateways: this.#gatewayNames.get(server) ?? [] });
    } else {
      this.#dispatch.bind(client, handlers, settings);
    }
  }

  /** Closes one server: 1001 to its clients, then waits for them up to `closeTimeoutMs` (not at all when forced). */
  async close(server: WebSocketsGatewayServer): Promise<void> {
    if (!this.#servers.has(server)) return;
    const started = performance.now();
    const clients = [...server.clients];
    // Session clients first, with 1012: they reconnect at once (to another instance, or to this one once back).
    await this.#sessions.get(server)?.shutdown(server.clients);
    if (this.forceCloseConnections) {
      for (const client of clients) {
        client.close(CloseCode.GOING_AWAY, 'server shutting down').catch(() => undefined);
        // The close frame is written; do not wait for the client's answer.
        setImmediate(() => client.terminate());
      }
    }
    await server.close();
    this.#servers.delete(server);
    this.#service?.untrack(server);
    this.#telemetry?.unobserve(server);
    // One line per server: how many connections the shutdown closed, and how (answered the 1001, or cut).
    if (clients.length > 0) {
      const answered = clients.filter((client) => closeCodeReceived(client) !== null).length;
      // 1001 to every client, but 1012 to those with a resumable session (they reconnect at once): "with 1001", or
      // "with 1012 (2) and 1001 (1)".
      const sent = new Map<number, number>();
      for (const client of clients) {
        const code = client.closeSent?.code ?? CloseCode.GOING_AWAY;
        sent.set(code, (sent.get(code) ?? 0) + 1);
      }
      const codes = sent.size <= 1 ? String([...sent.keys()][0] ?? CloseCode.GOING_AWAY) : [...sent].map(([code, count]) => `${code} (${count})`).join(' and ');
      const how = this.forceCloseConnections ? 'forced (forceCloseConnections)' : `${answered} answered the close, ${clients.length - answered} cut after closeTimeoutMs`;
      this.#logger.log(
        `${this.#names.get(server) ?? 'Gateway'}: shutdown closed ${clients.length} connection(s) with ${codes} in ${Math.round(performance.now() - started)} ms: ${how}`,
      );
    }
  }

  /**
   * Measures the bus's round trip (`websocket.server.bus.lag`) once it is subscribed, then every
   * `BUS_PROBE_INTERVAL_MS`, for a bus that can tell (`health()`). Once per adapter.
   */
  #probeBus(telemetry: WebSocketsTelemetry): void {
    const bus = this.#bus;
    if (this.#busProbe !== undefined || bus?.health === undefined) return;
    const probe = (): void => {
      bus.health!().then(
        (health) => {
          if (health.lagMs !== null) telemetry.busLag(health.kind, health.lagMs);
        },
        () => undefined,
      );
    };
    this.#busProbe = setInterval(probe, BUS_PROBE_INTERVAL_MS).unref();
    for (const server of this.#servers) server.ready().then(probe, () => undefined);
  }

  /** Called by Nest after `close()` on every server: closes the listeners this adapter opened and the bus. */
  async dispose(): Promise<void> {
    clearInterval(this.#busProbe);
    this.#busProbe = undefined;
    await Promise.all([...this.#servers].map((server) => this.close(server)));
    await this.#listeners.close();
    await this.#bus?.close?.();
    this.#bus = undefined;
  }

  /** One warning per socket.io-only option name. */
  #warnIgnored(name: string, gateway: string): void {
    if (this.#warned.has(name)) return;
    this.#warned.add(name);
    const equivalent = SOCKET_IO_ONLY_OPTIONS[name];
    this.#logger.warn(
      `${gateway}: option ${name} is for socket.io and is ignored by WebSocketsAdapter` +
        (equivalent !== null && equivalent !== undefined ? `; the equivalent here is ${equivalent}` : ''),
    );
  }
}

/** The HTTP(S) server of an app, when it has one (`undefined` for a standalone app, or before the app exists). */
function httpServerOf(app: INestApplicationContext): AppServer | undefined {
  const getHttpServer = (app as { getHttpServer?: () => unknown }).getHttpServer;
  let server: unknown;
  try {
    server = typeof getHttpServer === 'function' ? getHttpServer.call(app) : undefined;
  } catch {
    // The default adapter of WebSocketsModule asks before the app's server exists.
    server = undefined;
  }
  return isHttpServer(server) ? server : undefined;
}

/** The code of the close frame the peer sent, or `null`. */
function closeCodeReceived(client: WebSocket): number | null {
  return client.closeReceived?.code ?? null;
}

/** Without guards, every handshake is accepted with its request attached for `handleConnection`. */
function attachRequest(info: HandshakeInfo): { data: WebSocketsHandshakeRequest } {
  return { data: toHandshakeRequest(info) };
}

function toArray(values: readonly string[] | undefined): string[] | undefined {
  return values === undefined ? undefined : [...values];
}
