/**
 * The HTTP/2 side of `WebSocketServer` (RFC 8441): where extended CONNECT streams come from.
 *
 * - `Http2Sessions`: a server on its own TLS port with `http2` on offers ALPN `h2` and `http/1.1` on its one
 *   listener; a TLS socket that chose `h2` is handed here, becomes an HTTP/2 session that advertises
 *   SETTINGS_ENABLE_CONNECT_PROTOCOL, and every stream it opens goes to the server's handshake path (a request that
 *   is not an extended CONNECT is refused there, 405). HTTP/1.1 sockets stay on the server's own parser.
 * - `Http2Router`: a server attached to an existing `http2.createSecureServer` (with `allowHTTP1` for the HTTP/1.1
 *   upgrades, which the `UpgradeRouter` takes) gets its extended CONNECT streams with `:protocol websocket`, routed
 *   by path as upgrades are; every other stream is left to the application.
 *
 * Bounds: each stream is one connection for `maxConnections` and the per-address limits (the address is the
 * session's); a session holds at most `HTTP2_MAX_CONCURRENT_STREAMS` streams (SETTINGS_MAX_CONCURRENT_STREAMS, more
 * are refused by the HTTP/2 layer with RST_STREAM); the header block is bounded by the handshake limits (advertised
 * as SETTINGS_MAX_HEADER_LIST_SIZE, then checked field by field: 414 / 431); a session without a stream is closed
 * after `openTimeoutMs`. The connection-level flow-control window is sized so that every stream can fill its own
 * window: a stream whose reader stops holds back its own window only, never its neighbours'.
 */
import http2, { type Http2SecureServer, type Http2Server, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { Limits } from '../config/index.js';

/**
 * SETTINGS_MAX_CONCURRENT_STREAMS of a session on a server's own port: nghttp2's and most servers' 100 (RFC 9113
 * §6.5.2 recommends no less). A browser tab rarely has more WebSockets than this; more go on another connection.
 */
export const HTTP2_MAX_CONCURRENT_STREAMS = 100;
/**
 * The flow-control window of each stream, advertised by our server and our client (SETTINGS_INITIAL_WINDOW_SIZE):
 * what a peer may send on a stream that is not read, so what one stream can make this side hold beyond
 * `readHighWaterMark`. RFC 9113's default, 64 KiB, is smaller than the socket buffers a TCP connection has, and two
 * peers that each stop reading while their own writes are backed up (this package does, so that unanswered pongs
 * cannot pile up) then stall an echo with more than about 64 KiB in flight each way; 256 KiB leaves room for that.
 */
export const HTTP2_STREAM_WINDOW = 256 * 1024;
/** Fields Node's HTTP/2 layer lets through beyond `maxNumHeaders`, so that a block slightly over gets our 431. */
const HEADER_PAIRS_SLACK = 16;

/** What the HTTP/2 side needs from a `WebSocketServer`. */
export interface StreamTarget {
  /** Whether this server handles `path`. */
  ownsPath(path: string | undefined): boolean;
  /** Takes over a stream: admission, the handshake from its header block, then the WebSocket. */
  handleStream(stream: ServerHttp2Stream, rawHeaders: readonly string[]): void;
  /** Answers a WebSocket stream that no server owns with 404. */
  rejectUnownedStream(stream: ServerHttp2Stream, path: string): void;
}

/** The HTTP/2 settings and options of a session that serves WebSockets, derived from the handshake limits. */
export function http2ServerOptions(limits: Limits): http2.ServerOptions {
  return {
    settings: {
      enableConnectProtocol: true,
      maxConcurrentStreams: HTTP2_MAX_CONCURRENT_STREAMS,
      initialWindowSize: HTTP2_STREAM_WINDOW,
      // The request line and every field at their longest: a block beyond it is refused by the HTTP/2 layer.
      maxHeaderListSize: (limits.maxNumHeaders + 1) * limits.maxLineLength,
    },
    maxHeaderListPairs: limits.maxNumHeaders + HEADER_PAIRS_SLACK,
  };
}

/**
 * Widens the session's connection-level receive window to what all of its streams can hold: one stream that is not
 * read then keeps back its own window only (head-of-line blocking between the WebSockets of one connection stays at
 * TCP's, not HTTP/2's).
 */
export function widenConnectionWindow(session: Http2Session, streams: number): void {
  const size = streams * HTTP2_STREAM_WINDOW;
  const apply = (): void => {
    try {
      session.setLocalWindowSize(size);
    } catch {
      // The session is already gone.
    }
  };
  if (session.connecting) session.once('connect', apply);
  else apply();
}

/** The HTTP/2 sessions of a server on its own port. */
export class Http2Sessions {
  readonly #server: Http2Server;
  readonly #sessions = new Set<Http2Session>();
  readonly #idleTimeoutMs: number | null;

  constructor(target: StreamTarget, limits: Limits, idleTimeoutMs: number | null) {
    this.#idleTimeoutMs = idleTimeoutMs;
    // A cleartext HTTP/2 server fed the TLS sockets that chose h2: the listener's TLS stays the one of HTTP/1.1.
    this.#server = http2.createServer(http2ServerOptions(limits));
    this.#server.on('session', (session: Http2Session) => this.#onSession(session));
    this.#server.on('stream', (stream: ServerHttp2Stream, _headers: unknown, _flags: number, rawHeaders: string[]) => {
      target.handleStream(stream, rawHeaders);
    });
    // A peer's protocol error concerns its session only (Node destroys it).
    this.#server.on('sessionError', ignore);
  }

  /** Serves HTTP/2 on a TLS socket whose ALPN chose `h2`. */
  adopt(socket: TLSSocket): void {
    this.#server.emit('connection', socket);
  }

  /** Ends every session: GOAWAY, then the socket once its streams are closed (the server has closed them). */
  close(): void {
    for (const session of this.#sessions) session.close();
  }

  #onSession(session: Http2Session): void {
    this.#sessions.add(session);
    session.on('error', ignore);
    session.once('close', () => this.#sessions.delete(session));
    widenConnectionWindow(session, HTTP2_MAX_CONCURRENT_STREAMS);
    const idleMs = this.#idleTimeoutMs;
    if (idleMs === null) return;
    // A session without a stream holds a socket and a TLS session for nothing: it gets openTimeoutMs to open one.
    let open = 0;
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      timer = setTimeout(() => session.close(), idleMs);
      timer.unref();
    };
    arm();
    session.on('stream', (stream: ServerHttp2Stream) => {
      open++;
      clearTimeout(timer);
      stream.once('close', () => {
        if (--open === 0 && !session.closed && !session.destroyed) arm();
      });
    });
    session.once('close', () => clearTimeout(timer));
  }
}

