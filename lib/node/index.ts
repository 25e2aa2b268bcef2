/**
 * The Node I/O layer (`nestjs-websockets/node`): a WebSocket server and client over `net` and `tls`, usable
 * without Nest.
 */
export * from '../config/index.js';
export * from '../errors.js';
export { PreparedMessage } from '../protocol/prepared-message.js';
export { CloseCode, isWireCloseCode } from '../protocol/close-codes.js';
export { WebSocket } from './websocket.js';
export type { WebSocketData, ReadyState, SendOptions, WebSocketInit } from './websocket.js';
export { WebSocketServer } from './server.js';
export type { HandshakeInfo, HandshakeDecision, WebSocketServerOptions } from './server.js';
export { connect } from './client.js';
export type { ConnectOptions, ProxyTlsOptions } from './client.js';
export { reconnect, isTransientError, backoffDelays, retryAfterMs } from './reconnect.js';
export type { ReconnectOptions, RetryEvent } from './reconnect.js';
export { createDeflateCodec } from './deflate.js';
