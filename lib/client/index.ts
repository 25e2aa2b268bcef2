/**
 * `nestjs-websockets/client`: the client of this package's gateway protocol, for browsers and Node. This entry is the
 * browser build (the `browser` and `default` export conditions): it uses the platform's `WebSocket` and imports
 * nothing of Node. The `node` condition gives `./node.ts`, the same API over this package's own client.
 */
export { WebSocketsClient } from './websockets-client.js';
export type {
  AnyEvents,
  ClientEvents,
  CloseEvent,
  EmitArgs,
  EventData,
  EventMap,
  EventReply,
  OpenEvent,
  ReconnectingEvent,
  RequestArgs,
} from './client-events.js';
export type { ClientState, Provider, QueryParams, RequestOptions, WebSocketsClientOptions } from './client-options.js';
export type { ReconnectOptions } from './reconnect-policy.js';
export type { WebSocketConstructor, WebSocketLike, WebSocketLikeEvent } from './websocket-like.js';
export {
  WebSocketsClientError,
  HandshakeRefusedError,
  ServerExceptionError,
  RequestTimeoutError,
  ConnectionLostError,
  QueueFullError,
  ClientClosedError,
  InvalidServerMessageError,
  ClientConfigError,
} from './errors.js';
export type { ServerExceptionData } from './errors.js';
