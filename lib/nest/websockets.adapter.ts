/**
 * `WebSocketsAdapter`: Nest's `WebSocketAdapter` contract on this package's own server.
 * `app.useWebSocketAdapter(new WebSocketsAdapter(app))`, then decorate gateways as usual.
 *
 * - Gateways without a port share the app's HTTP(S) server, routed by path (the node layer's upgrade router: one
 *   `'upgrade'` listener per server, 404 for a path no one owns, other listeners' paths left alone). Gateways with
 *   a port get their own listener on the module's host, with TLS when configured; several paths can share it.
 * - Handshake guards (Nest's `CanActivate`, with dependency injection) run before the 101 and can refuse with a
 *   status and a body. `handleConnection(client, request)` gets the handshake request; `handleDisconnect(client,
 *   close)` gets `{ code, reason }`.
 * - Messages are parsed (JSON `{ event, data, id? }` by default) and dispatched to every gateway bound to the
 *   server; results (values, promises, `WsResponse`, Observables of many values) go back as JSON with the
 *   message's `id`, each send awaiting the client's backpressure. Refused messages follow `invalidMessages`.
 * - `app.close()` sends 1001 to every client, waits up to `closeTimeoutMs`, then destroys what is left, and closes
 *   every listener it opened.
 */
import {
  HttpException,
  Logger,
  type CanActivate,
  type ExecutionContext,
  type INestApplicationContext,
  type WebSocketAdapter,
  type WsMessageHandler,
} from '@nestjs/common';
import { ModuleRef, ModulesContainer } from '@nestjs/core';
import { WsException } from '@nestjs/websockets';
import { GATEWAY_METADATA, GATEWAY_OPTIONS, PORT_METADATA } from '@nestjs/websockets/constants.js';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { isObservable, lastValueFrom, type Observable } from 'rxjs';
import { resolveGatewayLimits } from '../config/index.js';
import { ConfigError, MessageTooDeepError, RoomLimitError, WebSocketsError } from '../errors.js';
import { CloseCode } from '../protocol/close-codes.js';
import { resolveConfig } from '../config/index.js';
import { noticeFdExhaustion } from '../node/fd-limit-watch.js';
import { refuseRenegotiation, WebSocketServer, type HandshakeDecision, type HandshakeInfo, type WebSocketServerOptions } from '../node/server.js';
import { WebSocket } from '../node/websocket.js';
import type { BroadcastBus } from '../broadcast/broadcast-bus.js';
import { InProcessBroadcastBus } from '../broadcast/in-process-bus.js';
import { RedisBroadcastBus } from '../broadcast/redis/redis-bus.js';
import { GatewayWebSocket, exceptionFrame, messageContext } from './exception-frames.js';
import { WebSocketsGatewayServer } from './gateway-server.js';
import { toHandshakeRequest, type WebSocketsHandshakeRequest } from './handshake-request.js';
import { InvalidMessageError, checkParsedMessage, createJsonMessageParser, parseJsonMessage, readTopLevelId } from './message-parser.js';
import { EXCEPTION_EVENT, SOCKET_IO_ONLY_OPTIONS } from './websockets.constants.js';
import { checkGatewayOptions, resolveWebSocketsOptions } from './websockets-options.js';
import type {
  HandshakeGuard,
  InvalidMessagePolicy,
  MessageParser,
  ParsedMessage,
  ResolvedWebSocketsOptions,
  WebSocketsGatewayOptions,
  WebSocketsModuleOptions,
} from './websockets-options.interface.js';
import { WebSocketsService } from './websockets.service.js';

