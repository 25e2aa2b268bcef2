/**
 * Subprotocol negotiation (RFC 6455 §1.9, §4.1 item 10, §4.2.2 item 5.4): the client offers a list in
 * `Sec-WebSocket-Protocol`, the server picks at most one of them.
 */
import { ConfigError, InvalidHeaderError } from '../errors.js';
import { isToken, parseList } from './handshake-headers.js';
import type { HandshakeRequest } from './handshake-request.js';

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
