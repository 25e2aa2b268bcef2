/**
 * The HTTP(S) listeners of gateways with a port (or a Unix socket path) of their own: one per port or socket path,
 * shared by the paths on it, each with
 * the WebSocket servers of those paths attached. Plain HTTP requests get 426; `openTimeoutMs` (of the gateway that
 * opens the port) bounds the TLS handshake and then the request head, as on the node layer's own listener, where
 * Node's own bounds would be 120 s and 60 s.
 *
 * With `http2` (TLS only) the listener is an `http2.createSecureServer` with `allowHTTP1`: browsers that reach it
 * over HTTP/2 open their WebSockets as extended CONNECT streams (RFC 8441) on their one connection, others upgrade
 * over HTTP/1.1 as before (see lib/node/http2-server.ts).
 */
import type { Logger } from '@nestjs/common';
import http from 'node:http';
import http2, { type Http2SecureServer, type Http2Session } from 'node:http2';
import https from 'node:https';
import type { Limits } from '../config/index.js';
import { ConfigError } from '../errors.js';
import { noticeFdExhaustion } from '../node/fd-limit-watch.js';
import { http2ServerOptions } from '../node/http2-server.js';
import { refuseRenegotiation } from '../node/server.js';
import { listenOnSocketPath } from '../node/unix-socket.js';
import type { ResolvedWebSocketsOptions } from './websockets-options.interface.js';

/** An `http.Server` or an `https.Server` (which is a `tls.Server`, not an `http.Server`). */
export type HttpLikeServer = http.Server | https.Server;

/** One port's listener. */
export interface GatewayListener {
  readonly server: HttpLikeServer | Http2SecureServer;
  readonly secure: boolean;
  /** Settles once listening, or once listening failed (the failure is logged). */
  readonly listening: Promise<void>;
}

/** What a listener takes from the configuration of the gateway that opens it. */
export interface ListenerConfig {
  readonly openTimeoutMs: number | null;
  readonly serverHeader: string | null;
  readonly limits: Limits;
}

/** Where a listener listens: a TCP port (on `host`), or a Unix socket file with its permissions. */
export type ListenTarget =
  /** `port` as declared (`@WebSocketGateway(port)`), which names the listener; `listenPort`, the `gatewayPorts` mapping of it (0: one the system picks). */
  | { readonly port: number; readonly host: string | undefined; readonly listenPort?: number }
  | { readonly socketPath: string; readonly permissions: number | null };

function keyOf(target: ListenTarget): string {
  return 'socketPath' in target ? `unix:${target.socketPath}` : `port:${target.port}`;
}

function describe(target: ListenTarget): string {
  return 'socketPath' in target ? `socket ${target.socketPath}` : `port ${target.port}`;
}

/** The open HTTP/2 sessions of each HTTP/2 listener, destroyed when it closes (Node's close() waits for them). */
const SESSIONS = new WeakMap<Http2SecureServer, Set<Http2Session>>();

function sessionsOf(server: Http2SecureServer): Http2Session[] {
  return [...(SESSIONS.get(server) ?? [])];
}

/** Node's default `requestTimeout`; an own listener raises it only when `openTimeoutMs` is longer. */
const NODE_REQUEST_TIMEOUT_MS = 300_000;
/** How often at most an own listener checks its connections' head times (Node's default is 30 s). */
const MAX_CONNECTIONS_CHECKING_INTERVAL_MS = 1000;
const STATUS_UPGRADE_REQUIRED = 426;

export class GatewayListeners {
  readonly #listeners = new Map<string, GatewayListener>();

  constructor(private readonly logger: Logger) {}

  /**
   * The listener of `target`, opened on first use.
   * @throws ConfigError when the port or socket is already served with the other TLS setting
   */
  get(target: ListenTarget, tls: ResolvedWebSocketsOptions['tls'], config: ListenerConfig, gatewayName: string, http2On = false): GatewayListener {
    const key = keyOf(target);
    const existing = this.#listeners.get(key);
    if (existing !== undefined) {
      if (existing.secure !== (tls !== null)) {
        throw new ConfigError(
          `${gatewayName} wants ${describe(target)} ${tls !== null ? 'with' : 'without'} TLS, but another gateway already serves it ` +
            `${existing.secure ? 'with' : 'without'}; give gateways on one ${'socketPath' in target ? 'socket' : 'port'} the same tls option`,
          'tls',
          'socketPath' in target ? target.socketPath : target.port,
        );
      }
      return existing;
    }
    const listener = this.#open(target, tls, config, gatewayName, http2On);
    this.#listeners.set(key, listener);
    return listener;
  }