/** What `handleDisconnect(client, close)` receives as its second argument. */
export interface WebSocketsCloseInfo {
  /** The close code: the peer's (1000, 1001, ...), 1005 when it sent none, 1006 when the connection dropped. */
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

/** A message handler's reply as it goes on the wire. */
interface Reply {
  readonly event: string;
  readonly data: unknown;
  readonly id?: string | number;
}

/** Per connection: the handlers of every gateway bound to it, and how its messages are read. */
interface ClientState {
  /**
   * What Nest bound, once per gateway on the client's server: its handlers (made for this client) and the gateway's
   * result transform. Kept as given and scanned per message, as @nestjs/platform-ws does: a Map per client would cost
   * every idle connection a few hundred bytes for the handful of events a gateway has.
   */
  readonly bindings: Array<{ readonly handlers: readonly WsMessageHandler[]; readonly transform: (data: unknown) => Observable<unknown> }>;
  readonly parser: MessageParser;
  /** Whether `parser` is the application's (`messageParser`) rather than the default JSON parser. */
  readonly customParser: boolean;
  readonly policy: InvalidMessagePolicy;
  /** The client's messages, pulled one at a time. */
  readonly messages: AsyncIterator<string | Buffer>;
  /** Messages being handled now (at most `MAX_MESSAGES_IN_FLIGHT`). */
  inFlight: number;
  /** Reading stopped at `MAX_MESSAGES_IN_FLIGHT`; the next message is pulled when one finishes. */
  waiting: boolean;
}

/** Per server: the settings its messages follow. */
interface ServerSettings {
  readonly parser: MessageParser;
  readonly customParser: boolean;
  readonly policy: InvalidMessagePolicy;
}

/** The settings of a client whose server is unknown: the defaults. */
const DEFAULT_SETTINGS: ServerSettings = { parser: parseJsonMessage, customParser: false, policy: 'exception' };

/**
 * Messages of one client handled at the same time; the next one is read when one finishes. Reading stops, and the
 * node layer pauses the socket once `readHighWaterMark` bytes are waiting, so a client that floods requests without
 * reading the replies is slowed down instead of filling memory.
 */
const MAX_MESSAGES_IN_FLIGHT = 16;
/** The promise of a reply that has nothing to wait for. */
const RESOLVED: Promise<void> = Promise.resolve();

/** Node's default `requestTimeout`; an own listener raises it only when `openTimeoutMs` is longer. */
const NODE_REQUEST_TIMEOUT_MS = 300_000;
/** How often at most an own listener checks its connections' head times (Node's default is 30 s). */
const MAX_CONNECTIONS_CHECKING_INTERVAL_MS = 1000;

const STATUS_FORBIDDEN = 403;
const STATUS_INTERNAL_ERROR = 500;
const STATUS_UPGRADE_REQUIRED = 426;

/** What clients are told of an error that is not theirs to know (Nest's words for an unknown exception). */
const INTERNAL_ERROR_MESSAGE = 'Internal server error';

/** Keys of the module's options that are not node-layer server options. */
const NEST_ONLY_KEYS = [
  'handshakeGuards',
  'messageParser',
  'invalidMessages',
  'maxJsonDepth',
  'maxRoomsPerClient',
  'tls',
  'broadcastBus',
  'redisUrl',
  'redisChannelPrefix',
  'env',
  'host',
  'path',
  'namespace',
];

type HttpLikeServer = http.Server | https.Server;

/** The plain send, for the adapter's own replies (which carry their id already). */
const rawSend = WebSocket.prototype.send;

/** An error's stack (or message) for the log; not `instanceof Error`, which fails for errors of another realm. */
function errorText(error: unknown): string {
  const { stack, message } = (typeof error === 'object' && error !== null ? error : {}) as { stack?: unknown; message?: unknown };
  return typeof stack === 'string' ? stack : typeof message === 'string' ? message : String(error);
}

/** An error's message, for the client. */
function messageOf(error: unknown): string {
  const message = (typeof error === 'object' && error !== null ? error : {}) as { message?: unknown };
  return typeof message.message === 'string' ? message.message : String(error);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The `id` of a message that its parser refused: the one the error carries (`InvalidMessageError`,
 * `MessageTooDeepError`), else the top-level `"id"` of the raw message read as JSON text, best effort.
 */
function refusedMessageId(error: unknown, raw: string | Buffer): string | number | undefined {
  if (error instanceof InvalidMessageError || error instanceof MessageTooDeepError) return error.id;
  if (typeof raw === 'string') return readTopLevelId(raw);
  try {
    return readTopLevelId(utf8.decode(raw));
  } catch {
    return undefined;
  }
}

/** An `http.Server` or an `https.Server` (which is a `tls.Server`, not an `http.Server`). */
function isHttpServer(value: unknown): value is HttpLikeServer {
  return value instanceof http.Server || value instanceof https.Server;
}

function isWsResponse(value: unknown): value is { event: string; data: unknown } {
  return typeof value === 'object' && value !== null && typeof (value as { event?: unknown }).event === 'string' && 'data' in value;
}

/** The adapter. Give it the app (or an HTTP server) and, optionally, options that override the module's. */
export class WebSocketsAdapter implements WebSocketAdapter<WebSocketsGatewayServer, WebSocket, WebSocketsGatewayOptions> {
  /** Set by Nest from `NestFactory.create(..., { forceCloseConnections })`: close without waiting for clients. */
  forceCloseConnections = false;

  readonly #logger = new Logger(WebSocketsAdapter.name);
  readonly #app: INestApplicationContext | undefined;
  readonly #httpServer: HttpLikeServer | undefined;
  readonly #adapterOptions: WebSocketsModuleOptions | undefined;
  #resolved: ResolvedWebSocketsOptions | undefined;
  #service: WebSocketsService | undefined;
  #bus: BroadcastBus | undefined;
  readonly #ownListeners = new Map<number, { server: HttpLikeServer; secure: boolean; listening: Promise<void> }>();
  readonly #servers = new Set<WebSocketsGatewayServer>();
  readonly #settings = new WeakMap<WebSocketsGatewayServer, ServerSettings>();
  readonly #clients = new WeakMap<WebSocket, ClientState>();
  readonly #clientServer = new WeakMap<WebSocket, WebSocketsGatewayServer>();
  readonly #warned = new Set<string>();
  readonly #guardInstances = new Map<HandshakeGuard, Promise<CanActivate>>();
  readonly #patchedGateways = new WeakSet<object>();
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
  constructor(appOrHttpServer?: INestApplicationContext | HttpLikeServer, options?: WebSocketsModuleOptions) {
    if (isHttpServer(appOrHttpServer)) {
      this.#httpServer = appOrHttpServer;
    } else if (appOrHttpServer !== undefined) {
      this.#app = appOrHttpServer;
      const getHttpServer = (appOrHttpServer as { getHttpServer?: () => unknown }).getHttpServer;
      const server = typeof getHttpServer === 'function' ? getHttpServer.call(appOrHttpServer) : undefined;
      if (isHttpServer(server)) this.#httpServer = server;
    }
    this.#adapterOptions = options;
  }

  /** The options in force: the module's (when imported), overridden by the adapter's. */
  get options(): ResolvedWebSocketsOptions {
    if (this.#resolved === undefined) {
      this.#service = this.#lookup(WebSocketsService);
      const moduleOptions = this.#service?.options;
      if (moduleOptions !== undefined && this.#adapterOptions === undefined) this.#resolved = moduleOptions;
      else this.#resolved = resolveWebSocketsOptions({ ...moduleOptions?.raw, ...this.#adapterOptions }, moduleOptions?.env ?? process.env);
    }
    return this.#resolved;
  }

  /**
   * Creates the server of one port and path (Nest calls it once per pair).
   * @throws ConfigError for a namespace, an unknown or invalid option, a port-0 gateway without an HTTP app, or a
   *   port shared by gateways that disagree on TLS
   */
  create(port: number, options: WebSocketsGatewayOptions = {}): WebSocketsGatewayServer {
    const gatewayName = this.#gatewayNameFor(port, options.path);
    const checked = checkGatewayOptions(gatewayName, options as Record<string, unknown>);
    for (const name of checked.ignored) this.#warnIgnored(name, gatewayName);
    const gateway = checked.options;
    const resolved = this.options;
    this.#patchGatewayHooks();

    const serverOptions: WebSocketServerOptions = { env: resolved.env };
    for (const source of [resolved.raw, gateway] as const) {
      for (const [key, value] of Object.entries(source)) {
        if (!NEST_ONLY_KEYS.includes(key) && value !== undefined) (serverOptions as Record<string, unknown>)[key] = value;
      }
    }
    if (serverOptions.subprotocols !== undefined) serverOptions.subprotocols = [...serverOptions.subprotocols];
    if (gateway.path !== undefined) serverOptions.path = gateway.path;
    const guards = [...(resolved.raw.handshakeGuards ?? []), ...(gateway.handshakeGuards ?? [])];
    let gatewayServer: WebSocketsGatewayServer | undefined;
    serverOptions.handshake = (info) => this.#handshake(info, guards, port, gateway.path, gatewayServer);

    let node: WebSocketServer;
    let secure: boolean;
    let address: () => AddressInfo | null;
    if (port === 0) {
      if (this.#httpServer === undefined) {
        throw new ConfigError(
          `${gatewayName} has no port and there is no HTTP server to share; give it a port ` +
            `(@WebSocketGateway(8080, { ... })) or create the app with NestFactory.create()`,
          'port',
          port,
        );
      }
      node = new WebSocketServer({ ...serverOptions, server: this.#httpServer, WebSocket: GatewayWebSocket });
      secure = this.#httpServer instanceof https.Server;
      address = () => null;
    } else {
      const tls = gateway.tls === false ? null : (gateway.tls ?? resolved.tls);
      const host = gateway.host ?? resolved.host ?? undefined;
      const { openTimeoutMs } = resolveConfig(serverOptions, resolved.env);
      const listener = this.#ownListener(port, host, tls, openTimeoutMs, gatewayName);
      node = new WebSocketServer({ ...serverOptions, server: listener.server, WebSocket: GatewayWebSocket });
      secure = listener.secure;
      address = () => {
        const value = listener.server.address();
        return value !== null && typeof value === 'object' ? value : null;
      };
    }
    node.on('error', (error: Error) => this.#logger.error(`${gatewayName}: ${error.message}`, error.stack));
    node.on('handshakeError', (error: { message: string; httpStatus: number }, info: HandshakeInfo | undefined) =>
      this.#logger.debug(`${gatewayName}: handshake refused with ${error.httpStatus} (${error.message}) from ${info?.remoteAddress ?? 'a client'}`),
    );
    node.on('connection', (client: WebSocket) => this.#logger.debug(`${gatewayName}: connection from ${client.remoteAddress}`));

    this.#bus ??=
      resolved.raw.broadcastBus ?? (resolved.redisUrl !== null ? new RedisBroadcastBus({ url: resolved.redisUrl, channelPrefix: resolved.redisChannelPrefix, logger: new Logger(RedisBroadcastBus.name) }) : new InProcessBroadcastBus());
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
      path: gateway.path ?? null,
      secure,
      bus: this.#bus,
      logger: this.#logger,
      address,
      maxRoomsPerClient: limits.maxRoomsPerClient,
      onRoomLimit: this.#onRoomLimit,
    });
    const customParser = gateway.messageParser ?? resolved.raw.messageParser;
    this.#settings.set(gatewayServer, {
      parser: customParser ?? createJsonMessageParser({ maxDepth: limits.maxJsonDepth }),
      customParser: customParser !== undefined,
      policy: gateway.invalidMessages ?? resolved.raw.invalidMessages ?? 'exception',
    });
    this.#servers.add(gatewayServer);
    this.#service?.track(gatewayServer);
    return gatewayServer;
  }

  /** Calls `callback(client, request)` for each new connection (Nest's `handleConnection` arguments). */
  bindClientConnect(server: WebSocketsGatewayServer, callback: (client: WebSocket, request: WebSocketsHandshakeRequest) => void): void {
    server.webSocketServer.on('connection', (client: WebSocket, info: HandshakeInfo) => {
      this.#clientServer.set(client, server);
      const request = (client.data as WebSocketsHandshakeRequest | undefined) ?? toHandshakeRequest(info);
      callback(client, request);
    });
  }

  /** Calls `callback({ code, reason })` once the connection is closed (Nest passes it on to `handleDisconnect`). */
  bindClientDisconnect(client: WebSocket, callback: (close: WebSocketsCloseInfo) => void): void {
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
   * handlers accumulate; the client's messages are read once, by one loop, and dispatched to all of them.
   */
  bindMessageHandlers(client: WebSocket, handlers: WsMessageHandler[], transform: (data: unknown) => Observable<unknown>): void {
    let state = this.#clients.get(client);
    if (state === undefined) {
      const server = this.#clientServer.get(client);
      const settings = (server !== undefined ? this.#settings.get(server) : undefined) ?? DEFAULT_SETTINGS;
      state = {
        bindings: [],
        parser: settings.parser,
        customParser: settings.customParser,
        policy: settings.policy,
        messages: client[Symbol.asyncIterator](),
        inFlight: 0,
        waiting: false,
      };
      this.#clients.set(client, state);
      this.#pull(client, state);
    }
    state.bindings.push({ handlers, transform });
  }

  /** Closes one server: 1001 to its clients, then waits for them up to `closeTimeoutMs` (not at all when forced). */
  async close(server: WebSocketsGatewayServer): Promise<void> {
    if (this.forceCloseConnections) {
      for (const client of server.clients) {
        client.close(CloseCode.GOING_AWAY, 'server shutting down').catch(() => undefined);
        // The close frame is written; do not wait for the client's answer.
        setImmediate(() => client.terminate());
      }
    }
    await server.close();
    this.#servers.delete(server);
    this.#service?.untrack(server);
  }

  /** Called by Nest after `close()` on every server: closes the listeners this adapter opened and the bus. */
  async dispose(): Promise<void> {
    await Promise.all([...this.#servers].map((server) => this.close(server)));
    await Promise.all(
      [...this.#ownListeners.values()].map(
        ({ server, listening }) =>
          new Promise<void>((resolve) => {
            listening.finally(() => {
              if (!server.listening) return resolve();
              server.close(() => resolve());
              server.closeAllConnections();
            });
          }),
      ),
    );
    this.#ownListeners.clear();
    await this.#bus?.close?.();
    this.#bus = undefined;
  }

  // --- servers ----------------------------------------------------------------------------------------------------

  /**
   * The HTTP(S) server that listens on `port` for gateways with their own port (one per port, shared by paths).
   * `openTimeoutMs` (of the gateway that opens the port) bounds its TLS handshake and then its request head, as on
   * the node layer's own listener; Node's own bounds would be 120 s and 60 s.
   */
  #ownListener(port: number, host: string | undefined, tls: ResolvedWebSocketsOptions['tls'], openTimeoutMs: number | null, gatewayName: string) {
    const existing = this.#ownListeners.get(port);
    if (existing !== undefined) {
      if (existing.secure !== (tls !== null)) {
        throw new ConfigError(
          `${gatewayName} wants port ${port} ${tls !== null ? 'with' : 'without'} TLS, but another gateway already serves it ` +
            `${existing.secure ? 'with' : 'without'}; give gateways on one port the same tls option`,
          'tls',
          port,
        );
      }
      return existing;
    }
    // Plain HTTP requests to a WebSocket-only port get 426 with `Upgrade: websocket` (RFC 9110 §15.5.22).
    const onRequest = (_req: http.IncomingMessage, res: http.ServerResponse): void => {
      const body = 'This port serves WebSocket connections only.\n';
      res.writeHead(STATUS_UPGRADE_REQUIRED, {
        Upgrade: 'websocket',
        Connection: 'close',
        'Content-Type': 'text/plain; charset=utf-8',
        'Content-Length': Buffer.byteLength(body),
      });
      res.end(body);
    };
    const httpOptions: http.ServerOptions =
      openTimeoutMs === null
        ? {}
        : {
            // Node counts a connection's head time from its first byte, or from the connection when nothing comes,
            // and checks it every connectionsCheckingInterval: a stalled head is cut within the timeout plus at most
            // one interval. An upgraded connection leaves Node's HTTP timeouts altogether.
            headersTimeout: openTimeoutMs,
            requestTimeout: Math.max(openTimeoutMs, NODE_REQUEST_TIMEOUT_MS),
            connectionsCheckingInterval: Math.min(openTimeoutMs, MAX_CONNECTIONS_CHECKING_INTERVAL_MS),
          };
    let server: HttpLikeServer;
    if (tls !== null) {
      server = https.createServer({ ...httpOptions, ...(openTimeoutMs === null ? {} : { handshakeTimeout: openTimeoutMs }), ...tls }, onRequest);
      // This port serves WebSockets only, which never need renegotiation (see refuseRenegotiation).
      server.on('secureConnection', refuseRenegotiation);
    } else {
      server = http.createServer(httpOptions, onRequest);
    }
    let listened = false;
    const listening = new Promise<void>((resolve) => {
      // A permanent listener: an 'error' after listen() without one would end the process.
      server.on('error', (error: Error) => {
        if (listened) {
          // An accept that failed for want of descriptors is reported once per burst, through the WebSocket servers.
          if (!noticeFdExhaustion(error)) this.#logger.error(`${gatewayName}: ${error.message}`);
          return;
        }
        listened = true;
        this.#logger.error(
          `${gatewayName}: cannot listen on ${host ?? '*'}:${port}: ${error.message}; stop what holds the port, or give ` +
            `the gateway another one (@WebSocketGateway(port, ...)) or the module another host (option host, env WEBSOCKETS_HOST)`,
        );
        resolve();
      });
      server.listen(port, host, () => {
        listened = true;
        this.#logger.log(`${gatewayName} listening on ${tls !== null ? 'wss' : 'ws'}://${host ?? '*'}:${port}`);
        resolve();
      });
    });
    const entry = { server, secure: tls !== null, listening };
    this.#ownListeners.set(port, entry);
    return entry;
  }

  /** One warning per socket.io-only option name. */
  #warnIgnored(name: string, gatewayName: string): void {
    if (this.#warned.has(name)) return;
    this.#warned.add(name);
    const equivalent = SOCKET_IO_ONLY_OPTIONS[name];
    this.#logger.warn(
      `${gatewayName}: option ${name} is for socket.io and is ignored by WebSocketsAdapter` +
        (equivalent !== null && equivalent !== undefined ? `; the equivalent here is ${equivalent}` : ''),
    );
  }

  // --- handshake ----------------------------------------------------------------------------------------------------

  async #handshake(
    info: HandshakeInfo,
    guards: readonly HandshakeGuard[],
    port: number,
    path: string | undefined,
    server: WebSocketsGatewayServer | undefined,
  ): Promise<HandshakeDecision> {
    const request = toHandshakeRequest(info);
    const gatewayClass = this.#gatewayClassFor(port, path);
    for (const guard of guards) {
      let allowed: boolean;
      try {
        const instance = await this.#guardInstance(guard, gatewayClass);
        const context = new HandshakeExecutionContext(request, gatewayClass, server);
        const result = instance.canActivate(context);
        allowed = Boolean(isObservable(result) ? await lastValueFrom(result) : await result);
      } catch (error) {
        return { reject: this.#refusalFor(error, request) };
      }
      if (!allowed) {
        this.#logger.debug(`handshake from ${request.remoteAddress} refused by ${guardName(guard)}`);
        return { reject: { status: STATUS_FORBIDDEN, body: 'Forbidden' } };
      }
    }
    return { data: request };
  }

  /** The refusal for an error thrown by a guard: an `HttpException`'s status and message, else 500 (logged). */
  #refusalFor(error: unknown, request: WebSocketsHandshakeRequest): { status: number; body: string } {
    if (error instanceof HttpException) {
      const status = error.getStatus();
      this.#logger.debug(`handshake from ${request.remoteAddress} refused with ${status}: ${error.message}`);
      return { status: status >= 400 && status <= 599 ? status : STATUS_FORBIDDEN, body: error.message };
    }
    if (error instanceof WsException) {
      const body = typeof error.getError() === 'string' ? (error.getError() as string) : error.message;
      this.#logger.debug(`handshake from ${request.remoteAddress} refused: ${body}`);
      return { status: STATUS_FORBIDDEN, body };
    }
    this.#logger.error(`a handshake guard failed: ${errorText(error)}`);
    return { status: STATUS_INTERNAL_ERROR, body: 'Internal Server Error' };
  }

  /** A guard instance: an object as is; a class from the app (a provider) or made with dependency injection. */
  #guardInstance(guard: HandshakeGuard, gatewayClass: Function | undefined): Promise<CanActivate> {
    if (typeof guard !== 'function') return Promise.resolve(guard);
    let instance = this.#guardInstances.get(guard);
    if (instance === undefined) {
      instance = (async () => {
        const provided = this.#lookup(guard);
        if (provided !== undefined) return provided;
        // Not a provider: build it in the gateway's module, where the gateway's own dependencies resolve.
        const moduleRef = this.#moduleRefOf(gatewayClass) ?? this.#lookup(ModuleRef);
        if (moduleRef === undefined) return new guard();
        return moduleRef.create(guard);
      })();
      this.#guardInstances.set(guard, instance);
    }
    return instance;
  }

  // --- messages ------------------------------------------------------------------------------------------------------

  /**
   * Reads the client's next message (pulling, so that the node layer can apply backpressure) and dispatches it; up
   * to `MAX_MESSAGES_IN_FLIGHT` at once. Promise callbacks rather than an async function with `for await`: an idle
   * connection then holds one pending read, not a suspended function with its registers and a Set of tasks.
   */
  #pull(client: WebSocket, state: ClientState): void {
    state.messages.next().then(
      (result) => {
        if (result.done === true) return;
        state.inFlight++;
        this.#handleMessage(client, state, result.value).then(
          () => this.#settled(client, state),
          (error: unknown) => {
            this.#logger.error(`handling a message from ${client.remoteAddress} failed: ${errorText(error)}`);
            this.#settled(client, state);
          },
        );
        if (state.inFlight < MAX_MESSAGES_IN_FLIGHT) this.#pull(client, state);
        else state.waiting = true;
      },
      (error: unknown) => this.#logger.error(`reading from ${client.remoteAddress} failed: ${errorText(error)}`),
    );
  }

