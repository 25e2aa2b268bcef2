/**
 * `WebSocketServer`: accepts WebSocket connections on its own port (plain or TLS), or on the `'upgrade'` event of
 * an existing `http`/`https` server, where it owns one path and leaves the others alone.
 *
 * On its own port the server reads the handshake from the raw socket with the core's `RequestParser`, under the
 * handshake limits (414 / 431 with the `Server` header) and `openTimeoutMs`; a client that trickles its request is
 * cut off at the deadline and nothing of it is kept. Behind Node's `http` server the request is rebuilt from what
 * Node parsed (`requestFromNode`), and the same checks, hook and response follow.
 *
 * Two things serve browsers: a 4xx refusal by the hook or `allowedOrigins` may be sent in-band (option `refusals`:
 * a 101, then a close with 4000 + status, which a page can read where an HTTP status reaches it as 1006), and a
 * bearer token offered in `Sec-WebSocket-Protocol` becomes an `Authorization` header of the request (see
 * `withSubprotocolCredentials`).
 * With `http2` (own TLS port) or attached to an `http2.createSecureServer`, a WebSocket may also come as an HTTP/2
 * extended CONNECT stream (RFC 8441, see http2-server.ts): it takes the same handshake path, read from the header
 * block (`requestFromHttp2`) and answered with a header block (`streamOf`, http2-stream.ts) where a socket gets bytes.
 * Over 400 lines because both modes share one handshake path (admission, open timer, checks, the hook's decision,
 * the 101 or the refusal, the hand-over to `WebSocket`) and its bookkeeping; the pieces that stand alone live in
 * their own files (admission, upgrade router, TLS options, the descriptor watch).
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Http2SecureServer, ServerHttp2Stream } from 'node:http2';
import type { Server as HttpsServer } from 'node:https';
import net, { type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { pickWebSocketsOptions, resolveConfig, resolveHost, resolveHttp2, resolveSocketPath, resolveSocketPermissions, type Environment, type ResolvedConfig, type WebSocketsOptions } from '../config/index.js';
import { ConfigError, ConnectionLimitError, FileDescriptorLimitError, HandshakeError, InvalidStateError, NoEndpointError } from '../errors.js';
import { CloseCode } from '../protocol/close-codes.js';
import { Connection } from '../protocol/connection.js';
import { negotiateDeflate } from '../protocol/extensions.js';
import {
  acceptResponseHead,
  buildRejectResponse,
  checkOrigin,
  rejectionFor,
  requestTargetPath,
  RequestParser,
  validateUpgradeRequest,
  requestFromHttp2,
  ParsedHandshakeRequest,
  type HandshakeRequest,
  type UpgradeRequest,
} from '../protocol/handshake.js';
import { inBandRefusal, isInBandStatus } from '../protocol/in-band-refusal.js';
import { selectSubprotocol, withAuthMarker, withSubprotocolCredentials } from '../protocol/subprotocols.js';
import { Admission, isRefusal } from './admission.js';
import { createDeflateCodec } from './deflate.js';
import { noticeFdExhaustion, watchFdLimit, type FdExhaustion } from './fd-limit-watch.js';
import { serverTlsOptions } from './tls-options.js';
import { Http2Router, Http2Sessions, isHttp2Server } from './http2-server.js';
import { HandshakeStream, streamOf } from './http2-stream.js';
import { listenOnSocketPath } from './unix-socket.js';
import { UpgradeRouter, type UpgradeTarget } from './upgrade-router.js';
import { PreparedMessage } from '../protocol/prepared-message.js';
import { ServerHandshakeInfo, type HandshakeInfo } from './handshake-info.js';
import { requestFromNode } from './request-from-node.js';
import { WebSocket, type SendOptions, type WebSocketInit } from './websocket.js';

export type { HandshakeInfo } from './handshake-info.js';

/**
 * What the handshake hook returns. Nothing (or `true`) accepts. An object accepts with extra response headers, a
 * subprotocol (overriding the negotiated one; `null` for none) and data attached to the connection; or refuses
 * with an HTTP status, headers and a plain-text body.
 */
export type HandshakeDecision =
  | void
  | undefined
  | true
  | { accept?: true; headers?: Record<string, string>; protocol?: string | null; data?: unknown }
  | { reject: { status: number; body?: string; headers?: Record<string, string> } };

