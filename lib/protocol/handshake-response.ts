/**
 * The server's handshake response (RFC 6455 §4.1, §4.2.2): built on the server, parsed and validated on the client.
 *
 * Server: `buildAcceptResponse` writes the 101; `buildRejectResponse` / `rejectionFor` write a complete refusal
 * (`Connection: close`, `Content-Type`, `Content-Length`, a plain-text body).
 * Client: feed bytes to a `ResponseParser` (and call `end()` at EOF), then `validateUpgradeResponse`.
 * Over 400 lines because the response's two sides (built by the server, parsed under limits by the client, body
 * framings included) share one set of rules on statuses and headers.
 */
import type { Limits } from '../config/index.js';
import {
  ConfigError,
  HandshakeError,
  HandshakeLimitError,
  IncompleteResponseError,
  InvalidHeaderError,
  InvalidStateError,
  InvalidStatusError,
} from '../errors.js';
import {
  HandshakeHeaders,
  REFUSAL_HEADERS,
  RESPONSE_HEADERS,
  headerLine,
  isToken,
  listHasToken,
  parseList,
  serializeExtraHeaders,
} from './handshake-headers.js';
import type { HeaderField, HeaderFields } from './handshake-headers.js';
import { acceptKey, isValidKey } from './handshake-key.js';
import { HeadReader, shown } from './handshake-reader.js';
import { parseSubprotocols, SUBPROTOCOL_HEADER } from './subprotocols.js';

/** RFC 9110 §15.2.2. */
export const SWITCHING_PROTOCOLS = 101;

/** Reason phrases of the statuses a WebSocket server answers with (RFC 9110 §15); others are sent without one. */
const REASONS: Readonly<Record<number, string>> = {
  101: 'Switching Protocols',
  200: 'OK',
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Content Too Large',
  414: 'URI Too Long',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  505: 'HTTP Version Not Supported',
};

/** The reason phrase sent with `status`; empty for a status without a registered phrase here. */
export function reasonPhrase(status: number): string {
  return REASONS[status] ?? '';
}

/** A parsed handshake response. */
export interface HandshakeResponse {
  /** `1.1`; `1.0` is also accepted in a proxy's answer to CONNECT (some proxies still speak HTTP/1.0). */
  readonly httpVersion: string;
  readonly status: number;
  readonly reason: string;
  readonly headers: HandshakeHeaders;
  readonly rawHeaders: ReadonlyArray<HeaderField>;
  /** The body of a non-101 response (at most `maxBodySize` bytes); empty for a 101. */
  readonly body: Buffer;
}

/** What the client learns from a valid 101. */
export interface AcceptedResponse {
  /** The subprotocol the server picked, or `null`. */
  readonly protocol: string | null;
  /** The `Sec-WebSocket-Extensions` field lines joined with `", "` (empty when absent), for the extension parser. */
  readonly extensions: string;
}

// RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]; the last SP is tolerated missing.
const STATUS_LINE = /^HTTP\/(\d)\.(\d) ([1-5]\d\d)(?: ([\t\x20-\x7e\x80-\xff]*))?$/;
// RFC 9112 §7.1: chunk-size [ chunk-ext ] CRLF.
const CHUNK_SIZE = /^0*([0-9A-Fa-f]{1,13})[\t ]*(?:;[\t\x20-\x7e\x80-\xff]*)?$/;
const CONTENT_LENGTH = /^\d{1,15}$/;

/** States of the response parser (a const object, not an enum: erasable syntax). */
const State = {
  HEAD: 0,
  BODY_LENGTH: 1,
  CHUNK_SIZE: 2,
  CHUNK_DATA: 3,
  CHUNK_END: 4,
  TRAILERS: 5,
  BODY_EOF: 6,
  DONE: 7,
} as const;
type State = (typeof State)[keyof typeof State];

/** The request a response answers, where it changes how the response is read. */
export interface ResponseParserOptions {
  /**
   * `'CONNECT'` for a proxy's answer to a tunnel request: HTTP/1.0 is accepted as well as 1.1, as Python websockets
   * does for proxies, and a 2xx has no body, the tunnel starting right after its head (RFC 9112 §6.3 item 2), so
   * what follows is in `rest`. A refusal's body is read as for any response.
   * @default 'GET' (the opening handshake)
   */
  readonly method?: 'GET' | 'CONNECT';
}