  /** One message of the client is handled: read the next one if reading waited for it. */
  #settled(client: WebSocket, state: ClientState): void {
    state.inFlight--;
    if (state.waiting) {
      state.waiting = false;
      this.#pull(client, state);
    }
  }

  async #handleMessage(client: WebSocket, state: ClientState, raw: string | Buffer): Promise<void> {
    let message: ParsedMessage;
    try {
      message = checkParsedMessage(state.parser(raw, typeof raw !== 'string'));
    } catch (error) {
      if (!(error instanceof InvalidMessageError) && !(error instanceof WebSocketsError) && state.customParser) {
        // A custom parser that throws something else may be an application bug: leave a trace.
        this.#logger.warn(`messageParser threw: ${errorText(error)}`);
      }
      const code = error instanceof WebSocketsError ? error.code : undefined;
      await this.#invalid(client, state.policy, messageOf(error), refusedMessageId(error, raw), code);
      return;
    }
    // Most events have one handler: its run is awaited alone, without an array and Promise.all per message.
    let first: Promise<void> | undefined;
    let more: Array<Promise<void>> | undefined;
    for (const { handlers, transform } of state.bindings) {
      for (const handler of handlers) {
        if (handler.message !== message.event) continue;
        const run = this.#runHandler(client, handler, transform, message);
        if (first === undefined) first = run;
        else (more ??= [first]).push(run);
      }
    }
    if (first === undefined) {
      await this.#invalid(client, state.policy, `unknown event ${JSON.stringify(message.event)}`, message.id);
      return;
    }
    await (more === undefined ? first : Promise.all(more));
  }

  /**
   * Runs one handler and sends what it produces, in order, each send waiting for the client's backpressure. Nest's
   * exception filter answers what the handler throws; what still gets here is a failure of the pipeline itself (the
   * filter throwing, say `RangeError: Maximum call stack size exceeded` while it serializes a deeply nested cause),
   * which is logged and answered with an exception frame, never with silence.
   */
  #runHandler(client: WebSocket, handler: WsMessageHandler, transform: (data: unknown) => Observable<unknown>, message: ParsedMessage): Promise<void> {
    const run = async (): Promise<void> => {
      const { event, id } = message;
      // Observables may emit many values: send each in order, awaiting the socket, before taking the next.
      let chain = Promise.resolve();
      let failure: { readonly error: unknown } | undefined;
      try {
        let result: unknown;
        if (handler.isAckHandledManually) {
          // `@Ack()` gets a function that sends the reply (with the message's id) whenever the handler calls it.
          const ack = (data: unknown): void => void this.#reply(client, { event, data, ...(id === undefined ? {} : { id }) });
          result = handler.callback(message.data, ack);
        } else {
          result = handler.callback(message.data, event);
        }
        const values = transform(result);
        await new Promise<void>((resolve) => {
          values.subscribe({
            next: (value) => {
              if (value === undefined || handler.isAckHandledManually) return;
              const reply: Reply = isWsResponse(value)
                ? { event: value.event, data: value.data, ...(id === undefined ? {} : { id }) }
                : { event, data: value, ...(id === undefined ? {} : { id }) };
              chain = chain.then(() => this.#reply(client, reply));
            },
            error: (error: unknown) => {
              failure = { error };
              resolve();
            },
            complete: () => resolve(),
          });
        });
      } catch (error) {
        failure = { error };
      }
      await chain;
      if (failure !== undefined) {
        this.#logger.error(`handler of ${JSON.stringify(event)} failed: ${errorText(failure.error)}`);
        await this.#send(client, JSON.stringify(exceptionFrame(INTERNAL_ERROR_MESSAGE, id)));
      }
    };
    return message.id === undefined ? run() : messageContext.run({ client, id: message.id, limitError: undefined }, run);
  }

  /** Sends one reply as JSON; a value that cannot be serialized becomes an exception frame. */
  #reply(client: WebSocket, reply: Reply): Promise<void> {
    let text: string;
    try {
      text = JSON.stringify(reply);
    } catch (error) {
      this.#logger.error(`reply to ${JSON.stringify(reply.event)} cannot be serialized as JSON: ${errorText(error)}`);
      text = JSON.stringify(exceptionFrame(INTERNAL_ERROR_MESSAGE, reply.id));
    }
    return this.#send(client, text);
  }

  /** Applies the `invalidMessages` policy. */
  async #invalid(client: WebSocket, policy: InvalidMessagePolicy, reason: string, id: string | number | undefined, code?: string): Promise<void> {
    this.#logger.debug(`invalid message from ${client.remoteAddress}: ${reason}`);
    switch (policy) {
      case 'exception':
        await this.#send(client, JSON.stringify(exceptionFrame(reason, id, code)));
        return;
      case 'ignore':
        return;
      case 'close':
        await client.close(CloseCode.POLICY_VIOLATION, 'invalid message').catch(() => undefined);
        return;
      default: {
        const unexpected: never = policy;
        throw new TypeError(`unexpected policy ${String(unexpected)}`);
      }
    }
  }

  /** Sends a reply; resolves once written, or at once when the client is gone (a failure is only logged). */
  #send(client: WebSocket, text: string): Promise<void> {
    if (client.readyState !== WebSocket.OPEN) return RESOLVED;
    // Promise callbacks rather than an async function: two fewer promises per reply on the hot path.
    return rawSend.call(client, text).then(undefined, (error: unknown) => {
      this.#logger.debug(`reply to ${client.remoteAddress} not delivered: ${String(error)}`);
    });
  }

  // --- gateways -----------------------------------------------------------------------------------------------------

  /**
   * Gets a provider from the app without failing when it is not there. `app.get()` cannot be used to probe: the
   * app that `NestFactory.create` returns runs it in an exceptions zone that exits the process on an unknown token
   * (abortOnError), so the providers are looked up in the module container instead.
   */
  #lookup<T>(token: abstract new (...args: never[]) => T): T | undefined {
    const modules = this.#modulesContainer();
    for (const module of modules?.values() ?? []) {
      const instance: unknown = module.providers.get(token)?.instance;
      if (instance !== undefined && instance !== null) return instance as T;
    }
    return undefined;
  }

  /** Nest's container of every module; always registered by Nest's core, so `get()` cannot fail on it. */
  #modulesContainer(): ModulesContainer | undefined {
    if (this.#app === undefined) return undefined;
    try {
      return this.#app.get(ModulesContainer, { strict: false });
    } catch {
      return undefined;
    }
  }

  /** The gateway instances and classes of the app, from Nest's module container. */
  #gateways(): Array<{ instance: Record<string, unknown>; metatype: Function }> {
    const modules = this.#modulesContainer();
    if (modules === undefined) return [];
    const found: Array<{ instance: Record<string, unknown>; metatype: Function }> = [];
    for (const module of modules.values()) {
      for (const wrapper of module.providers.values()) {
        const { metatype, instance } = wrapper as { metatype?: unknown; instance?: unknown };
        if (typeof metatype !== 'function' || typeof instance !== 'object' || instance === null) continue;
        if (Reflect.getMetadata(GATEWAY_METADATA, metatype) === true) found.push({ instance: instance as Record<string, unknown>, metatype });
      }
    }
    return found;
  }

  /** The `ModuleRef` of the module that declares `gatewayClass`. */
  #moduleRefOf(gatewayClass: Function | undefined): ModuleRef | undefined {
    if (gatewayClass === undefined) return undefined;
    const modules = this.#modulesContainer();
    for (const module of modules?.values() ?? []) {
      if (module.providers.has(gatewayClass)) return module.providers.get(ModuleRef)?.instance as ModuleRef | undefined;
    }
    return undefined;
  }

  #gatewayClassFor(port: number, path: string | undefined): Function | undefined {
    return this.#gateways().find(({ metatype }) => {
      const options = (Reflect.getMetadata(GATEWAY_OPTIONS, metatype) ?? {}) as { path?: string };
      return (Reflect.getMetadata(PORT_METADATA, metatype) ?? 0) === port && options.path === path;
    })?.metatype;
  }

  #gatewayNameFor(port: number, path: string | undefined): string {
    const name = this.#gatewayClassFor(port, path)?.name;
    return name !== undefined ? `Gateway ${name}` : `Gateway on port ${port}${path === undefined ? '' : ` path ${path}`}`;
  }

  /**
   * Nest calls `handleConnection` / `handleDisconnect` from an RxJS subscription, where a throw (or a rejected
   * promise) becomes an uncaught error that stops the process. Wrap them once per gateway instance so that a
   * failure is logged and only costs its own connection (closed with 1011).
   */
  #patchGatewayHooks(): void {
    for (const { instance, metatype } of this.#gateways()) {
      if (this.#patchedGateways.has(instance)) continue;
      this.#patchedGateways.add(instance);
      for (const hook of ['handleConnection', 'handleDisconnect'] as const) {
        const original = instance[hook];
        if (typeof original !== 'function') continue;
        const fail = (client: unknown, error: unknown): void => {
          this.#logger.error(`${metatype.name}.${hook} failed: ${errorText(error)}`);
          if (hook === 'handleConnection' && client instanceof WebSocket && client.readyState === WebSocket.OPEN) {
            client.close(CloseCode.INTERNAL_ERROR).catch(() => undefined);
          }
        };
        Object.defineProperty(instance, hook, {
          configurable: true,
          writable: true,
          value: function (this: unknown, client: unknown, ...rest: unknown[]): unknown {
            try {
              const result: unknown = original.call(this, client, ...rest);
              if (result instanceof Promise) return result.catch((error: unknown) => fail(client, error));
              return result;
            } catch (error) {
              fail(client, error);
              return undefined;
            }
          },
        });
      }
    }
  }
}

