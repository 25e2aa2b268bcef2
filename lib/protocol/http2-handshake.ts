/**
 * The opening handshake over HTTP/2 (RFC 8441), sans-I/O: a WebSocket is one stream of an HTTP/2 connection, opened
 * by an extended CONNECT (`:method CONNECT`, `:protocol websocket`) and accepted with `:status 200`. There is no
 * `Upgrade`, `Connection`, `Sec-WebSocket-Key` or `Sec-WebSocket-Accept`: the stream is already the client's, and the
 * frames of RFC 6455 run over it unchanged. Everything else is the HTTP/1.1 handshake's: version 13, `Origin`,
 * subprotocols, extensions, the same statuses for a refusal.
 *
 * Server: `requestFromHttp2` turns the header block into the `HandshakeRequest` of the HTTP/1.1 path (with
 * `httpVersion` 2 and `method` CONNECT, `:authority` as `Host`) under the same handshake limits, and
 * `validateUpgradeRequest` checks it; `acceptStreamHeaders` and `streamRefusal` make the answer's header block.
 * Client: `extendedConnectHeaders` makes the request's header block, `validateStreamResponse` checks the answer.
 */
import type { Limits } from '../config/index.js';
import { ConfigError, HandshakeError, HandshakeLimitError, InvalidHeaderError, InvalidStatusError } from '../errors.js';
import {
  HANDSHAKE_HEADERS,
  RESPONSE_HEADERS,
  headerLine,
  isFieldValue,
  isToken,
  serializeExtraHeaders,
  type HeaderField,
  type HeaderFields,
} from './handshake-headers.js';
import { HTTP2_VERSION, WEBSOCKET_VERSION } from './handshake-request.js';
import { buildRejectResponse, type AcceptedResponse, type RejectOptions } from './handshake-response.js';
import { shown } from './handshake-reader.js';
import { ParsedHandshakeRequest } from './request.js';
import { formatSubprotocols, parseSubprotocols, SUBPROTOCOL_HEADER } from './subprotocols.js';

/** The `:protocol` of a WebSocket (RFC 8441 §4, the "websocket" token of the HTTP Upgrade Token registry). */
export const WEBSOCKET_PROTOCOL = 'websocket';

/** An HTTP/2 header block as Node's `http2` takes it: lower-case names, pseudo-headers first, repeated names as arrays. */
export type StreamHeaders = Record<string, string | number | string[]>;

/** An answer on a stream: its header block and the body that follows (empty for an acceptance). */
export interface StreamAnswer {
  readonly headers: StreamHeaders;
  readonly body: Buffer;
}

/**
 * Header fields that HTTP/2 forbids (RFC 9113 §8.2.2): they describe an HTTP/1.1 connection, which a stream is not.
 * A refusal's `Upgrade: websocket` (426) is one; they are left out of every answer on a stream.
 */
const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/**
 * Builds the `HandshakeRequest` of an extended CONNECT from its header block as received (`rawHeaders` of Node's
 * `'stream'` event: name, value, name, value...), under the handshake limits as the HTTP/1.1 parser applies them: the
 * request line is `CONNECT <:path> HTTP/2` (414 over `maxLineLength`), each other field a `name: value` line (431),
 * and at most `maxNumHeaders` of them (431). `:authority` becomes the `Host` field (RFC 9113 §8.3.1; a `host` field
 * that disagrees with it is refused).
 * @throws HandshakeLimitError (414, 431) over a limit
 * @throws HandshakeError (400) for a CONNECT without `:protocol websocket`, a pseudo-header repeated or unknown, a
 *   missing `:path`, or a field name or value that is not valid
 */
export function requestFromHttp2(rawHeaders: readonly string[], limits: Limits): ParsedHandshakeRequest {
  const { maxLineLength, maxNumHeaders } = limits;
  const pseudo = new Map<string, string>();
  const fields: HeaderField[] = [];
  let host: string | undefined;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const value = rawHeaders[i + 1]!;
    if (name.startsWith(':')) {
      if (!PSEUDO_HEADERS.has(name) || pseudo.has(name)) throw new HandshakeError(`invalid pseudo-header ${shown(name)} in the request`);
      pseudo.set(name, value);
      continue;
    }
    if (fields.length + 1 > maxNumHeaders) throw new HandshakeLimitError('num-headers', maxNumHeaders, fields.length + 1);
    const length = name.length + 2 + value.length + 2;
    if (length > maxLineLength) throw new HandshakeLimitError('header-line', maxLineLength, length);
    if (!isToken(name)) throw new HandshakeError(`invalid header name ${shown(name)}`);
    if (!isFieldValue(value)) throw new HandshakeError(`invalid value of header ${name}: ${shown(value)}`);
    if (name.toLowerCase() === 'host') {
      if (host !== undefined) throw new InvalidHeaderError('Host', `${host}, ${value}`);
      host = value;
      continue;
    }
    fields.push([name, value]);
  }
  const method = pseudo.get(':method') ?? '';
  const path = pseudo.get(':path');
  const requestLine = `${method} ${path ?? ''} HTTP/${HTTP2_VERSION}`;
  if (requestLine.length + 2 > maxLineLength) throw new HandshakeLimitError('request-line', maxLineLength, requestLine.length + 2);
  if (method === 'CONNECT') {
    const protocol = pseudo.get(':protocol');
    if (protocol === undefined) {
      throw new HandshakeError('a CONNECT without :protocol opens a tunnel, which this server does not do; a WebSocket over HTTP/2 is an extended CONNECT with :protocol websocket (RFC 8441)');
    }
    if (protocol !== WEBSOCKET_PROTOCOL) throw new HandshakeError(`unsupported :protocol ${shown(protocol)} (websocket is required)`);
  }
  if (path === undefined || path === '') throw new HandshakeError('the request has no :path');
  const authority = pseudo.get(':authority');
  if (authority !== undefined && host !== undefined && authority.toLowerCase() !== host.toLowerCase()) {
    throw new HandshakeError(`the :authority ${shown(authority)} is not the Host header ${shown(host)} (RFC 9113 §8.3.1)`);
  }
  const hostValue = authority ?? host;
  if (hostValue !== undefined) fields.unshift(['host', hostValue]);
  return new ParsedHandshakeRequest(method, path, HTTP2_VERSION, fields);
}

