/**
 * The sans-I/O core (`nestjs-websockets/protocol`): bytes in, events and bytes out. No sockets, timers or
 * environment; drive it from any I/O layer.
 */
export * from '../config/index.js';
export * from '../errors.js';
export { Connection, State, SEND_EOF } from './connection.js';
export { PreparedMessage } from './prepared-message.js';
export { MessageBuffer } from './message-buffer.js';
export type { ConnectionEvent, ConnectionOptions, ConnectionFailure, CloseInfo } from './connection.js';
export { CloseCode, isWireCloseCode, APPLICATION_CLOSE_CODE_MIN, APPLICATION_CLOSE_CODE_MAX, REFUSAL_CLOSE_CODE_OFFSET } from './close-codes.js';
export { Opcode, MAX_CONTROL_PAYLOAD, MAX_CLOSE_REASON } from './frame.js';
export type { Side } from './frame.js';
export { frameHeader, encodeFrame, closePayload } from './frame-writer.js';
export type { FrameOptions } from './frame-writer.js';
export type { DeflateParams, MessageCodec, CodecFactory } from './compression.js';
export {
  parseExtensions,
  negotiateDeflate,
  deflateOffer,
  acceptDeflateResponse,
  PERMESSAGE_DEFLATE,
} from './extensions.js';
export type { ExtensionItem, DeflateAgreement } from './extensions.js';
export * from './handshake.js';
export { buildConnectRequest, basicCredentials } from './proxy-connect.js';
export type { ConnectRequestOptions, ProxyCredentials } from './proxy-connect.js';
export { Socks5Handshake, SOCKS_VERSION, SOCKS_REPLIES, SocksMethod, encodeAddress } from './socks5.js';
export type { Socks5Options, Socks5Step } from './socks5.js';