function guardName(guard: HandshakeGuard): string {
  return typeof guard === 'function' ? guard.name : (guard.constructor?.name ?? 'a guard');
}

/**
 * The `ExecutionContext` of a handshake guard: type `'http'`, the request is the `WebSocketsHandshakeRequest` and
 * there is no response yet. `getClass()` is the gateway (so class-level metadata such as a `@Public()` flag can be
 * read with `Reflector`); `getHandler()` its `handleConnection` (or a placeholder).
 */
class HandshakeExecutionContext implements ExecutionContext {
  readonly #args: unknown[];
  constructor(
    private readonly request: WebSocketsHandshakeRequest,
    private readonly gatewayClass: Function | undefined,
    server: WebSocketsGatewayServer | undefined,
  ) {
    this.#args = [request, undefined, server];
  }
  getClass<T = unknown>(): T {
    return (this.gatewayClass ?? WebSocketsAdapter) as T;
  }
  getHandler(): Function {
    const prototype = (this.gatewayClass as { prototype?: Record<string, unknown> } | undefined)?.prototype;
    const handler = prototype?.handleConnection;
    return typeof handler === 'function' ? handler : handshake;
  }
  getArgs<T extends unknown[] = unknown[]>(): T {
    return this.#args as T;
  }
  getArgByIndex<T = unknown>(index: number): T {
    return this.#args[index] as T;
  }
  switchToRpc(): ReturnType<ExecutionContext['switchToRpc']> {
    return { getData: <T>() => this.request as T, getContext: <T>() => undefined as T };
  }
  switchToHttp(): ReturnType<ExecutionContext['switchToHttp']> {
    return {
      getRequest: <T>() => this.request as T,
      getResponse: <T>() => undefined as T,
      getNext: <T>() => undefined as T,
    };
  }
  switchToWs(): ReturnType<ExecutionContext['switchToWs']> {
    return { getClient: <T>() => undefined as T, getData: <T>() => this.request as T, getPattern: () => 'handshake' };
  }
  getType<TContext extends string = 'http'>(): TContext {
    return 'http' as TContext;
  }
}

/** Placeholder `getHandler()` of a handshake for a gateway without `handleConnection`. */
function handshake(): void {}
