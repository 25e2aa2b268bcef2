/**
 * The client's handshake request (RFC 6455 §4.1, §4.2.1): parsed and validated on the server, built on the client.
 *
 * Server: feed bytes to a `RequestParser` (or, behind Node's `http` server, call `requestFromParts`), then call
 * `validateUpgradeRequest` and, when origins are restricted, `checkOrigin`. Every failure is a `HandshakeError`
 * whose `httpStatus` and `headers` make the refusal (see `rejectionFor`).
 */
import type { Limits } from '../config/index.js';
import {
  ConfigError,
  HandshakeError,
  HandshakeLimitError,
  InvalidHeaderError,
  InvalidStateError,
  OriginNotAllowedError,
} from '../errors.js';
import {
  headerLine,
  isFieldValue,
  isToken,
  listHasToken,
  serializeExtraHeaders,
  type HeaderField,
  type HeaderFields,
} from './handshake-headers.js';
import { isValidKey } from './handshake-key.js';
import { HeadReader, shown } from './handshake-reader.js';
import { ParsedHandshakeRequest, pathAndQueryOf, type HandshakeRequest } from './request.js';
import { formatSubprotocols, parseSubprotocols, SUBPROTOCOL_HEADER } from './subprotocols.js';

/** RFC 6455 §4.1 item 9 / §4.4: the only protocol version this package speaks. */
export const WEBSOCKET_VERSION = '13';

export { ParsedHandshakeRequest, type HandshakeRequest } from './request.js';

/** What the server needs from a valid upgrade request. */
export interface UpgradeRequest {
  /** The `Sec-WebSocket-Key`, for `acceptKey`; empty over HTTP/2 (RFC 8441 has none). */
  readonly key: string;
  /** The subprotocols the client offers, in its order of preference. */
  readonly protocols: string[];
  /** The `Sec-WebSocket-Extensions` field lines joined with `", "` (empty when absent), for the extension parser. */
  readonly extensions: string;
}