/**
 * Parses a handshake response from bytes, incrementally, under the handshake limits: the status line and header
 * lines (`maxLineLength`, `maxNumHeaders`) and, for a status other than 101, a body of at most `maxBodySize`
 * bytes delimited by Content-Length, the chunked transfer coding, or the end of the connection (RFC 9112 §6.3).
 * A 101 has no body: bytes after its head (frames the server sent at once) are in `rest`. The same parser, with
 * `method: 'CONNECT'`, reads a proxy's answer to a tunnel request under the same limits.
 */
export class ResponseParser {
  private readonly head: HeadReader;
  private state: State = State.HEAD;
  private status = 0;
  private reason = '';
  private httpVersion = '';
  private fields: HeaderField[] = [];
  private trailerCount = 0;
  /** Bytes of body still expected: of the whole body (Content-Length) or of the current chunk. */
  private remaining = 0;
  private bodySize = 0;
  private readonly body: Buffer[] = [];
  private response: HandshakeResponse | null = null;
  private failure: HandshakeError | null = null;
  private tail: Buffer = Buffer.alloc(0);

  private readonly tunnel: boolean;

  constructor(
    private readonly limits: Limits,
    options: ResponseParserOptions = {},
  ) {
    this.head = new HeadReader(limits, 'status-line');
    this.tunnel = options.method === 'CONNECT';
  }

  /** Bytes received after the end of a 101's head; empty otherwise. */
  get rest(): Buffer {
    return this.tail;
  }

  /**
   * Adds bytes read from the socket.
   * @returns the response once complete (a body read to EOF completes at `end()`), else `null`
   * @throws HandshakeLimitError over a limit, HandshakeError for a malformed response; once thrown, every later
   *   call throws the same error
   * @throws InvalidStateError when called after the response was returned
   */
  push(chunk: Buffer): HandshakeResponse | null {
    if (this.failure !== null) throw this.failure;
    if (this.state === State.DONE) throw new InvalidStateError('the handshake response is complete; read rest instead');
    try {
      this.head.bytes.append(chunk);
      const done = this.parse();
      if (!done) this.head.bytes.retain();
      return this.response;
    } catch (error) {
      this.failure = error as HandshakeError;
      throw error;
    }
  }

  /**
   * Tells the parser that the connection ended (EOF). It completes a body delimited by the end of the connection.
   * @returns the response, when it is complete
   * @throws IncompleteResponseError when the connection ended before the response was complete
   */
  end(): HandshakeResponse {
    if (this.failure !== null) throw this.failure;
    if (this.state === State.BODY_EOF) this.finish();
    if (this.response === null) {
      this.failure = new IncompleteResponseError(
        this.state === State.HEAD
          ? 'connection closed before the handshake response was complete'
          : 'connection closed in the middle of the handshake response body',
      );
      throw this.failure;
    }
    return this.response;
  }

  /** Runs the state machine over the buffered bytes; true once the response is complete. */
  private parse(): boolean {
    const bytes = this.head.bytes;
    const { maxLineLength, maxNumHeaders } = this.limits;
    for (;;) {
      switch (this.state) {
        case State.HEAD: {
          const head = this.head.read();
          // The status line is checked as soon as it is here: garbage (a proxy that is not one) fails at once.
          if (this.status === 0 && this.head.startLine !== null) this.onStatusLine(this.head.startLine);
          if (head === null) return false;
          this.onHead(head.fields);
          break;
        }
        case State.BODY_LENGTH:
        case State.CHUNK_DATA: {
          if (bytes.available === 0) return false;
          const part = bytes.take(this.remaining);
          this.body.push(Buffer.from(part));
          this.remaining -= part.length;
          if (this.remaining > 0) return false;
          if (this.state === State.BODY_LENGTH) {
            this.finish();
            return true;
          }
          this.state = State.CHUNK_END;
          break;
        }
        case State.CHUNK_SIZE: {
          const line = bytes.readLine(maxLineLength, 'header-line');
          if (line === null) return false;
          const match = CHUNK_SIZE.exec(line.toString('latin1'));
          if (match === null) throw new HandshakeError(`invalid chunk size line ${shown(line.toString('latin1'))}`);
          const size = parseInt(match[1], 16);
          this.addToBody(size);
          this.remaining = size;
          this.state = size === 0 ? State.TRAILERS : State.CHUNK_DATA;
          break;
        }
        case State.CHUNK_END: {
          const line = bytes.readLine(maxLineLength, 'header-line');
          if (line === null) return false;
          if (line.length !== 0) throw new HandshakeError('missing CRLF after a chunk of the response body');
          this.state = State.CHUNK_SIZE;
          break;
        }
        case State.TRAILERS: {
          // RFC 9112 §7.1.2: trailer fields are read (under the header limits) and discarded.
          const line = bytes.readLine(maxLineLength, 'header-line');
          if (line === null) return false;
          if (line.length === 0) {
            this.finish();
            return true;
          }
          if (this.fields.length + ++this.trailerCount > maxNumHeaders) {
            throw new HandshakeLimitError('num-headers', maxNumHeaders, maxNumHeaders + 1);
          }
          break;
        }
        case State.BODY_EOF: {
          const part = bytes.takeAll();
          if (part.length === 0) return false;
          this.addToBody(part.length);
          this.body.push(Buffer.from(part));
          break;
        }
        case State.DONE:
          return true;
      }
    }
  }

