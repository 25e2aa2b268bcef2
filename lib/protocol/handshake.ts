/**
 * The opening handshake (RFC 6455 §4), sans-I/O: bytes in, parsed requests and responses out, and the bytes of the
 * answers. One module to import; each concept lives in its own file:
 * - `handshake-request.ts`: the client's request, parsed and validated by the server, built by the client;
 * - `handshake-response.ts`: the server's response, built by the server, parsed and validated by the client;
 * - `handshake-key.ts`: `Sec-WebSocket-Key` and `Sec-WebSocket-Accept`;
 * - `handshake-headers.ts`: case-insensitive headers and the field syntax;
 * - `handshake-reader.ts`: the incremental line reader under the limits (internal);
 * - `subprotocols.ts`: `Sec-WebSocket-Protocol` negotiation, and credentials taken out of it;
 * - `bearer-subprotocol.ts`: how a client carries a bearer token in `Sec-WebSocket-Protocol`;
 * - `in-band-refusal.ts`: a refusal sent as a 101 and a close with 4000 + status, for browsers;
 * - `http2-handshake.ts`: the same handshake as an HTTP/2 extended CONNECT (RFC 8441).
 */
export { HandshakeHeaders, isToken, parseList, listHasToken } from './handshake-headers.js';
export type { HeaderField, HeaderFields } from './handshake-headers.js';
export { WEBSOCKET_GUID, KEY_BYTES, acceptKey, generateKey, isValidKey } from './handshake-key.js';
export type { RandomBytes } from './handshake-key.js';
export {
  WEBSOCKET_VERSION,
  HTTP2_VERSION,
  RequestParser,
  requestFromParts,
  requestTargetPath,
  validateUpgradeRequest,
  checkOrigin,
  buildRequest,
  formatHost,
} from './handshake-request.js';
export { ParsedHandshakeRequest, type HandshakeRequest } from './request.js';
export type { UpgradeRequest, RequestOptions } from './handshake-request.js';
export {
  SWITCHING_PROTOCOLS,
  ResponseParser,
  validateUpgradeResponse,
  buildAcceptResponse,
  acceptResponseHead,
  buildRejectResponse,
  rejectionFor,
  reasonPhrase,
} from './handshake-response.js';
export type {
  HandshakeResponse,
  ResponseParserOptions,
  AcceptedResponse,
  OfferedHandshake,
  AcceptOptions,
  RejectOptions,
} from './handshake-response.js';
export { SUBPROTOCOL_HEADER, parseSubprotocols, formatSubprotocols, selectSubprotocol, withSubprotocolCredentials } from './subprotocols.js';
export { AUTH_MARKER_SUBPROTOCOL, BEARER_SUBPROTOCOL_PREFIX, bearerSubprotocol, bearerTokenOf } from './bearer-subprotocol.js';
export { inBandRefusal, isInBandStatus, refusalCloseCode, refusalCloseFrame } from './in-band-refusal.js';
export {
  WEBSOCKET_PROTOCOL,
  requestFromHttp2,
  acceptStreamHeaders,
  streamRefusal,
  streamRejectionFor,
  extendedConnectHeaders,
  validateStreamResponse,
} from './http2-handshake.js';
export type { StreamHeaders, StreamAnswer, StreamAcceptOptions, ExtendedConnectOptions } from './http2-handshake.js';
export type { InBandRefusalOptions } from './in-band-refusal.js';
export type { SubprotocolSelector } from './subprotocols.js';
