/**
 * `nestjs-websockets/client` in Node (the `node` export condition): the same API as the browser build, with this
 * package's own client as the default WebSocket (`NodeWebSocket`; Node 20 has no global one, and this one has the
 * Node client's options, limits and `Retry-After`). Browsers never reach this file.
 */
import { NodeWebSocket } from './node-websocket.js';
import type { AnyEvents, EventMap } from './client-events.js';
import type { WebSocketsClientOptions } from './client-options.js';
import { WebSocketsClient as BaseWebSocketsClient } from './websockets-client.js';

export * from './index.js';
export { NodeWebSocket } from './node-websocket.js';
export type { NodeWebSocketEvent } from './node-websocket.js';

/** The client of the browser build, whose default `WebSocket` is `NodeWebSocket`. See the browser build's JSDoc. */
export class WebSocketsClient<S extends EventMap = AnyEvents, C extends EventMap = AnyEvents> extends BaseWebSocketsClient<S, C> {
  /** @throws ClientConfigError for an invalid option or URL */
  constructor(url: string | URL, options: WebSocketsClientOptions = {}) {
    super(url, options.WebSocket === undefined ? { ...options, WebSocket: NodeWebSocket } : options);
  }
}
