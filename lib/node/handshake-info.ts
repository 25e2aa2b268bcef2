/**
 * `HandshakeInfo`: the handshake request as the server's hook and `'connection'` listeners see it, with where it
 * came from (address, TLS). It reads through to the one `HandshakeRequest` of the connection (no copy of its headers),
 * which the connection then keeps, compacted, as `ws.request`.
 */
import type { PeerCertificate } from 'node:tls';
import type { HandshakeHeaders, HeaderField } from '../protocol/handshake-headers.js';
import type { HandshakeRequest, ParsedHandshakeRequest } from '../protocol/request.js';

/** The handshake request as the hook sees it, with where it came from. */
export interface HandshakeInfo extends HandshakeRequest {
  /** The client's address. */
  readonly remoteAddress: string | undefined;
  /** Whether the connection is over TLS. */
  readonly secure: boolean;
  /** The client's certificate, when the TLS server asked for one (`requestCert`) and the client sent it. */
  readonly peerCertificate?: PeerCertificate;
  /** The request itself: what the connection keeps (`ws.request`) and what views of it (the Nest request) read. */
  readonly request: HandshakeRequest;
}

/** @internal Made by the server for each handshake. */
export class ServerHandshakeInfo implements HandshakeInfo {
  readonly method: string;
  readonly target: string;
  readonly path: string;
  readonly httpVersion: string;
  declare readonly peerCertificate?: PeerCertificate;

  constructor(
    readonly request: ParsedHandshakeRequest,
    readonly remoteAddress: string | undefined,
    readonly secure: boolean,
    peerCertificate: PeerCertificate | undefined,
  ) {
    this.method = request.method;
    this.target = request.target;
    this.path = request.path;
    this.httpVersion = request.httpVersion;
    if (peerCertificate !== undefined) (this as { peerCertificate?: PeerCertificate }).peerCertificate = peerCertificate;
    Object.freeze(this);
  }

  get rawHeaders(): ReadonlyArray<HeaderField> {
    return this.request.rawHeaders;
  }

  get headers(): HandshakeHeaders {
    return this.request.headers;
  }

  get query(): URLSearchParams {
    return this.request.query;
  }
}