  /** Reads the status line (its version, status and reason). */
  private onStatusLine(startLine: string): void {
    const match = STATUS_LINE.exec(startLine);
    if (match === null) throw new HandshakeError(`invalid status line ${shown(startLine)}`);
    const version = `${match[1]}.${match[2]}`;
    if (version !== '1.1' && !(this.tunnel && version === '1.0')) {
      throw new HandshakeError(
        `unsupported HTTP version in status line ${shown(startLine)} (HTTP/1.1 is required${this.tunnel ? ', or 1.0 from a proxy' : ''})`,
      );
    }
    this.httpVersion = version;
    this.status = Number(match[3]);
    this.reason = match[4] ?? '';
  }

  /** Decides how the body is delimited (RFC 9112 §6.3), once the header fields are complete. */
  private onHead(fields: HeaderField[]): void {
    this.fields = fields;
    const headers = new HandshakeHeaders(fields);
    // 1xx (101 included), 204 and 304 responses have no body, nor has a 2xx to CONNECT: the tunnel follows its head.
    const tunnelOpen = this.tunnel && this.status >= 200 && this.status < 300;
    if (this.status < 200 || this.status === 204 || this.status === 304 || tunnelOpen) {
      this.tail = this.head.bytes.takeAll();
      this.finish();
      return;
    }
    const transferEncoding = headers.getAll('Transfer-Encoding');
    if (transferEncoding.length > 0) {
      // A body that is chunked last is read chunk by chunk; any other coding runs to the end of the connection.
      const codings = parseList(transferEncoding);
      this.state = codings[codings.length - 1]?.toLowerCase() === 'chunked' ? State.CHUNK_SIZE : State.BODY_EOF;
      return;
    }
    const contentLength = headers.getAll('Content-Length');
    if (contentLength.length === 0) {
      this.state = State.BODY_EOF;
      return;
    }
    // RFC 9110 §8.6: repeated identical values may be merged; anything else is an unrecoverable framing error.
    const lengths = new Set(parseList(contentLength));
    const [length] = lengths;
    if (lengths.size !== 1 || !CONTENT_LENGTH.test(length)) {
      throw new InvalidHeaderError('Content-Length', contentLength.join(', '));
    }
    this.remaining = Number(length);
    this.addToBody(this.remaining);
    if (this.remaining === 0) this.finish();
    else this.state = State.BODY_LENGTH;
  }

  /** Counts declared or received body bytes against `maxBodySize`. */
  private addToBody(size: number): void {
    this.bodySize += size;
    if (this.bodySize > this.limits.maxBodySize) {
      throw new HandshakeLimitError('body', this.limits.maxBodySize, this.bodySize);
    }
  }

  private finish(): void {
    this.state = State.DONE;
    this.response = {
      httpVersion: this.httpVersion,
      status: this.status,
      reason: this.reason,
      headers: new HandshakeHeaders(this.fields),
      rawHeaders: this.fields,
      body: Buffer.concat(this.body),
    };
  }
}

/** What the client offered, to check the response against. */
export interface OfferedHandshake {
  /** The `Sec-WebSocket-Key` the client sent. */
  readonly key: string;
  /** The subprotocols the client offered (empty when none). */
  readonly protocols: readonly string[];
}