/** The request pseudo-headers of RFC 9113 §8.3.1 and RFC 8441 §4. */
const PSEUDO_HEADERS: ReadonlySet<string> = new Set([':method', ':scheme', ':authority', ':path', ':protocol']);

/** What a server puts in its acceptance of an extended CONNECT. */
export interface StreamAcceptOptions {
  /** The chosen subprotocol; none when `null` or absent. */
  readonly protocol?: string | null;
  /** The negotiated `Sec-WebSocket-Extensions` value; none when `null`, empty or absent. */
  readonly extensions?: string | null;
  /** The `server` header; `null` sends none. */
  readonly serverHeader: string | null;
  /** Extra headers (from a handshake hook); they cannot replace the handshake's own, as in the 101. */
  readonly headers?: HeaderFields;
}

/**
 * The header block that accepts an extended CONNECT (RFC 8441 §5): `:status 200`, the subprotocol and extensions,
 * `server`, and the hook's headers, checked as for a 101 (the handshake's own headers and `Server` are refused).
 * @throws ConfigError for a subprotocol that is not a token, or an extra header that cannot be sent
 */
export function acceptStreamHeaders(options: StreamAcceptOptions): StreamHeaders {
  const { protocol, extensions, serverHeader, headers } = options;
  const block: StreamHeaders = { ':status': 200 };
  if (protocol !== undefined && protocol !== null) {
    if (!isToken(protocol)) throw new ConfigError(`subprotocol ${JSON.stringify(protocol)} is not an HTTP token`, 'protocol', protocol);
    block['sec-websocket-protocol'] = protocol;
  }
  if (extensions) block['sec-websocket-extensions'] = fieldValue('Sec-WebSocket-Extensions', extensions, 'extensions');
  if (serverHeader !== null) block.server = fieldValue('Server', serverHeader, 'serverHeader');
  // The same rules as the 101's extra headers, and then the ones HTTP/2 forbids.
  serializeExtraHeaders(headers, 'headers', RESPONSE_HEADERS);
  addFields(block, headers, 'headers');
  return block;
}

/**
 * A refusal on a stream: the status (checked as `buildRejectResponse` checks it: 400-599, or a redirect with a
 * `Location`), `content-type`, `content-length`, `server`, the extra headers (those HTTP/2 forbids left out), and
 * the plain-text body.
 * @throws ConfigError for a status that is not a refusal, or a header that cannot be sent
 */
export function streamRefusal(status: number, body: string, options: RejectOptions): StreamAnswer {
  // One set of rules for both protocols: what the HTTP/1.1 refusal would refuse is refused here too.
  buildRejectResponse(status, '', { serverHeader: options.serverHeader, headers: options.headers });
  const payload = Buffer.from(body, 'utf8');
  const headers: StreamHeaders = {
    ':status': status,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': payload.length,
  };
  if (options.serverHeader !== null) headers.server = fieldValue('Server', options.serverHeader, 'serverHeader');
  addFields(headers, options.headers, 'headers');
  return { headers, body: payload };
}

/** The refusal of a failed handshake on a stream: its status, its headers (`Allow`, `Retry-After`...) and a short body. */
export function streamRejectionFor(error: HandshakeError, serverHeader: string | null): StreamAnswer {
  return streamRefusal(error.httpStatus, `Failed to open a WebSocket connection: ${error.message}.\n`, { serverHeader, headers: error.headers });
}

