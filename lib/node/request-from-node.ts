/**
 * The handshake request of an upgrade that Node's `http` server parsed: its `IncomingMessage` checked again under the
 * handshake limits (Node allows 16 KiB of headers in all and up to 2000 of them) and turned into the connection's
 * one `HandshakeRequest`.
 */
import type { IncomingMessage } from 'node:http';
import type { Limits } from '../config/index.js';
import { requestFromParts, type ParsedHandshakeRequest } from '../protocol/handshake.js';

/**
 * @throws HandshakeLimitError (414 / 431) and HandshakeError (400), as the package's own parser does
 */
export function requestFromNode(req: IncomingMessage, limits: Limits): ParsedHandshakeRequest {
  return requestFromParts(req.method ?? '', req.url ?? '', req.httpVersion, req.rawHeaders, limits);
}