/**
 * Checks a server's response to the client's handshake (RFC 6455 §4.1, items 1-6 of the client's checks).
 * @returns the chosen subprotocol and the raw extensions header (checked against the offer by the extension layer)
 * @throws InvalidStatusError for a status other than 101, with the headers (a redirect's `Location`) and body
 * @throws InvalidHeaderError for a missing or wrong `Upgrade`, `Connection` or `Sec-WebSocket-Accept`, or a
 *   subprotocol that was not offered or is not a single token
 */
export function validateUpgradeResponse(response: HandshakeResponse, offered: OfferedHandshake): AcceptedResponse {
  if (response.status !== SWITCHING_PROTOCOLS) {
    throw new InvalidStatusError(response.status, response.rawHeaders, response.body);
  }
  const { headers } = response;
  const upgrade = headers.getAll('Upgrade');
  const upgradeTokens = parseList(upgrade);
  if (upgradeTokens.length !== 1 || upgradeTokens[0].toLowerCase() !== 'websocket') {
    throw new InvalidHeaderError('Upgrade', upgrade.length === 0 ? undefined : upgrade.join(', '));
  }
  const connection = headers.getAll('Connection');
  if (!listHasToken(connection, 'upgrade')) {
    throw new InvalidHeaderError('Connection', connection.length === 0 ? undefined : connection.join(', '));
  }
  const accept = headers.getAll('Sec-WebSocket-Accept');
  if (accept.length !== 1 || accept[0] !== acceptKey(offered.key)) {
    throw new InvalidHeaderError('Sec-WebSocket-Accept', accept.length === 0 ? undefined : accept.join(', '));
  }
  const protocolValues = headers.getAll(SUBPROTOCOL_HEADER);
  let protocol: string | null = null;
  if (protocolValues.length > 0) {
    // RFC 6455 §4.1 item 6: one of the offered values, or the connection fails.
    const protocols = parseSubprotocols(protocolValues);
    if (protocols.length !== 1 || !offered.protocols.includes(protocols[0])) {
      throw new InvalidHeaderError(SUBPROTOCOL_HEADER, protocolValues.join(', '));
    }
    protocol = protocols[0];
  }
  return { protocol, extensions: headers.getAll('Sec-WebSocket-Extensions').join(', ') };
}

/** What a server puts in its 101 response. */
export interface AcceptOptions {
  /** The client's `Sec-WebSocket-Key`. */
  readonly key: string;
  /** The chosen subprotocol; none when `null` or absent. */
  readonly protocol?: string | null;
  /** The negotiated `Sec-WebSocket-Extensions` value; none when `null`, empty or absent. */
  readonly extensions?: string | null;
  /** The `Server` header; `null` sends none. */
  readonly serverHeader: string | null;
  /** Extra headers (from a handshake hook, e.g. `Set-Cookie`); they cannot replace the handshake's own. */
  readonly headers?: HeaderFields;
  /** The `Date` header (RFC 9110 §6.6.1), from the I/O layer's clock; none when absent. */
  readonly date?: Date;
}

function dateLine(date: Date | undefined): string {
  return date === undefined ? '' : `Date: ${date.toUTCString()}\r\n`;
}

/**
 * The bytes of the server's 101 Switching Protocols (RFC 6455 §4.2.2 item 5).
 * @throws ConfigError as `acceptResponseHead`
 */
export function buildAcceptResponse(options: AcceptOptions): Buffer {
  return Buffer.from(acceptResponseHead(options), 'latin1');
}

/**
 * The server's 101 Switching Protocols as a latin1 string, head and final CRLF: what `buildAcceptResponse` encodes.
 * A socket can write it as is (`socket.write(head, 'latin1')`), with no Buffer made for it first.
 * @throws ConfigError for a bad key, a subprotocol that is not a token, or a header value or extra header that
 *   could split the response
 */