/** Adds extra fields to a header block: lower-case names, repeated names as arrays, the connection-specific ones left out. */
function addFields(block: StreamHeaders, fields: HeaderFields | undefined, option: string): void {
  if (fields === undefined) return;
  const pairs: ReadonlyArray<HeaderField> = Array.isArray(fields)
    ? (fields as ReadonlyArray<HeaderField>)
    : Object.entries(fields as Readonly<Record<string, string>>);
  for (const [name, value] of pairs) {
    const lower = name.toLowerCase();
    if (CONNECTION_SPECIFIC.has(lower)) continue;
    const checked = fieldValue(name, value, option);
    const previous = block[lower];
    if (previous === undefined) block[lower] = checked;
    else block[lower] = Array.isArray(previous) ? [...previous, checked] : [String(previous), checked];
  }
}

/**
 * A header value as this package sends it, checked as for an HTTP/1.1 line (printable ASCII, trimmed).
 * @throws ConfigError when it holds a control or non-ASCII character
 */
function fieldValue(name: string, value: string, option: string): string {
  return headerLine(name, value, option).slice(name.length + 2, -2);
}

/** What a client puts in its extended CONNECT. */
export interface ExtendedConnectOptions {
  /** The `:authority`: host and port, as a `Host` header would be (see `formatHost`). */
  readonly authority: string;
  /** The `:path`: the path with its query, starting with `/`. */
  readonly path: string;
  /** `https` (or `http` over cleartext HTTP/2). @default 'https' */
  readonly scheme?: 'https' | 'http';
  /** Subprotocols to offer, in order of preference; none when empty or absent. */
  readonly protocols?: readonly string[];
  /** The `Sec-WebSocket-Extensions` offer; none when empty. */
  readonly extensions?: string | null;
  /** The `Origin` header; none when absent. */
  readonly origin?: string | null;
  /** The `User-Agent` header; `null` sends none. */
  readonly userAgent: string | null;
  /** Extra headers; they cannot replace the handshake's own, and those HTTP/2 forbids are refused. */
  readonly headers?: HeaderFields;
}

/**
 * The header block of a client's extended CONNECT (RFC 8441 §4-5).
 * @throws ConfigError for a path that is not printable ASCII starting with `/`, a bad subprotocol or header value, an
 *   extra header that the handshake writes itself, or one that HTTP/2 forbids (`Connection`, `Upgrade`...)
 */
export function extendedConnectHeaders(options: ExtendedConnectOptions): StreamHeaders {
  const { authority, path, protocols = [], extensions, origin, userAgent, headers } = options;
  if (!/^\/[\x21-\x7e]*$/.test(path)) {
    throw new ConfigError(`path must be printable ASCII starting with "/"; got ${JSON.stringify(path)}`, 'path', path);
  }
  const block: StreamHeaders = {
    ':method': 'CONNECT',
    ':protocol': WEBSOCKET_PROTOCOL,
    ':scheme': options.scheme ?? 'https',
    ':path': path,
    ':authority': authority,
    'sec-websocket-version': WEBSOCKET_VERSION,
  };
  if (protocols.length > 0) block['sec-websocket-protocol'] = formatSubprotocols(protocols);
  if (extensions) block['sec-websocket-extensions'] = fieldValue('Sec-WebSocket-Extensions', extensions, 'extensions');
  if (origin) block.origin = fieldValue('Origin', origin, 'origin');
  if (userAgent !== null) block['user-agent'] = fieldValue('User-Agent', userAgent, 'userAgentHeader');
  serializeExtraHeaders(headers, 'headers', CLIENT_RESERVED);
  addFields(block, headers, 'headers');
  return block;
}

/** What a client's extra headers may not set over HTTP/2: the handshake's own, `Host` (it is `:authority`), and the connection-specific ones. */
const CLIENT_RESERVED: ReadonlySet<string> = new Set([...HANDSHAKE_HEADERS, ...CONNECTION_SPECIFIC, 'host']);

/**
 * Checks a server's answer to an extended CONNECT: a 2xx accepts (RFC 8441 §5, RFC 9110 §9.3.6); the subprotocol,
 * if any, must be one offered.
 * @throws InvalidStatusError for any other status, with its headers and body (a redirect's `location`)
 * @throws InvalidHeaderError for a subprotocol that was not offered or is not a single token
 */
export function validateStreamResponse(
  status: number,
  fields: ReadonlyArray<HeaderField>,
  offeredProtocols: readonly string[],
  body: Buffer = Buffer.alloc(0),
): AcceptedResponse {
  if (status < 200 || status > 299) throw new InvalidStatusError(status, fields, body);
  const protocolValues: string[] = [];
  const extensions: string[] = [];
  for (const [name, value] of fields) {
    const lower = name.toLowerCase();
    if (lower === 'sec-websocket-protocol') protocolValues.push(value);
    else if (lower === 'sec-websocket-extensions') extensions.push(value);
  }
  let protocol: string | null = null;
  if (protocolValues.length > 0) {
    const protocols = parseSubprotocols(protocolValues);
    if (protocols.length !== 1 || !offeredProtocols.includes(protocols[0]!)) {
      throw new InvalidHeaderError(SUBPROTOCOL_HEADER, protocolValues.join(', '));
    }
    protocol = protocols[0]!;
  }
  return { protocol, extensions: extensions.join(', ') };
}