/** Options of `WebSocketServer`: the shared settings plus where to listen and how to accept. */
export interface WebSocketServerOptions extends WebSocketsOptions {
  /** Own listener: the port (0 picks a free one). */
  port?: number;
  /** Own listener: the bind address. @default all interfaces, or WEBSOCKETS_HOST */
  host?: string;
  /**
   * Own listener on a Unix domain socket at this path instead of a TCP port. A stale socket file (its server died)
   * is replaced; a live one gives EADDRINUSE. The file is removed by `close()`.
   */
  socketPath?: string;
  /** Permissions of the `socketPath` file, e.g. `0o660`. @default what the umask gives, or WEBSOCKETS_SOCKET_PERMISSIONS (octal) */
  socketPermissions?: number;
  /**
   * Attach to this server's `'upgrade'` event instead of listening on a port. An `http2.createSecureServer` (with
   * `allowHTTP1` for HTTP/1.1 clients) also gets its extended CONNECT streams with `:protocol websocket` served
   * (RFC 8441); its other streams stay the application's.
   */
  server?: HttpServer | HttpsServer | Http2SecureServer;
  /**
   * Own listener over TLS: also speak HTTP/2 (ALPN `h2` beside `http/1.1`) and accept WebSockets as extended
   * CONNECT streams (RFC 8441), several on one connection. Needs TLS (a ConfigError otherwise).
   * @default false, or WEBSOCKETS_HTTP2
   */
  http2?: boolean;
  /**
   * The path this server owns: `'/ws'` matches `/ws` and `/ws/`, whatever the query. Every path when omitted.
   * On its own port, other paths get 404; attached, other paths are left to other listeners (404 if none).
   */
  path?: string;
  /**
   * Own listener over TLS: passed to `tls.createServer` (key, cert, ca, pfx, passphrase, minVersion, requestCert, ...),
   * with `cert`, `key` and `ca` read from the files named by WEBSOCKETS_TLS_CERT, _KEY and _CA when left out. `false`
   * keeps the listener on plain TCP whatever the variables say.
   * @default TLS when WEBSOCKETS_TLS_CERT and WEBSOCKETS_TLS_KEY are both set, else plain TCP
   */
  tls?: tls.TlsOptions | false;
  /** Subprotocols the server speaks, in its order of preference: the first one the client offers is chosen. */
  subprotocols?: string[];
  /** Chooses the subprotocol instead of `subprotocols`; return `null` for none. */
  selectSubprotocol?: (offered: readonly string[], request: HandshakeRequest) => string | null;
  /** Allowed `Origin` values (strings match exactly, RegExps the whole origin); others get 403. Any origin when omitted. */
  allowedOrigins?: ReadonlyArray<string | RegExp>;
  /** Whether a request without `Origin` (not from a browser) is allowed when `allowedOrigins` is set. @default true */
  allowMissingOrigin?: boolean;
  /**
   * Runs before the 101, after the protocol checks; may be async. See `HandshakeDecision`. A refusal with a 4xx
   * status (returned, or thrown as a `HandshakeError`) is sent as the `refusals` setting says: HTTP or in-band.
   */
  handshake?: (info: HandshakeInfo) => HandshakeDecision | Promise<HandshakeDecision>;
  /** The environment the settings fall back on. @default process.env (read once, here) */
  env?: Environment;
  /**
   * Settings already resolved (`resolveConfig()`), used as they are instead of resolving the options of
   * `WebSocketsOptions` again: what a layer above does when it has resolved them itself (the Nest adapter). Give
   * either this or those options.
   */
  config?: Readonly<ResolvedConfig>;
  /**
   * The class of the connections, a subclass of `WebSocket` (as the `WebSocket` option of ws's server): to add
   * methods or change `send()` for every connection without a property or closure per connection.
   * @default WebSocket
   */
  WebSocket?: new (init: WebSocketInit) => WebSocket;
}

const STATUS_INTERNAL_ERROR = 500;
const STATUS_SERVICE_UNAVAILABLE = 503;
/**
 * How long a refused client has to read the response before its socket is destroyed, when closeTimeoutMs is off,
 * and always for a refusal over a connection limit.
 */
const REFUSAL_LINGER_MS = 1000;
const NO_SUBPROTOCOLS: readonly string[] = Object.freeze([]);
const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;
const EMPTY = Buffer.alloc(0);

/**
 * A WebSocket server. Events: `'connection'` (ws: WebSocket, info: HandshakeInfo), `'handshakeError'`
 * (error: HandshakeError, info: HandshakeInfo | undefined) for every refused handshake, `'error'` (error: Error,
 * ws?: WebSocket) for errors of the listener or of connections without their own `'error'` listener, and
 * `'close'` once `close()` has finished.
 */
