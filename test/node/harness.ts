/**
 * What the node tests share: servers on port 0 that are closed in `afterEach`, clients of both libraries tracked
 * the same way, and small waits on events under a bound.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import WsLibrary, { WebSocketServer as WsServer } from 'ws';
import { connect, type ConnectOptions } from '../../lib/node/client.js';
import { WebSocketServer, type WebSocketServerOptions } from '../../lib/node/server.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import { destroyRawConnections, WAIT_MS, withTimeout } from '../support/net.js';

export { WAIT_MS };


/** Settings that keep timers out of tests that do not test them, with an empty environment. */
export const QUIET: WebSocketServerOptions = { pingIntervalMs: null, env: {} };

/** Tracks everything a test opens, so that `afterEach(() => harness.cleanup())` closes it all. */
export class Harness {
  readonly #servers: WebSocketServer[] = [];
  readonly #sockets: WebSocket[] = [];
  readonly #wsClients: WsLibrary[] = [];
  readonly #wsServers: WsServer[] = [];
  readonly #httpServers: http.Server[] = [];

  /** A server on its own port (127.0.0.1 unless `host` says otherwise), listening. */
  async listen(options: Omit<WebSocketServerOptions, 'port'> = {}): Promise<{ server: WebSocketServer; port: number; url: string }> {
    const server = new WebSocketServer({ ...QUIET, host: '127.0.0.1', ...options, port: 0 });
    this.#servers.push(server);
    const { port, address } = (await server.listen()) as AddressInfo;
    const host = address.includes(':') ? `[${address}]` : address;
    return { server, port, url: `${options.tls ? 'wss' : 'ws'}://${host}:${port}` };
  }

  /** A server attached to `httpServer` (tracked for cleanup). */
  attach(options: WebSocketServerOptions): WebSocketServer {
    const server = new WebSocketServer({ ...QUIET, ...options });
    this.#servers.push(server);
    return server;
  }

  /** A plain `http` server on 127.0.0.1, listening (closed in cleanup). */
  async httpServer(handler?: http.RequestListener): Promise<{ server: http.Server; port: number }> {
    const server = http.createServer(handler);
    this.#httpServers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return { server, port: (server.address() as AddressInfo).port };
  }

  /** Our client, tracked. */
  async connect(url: string, options: ConnectOptions = {}): Promise<WebSocket> {
    const ws = await connect(url, { pingIntervalMs: null, env: {}, ...options });
    this.#sockets.push(ws);
    return ws;
  }

  /** Tracks a WebSocket made elsewhere (a server's connection). */
  track(ws: WebSocket): WebSocket {
    this.#sockets.push(ws);
    return ws;
  }

  /** The `ws` library's client, open. */
  async wsClient(url: string, options: WsLibrary.ClientOptions = {}): Promise<WsLibrary> {
    const client = new WsLibrary(url, options);
    this.#wsClients.push(client);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        client.once('open', () => resolve());
        client.once('error', reject);
      }),
      WAIT_MS,
      `ws client open on ${url}`,
    );
    return client;
  }

  /** The `ws` library's client, not awaited (for refusals). */
  wsClientRaw(url: string, options: WsLibrary.ClientOptions = {}): WsLibrary {
    const client = new WsLibrary(url, options);
    client.on('error', () => undefined);
    this.#wsClients.push(client);
    return client;
  }

  /** The `ws` library's server on 127.0.0.1 (or `host`), listening. */
  async wsServer(options: WsLibrary.ServerOptions = {}): Promise<{ server: WsServer; port: number }> {
    const server = new WsServer({ host: '127.0.0.1', port: 0, ...options });
    this.#wsServers.push(server);
    await once(server, 'listening');
    return { server, port: (server.address() as AddressInfo).port };
  }

  /** Closes everything, servers last. */
  async cleanup(): Promise<void> {
    destroyRawConnections();
    for (const ws of this.#sockets.splice(0)) ws.terminate();
    for (const client of this.#wsClients.splice(0)) client.terminate();
    for (const server of this.#wsServers.splice(0)) {
      for (const client of server.clients) client.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await Promise.all(this.#servers.splice(0).map((server) => withTimeout(server.close(), WAIT_MS, 'server close')));
    for (const server of this.#httpServers.splice(0)) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
}

/** Resolves with the arguments of the next `event` on `emitter`, or rejects after `ms`. */
export function next<T extends unknown[]>(emitter: NodeJS.EventEmitter, event: string, ms = WAIT_MS): Promise<T> {
  return withTimeout(once(emitter, event) as Promise<T>, ms, `event ${event}`);
}

/** The `ws` client's next message as [data, isBinary]. */
export function nextWsMessage(client: WsLibrary, ms = WAIT_MS): Promise<[Buffer, boolean]> {
  return next<[Buffer, boolean]>(client, 'message', ms);
}

/** The `ws` client's close as [code, reason]. */
export async function wsClosed(client: WsLibrary, ms = WAIT_MS): Promise<[number, string]> {
  if (client.readyState === WsLibrary.CLOSED) throw new Error('already closed');
  const [code, reason] = await next<[number, Buffer]>(client, 'close', ms);
  return [code, reason.toString()];
}
