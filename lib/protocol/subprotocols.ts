/**
 * Subprotocol negotiation (RFC 6455 §1.9, §4.1 item 10, §4.2.2 item 5.4): the client offers a list in
 * `Sec-WebSocket-Protocol`, the server picks at most one of them.
 */
import { ConfigError, HandshakeError, InvalidHeaderError } from '../errors.js';
import { AUTH_MARKER_SUBPROTOCOL, BEARER_SUBPROTOCOL_PREFIX, bearerTokenOf } from './bearer-subprotocol.js';
import { isToken, parseList, type HeaderField } from './handshake-headers.js';
import { ParsedHandshakeRequest, type HandshakeRequest } from './request.js';

/** The header that carries subprotocols. */
export const SUBPROTOCOL_HEADER = 'Sec-WebSocket-Protocol';

/**
 * Chooses the subprotocol of a connection from what the client offered, or `null` for none. The Node layer
 * calls it when the server has a hook; the default is `selectSubprotocol` over the server's list.
 */
export type SubprotocolSelector = (offered: readonly string[], request: HandshakeRequest) => string | null;

/**
 * The subprotocols in the `Sec-WebSocket-Protocol` field lines of a request or response, in order.
 * RFC 6455 §4.1 item 10: each is a token (non-empty, printable ASCII, no separator).
 * @throws InvalidHeaderError (400) when an element is not a token
 */
export function parseSubprotocols(values: readonly string[]): string[] {
  const protocols = parseList(values);
  for (const protocol of protocols) {
    if (!isToken(protocol)) throw new InvalidHeaderError(SUBPROTOCOL_HEADER, values.join(', '));
  }
  return protocols;
}

/**
 * The value of the `Sec-WebSocket-Protocol` header a client sends for `protocols`.
 * @throws ConfigError when a name is not a token or appears twice (RFC 6455 §4.1 item 10: unique names)
 */
export function formatSubprotocols(protocols: readonly string[]): string {
  const seen = new Set<string>();
  for (const protocol of protocols) {
    if (typeof protocol !== 'string' || !isToken(protocol)) {
      throw new ConfigError(`subprotocol ${JSON.stringify(protocol)} is not an HTTP token`, 'protocols', protocol);
    }
    if (seen.has(protocol)) {
      throw new ConfigError(`subprotocol ${protocol} is offered twice`, 'protocols', protocol);
    }
    seen.add(protocol);
  }
  return protocols.join(', ');
}

/**
 * The server's default choice: the first of the server's own `supported` list that the client `offered`
 * (so the server's order of preference wins), or `null` when they share none. Names are case-sensitive.
 */
export function selectSubprotocol(offered: readonly string[], supported: readonly string[]): string | null {
  for (const protocol of supported) {
    if (offered.includes(protocol)) return protocol;
  }
  return null;
}

/** The header a bearer token from the subprotocol list is exposed as. */
const AUTHORIZATION = 'Authorization';

/**
 * Takes the bearer token a client offered in `Sec-WebSocket-Protocol` (see `bearer-subprotocol.ts`) out of the
 * request: it is removed from the list (a line left empty is dropped), so that it is never negotiated, echoed or seen
 * among the request's headers, and becomes `Authorization: Bearer <token>` unless the client sent an `Authorization`
 * header itself (which then wins; the token is dropped). The marker stays: it is what the server answers when it
 * chooses no other subprotocol (`withAuthMarker`). A request without a token is returned as is.
 * @throws HandshakeError (400) for a bearer subprotocol that does not hold a token, or for more than one; the
 *   message never contains the value
 */
export function withSubprotocolCredentials(request: HandshakeRequest): ParsedHandshakeRequest {
  if (!request.headers.getAll(SUBPROTOCOL_HEADER).some((line) => line.includes(BEARER_SUBPROTOCOL_PREFIX))) {
    return request instanceof ParsedHandshakeRequest ? request : new ParsedHandshakeRequest(request.method, request.target, request.httpVersion, request.rawHeaders);
  }
  let token: string | null = null;
  const rawHeaders: HeaderField[] = [];
  for (const field of request.rawHeaders) {
    if (field[0].toLowerCase() !== SUBPROTOCOL_HEADER.toLowerCase()) {
      rawHeaders.push(field);
      continue;
    }
    const kept: string[] = [];
    for (const protocol of parseList([field[1]])) {
      let carried: string | null;
      try {
        carried = bearerTokenOf(protocol);
      } catch (error) {
        throw new HandshakeError(`invalid ${SUBPROTOCOL_HEADER} header: ${(error as Error).message}`, 400, {}, { cause: error });
      }
      if (carried === null) {
        kept.push(protocol);
      } else if (token !== null) {
        throw new HandshakeError(`invalid ${SUBPROTOCOL_HEADER} header: more than one bearer token`);
      } else {
        token = carried;
      }
    }
    if (kept.length > 0) rawHeaders.push([field[0], kept.join(', ')]);
  }
  if (token !== null && !request.headers.has(AUTHORIZATION)) rawHeaders.push([AUTHORIZATION, `Bearer ${token}`]);
  return new ParsedHandshakeRequest(request.method, request.target, request.httpVersion, rawHeaders);
}

/**
 * The subprotocol a server answers with: `chosen`, or when it chose none, the credentials marker if the client
 * offered it. A browser that offered subprotocols fails a 101 that names none ("Sent non-empty
 * 'Sec-WebSocket-Protocol' header but no response was received"), and a client that sends credentials this way
 * always offers at least the marker.
 */
export function withAuthMarker(chosen: string | null, offered: readonly string[]): string | null {
  return chosen ?? (offered.includes(AUTH_MARKER_SUBPROTOCOL) ? AUTH_MARKER_SUBPROTOCOL : null);
}
