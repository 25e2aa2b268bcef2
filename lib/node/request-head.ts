/**
 * A handshake request kept for the lifetime of a connection in compact form: the head as it was on the wire, one
 * flat latin1 string (a couple of hundred bytes), parsed again only when someone reads the request. The parsed
 * `HandshakeRequest` (header arrays, a `HandshakeHeaders`, a `URLSearchParams`) is about ten times larger, and
 * every idle connection would keep it although most applications never read it.
 */
import type { Limits } from '../config/index.js';
import { RequestParser, type HandshakeRequest } from '../protocol/handshake.js';

/** The stored head already passed the handshake limits when it arrived; it is parsed again under none. */
const NO_LIMITS: Limits = {
  maxLineLength: Number.MAX_SAFE_INTEGER,
  maxNumHeaders: Number.MAX_SAFE_INTEGER,
  maxBodySize: 0,
  maxMessageSize: 0,
  maxFragments: 0,
};

/**
 * One string per request, shared by whoever keeps it (the WebSocket and the Nest adapter's request): keyed by the
 * request's header array, which the server's `HandshakeInfo` shares with the request it was made from.
 */
const heads = new WeakMap<object, string>();

/** The request head as it was on the wire (request line, header lines, empty line). */
export function headOf(request: HandshakeRequest): string {
  let head = heads.get(request.rawHeaders);
  if (head === undefined) {
    const lines = [`${request.method} ${request.target} HTTP/${request.httpVersion}`];
    for (const [name, value] of request.rawHeaders) lines.push(`${name}: ${value}`);
    lines.push('', '');
    head = lines.join('\r\n');
    heads.set(request.rawHeaders, head);
  }
  return head;
}

/** Parses a head made by `headOf` back into a `HandshakeRequest`. */
export function requestOfHead(head: string): HandshakeRequest {
  return new RequestParser(NO_LIMITS).push(Buffer.from(head, 'latin1'))!;
}