export function acceptResponseHead(options: AcceptOptions): string {
  const { key, protocol, extensions, serverHeader, headers, date } = options;
  if (!isValidKey(key)) throw new ConfigError(`invalid Sec-WebSocket-Key ${JSON.stringify(key)}`, 'key', key);
  let head =
    `HTTP/1.1 ${SWITCHING_PROTOCOLS} ${reasonPhrase(SWITCHING_PROTOCOLS)}\r\n` +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n`;
  if (protocol !== undefined && protocol !== null) {
    if (!isToken(protocol)) {
      throw new ConfigError(`subprotocol ${JSON.stringify(protocol)} is not an HTTP token`, 'protocol', protocol);
    }
    head += `${SUBPROTOCOL_HEADER}: ${protocol}\r\n`;
  }
  if (extensions) head += headerLine('Sec-WebSocket-Extensions', extensions, 'extensions');
  head += dateLine(date);
  if (serverHeader !== null) head += headerLine('Server', serverHeader, 'serverHeader');
  head += serializeExtraHeaders(headers, 'headers', RESPONSE_HEADERS);
  return `${head}\r\n`;
}

/** What a server puts in a refusal besides its status and body. */
export interface RejectOptions {
  /** The `Server` header; `null` sends none. */
  readonly serverHeader: string | null;
  /** Extra headers: those of the error (`Allow`, `Upgrade`, `Sec-WebSocket-Version`) or of a handshake hook. */
  readonly headers?: HeaderFields;
  /** The `Date` header, from the I/O layer's clock; none when absent. */
  readonly date?: Date;
}

/** RFC 9110 §15.4: the redirects a client may follow from a handshake (ours does; RFC 6455 §4.1 allows them). */
const REDIRECTS: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);
const CLIENT_ERROR = 400;
const MAX_STATUS = 599;

/**
 * The bytes of a complete refusal: status line with its reason phrase, `Connection: close` (the server closes the
 * connection after it, RFC 9112 §9.6), `Content-Type: text/plain; charset=utf-8`, `Content-Length`, the `Server`
 * header unless `null`, the extra headers, and `body` (UTF-8).
 * @throws ConfigError for a status that does not refuse an upgrade (only 400-599, or a redirect 301, 302, 303, 307,
 *   308 with a `Location` header: a 2xx or 1xx would answer the upgrade request as if it had succeeded or were
 *   going on), or an extra header that could split the response or that the refusal writes itself (Connection,
 *   Content-Length, Transfer-Encoding, Content-Type, Server)
 */
export function buildRejectResponse(status: number, body: string, options: RejectOptions): Buffer {
  const redirect = REDIRECTS.has(status);
  if (!redirect && !(Number.isInteger(status) && status >= CLIENT_ERROR && status <= MAX_STATUS)) {
    throw new ConfigError(
      `a refusal needs a status from 400 to 599, or a redirect (301, 302, 303, 307 or 308) with a Location header; got ${status}`,
      'status',
      status,
    );
  }
  if (redirect && !hasField(options.headers, 'location')) {
    throw new ConfigError(
      `a refusal needs a status from 400 to 599, or a redirect (301, 302, 303, 307 or 308) with a Location header; ` +
        `got ${status} without a Location header`,
      'status',
      status,
    );
  }
  const payload = Buffer.from(body, 'utf8');
  const reason = reasonPhrase(status);
  let head =
    `HTTP/1.1 ${status}${reason === '' ? ' ' : ` ${reason}`}\r\n` +
    'Connection: close\r\n' +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${payload.length}\r\n`;
  head += dateLine(options.date);
  if (options.serverHeader !== null) head += headerLine('Server', options.serverHeader, 'serverHeader');
  head += serializeExtraHeaders(options.headers, 'headers', REFUSAL_HEADERS);
  return Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), payload]);
}

/** Whether extra headers (an object or a list of pairs) hold a field named `lower` (in lower case). */
function hasField(fields: HeaderFields | undefined, lower: string): boolean {
  if (fields === undefined) return false;
  const names = Array.isArray(fields) ? (fields as ReadonlyArray<HeaderField>).map(([name]) => name) : Object.keys(fields);
  return names.some((name) => typeof name === 'string' && name.toLowerCase() === lower);
}

/**
 * The refusal for a handshake error: its `httpStatus`, its headers, and the body
 * `Failed to open a WebSocket connection: <message>.` (for a limit, the message names the option and variable).
 * A 426 for a missing upgrade adds a line for people who opened the URL in a browser.
 */
export function rejectionFor(error: HandshakeError, serverHeader: string | null, date?: Date): Buffer {
  let body = `Failed to open a WebSocket connection: ${error.message}.\n`;
  if (error.httpStatus === 426 && error.headers.Upgrade !== undefined) {
    body += '\nYou cannot access a WebSocket server directly with a browser. You need a WebSocket client.\n';
  }
  return buildRejectResponse(error.httpStatus, body, { serverHeader, headers: error.headers, date });
}