// RFC 9112 §3: request-line = method SP request-target SP HTTP-version; the target is printable ASCII.
const REQUEST_LINE = /^([^ ]+) ([\x21-\x7e]+) HTTP\/(\d)\.(\d)$/;
// RFC 9112 §3.2.2: absolute-form, `scheme://authority` followed by the path.
const ABSOLUTE_FORM = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)/;
/** The schemes of an absolute-form target that a WebSocket handshake can have, with their default ports. */
const DEFAULT_PORTS: Readonly<Record<string, string>> = { http: '80', ws: '80', https: '443', wss: '443' };
// RFC 9110 §7.2 / RFC 3986 §3.2.2: Host = uri-host [ ":" port ], with IP literals in brackets.
const HOST = /^(?:\[[0-9A-Za-z:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::\d*)?$/;
const CONTENT_LENGTH = /^\d+$/;


/**
 * The path of a request target, without its query and not percent-decoded: `/ws` for `/ws?x=1` and for the absolute
 * form `http://host/ws?x=1` (RFC 9112 §3.2.2: a server routes the absolute form on its path); `/` for
 * `http://host`. Servers route on it whichever form the client used.
 */
export function requestTargetPath(target: string): string {
  const pathAndQuery = pathAndQueryOf(target);
  const mark = pathAndQuery.indexOf('?');
  return mark === -1 ? pathAndQuery : pathAndQuery.slice(0, mark);
}


/** Splits and checks a request line. @throws HandshakeError (400) when it is malformed */
function parseRequestLine(line: string): { method: string; target: string; httpVersion: string } {
  const match = REQUEST_LINE.exec(line);
  if (match === null || !isToken(match[1])) throw new HandshakeError(`invalid request line ${shown(line)}`);
  return { method: match[1], target: match[2], httpVersion: `${match[3]}.${match[4]}` };
}

/**
 * Parses a handshake request from bytes, incrementally, under the handshake limits. Feed it what the socket
 * reads until `push` returns the request; bytes that followed the head (frames a client pipelined) are in `rest`.
 */
export class RequestParser {
  private readonly head: HeadReader;
  private request: ParsedHandshakeRequest | null = null;
  private failure: HandshakeError | null = null;
  private tail: Buffer = Buffer.alloc(0);

  constructor(limits: Limits) {
    this.head = new HeadReader(limits, 'request-line');
  }

  /** Bytes received after the end of the head; empty until `push` has returned the request. */
  get rest(): Buffer {
    return this.tail;
  }

  /**
   * Adds bytes read from the socket.
   * @returns the request once its head is complete, else `null`
   * @throws HandshakeLimitError (414 for the request line, 431 for a header line or too many headers) and
   *   HandshakeError (400) for a malformed request; once thrown, every later call throws the same error
   * @throws InvalidStateError when called after the request was returned
   */
  push(chunk: Buffer): ParsedHandshakeRequest | null {
    if (this.failure !== null) throw this.failure;
    if (this.request !== null) throw new InvalidStateError('the handshake request is complete; read rest instead');
    try {
      this.head.bytes.append(chunk);
      const head = this.head.read();
      if (head === null) {
        this.head.bytes.retain();
        return null;
      }
      const { method, target, httpVersion } = parseRequestLine(head.startLine);
      this.tail = this.head.bytes.takeAll();
      this.request = new ParsedHandshakeRequest(method, target, httpVersion, head.fields);
      return this.request;
    } catch (error) {
      this.failure = error as HandshakeError;
      throw error;
    }
  }
}

/**
 * Builds a `HandshakeRequest` from the parts another HTTP parser produced (Node's `http` server: `req.method`,
 * `req.url`, `req.httpVersion`, `req.rawHeaders`; see `requestFromNode` in the node layer), for servers attached to
 * an existing `http` server. Node allows up to 16 KiB of headers in all
 * and up to 2000 of them, so the per-line limits and the header count are checked again here, on the lines as they
 * were on the wire: the request line is `${method} ${url} HTTP/${httpVersion}\r\n`, a header line
 * `${name}: ${value}\r\n`. Node also lets HTTP/1.0, a body and a missing Host through; `validateUpgradeRequest`
 * refuses them as it does for a request parsed here.
 * @throws HandshakeLimitError (414 / 431) and HandshakeError (400), as `RequestParser` does
 */
export function requestFromParts(
  method: string,
  url: string,
  httpVersion: string,
  rawHeaders: readonly string[],
  limits: Limits,
): ParsedHandshakeRequest {
  const { maxLineLength, maxNumHeaders } = limits;
  const requestLine = `${method} ${url} HTTP/${httpVersion}`;
  // Node decodes the head as latin1, so one character is one byte on the wire.
  if (requestLine.length + 2 > maxLineLength) {
    throw new HandshakeLimitError('request-line', maxLineLength, requestLine.length + 2);
  }
  const count = Math.floor(rawHeaders.length / 2);
  if (count > maxNumHeaders) throw new HandshakeLimitError('num-headers', maxNumHeaders, count);
  const parsed = parseRequestLine(requestLine);
  const fields: HeaderField[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    const value = rawHeaders[i + 1];
    const length = name.length + 2 + value.length + 2;
    if (length > maxLineLength) throw new HandshakeLimitError('header-line', maxLineLength, length);
    if (!isToken(name)) throw new HandshakeError(`invalid header name ${shown(name)}`);
    if (!isFieldValue(value)) throw new HandshakeError(`invalid value of header ${name}: ${shown(value)}`);
    fields.push([name, value]);
  }
  return new ParsedHandshakeRequest(parsed.method, parsed.target, parsed.httpVersion, fields);
}

// The extra headers of the refusals below, made once (every handshake is validated).
const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;
const UPGRADE_REQUIRED: Record<string, string> = Object.freeze({ Upgrade: 'websocket' });
const VERSION_REQUIRED: Record<string, string> = Object.freeze({ 'Sec-WebSocket-Version': WEBSOCKET_VERSION });
const CONNECT_ALLOWED: Record<string, string> = Object.freeze({ Allow: 'CONNECT' });

/** The `httpVersion` of a request that came as an HTTP/2 extended CONNECT (RFC 8441). */
export const HTTP2_VERSION = '2';

/** The only value of a header that must appear once. @throws InvalidHeaderError when absent or repeated */
function single(request: HandshakeRequest, name: string, status = 400, headers: Record<string, string> = NO_HEADERS): string {
  const values = request.headers.getAll(name);
  if (values.length !== 1) {
    throw new InvalidHeaderError(name, values.length === 0 ? undefined : values.join(', '), status, headers);
  }
  return values[0];
}

/**
 * Checks that a request is a WebSocket opening handshake (RFC 6455 §4.2.1, RFC 9112) and extracts what the
 * response needs. The checks run in this order, and the first failure is thrown:
 * - HTTP version other than 1.1 (HTTP/1.0 included): 505;
 * - method other than GET: 405 with `Allow: GET`;
 * - Host missing, repeated or malformed: 400 (RFC 9112 §3.2);
 * - a body (`Content-Length` other than 0, or any `Transfer-Encoding`): 400;
 * - `Upgrade` without the `websocket` token, or `Connection` without `upgrade`: 426 with `Upgrade: websocket`
 *   (a plain HTTP request ends here);
 * - `Sec-WebSocket-Key` missing, repeated or not the base64 of 16 bytes: 400;
 * - `Sec-WebSocket-Version` missing or other than 13: 426 with `Sec-WebSocket-Version: 13` (RFC 6455 §4.4);
 * - `Sec-WebSocket-Protocol` with an element that is not a token: 400.
 * A request that came over HTTP/2 (`httpVersion` 2, from `requestFromHttp2`) is checked as RFC 8441 says instead
 * (see `validateExtendedConnect`).
 * @throws HandshakeError, InvalidHeaderError with the status and headers above
 */
export function validateUpgradeRequest(request: HandshakeRequest): UpgradeRequest {
  if (request.httpVersion === HTTP2_VERSION) return validateExtendedConnect(request);
  if (request.httpVersion !== '1.1') {
    throw new HandshakeError(`unsupported HTTP version: HTTP/${request.httpVersion} (HTTP/1.1 is required)`, 505);
  }
  if (request.method !== 'GET') {
    throw new HandshakeError(`unsupported HTTP method: ${request.method} (GET is required)`, 405, { Allow: 'GET' });
  }
  const absolute = ABSOLUTE_FORM.exec(request.target);
  if (!request.target.startsWith('/') && absolute === null) {
    throw new HandshakeError(`invalid request target ${shown(request.target)}`);
  }
  const host = single(request, 'Host');
  if (!HOST.test(host)) throw new InvalidHeaderError('Host', host);
  if (absolute !== null) checkAuthority(absolute[1].toLowerCase(), absolute[2], host);
  const contentLength = request.headers.getAll('Content-Length');
  if (contentLength.length > 0 && !(contentLength.length === 1 && CONTENT_LENGTH.test(contentLength[0]))) {
    throw new InvalidHeaderError('Content-Length', contentLength.join(', '));
  }
  if ((contentLength.length > 0 && Number(contentLength[0]) !== 0) || request.headers.has('Transfer-Encoding')) {
    throw new HandshakeError('a WebSocket handshake request has no body');
  }
  const upgradeRequired = UPGRADE_REQUIRED;
  const upgrade = request.headers.getAll('Upgrade');
  if (!listHasToken(upgrade, 'websocket')) {
    throw new InvalidHeaderError('Upgrade', upgrade.length === 0 ? undefined : upgrade.join(', '), 426, upgradeRequired);
  }
  const connection = request.headers.getAll('Connection');
  if (!listHasToken(connection, 'upgrade')) {
    throw new InvalidHeaderError('Connection', connection.length === 0 ? undefined : connection.join(', '), 426, upgradeRequired);
  }
  const key = single(request, 'Sec-WebSocket-Key');
  if (!isValidKey(key)) throw new InvalidHeaderError('Sec-WebSocket-Key', key);
  const versionRequired = VERSION_REQUIRED;
  const version = single(request, 'Sec-WebSocket-Version', 426, versionRequired);
  if (version !== WEBSOCKET_VERSION) throw new InvalidHeaderError('Sec-WebSocket-Version', version, 426, versionRequired);
  return {
    key,
    protocols: parseSubprotocols(request.headers.getAll(SUBPROTOCOL_HEADER)),
    extensions: request.headers.getAll('Sec-WebSocket-Extensions').join(', '),
  };
}

/**
 * The checks of `validateUpgradeRequest` for an HTTP/2 extended CONNECT (RFC 8441 §4-5), built by
 * `requestFromHttp2` (which has checked `:protocol` already): the method is CONNECT (405 with `Allow: CONNECT`
 * otherwise), the target an origin-form path, `Host` (from `:authority`) present once and well formed (400), and
 * `Sec-WebSocket-Version` 13 (426). HTTP/2 has no `Upgrade`, `Connection` or `Sec-WebSocket-Key`: the stream is the
 * connection, so the key comes back empty; a body is the WebSocket's own bytes.
 */
function validateExtendedConnect(request: HandshakeRequest): UpgradeRequest {
  if (request.method !== 'CONNECT') {
    throw new HandshakeError(
      `unsupported HTTP method over HTTP/2: ${request.method} (a WebSocket over HTTP/2 is an extended CONNECT with :protocol websocket, RFC 8441)`,
      405,
      CONNECT_ALLOWED,
    );
  }
  if (!request.target.startsWith('/')) throw new HandshakeError(`invalid request target ${shown(request.target)}`);
  const host = single(request, 'Host');
  if (!HOST.test(host)) throw new InvalidHeaderError('Host', host);
  const version = single(request, 'Sec-WebSocket-Version', 426, VERSION_REQUIRED);
  if (version !== WEBSOCKET_VERSION) throw new InvalidHeaderError('Sec-WebSocket-Version', version, 426, VERSION_REQUIRED);
  return {
    key: '',
    protocols: parseSubprotocols(request.headers.getAll(SUBPROTOCOL_HEADER)),
    extensions: request.headers.getAll('Sec-WebSocket-Extensions').join(', '),
  };
}

/**
 * RFC 9112 §3.2.2: a server accepts the absolute form of the target, and a client must send the target's authority
 * as `Host`. The two are compared (host case-insensitive, the scheme's default port implied), so that the authority
 * a request is routed on and the `Host` that the application (a guard, a log) reads are the same.
 * @throws HandshakeError (400) for a scheme other than http, https, ws or wss, a userinfo part (RFC 9110 §4.2.4),
 *   or an authority other than the Host
 */
function checkAuthority(scheme: string, authority: string, host: string): void {
  const defaultPort = DEFAULT_PORTS[scheme];
  if (defaultPort === undefined) {
    throw new HandshakeError(`unsupported scheme ${shown(scheme)} in the request target (http, https, ws or wss)`);
  }
  if (authority.includes('@')) throw new HandshakeError('the request target has a userinfo part (user@host), which is not allowed (RFC 9110 §4.2.4)');
  if (normalizeAuthority(authority, defaultPort) !== normalizeAuthority(host, defaultPort)) {
    throw new HandshakeError(
      `the authority of the request target ${shown(authority)} is not the Host header ${shown(host)} (RFC 9112 §3.2.2)`,
    );
  }
}

/** `Host:80` and `host` are the same authority for http: lower case, and the default port (or an empty one) left out. */
function normalizeAuthority(authority: string, defaultPort: string): string {
  const lower = authority.toLowerCase();
  const colon = lower.lastIndexOf(':');
  if (colon === -1 || lower.endsWith(']')) return lower;
  const port = lower.slice(colon + 1);
  return port === '' || port === defaultPort ? lower.slice(0, colon) : lower;
}

/** Whether `origin` matches an allow-list entry: a string exactly, a RegExp over the whole origin. */
function originMatches(origin: string, entry: string | RegExp): boolean {
  if (typeof entry === 'string') return origin === entry;
  // Anchor the pattern: a RegExp that merely occurs in the origin (/example\.com/ in
  // https://example.com.evil.test) must not let it through. Flags g and y would make test() stateful.
  const anchored = new RegExp(`^(?:${entry.source})$`, entry.flags.replace(/[gy]/g, ''));
  return anchored.test(origin);
}

/**
 * Checks the request's `Origin` against an allow-list (RFC 6455 §4.2.1 item 7, §10.2). Strings match exactly
 * (browsers send `scheme://host[:port]` in lower case); a RegExp must match the whole origin.
 * @param allowMissing whether a request without `Origin` (a non-browser client) is allowed
 * @throws OriginNotAllowedError (403) for a missing Origin when not allowed, several Origin fields, or an origin
 *   that matches no entry
 */
export function checkOrigin(
  request: HandshakeRequest,
  allowed: ReadonlyArray<string | RegExp>,
  allowMissing: boolean,
): void {
  const origins = request.headers.getAll('Origin');
  if (origins.length === 0) {
    if (allowMissing) return;
    throw new OriginNotAllowedError(undefined);
  }
  const origin = origins.join(', ');
  if (origins.length > 1 || !allowed.some((entry) => originMatches(origin, entry))) {
    throw new OriginNotAllowedError(origin);
  }
}

/** What a client puts in its handshake request. */
export interface RequestOptions {
  /** The `Host` value: host name or IP, with the port when not the default, IPv6 in brackets (see `formatHost`). */
  readonly host: string;
  /** The request-target: the path with its query, starting with `/`. */
  readonly path: string;
  /** The `Sec-WebSocket-Key`, from `generateKey()`. */
  readonly key: string;
  /** Subprotocols to offer, in order of preference; none when empty or absent. */
  readonly protocols?: readonly string[];
  /** The `Sec-WebSocket-Extensions` offer, e.g. `permessage-deflate; client_max_window_bits`; none when empty. */
  readonly extensions?: string | null;
  /** The `Origin` header, for servers that check it; none when absent. */
  readonly origin?: string | null;
  /** The `User-Agent` header; `null` sends none. */
  readonly userAgent: string | null;
  /** Extra headers (cookies, authorization); they cannot replace the handshake's own headers. */
  readonly headers?: HeaderFields;
}

/**
 * The `Host` value for a host name or IP literal and a port: IPv6 literals go in brackets (RFC 3986 §3.2.2) and the
 * port is left out when it is the scheme's default (80 for ws, 443 for wss).
 */
export function formatHost(hostname: string, port: number, secure: boolean): string {
  const host = hostname.includes(':') && !hostname.startsWith('[') ? `[${hostname}]` : hostname;
  return port === (secure ? 443 : 80) ? host : `${host}:${port}`;
}

/**
 * The bytes of a client's handshake request (RFC 6455 §4.1).
 * @throws ConfigError for a path that is not printable ASCII starting with `/`, a bad host, key, subprotocol or
 *   header value, or an extra header that the handshake writes itself
 */
export function buildRequest(options: RequestOptions): Buffer {
  const { host, path, key, protocols = [], extensions, origin, userAgent, headers } = options;
  if (!/^\/[\x21-\x7e]*$/.test(path)) {
    throw new ConfigError(`path must be printable ASCII starting with "/"; got ${JSON.stringify(path)}`, 'path', path);
  }
  if (!HOST.test(host)) throw new ConfigError(`invalid host ${JSON.stringify(host)}`, 'host', host);
  if (!isValidKey(key)) throw new ConfigError(`invalid Sec-WebSocket-Key ${JSON.stringify(key)}`, 'key', key);
  let head =
    `GET ${path} HTTP/1.1\r\n` +
    `Host: ${host}\r\n` +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Key: ${key}\r\n` +
    `Sec-WebSocket-Version: ${WEBSOCKET_VERSION}\r\n`;
  if (protocols.length > 0) head += `${SUBPROTOCOL_HEADER}: ${formatSubprotocols(protocols)}\r\n`;
  if (extensions) head += headerLine('Sec-WebSocket-Extensions', extensions, 'extensions');
  if (origin) head += headerLine('Origin', origin, 'origin');
  if (userAgent !== null) head += headerLine('User-Agent', userAgent, 'userAgentHeader');
  head += serializeExtraHeaders(headers, 'headers');
  return Buffer.from(`${head}\r\n`, 'latin1');
}
