/**
 * Credentials in `Sec-WebSocket-Protocol`, for clients that cannot set headers (browsers): a bearer token kept out of
 * the URL, and so out of access logs, proxies' logs and the browser's history. The client offers, after its own
 * subprotocols, a marker and the token base64url-encoded (RFC 4648 §5, no padding: every character is an HTTP
 * token character):
 *
 *     Sec-WebSocket-Protocol: chat, nestjs-websockets.auth, nestjs-websockets.bearer.ZXlKaGJHY2lPaUpJ...
 *
 * The marker has two jobs. Browsers fail a 101 that names no subprotocol when they offered some, so a server that
 * chooses none of the application's answers with the marker. And it comes before the token, so that a server that
 * picks the first protocol it is offered (ws does when it has no `handleProtocols`) echoes the marker, never the
 * token. This package's server takes the token out of the negotiation and hands it to the application as
 * `Authorization: Bearer <token>` (see `subprotocols.ts`).
 *
 * This file imports nothing, so that the browser client can share it.
 */

/** Offered before the token: what a server answers when it chooses no other subprotocol, and never the token. */
export const AUTH_MARKER_SUBPROTOCOL = 'nestjs-websockets.auth';
/** Followed by the token, base64url without padding. */
export const BEARER_SUBPROTOCOL_PREFIX = 'nestjs-websockets.bearer.';

// RFC 6750 §2.1 allows a narrower set; any visible ASCII is taken, so that opaque tokens of other schemes pass too.
const VISIBLE_ASCII = /^[\x21-\x7e]+$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * The subprotocol that carries `token`: the prefix and the token's UTF-8 bytes in base64url without padding.
 * Uses `TextEncoder` and `btoa`, which browsers and Node (>= 16) both have.
 */
export function bearerSubprotocol(token: string): string {
  let binary = '';
  for (const byte of new TextEncoder().encode(token)) binary += String.fromCharCode(byte);
  return BEARER_SUBPROTOCOL_PREFIX + btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * The token carried by a bearer subprotocol, or `null` when `protocol` is not one.
 * @throws TypeError when it is one but its token is not base64url of visible ASCII (no token the client could
 *   have meant; the message never contains the value)
 */
export function bearerTokenOf(protocol: string): string | null {
  if (!protocol.startsWith(BEARER_SUBPROTOCOL_PREFIX)) return null;
  const encoded = protocol.slice(BEARER_SUBPROTOCOL_PREFIX.length);
  let token = '';
  // A length of 4n + 1 cannot come from whole bytes.
  if (BASE64URL.test(encoded) && encoded.length % 4 !== 1) {
    token = atob(encoded.replace(/-/g, '+').replace(/_/g, '/'));
  }
  if (!VISIBLE_ASCII.test(token)) throw new TypeError('the bearer subprotocol does not hold a token of visible ASCII characters in base64url');
  return token;
}