export class WebSocketServer extends EventEmitter implements UpgradeTarget {
  /** The resolved settings (options, then environment, then defaults). */
  readonly config: Readonly<ResolvedConfig>;
  readonly #clients = new Set<WebSocket>();
  /** Sockets in their opening handshake, with their `openTimeoutMs` timer. */
  readonly #handshaking = new Map<Duplex, NodeJS.Timeout | undefined>();
  /** Sockets refused and ended, kept until the client closes or the linger runs out; `close()` destroys them. */
  readonly #refused = new Set<Duplex>();
  // Listeners shared by all the connections of this server, so that an idle connection holds no closure of its own.
  readonly #handshakeSocketClosed: (this: Duplex) => void;
  readonly #clientClosed: (this: WebSocket) => void;
  readonly #connectionError: (error: Error, ws: WebSocket) => void;
  readonly #options: WebSocketServerOptions;
  readonly #path: string | undefined;
  readonly #listener: net.Server | undefined;
  readonly #attachedTo: HttpServer | HttpsServer | Http2SecureServer | undefined;
  /** Own listener with `http2`: the HTTP/2 sessions of the sockets that chose h2. */
  readonly #http2: Http2Sessions | undefined;
  readonly #host: string | undefined;
  readonly #socketPath: string | undefined;
  readonly #socketPermissions: number | null;
  readonly #admission: Admission;
  /** Stops this server hearing of file-descriptor exhaustion (see `watchFdLimit`); set while it is open. */
  #unwatchFdLimit: (() => void) | undefined;
  #closing: Promise<void> | undefined;