  /** Closes every listener (its remaining keep-alive connections too). */
  async close(): Promise<void> {
    await Promise.all(
      [...this.#listeners.values()].map(
        ({ server, listening }) =>
          new Promise<void>((resolve) => {
            void listening.finally(() => {
              if (!server.listening) return resolve();
              server.close(() => resolve());
              if ('closeAllConnections' in server) server.closeAllConnections();
              else for (const session of sessionsOf(server)) session.destroy();
            });
          }),
      ),
    );
    this.#listeners.clear();
  }

  #open(target: ListenTarget, tls: ResolvedWebSocketsOptions['tls'], config: ListenerConfig, gatewayName: string, http2On: boolean): GatewayListener {
    const { openTimeoutMs, serverHeader } = config;
    // Plain HTTP requests to a WebSocket-only port get 426 with `Upgrade: websocket` (RFC 9110 §15.5.22), and the
    // `Server` header that every response of the package carries.
    const body = 'This port serves WebSocket connections only.\n';
    const headers: http.OutgoingHttpHeaders = {
      Upgrade: 'websocket',
      Connection: 'close',
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      ...(serverHeader === null ? {} : { Server: serverHeader }),
    };
    const onRequest = (_req: http.IncomingMessage, res: http.ServerResponse): void => {
      res.writeHead(STATUS_UPGRADE_REQUIRED, headers);
      res.end(body);
    };
    // HTTP/2 has no Upgrade or Connection header (RFC 9113 §8.2.2): its plain requests get the 426 without them.
    const { Upgrade: _upgrade, Connection: _connection, ...http2Headers } = headers;
    const onHttp2Request = (req: http2.Http2ServerRequest | http.IncomingMessage, res: http2.Http2ServerResponse | http.ServerResponse): void => {
      if (req.httpVersionMajor !== 2) return onRequest(req as http.IncomingMessage, res as http.ServerResponse);
      (res as http2.Http2ServerResponse).writeHead(STATUS_UPGRADE_REQUIRED, http2Headers);
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
    let server: HttpLikeServer | Http2SecureServer;
    if (tls !== null && http2On) {
      const secure = http2.createSecureServer(
        {
          ...http2ServerOptions(config.limits),
          allowHTTP1: true,
          ...(openTimeoutMs === null ? {} : { handshakeTimeout: openTimeoutMs }),
          ...tls,
        },
        onHttp2Request,
      );
      secure.on('secureConnection', refuseRenegotiation);
      const sessions = new Set<Http2Session>();
      secure.on('session', (session: Http2Session) => {
        sessions.add(session);
        session.once('close', () => sessions.delete(session));
      });
      SESSIONS.set(secure, sessions);
      server = secure;
    } else if (tls !== null) {
      server = https.createServer({ ...httpOptions, ...(openTimeoutMs === null ? {} : { handshakeTimeout: openTimeoutMs }), ...tls }, onRequest);
      // This port serves WebSockets only, which never need renegotiation (see refuseRenegotiation).
      server.on('secureConnection', refuseRenegotiation);
    } else {
      server = http.createServer(httpOptions, onRequest);
    }
    const scheme = tls !== null ? 'wss' : 'ws';
    let listened = false;
    const listening = new Promise<void>((resolve) => {
      // A permanent listener: an 'error' after listen() without one would end the process.
      server.on('error', (error: Error) => {
        if (listened) {
          // An accept that failed for want of descriptors is reported once per burst, through the WebSocket servers.
          if (!noticeFdExhaustion(error)) this.logger.error(`${gatewayName}: ${error.message}`);
          return;
        }
        if ('socketPath' in target) return;
        listened = true;
        this.logger.error(
          `${gatewayName}: cannot listen on ${target.host ?? '*'}:${target.listenPort ?? target.port}: ${error.message}; stop what holds the port, or give ` +
            `the gateway another one (@WebSocketGateway(port, ...)) or the module another host (option host, env WEBSOCKETS_HOST)`,
        );
        resolve();
      });
      if ('socketPath' in target) {
        listenOnSocketPath(server, target.socketPath, target.permissions).then(
          () => {
            listened = true;
            this.logger.log(`${gatewayName} listening on ${scheme}+unix:${target.socketPath}`);
            resolve();
          },
          (error: Error) => {
            listened = true;
            this.logger.error(
              `${gatewayName}: cannot listen on the socket ${target.socketPath}: ${error.message}; stop what listens there, ` +
                `or give the gateway another socketPath`,
            );
            resolve();
          },
        );
        return;
      }
      server.listen(target.listenPort ?? target.port, target.host, () => {
        listened = true;
        const address = server.address();
        const actual = address !== null && typeof address === 'object' ? address.port : target.port;
        this.logger.log(`${gatewayName} listening on ${scheme}://${target.host ?? '*'}:${actual}`);
        resolve();
      });
    });
    return { server, secure: tls !== null, listening };
  }
}