/** Routes one `http2.createSecureServer`'s extended CONNECT streams to the `WebSocketServer`s attached to it. */
export class Http2Router {
  readonly #server: Http2SecureServer;
  readonly #targets: StreamTarget[] = [];
  readonly #onStream = (stream: ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]): void =>
    this.#route(stream, headers, rawHeaders);
  /**
   * Node's compatibility layer (present once the application listens to `'request'`) turns every CONNECT into a
   * `'connect'` event, and answers 405 when nobody listens: the WebSocket streams are this router's, so they are
   * claimed here; other CONNECTs get Node's answer unless the application listens too.
   */
  readonly #onConnect = (request: http2.Http2ServerRequest, response: http2.Http2ServerResponse): void => {
    if (request.headers[':protocol'] === 'websocket') return;
    if (this.#server.listenerCount('connect') === 1) {
      response.statusCode = 405;
      response.end();
    }
  };

  private constructor(server: Http2SecureServer) {
    this.#server = server;
    // Sessions opened from now on advertise SETTINGS_ENABLE_CONNECT_PROTOCOL, which browsers wait for.
    server.updateSettings({ enableConnectProtocol: true });
    server.on('stream', this.#onStream);
    server.on('connect', this.#onConnect);
    server.on('session', widenWindow);
  }

  /** Registers `target` on `server`, creating the server's router on first use. */
  static attach(server: Http2SecureServer, target: StreamTarget): void {
    let router = ROUTERS.get(server);
    if (router === undefined) {
      router = new Http2Router(server);
      ROUTERS.set(server, router);
    }
    if (!router.#targets.includes(target)) router.#targets.push(target);
  }

  /** Unregisters `target`; the router removes its listeners when no target is left. */
  static detach(server: Http2SecureServer, target: StreamTarget): void {
    const router = ROUTERS.get(server);
    if (router === undefined) return;
    const index = router.#targets.indexOf(target);
    if (index >= 0) router.#targets.splice(index, 1);
    if (router.#targets.length === 0) {
      server.off('stream', router.#onStream);
      server.off('connect', router.#onConnect);
      server.off('session', widenWindow);
      ROUTERS.delete(server);
    }
  }

  #route(stream: ServerHttp2Stream, headers: http2.IncomingHttpHeaders, rawHeaders: string[]): void {
    if (headers[':method'] !== 'CONNECT' || headers[':protocol'] !== 'websocket') return;
    const path = headers[':path'];
    const owner = this.#targets.find((target) => target.ownsPath(path));
    if (owner !== undefined) owner.handleStream(stream, rawHeaders);
    else this.#targets[0]?.rejectUnownedStream(stream, path ?? '');
  }
}

/** Whether `server` is an HTTP/2 server (`http2.createSecureServer`), rather than an `http` or `https` one. */
export function isHttp2Server(server: object): server is Http2SecureServer {
  return typeof (server as Partial<Http2SecureServer>).updateSettings === 'function';
}

function widenWindow(session: Http2Session): void {
  widenConnectionWindow(session, HTTP2_MAX_CONCURRENT_STREAMS);
}

function ignore(): void {}

const ROUTERS = new WeakMap<Http2SecureServer, Http2Router>();
