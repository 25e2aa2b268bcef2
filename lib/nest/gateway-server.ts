/**
 * `WebSocketsGatewayServer`: the server object a gateway gets from `@WebSocketServer()`: the broadcast layer's
 * `BroadcastServer` (clients, rooms, broadcast across instances) of the gateway's port and path, and where it
 * listens. Its bus channel is named after the port and path, which are the same on every instance of the app.
 */
import type { AddressInfo } from 'node:net';
import { BroadcastServer, type BroadcastServerInit } from '../broadcast/broadcast-server.js';

export class WebSocketsGatewayServer extends BroadcastServer {
  /** The port given to `@WebSocketGateway()`: 0 for the app's own server. */
  readonly port: number;
  /** The Unix socket it listens on (`@WebSocketGateway({ socketPath })`), or `null` for a TCP port. */
  readonly socketPath: string | null;
  /** The path this server owns, or `null` for every path. */
  readonly path: string | null;
  /** Whether it is served over TLS. */
  readonly secure: boolean;
  readonly #address: () => AddressInfo | null;

  /** @internal Made by `WebSocketsAdapter.create()`. */
  constructor(
    init: Omit<BroadcastServerInit, 'channel'> & {
      readonly port: number;
      readonly socketPath?: string | null;
      readonly path: string | null;
      readonly secure: boolean;
      readonly address: () => AddressInfo | null;
    },
  ) {
    super({ ...init, channel: `ws:${init.socketPath == null ? init.port : `unix:${init.socketPath}`}:${init.path ?? '*'}` });
    this.port = init.port;
    this.socketPath = init.socketPath ?? null;
    this.path = init.path;
    this.secure = init.secure;
    this.#address = init.address;
  }

  /** The listening address: its own listener's, or the app's server's for a gateway without a port; `null` before listening. */
  address(): AddressInfo | null {
    return this.#address();
  }
}