  /**
   * @throws ConfigError for an invalid setting, an unreadable or mismatched TLS file, or WEBSOCKETS_TLS_CERT without
   *   WEBSOCKETS_TLS_KEY (or the reverse) on a server on its own port
   * @throws InvalidStateError when not exactly one of `port`, `socketPath` and `server` is given
   */
  constructor(options: WebSocketServerOptions) {
    super();
    const server = this;
    this.#handshakeSocketClosed = function () {
      server.#endHandshake(this);
    };
    this.#clientClosed = function () {
      server.#clients.delete(this);
    };
    this.#connectionError = (error, ws) => this.#reportError(error, ws);
    this.#options = options;
    const env = options.env ?? process.env;
    if (options.config !== undefined) {
      const given = Object.keys(pickWebSocketsOptions(options));
      if (given.length > 0) {
        throw new ConfigError(`give WebSocketServer either config or settings (${given.join(', ')}), not both`, 'config', given);
      }
      this.config = options.config;
    } else {
      this.config = resolveConfig(options, env);
    }
    this.#admission = new Admission(this.config.connectionLimits);
    this.#path = options.path === undefined ? undefined : normalizePath(options.path);
    this.#socketPermissions = resolveSocketPermissions(options.socketPermissions, env);
    if (options.server !== undefined) {
      // The attached server's own TLS (http or https) applies; the WEBSOCKETS_TLS_* variables are not read.
      if (options.port !== undefined || options.socketPath !== undefined || (options.tls !== undefined && options.tls !== false)) {
        throw new InvalidStateError('give either server (attach mode) or port/socketPath/tls (own listener), not both');
      }
      if (options.http2 !== undefined) {
        throw new InvalidStateError('option http2 is for a server on its own port; attached, pass an http2.createSecureServer as server');
      }
      this.#attachedTo = options.server;
      UpgradeRouter.attach(options.server as HttpServer, this);
      if (isHttp2Server(options.server)) Http2Router.attach(options.server, this);
      this.#unwatchFdLimit = watchFdLimit(this.#fdExhausted);
    } else {
      if (options.port === undefined && options.socketPath === undefined) {
        throw new InvalidStateError('WebSocketServer needs a port or a socketPath (own listener), or a server (attach mode)');
      }
      if (options.port !== undefined && options.socketPath !== undefined) {
        throw new InvalidStateError('give either port or socketPath, not both');
      }
      // The option only: WEBSOCKETS_SOCKET_PATH is for the apps that read it (the sample), not for every server.
      this.#socketPath = resolveSocketPath(options.socketPath, {}) ?? undefined;
      this.#host = resolveHost(options.host, env) ?? undefined;
      const openTimeoutMs = this.config.openTimeoutMs;
      const tlsOptions = serverTlsOptions(options.tls, env);
      const http2 = resolveHttp2(options.http2, env, tlsOptions !== null);
      if (http2) this.#http2 = new Http2Sessions(this, this.config.limits, openTimeoutMs);
      const alpn = http2 ? { ALPNProtocols: ['h2', 'http/1.1'] } : {};
      this.#listener =
        tlsOptions !== null
          ? tls.createServer({ ...(openTimeoutMs === null ? {} : { handshakeTimeout: openTimeoutMs }), ...tlsOptions, ...alpn }, (socket) =>
              this.#onRawSocket(socket, true),
            )
          : net.createServer({ noDelay: true }, (socket) => this.#onRawSocket(socket, false));
      // An accept that failed for want of descriptors is reported once per burst, like those the probe finds.
      this.#listener.on('error', (error) => {
        if (!noticeFdExhaustion(error)) this.#reportError(error);
      });
      // A failed TLS handshake (an untrusted client certificate, a plain-text client) only concerns that socket.
      this.#listener.on('tlsClientError', (_error: Error, socket: tls.TLSSocket) => socket.destroy());
    }
  }

  /** The open connections. */
  get clients(): ReadonlySet<WebSocket> {
    return this.#clients;
  }

  /**
   * Own-listener mode: starts listening on `port` and `host`, or on `socketPath`.
   * @returns the address once listening: an `AddressInfo` for a port, the path for a Unix socket (as Node's
   *   `server.address()` does)
   * @throws InvalidStateError in attach mode or after `close()`; the listener's error (EADDRINUSE, ...)
   */
  listen(): Promise<AddressInfo | string> {
    const listener = this.#listener;
    if (listener === undefined) return Promise.reject(new InvalidStateError('listen() is for a server on its own port; this one is attached'));
    if (this.#closing !== undefined) return Promise.reject(new InvalidStateError('the server is closed'));
    const socketPath = this.#socketPath;
    if (socketPath !== undefined) return listenOnSocketPath(listener, socketPath, this.#socketPermissions).then(() => socketPath);
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      listener.once('error', onError);
      listener.listen(this.#options.port, this.#host, () => {
        listener.off('error', onError);
        this.#unwatchFdLimit ??= watchFdLimit(this.#fdExhausted);
        resolve(listener.address() as AddressInfo);
      });
    });
  }

  /** The listening address in own-listener mode, else `null`. */
  address(): AddressInfo | null {
    const address = this.#listener?.address();
    return address !== null && typeof address === 'object' ? address : null;
  }

  /**
   * Whether this server owns the path of `url`, a request target in origin form (`/ws?x=1`) or absolute form
   * (`http://host/ws`, routed on its path as RFC 9112 §3.2.2 says; its authority is checked against `Host` later).
   * The query is ignored, a trailing `/` too.
   */
  ownsPath(url: string | undefined): boolean {
    if (this.#path === undefined) return true;
    if (url === undefined) return false;
    return normalizePath(requestTargetPath(url)) === this.#path;
  }

  /**
   * Takes over an upgrade request that Node's `http` server parsed: checks it, runs the hook and answers 101 or a
   * refusal. Attach mode calls it for the paths this server owns; it may also be called by hand.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.#closing !== undefined) {
      this.#refuse(socket, new HandshakeError('the server is shutting down', STATUS_SERVICE_UNAVAILABLE), undefined);
      return;
    }
    socket.on('error', destroyOnError);
    refuseRenegotiation(socket);
    if (!this.#admit(socket)) return;
    this.#startOpenTimer(socket);
    let request: ParsedHandshakeRequest;
    try {
      request = requestFromNode(req, this.config.limits);
    } catch (error) {
      this.#refuse(socket, error, undefined);
      return;
    }
    void this.#completeHandshake(socket, request, head, isSecure(socket));
  }

  /**
   * @internal Takes over an HTTP/2 stream that opens a WebSocket (RFC 8441): admission, the open timeout and the
   * handshake limits as for an upgrade, the request read from the header block (`rawHeaders` as Node gives them),
   * then the same checks, hook and answer (`:status 200`, or the refusal's status on the stream).
   */
  handleStream(stream: ServerHttp2Stream, rawHeaders: readonly string[]): void {
    const handshake = HandshakeStream.register(stream);
    stream.on('error', destroyOnError);
    if (this.#closing !== undefined) {
      this.#refuse(stream, new HandshakeError('the server is shutting down', STATUS_SERVICE_UNAVAILABLE), undefined);
      return;
    }
    if (!this.#admit(stream)) return;
    this.#startOpenTimer(stream);
    let request: ParsedHandshakeRequest;
    try {
      request = requestFromHttp2(rawHeaders, this.config.limits);
    } catch (error) {
      this.#refuse(stream, error, undefined);
      return;
    }
    void this.#completeHandshake(stream, request, EMPTY, handshake.tlsSocket !== undefined);
  }

  /** @internal Answers a WebSocket stream that no server on the HTTP/2 server owns with 404. */
  rejectUnownedStream(stream: ServerHttp2Stream, path: string): void {
    const handshake = HandshakeStream.register(stream);
    stream.on('error', destroyOnError);
    const query = path.indexOf('?');
    this.#refuse(stream, new NoEndpointError(query === -1 ? path : path.slice(0, query), handshake.remoteAddress), undefined);
  }

  /**
   * Sends one message to every open connection (or those `filter` accepts), built once: the frame is serialized a
   * single time and every connection writes the same bytes, unless it compresses the message (permessage-deflate
   * with the message at or above `compression.threshold`), in which case it compresses its own copy. Each
   * connection applies its own bound and slow-consumer policy; a connection that fails the send only misses it.
   * @returns how many connections the message was handed to
   */
  broadcast(data: string | Buffer | PreparedMessage, options: { binary?: boolean; filter?: (ws: WebSocket) => boolean; volatile?: boolean } = {}): number {
    const message = data instanceof PreparedMessage ? data : new PreparedMessage(data, options.binary);
    const sendOptions: SendOptions = { volatile: options.volatile === true };
    const filter = options.filter;
    let count = 0;
    for (const ws of this.#clients) {
      if (ws.readyState !== WebSocket.OPEN || (filter !== undefined && !filter(ws))) continue;
      // The promise is already handled; a connection that goes away only misses the message.
      void ws.send(message, sendOptions);
      count++;
    }
    return count;
  }

  /**
   * Answers an upgrade that no server on this HTTP server owns (the router calls it): 404 with the Server header,
   * reported as a `NoEndpointError` naming the path and the client, not this server.
   */
  rejectUnowned(req: IncomingMessage, socket: Duplex): void {
    socket.on('error', destroyOnError);
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    this.#refuse(socket, new NoEndpointError(query === -1 ? url : url.slice(0, query), (socket as Partial<net.Socket>).remoteAddress), undefined);
  }

  /**
   * Stops accepting, sends 1001 (going away) to every connection, waits for them up to `closeTimeoutMs` (after
   * which each socket is destroyed), then resolves. Handshakes in progress are cut. Calling it again returns the
   * same promise.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    const listenerClosed =
      this.#listener?.listening === true
        ? new Promise<void>((resolve) => this.#listener!.close(() => resolve()))
        : Promise.resolve();
    // Retired, not detached: until the HTTP server closes, this path answers 503 rather than fall through to a 404.
    if (this.#attachedTo !== undefined) {
      UpgradeRouter.retire(this.#attachedTo as HttpServer, this);
      if (isHttp2Server(this.#attachedTo)) Http2Router.detach(this.#attachedTo, this);
    }
    this.#unwatchFdLimit?.();
    this.#unwatchFdLimit = undefined;
    for (const socket of this.#handshaking.keys()) socket.destroy();
    this.#handshaking.clear();
    // A refused client that keeps its side open would otherwise hold the listener's close for the whole linger.
    for (const socket of this.#refused) socket.destroy();
    this.#refused.clear();
    await Promise.all([...this.#clients].map((ws) => ws.close(CloseCode.GOING_AWAY, 'server shutting down')));
    // Every WebSocket stream is closed: GOAWAY to the sessions, whose sockets the listener's close waits for.
    this.#http2?.close();
    await listenerClosed;
    this.emit('close');
  }

  // --- handshake -----------------------------------------------------------------------------------------------

  /** Own listener: reads the request from the raw socket under the limits and the open timeout. */
  #onRawSocket(socket: net.Socket | tls.TLSSocket, secure: boolean): void {
    socket.on('error', destroyOnError);
    if (secure) refuseRenegotiation(socket);
    if (this.#closing !== undefined) {
      socket.destroy();
      return;
    }
    // A TLS client that chose HTTP/2: its streams are admitted one by one (handleStream).
    if (this.#http2 !== undefined && (socket as tls.TLSSocket).alpnProtocol === 'h2') {
      this.#http2.adopt(socket as tls.TLSSocket);
      return;
    }
    if (!this.#admit(socket)) return;
    this.#startOpenTimer(socket);
    const parser = new RequestParser(this.config.limits);
    const onData = (chunk: Buffer): void => {
      let request: ParsedHandshakeRequest | null;
      try {
        request = parser.push(chunk);
      } catch (error) {
        socket.off('data', onData);
        this.#refuse(socket, error, undefined);
        return;
      }
      if (request === null) return;
      socket.off('data', onData);
      socket.pause();
      void this.#completeHandshake(socket, request, parser.rest, secure);
    };
    socket.on('data', onData);
  }

  /**
   * Takes a slot for `socket` until it closes (see `Admission`); over a connection limit, answers 503 with
   * `Retry-After` at once, before reading the request, and returns false.
   */
  #admit(socket: Duplex): boolean {
    if (!this.#admission.enabled) return true;
    const result = this.#admission.admit(remoteAddressOf(socket));
    if (isRefusal(result)) {
      this.#refuse(socket, result, undefined);
      return false;
    }
    socket.once('close', () => result.release());
    if (socket.closed) result.release();
    return true;
  }

  /** Arms `openTimeoutMs` for a socket in its handshake: at the deadline it is destroyed (nothing of it is kept). */
  #startOpenTimer(socket: Duplex): void {
    const timeout = this.config.openTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    if (timeout !== null) {
      timer = setTimeout(destroySocket, timeout, socket);
      timer.unref();
    }
    this.#handshaking.set(socket, timer);
    socket.on('close', this.#handshakeSocketClosed);
  }

  /** The handshake of `socket` is over (answered, or the socket closed): stop its timer, keep nothing of it. */
  #endHandshake(socket: Duplex): void {
    const timer = this.#handshaking.get(socket);
    if (timer !== undefined) clearTimeout(timer);
    this.#handshaking.delete(socket);
    socket.off('close', this.#handshakeSocketClosed);
  }

  async #completeHandshake(
    socket: Duplex,
    received: ParsedHandshakeRequest,
    head: Buffer,
    secure: boolean,
  ): Promise<void> {
    // A bearer token offered as a subprotocol leaves the negotiation here and reaches everything after (the hook,
    // guards, `ws.request`) as an Authorization header only.
    let request: ParsedHandshakeRequest;
    try {
      request = withSubprotocolCredentials(received);
    } catch (error) {
      this.#refuse(socket, error, undefined);
      return;
    }
    const info = new ServerHandshakeInfo(request, remoteAddressOf(socket), secure, secure ? peerCertificateOf(socket) : undefined);
    let ws: WebSocket;
    let upgrade: UpgradeRequest | undefined;
    // A refusal the application decided on (allowedOrigins, the hook), which may be sent in-band; not a malformed
    // request, a limit or a failure of the server.
    let decided: unknown;
    try {
      if (this.#listener !== undefined && !this.ownsPath(request.path)) {
        throw new NoEndpointError(request.path, info.remoteAddress);
      }
      upgrade = validateUpgradeRequest(request);
      if (this.#options.allowedOrigins !== undefined) {
        try {
          checkOrigin(request, this.#options.allowedOrigins, this.#options.allowMissingOrigin ?? true);
        } catch (error) {
          decided = error;
          throw error;
        }
      }
      let protocol =
        this.#options.selectSubprotocol !== undefined
          ? this.#options.selectSubprotocol(upgrade.protocols, request)
          : selectSubprotocol(upgrade.protocols, this.#options.subprotocols ?? NO_SUBPROTOCOLS);
      let protocolChooser = 'selectSubprotocol';
      const deflate = negotiateDeflate(upgrade.extensions === '' ? undefined : upgrade.extensions, this.config.compression);

      let decision: HandshakeDecision;
      try {
        decision = this.#options.handshake === undefined ? undefined : await this.#options.handshake(info);
      } catch (error) {
        if (error instanceof HandshakeError) {
          decided = error;
          throw error;
        }
        this.#reportError(toError(error));
        throw new HandshakeError('the handshake hook failed', STATUS_INTERNAL_ERROR, {}, { cause: error });
      }
      if (socket.destroyed) return; // timed out or gone while the hook ran
      let extraHeaders: Record<string, string> = NO_HEADERS;
      let data: unknown;
      if (typeof decision === 'object' && decision !== null) {
        if ('reject' in decision) {
          const { status, body, headers } = decision.reject;
          const failure = new HandshakeError(`refused by the handshake hook with HTTP ${status}`, status, headers ?? {});
          if (this.#inBand(request, status)) {
            this.#refuseInBand(socket, upgrade, failure, body ?? '', info);
            return;
          }
          let response: Buffer;
          try {
            const stream = streamOf(socket);
            response =
              stream !== undefined
                ? stream.reject(status, body ?? '', headers ?? {}, this.config.serverHeader)
                : buildRejectResponse(status, body ?? '', { serverHeader: this.config.serverHeader, headers: headers ?? {} });
          } catch (error) {
            throw invalidDecision('a refusal', error);
          }
          this.#writeRefusal(socket, response);
          this.#emitHandshakeError(failure, info);
          return;
        }
        if (decision.headers !== undefined) extraHeaders = decision.headers;
        if (decision.protocol !== undefined) {
          protocol = decision.protocol;
          protocolChooser = 'the handshake hook';
        }
        data = decision.data;
      }
      protocol = withAuthMarker(protocol, upgrade.protocols);
      if (this.#closing !== undefined) throw new HandshakeError('the server is shutting down', STATUS_SERVICE_UNAVAILABLE);
      // RFC 6455 §4.2.2 item 5: the server picks one of the client's values or none; a client must fail a 101 with
      // any other, so the application's mistake is answered here, as a 500, rather than by every client.
      if (protocol !== null && protocol !== undefined && !upgrade.protocols.includes(protocol)) {
        throw new ConfigError(
          `${protocolChooser} chose the subprotocol ${JSON.stringify(protocol)}, which the client did not offer ` +
            `(it offered ${upgrade.protocols.length === 0 ? 'none' : upgrade.protocols.map((p) => JSON.stringify(p)).join(', ')}); ` +
            'choose one of the offered subprotocols, or null for none (RFC 6455 §4.2.2)',
          protocolChooser === 'selectSubprotocol' ? 'selectSubprotocol' : 'handshake',
          protocol,
        );
      }

      // The 101 is written as a latin1 string (as ws does): no Buffer is made for it before the socket encodes it.
      // Over HTTP/2 the acceptance is the stream's header block, :status 200 (RFC 8441 §5).
      const stream = streamOf(socket);
      let response = '';
      try {
        const accept = { protocol, extensions: deflate?.response ?? null, serverHeader: this.config.serverHeader, headers: extraHeaders };
        if (stream !== undefined) stream.accept(accept);
        else response = acceptResponseHead({ key: upgrade.key, ...accept });
      } catch (error) {
        throw invalidDecision('headers', error);
      }
      this.#endHandshake(socket);
      if (stream === undefined) socket.write(response, 'latin1');
      const connection = new Connection({
        side: 'server',
        maxMessageSize: this.config.limits.maxMessageSize,
        maxFragments: this.config.limits.maxFragments,
        codec: deflate === null ? undefined : createDeflateCodec(deflate.params, this.config.compression!.memLevel),
        compressionThreshold: this.config.compression?.threshold,
      });
      ws = new (this.#options.WebSocket ?? WebSocket)({
        socket,
        connection,
        config: this.config,
        protocol: protocol ?? '',
        extensions: deflate?.response ?? '',
        request,
        remoteAddress: info.remoteAddress,
        data,
        head,
        onUnhandledError: this.#connectionError,
      });
      // The WebSocket handles the socket's errors from here on (it ends the connection on any of them).
      socket.off('error', destroyOnError);
    } catch (error) {
      if (error === decided && upgrade !== undefined && error instanceof HandshakeError && this.#inBand(request, error.httpStatus)) {
        this.#refuseInBand(socket, upgrade, error, error.message, info);
        return;
      }
      this.#refuse(socket, error, info);
      return;
    }
    this.#clients.add(ws);
    ws.on('close', this.#clientClosed);
    if (this.#closing !== undefined) {
      void ws.close(CloseCode.GOING_AWAY, 'server shutting down');
      return;
    }
    try {
      this.emit('connection', ws, info);
    } catch (error) {
      // A throwing 'connection' listener fails its own connection only.
      if (ws.readyState === WebSocket.OPEN) void ws.close(CloseCode.INTERNAL_ERROR);
      this.#reportError(toError(error), ws);
    }
  }

  /** Answers a failed handshake with its HTTP status (400, 403, 404, 414, 431, ...), then ends the socket. */
  #refuse(socket: Duplex, error: unknown, info: HandshakeInfo | undefined): void {
    const failure =
      error instanceof HandshakeError
        ? error
        : new HandshakeError('internal error', STATUS_INTERNAL_ERROR, {}, { cause: error });
    if (!(error instanceof HandshakeError)) this.#reportError(toError(error));
    let response: Buffer;
    try {
      const stream = streamOf(socket);
      response = stream !== undefined ? stream.refuse(failure, this.config.serverHeader) : rejectionFor(failure, this.config.serverHeader);
    } catch (error) {
      // A refusal that cannot be serialized must not leave the socket hanging: answer a bare 500 instead.
      this.#reportError(toError(error));
      response = buildRejectResponse(STATUS_INTERNAL_ERROR, '', { serverHeader: this.config.serverHeader });
    }
    this.#writeRefusal(socket, response, failure instanceof ConnectionLimitError);
    this.#emitHandshakeError(failure, info);
  }

  /**
   * Whether a refusal with `status` goes in-band (option `refusals`): a 4xx, and `'in-band'`, or `'auto'` with an
   * `Origin` header (a browser, which cannot read an HTTP refusal).
   */
  #inBand(request: HandshakeRequest, status: number): boolean {
    const mode = this.config.refusals;
    return isInBandStatus(status) && (mode === 'in-band' || (mode === 'auto' && request.headers.has('Origin')));
  }

  /**
   * Refuses in-band: a 101, then at once a close with 4000 + status and `message` as reason; then ends the socket.
   * The 101 names one of the offered subprotocols (the credentials marker first), since a browser that offered some
   * fails a 101 without one, and would then see 1006 instead of the refusal.
   */
  #refuseInBand(socket: Duplex, upgrade: UpgradeRequest, failure: HandshakeError, message: string, info: HandshakeInfo): void {
    const protocol = withAuthMarker(null, upgrade.protocols) ?? upgrade.protocols[0] ?? null;
    const serverHeader = this.config.serverHeader;
    const stream = streamOf(socket);
    this.#writeRefusal(
      socket,
      stream !== undefined
        ? stream.refuseInBand(protocol, failure.httpStatus, message, serverHeader)
        : inBandRefusal({ key: upgrade.key, protocol, status: failure.httpStatus, message, serverHeader }),
    );
    this.#emitHandshakeError(failure, info);
  }

  /** Writes a complete refusal and ends the socket; it is destroyed if the client has not closed after the linger. */
  #writeRefusal(socket: Duplex, response: Buffer, overLimit = false): void {
    this.#endHandshake(socket);
    if (socket.destroyed) return;
    // Keep reading (and dropping) what the client still sends, so that it is not reset before it reads the answer.
    socket.removeAllListeners('data');
    socket.on('data', ignore);
    socket.resume();
    socket.end(response);
    // A socket over a connection limit holds no slot: keep it briefly, so that a flood cannot park sockets here.
    const lingerMs = overLimit ? REFUSAL_LINGER_MS : (this.config.closeTimeoutMs ?? REFUSAL_LINGER_MS);
    const linger = setTimeout(() => socket.destroy(), lingerMs);
    linger.unref();
    this.#refused.add(socket);
    socket.once('close', () => {
      clearTimeout(linger);
      this.#refused.delete(socket);
    });
  }

  /**
   * The process has no file descriptor free: clients are being reset by the OS, unseen. Reported once per burst,
   * with the limit and the fix (`maxConnections`, `ulimit -n`).
   */
  readonly #fdExhausted = (cause: FdExhaustion, limit: number | null): void => {
    this.#reportError(new FileDescriptorLimitError(cause, limit, this.#clients.size + this.#handshaking.size));
  };

  #emitHandshakeError(error: HandshakeError, info: HandshakeInfo | undefined): void {
    if (this.listenerCount('handshakeError') > 0) this.emit('handshakeError', error, info);
  }

  /** Errors with nowhere else to go: the server's `'error'` listeners, else a process warning (never a crash). */
  #reportError(error: Error, ws?: WebSocket): void {
    if (this.listenerCount('error') > 0) this.emit('error', error, ws);
    else process.emitWarning(error.stack ?? error.message, 'WebSocketServerWarning');
  }
}

