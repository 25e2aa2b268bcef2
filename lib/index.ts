/**
 * nestjs-websockets: secure-by-default RFC 6455 WebSockets for NestJS.
 *
 * - `nestjs-websockets`: everything below plus the Nest adapter and module (needs the Nest peers);
 * - `nestjs-websockets/node`: the server and client without Nest;
 * - `nestjs-websockets/protocol`: the sans-I/O core.
 */
export * from './config/index.js';
export * from './errors.js';
export * from './node/index.js';
export { CloseCode, isWireCloseCode } from './protocol/close-codes.js';
export type { HandshakeRequest } from './protocol/handshake.js';
export * from './nest/index.js';
