/**
 * The handshake request as the Nest side sees it: what handshake guards get as `switchToHttp().getRequest()`, what
 * `handleConnection(client, request)` receives, and what `client.data` holds afterwards. Its `headers`, `ip` and
 * `query` have the shapes of Node's and Express's requests, so that guards written for HTTP read it unchanged.
 */
import type { PeerCertificate } from 'node:tls';
import type { HandshakeInfo } from '../node/server.js';

/** The opening handshake request of a connection. Guards may add fields (a `user`, say); they stay on it. */
export interface WebSocketsHandshakeRequest {
  /** Always `GET` for a WebSocket handshake. */
  readonly method: string;
  /** The request-target as sent: path and query (`/ws?token=abc`). */
  readonly url: string;
  /** The path without the query (`/ws`), not percent-decoded. */
  readonly path: string;
  /** The decoded query; a repeated name gives an array (Express's shape). */
  readonly query: Readonly<Record<string, string | string[]>>;
  /** The decoded query as `URLSearchParams`. */
  readonly searchParams: URLSearchParams;
  /** Header fields by lower-case name; repeated fields are joined with `", "` (Node's `IncomingHttpHeaders` shape). */
  readonly headers: Readonly<Record<string, string>>;
  /** The header lines in order, names in their original case. */
  readonly rawHeaders: ReadonlyArray<readonly [string, string]>;
  /** The client's address (the TCP peer: a proxy's address when behind one). */
  readonly remoteAddress: string | undefined;
  /** Same as `remoteAddress`, under Express's name (read by `@nestjs/throttler`'s default tracker). */
  readonly ip: string | undefined;
  /** Whether the connection is over TLS. */
  readonly secure: boolean;
  /** The client's certificate, when the TLS server asked for one and got it. */
  readonly peerCertificate?: PeerCertificate;
  /** Whatever guards attach (`request.user = ...`). */
  [extra: string]: unknown;
}

/** Builds the Nest-side request from the node layer's handshake info. */
export function toHandshakeRequest(info: HandshakeInfo): WebSocketsHandshakeRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of info.rawHeaders) {
    const key = name.toLowerCase();
    headers[key] = headers[key] === undefined ? value : `${headers[key]}, ${value}`;
  }
  const query: Record<string, string | string[]> = {};
  for (const [name, value] of info.query) {
    const previous = query[name];
    query[name] = previous === undefined ? value : Array.isArray(previous) ? [...previous, value] : [previous, value];
  }
  return {
    method: info.method,
    url: info.target,
    path: info.path,
    query,
    searchParams: info.query,
    headers,
    rawHeaders: info.rawHeaders,
    remoteAddress: info.remoteAddress,
    ip: info.remoteAddress,
    secure: info.secure,
    ...(info.peerCertificate === undefined ? {} : { peerCertificate: info.peerCertificate }),
  };
}