/** `/ws/` and `/ws` are the same route. */
function normalizePath(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

function isSecure(socket: Duplex): boolean {
  return (socket as Partial<tls.TLSSocket>).encrypted === true;
}

/** The client's address: the socket's, or for an HTTP/2 stream its session's. */
function remoteAddressOf(socket: Duplex): string | undefined {
  const stream = streamOf(socket);
  return stream !== undefined ? stream.remoteAddress : (socket as Partial<net.Socket>).remoteAddress;
}

function peerCertificateOf(socket: Duplex): tls.PeerCertificate | undefined {
  const tlsSocket = (streamOf(socket)?.tlsSocket ?? socket) as Partial<tls.TLSSocket>;
  if (typeof tlsSocket.getPeerCertificate !== 'function') return undefined;
  const certificate = tlsSocket.getPeerCertificate();
  return certificate !== null && Object.keys(certificate).length > 0 ? certificate : undefined;
}

function ignore(): void {}

/** A socket error (a reset, a TLS error that leaves the socket open) ends the socket; 'close' does the rest. */
function destroyOnError(this: Duplex): void {
  this.destroy();
}

/**
 * Turns off TLS renegotiation on a server's TLS socket: each one costs the server a full handshake, nothing in a
 * WebSocket needs it, and Node only limits it (3 per 10 minutes, then an 'error'). The next renegotiation request
 * is an error on the socket, which `destroyOnError` turns into the end of the connection.
 */
export function refuseRenegotiation(socket: Duplex): void {
  const tlsSocket = socket as Partial<tls.TLSSocket>;
  if (typeof tlsSocket.disableRenegotiation === 'function') tlsSocket.disableRenegotiation();
}

function destroySocket(socket: Duplex): void {
  socket.destroy();
}

/**
 * The error reported when what the handshake hook returned cannot be written (the client gets a 500): the
 * protocol layer's reason (a reserved header, a status that is not a refusal), and where to fix it.
 */
function invalidDecision(what: 'headers' | 'a refusal', error: unknown): unknown {
  if (!(error instanceof ConfigError)) return error;
  const failure = new ConfigError(`the handshake hook returned ${what} that cannot be sent (${error.message}); fix what the hook returns`, 'handshake', error.value);
  return Object.assign(failure, { cause: error });
}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
