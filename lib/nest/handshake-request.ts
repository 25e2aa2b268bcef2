/**
 * The handshake request as the Nest side sees it: what handshake guards get as `switchToHttp().getRequest()`, what
 * `handleConnection(client, request)` receives, and what `client.data` holds afterwards. Its `headers`, `ip` and
 * `query` have the shapes of Node's and Express's requests, so that guards written for HTTP read it unchanged.
 */
import type { PeerCertificate } from 'node:tls';
import type { HandshakeInfo } from '../node/server.js';
import type { HandshakeRequest } from '../protocol/handshake.js';

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

/**
 * The request as kept on `client.data`: the plain fields as properties, the header and query views built on first
 * read from the connection's one handshake request (kept compacted, see `ParsedHandshakeRequest.compact`), so that an
 * idle connection keeps a couple of hundred bytes instead of the parsed header and query objects.
 */
class HandshakeRequestView implements WebSocketsHandshakeRequest {
  [extra: string]: unknown;
  readonly method: string;
  readonly url: string;
  readonly path: string;
  readonly remoteAddress: string | undefined;
  readonly ip: string | undefined;
  readonly secure: boolean;
  declare readonly peerCertificate?: PeerCertificate;
  readonly #request: HandshakeRequest;
  #headers: Readonly<Record<string, string>> | undefined;
  #query: Readonly<Record<string, string | string[]>> | undefined;

  constructor(info: HandshakeInfo) {
    this.method = info.method;
    this.url = info.target;
    this.path = info.path;
    this.remoteAddress = info.remoteAddress;
    this.ip = info.remoteAddress;
    this.secure = info.secure;
    if (info.peerCertificate !== undefined) (this as { peerCertificate?: PeerCertificate }).peerCertificate = info.peerCertificate;
    this.#request = info.request;
  }

  get headers(): Readonly<Record<string, string>> {
    if (this.#headers === undefined) {
      const headers: Record<string, string> = {};
      for (const [name, value] of this.rawHeaders) {
        const key = name.toLowerCase();
        headers[key] = headers[key] === undefined ? value : `${headers[key]}, ${value}`;
      }
      this.#headers = headers;
    }
    return this.#headers;
  }

  get query(): Readonly<Record<string, string | string[]>> {
    if (this.#query === undefined) {
      const query: Record<string, string | string[]> = {};
      for (const [name, value] of this.searchParams) {
        const previous = query[name];
        query[name] = previous === undefined ? value : Array.isArray(previous) ? [...previous, value] : [previous, value];
      }
      this.#query = query;
    }
    return this.#query;
  }

  get searchParams(): URLSearchParams {
    return this.#request.query;
  }

  get rawHeaders(): ReadonlyArray<readonly [string, string]> {
    return this.#request.rawHeaders;
  }
}

/** Builds the Nest-side request from the node layer's handshake info. */
export function toHandshakeRequest(info: HandshakeInfo): WebSocketsHandshakeRequest {
  return new HandshakeRequestView(info);
}
