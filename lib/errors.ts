/**
 * The error classes of the package. Every error has a stable `code` string; errors that map to the wire carry the
 * `closeCode` or `httpStatus` that the I/O layer answers with, so no `instanceof` chain is needed to map them.
 *
 * WebSocketsError                     code
 * ├─ HandshakeError                   httpStatus (400 unless a subclass says otherwise)
 * │  ├─ HandshakeLimitError           setting, limit, actual: 414 / 431 on a server; thrown on a client
 * │  ├─ InvalidHeaderError            name, value
 * │  │  └─ InvalidExtensionsError     reason (a malformed Sec-WebSocket-Extensions, or one the client did not offer)
 * │  ├─ InvalidStatusError            status, headers, body (client: the server did not answer 101)
 * │  ├─ IncompleteResponseError       (client: the connection ended before the whole handshake response came)
 * │  ├─ OriginNotAllowedError         origin (403)
 * │  ├─ NoEndpointError               path, remoteAddress (404: no WebSocket server owns the path)
 * │  ├─ ConnectionLimitError          setting, limit, retryAfterSeconds (503 with Retry-After, before the upgrade)
 * │  ├─ OpenTimeoutError              timeoutMs (client: the opening handshake took too long)
 * │  ├─ RedirectError                 location (client: too many, insecure or invalid redirects)
 * │  └─ ProxyError                    proxy, status, reason, body (client: the proxy refused or answered nonsense)
 * ├─ ProtocolError                    closeCode 1002
 * ├─ InvalidUtf8Error                 closeCode 1007
 * ├─ MessageTooBigError               closeCode 1009, limit, actual
 * ├─ TooManyFragmentsError            closeCode 1008, limit
 * ├─ SlowConsumerError                closeCode 1013, limit (the peer does not read what is sent to it)
 * ├─ InvalidStateError                e.g. send() after close
 * ├─ ConnectionClosedError            code, reason
 * ├─ FileDescriptorLimitError         cause, limit, connections (server: clients are being reset by the OS)
 * ├─ ConfigError                      setting, value
 * ├─ InvalidMessageError              id (a gateway's message its parser refused: an exception frame)
 * ├─ RedisClientMissingError          a Redis URL is set but ioredis is not installed (start-up)
 * ├─ RedisUnavailableError            url (Redis cannot be reached at start-up)
 * ├─ MessageTooDeepError              limit, id (a gateway's message: an exception frame)
 * └─ RoomLimitError                   limit, room (a gateway's join: an exception frame)
 *
 * Messages name the limit, its value and how to change it; what goes on the wire is short.
 *
 * Over 400 lines on purpose: one module holds every class, so a user finds them all in one place and every layer
 * (and `nestjs-websockets/node`, `/protocol`) exports the same classes; each class is a few lines.
 */
import { describeSetting, type SettingName } from './config/settings.js';

/** Close codes used by errors (duplicated from close-codes.ts would create a cycle; these are checked by a test). */
const PROTOCOL_ERROR = 1002;
const INVALID_DATA = 1007;
const POLICY_VIOLATION = 1008;
const MESSAGE_TOO_BIG = 1009;
const TRY_AGAIN_LATER = 1013;

export abstract class WebSocketsError extends Error {
  /** A stable identifier, e.g. `WS_ERR_MESSAGE_TOO_BIG`; safe to match on. */
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The opening handshake failed. On a server, `httpStatus` is the status of the refusal. */
export class HandshakeError extends WebSocketsError {
  readonly code: string = 'WS_ERR_HANDSHAKE';
  constructor(
    message: string,
    /** The HTTP status a server answers with. */
    readonly httpStatus: number = 400,
    /** Extra headers of the refusal, e.g. `Allow: GET` with 405. */
    readonly headers: Readonly<Record<string, string>> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Which handshake limit was exceeded. */
export type HandshakeLimit = 'request-line' | 'status-line' | 'header-line' | 'num-headers' | 'body';

const LIMIT_SETTING: Record<HandshakeLimit, SettingName> = {
  'request-line': 'maxLineLength',
  'status-line': 'maxLineLength',
  'header-line': 'maxLineLength',
  'num-headers': 'maxNumHeaders',
  body: 'maxBodySize',
};

const LIMIT_STATUS: Record<HandshakeLimit, number> = {
  'request-line': 414,
  'status-line': 400,
  'header-line': 431,
  'num-headers': 431,
  body: 400,
};

/** A handshake went over one of the seed's limits (line length, number of headers, body size). */
export class HandshakeLimitError extends HandshakeError {
  override readonly code = 'WS_ERR_HANDSHAKE_LIMIT';
  readonly setting: SettingName;
  constructor(
    readonly limitKind: HandshakeLimit,
    /** The limit in force (bytes, or a count of headers). */
    readonly limit: number,
    /** What was seen (bytes so far, or the header count); for a line, at least limit + 1. */
    readonly actual: number,
  ) {
    const setting = LIMIT_SETTING[limitKind];
    super(HandshakeLimitError.describe(limitKind, limit, actual, setting), LIMIT_STATUS[limitKind]);
    this.setting = setting;
  }

  private static describe(kind: HandshakeLimit, limit: number, actual: number, setting: SettingName): string {
    const how = `(${describeSetting(setting)})`;
    switch (kind) {
      case 'request-line':
        return `request line is ${actual} bytes or more; the limit is ${limit} ${how}`;
      case 'status-line':
        return `status line is ${actual} bytes or more; the limit is ${limit} ${how}`;
      case 'header-line':
        return `header line is ${actual} bytes or more; the limit is ${limit} ${how}`;
      case 'num-headers':
        return `more than ${limit} headers ${how}`;
      case 'body':
        return `response body is ${actual} bytes or more; the limit is ${limit} ${how}`;
    }
  }
}

/** A header is missing, empty or invalid: "missing Sec-WebSocket-Key header", "invalid Upgrade header: h2c". */
export class InvalidHeaderError extends HandshakeError {
  override readonly code: string = 'WS_ERR_INVALID_HEADER';
  constructor(
    readonly headerName: string,
    readonly value: string | undefined,
    httpStatus = 400,
    headers: Readonly<Record<string, string>> = {},
  ) {
    super(
      value === undefined
        ? `missing ${headerName} header`
        : value === ''
          ? `empty ${headerName} header`
          : `invalid ${headerName} header: ${value.length > 200 ? `${value.slice(0, 200)}...` : value}`,
      httpStatus,
      headers,
    );
  }
}

/**
 * The `Sec-WebSocket-Extensions` header is malformed, or (on a client) the server's response accepts something the
 * client did not offer. `reason` says which rule failed; a server answers 400.
 */
export class InvalidExtensionsError extends InvalidHeaderError {
  override readonly code = 'WS_ERR_INVALID_EXTENSIONS';
  constructor(
    value: string,
    /** Why the header was refused, e.g. `expected a token at offset 19`. */
    readonly reason: string,
  ) {
    super('Sec-WebSocket-Extensions', value);
    this.message = `${this.message} (${reason})`;
  }
}

/** The client's request carries an Origin that the server does not allow (403). */
export class OriginNotAllowedError extends HandshakeError {
  override readonly code = 'WS_ERR_ORIGIN_NOT_ALLOWED';
  constructor(readonly origin: string | undefined) {
    super(origin === undefined ? 'missing Origin header' : `origin not allowed: ${origin}`, 403);
  }
}

/** Server side: an upgrade for a path that no WebSocket server owns (404), named by its path, not by a gateway. */
export class NoEndpointError extends HandshakeError {
  override readonly code = 'WS_ERR_NO_ENDPOINT';
  constructor(
    readonly path: string,
    /** The client's address, when the socket knew it. */
    readonly remoteAddress: string | undefined,
  ) {
    super(`no WebSocket endpoint at ${path}`, 404);
  }
}

/** Which connection limit refused a handshake. */
export type ConnectionLimit = 'maxConnections' | 'maxConnectionsPerAddress' | 'maxHandshakesPerSecondPerAddress';

/** Server side: a connection limit is reached; the refusal is 503 with `Retry-After`, sent before the upgrade. */
export class ConnectionLimitError extends HandshakeError {
  override readonly code = 'WS_ERR_CONNECTION_LIMIT';
  constructor(
    readonly setting: ConnectionLimit,
    /** The limit in force (connections, or handshakes per second). */
    readonly limit: number,
    /** What `Retry-After` says, in whole seconds (at least 1). */
    readonly retryAfterSeconds: number,
  ) {
    super(
      `${ConnectionLimitError.describe(setting)}; the limit is ${limit} (${describeSetting(setting)})`,
      503,
      { 'Retry-After': String(retryAfterSeconds) },
    );
  }

  private static describe(setting: ConnectionLimit): string {
    switch (setting) {
      case 'maxConnections':
        return 'too many connections to this server';
      case 'maxConnectionsPerAddress':
        return 'too many connections from this address';
      case 'maxHandshakesPerSecondPerAddress':
        return 'too many new connections per second from this address';
    }
  }
}

/** Client side: the server answered with something other than 101 Switching Protocols. */
export class InvalidStatusError extends HandshakeError {
  override readonly code = 'WS_ERR_INVALID_STATUS';
  constructor(
    readonly status: number,
    readonly responseHeaders: ReadonlyArray<readonly [string, string]>,
    readonly body: Buffer,
  ) {
    super(`server rejected WebSocket connection: HTTP ${status}`, status);
  }
}

/**
 * Client side: the connection ended before the handshake response was complete (the server, or a proxy, closed it
 * without answering, or in the middle of a refusal's body). `reconnect()` treats it as a network error.
 */
export class IncompleteResponseError extends HandshakeError {
  override readonly code = 'WS_ERR_INCOMPLETE_RESPONSE';
}

/** Client side: the opening handshake, redirects included, did not finish within `openTimeoutMs`. */
export class OpenTimeoutError extends HandshakeError {
  override readonly code = 'WS_ERR_OPEN_TIMEOUT';
  constructor(
    readonly timeoutMs: number,
    options?: { cause?: unknown },
  ) {
    super(`timed out during the opening handshake after ${timeoutMs} ms (${describeSetting('openTimeoutMs')})`, 400, {}, options);
  }
}

/** Client side: a redirect that cannot be followed (too many, from wss down to ws, or not to a ws/wss URL). */
export class RedirectError extends HandshakeError {
  override readonly code = 'WS_ERR_REDIRECT';
  constructor(
    message: string,
    /** The Location the server sent, when there was one. */
    readonly location: string | undefined,
  ) {
    super(message);
  }
}

/** What a `ProxyError` knows about the proxy and its answer. */
export interface ProxyErrorDetails {
  /** The proxy's URL without its credentials, e.g. `http://127.0.0.1:3128`. */
  readonly proxy: string;
  /**
   * The proxy's answer: the HTTP status of an `http`/`https` proxy's response to CONNECT, or the reply code of a
   * SOCKS5 proxy (RFC 1928 §6: 1 general failure ... 5 connection refused ... 8 address type not supported).
   * Absent when the answer could not be read (garbage, a limit, the connection ended).
   */
  readonly status?: number;
  /** The proxy's own words: the reason phrase of the HTTP status, or the meaning of the SOCKS reply code. */
  readonly reason?: string;
  /** The headers of an HTTP proxy's refusal (e.g. `Proxy-Authenticate`, `Retry-After`). */
  readonly responseHeaders?: ReadonlyArray<readonly [string, string]>;
  /** The body of an HTTP proxy's refusal (at most `maxBodySize` bytes). */
  readonly body?: Buffer;
}

/**
 * Client side: the proxy refused to open the tunnel (an HTTP status other than 2xx, a SOCKS5 reply other than
 * success, credentials refused), or answered something that is not a valid response under the handshake limits
 * (the limit is named in the message and the `HandshakeLimitError` is the `cause`). Failing to reach the proxy at
 * all is Node's own error (`ECONNREFUSED` ...), as for a server.
 */
export class ProxyError extends HandshakeError {
  override readonly code = 'WS_ERR_PROXY';
  readonly proxy: string;
  readonly status: number | undefined;
  readonly reason: string | undefined;
  readonly responseHeaders: ReadonlyArray<readonly [string, string]>;
  readonly body: Buffer;
  constructor(message: string, details: ProxyErrorDetails, options?: { cause?: unknown }) {
    // 502 Bad Gateway for a gateway that relays this failure, unless the proxy answered with an HTTP status.
    const httpStatus = details.status !== undefined && details.responseHeaders !== undefined ? details.status : 502;
    super(message, httpStatus, {}, options);
    this.proxy = details.proxy;
    this.status = details.status;
    this.reason = details.reason;
    this.responseHeaders = details.responseHeaders ?? [];
    this.body = details.body ?? Buffer.alloc(0);
  }
}

/** The peer broke RFC 6455 or RFC 7692: the connection fails with 1002. */
export class ProtocolError extends WebSocketsError {
  readonly code: string = 'WS_ERR_PROTOCOL';
  readonly closeCode: number = PROTOCOL_ERROR;
}

/** A text message or a close reason is not valid UTF-8: the connection fails with 1007. */
export class InvalidUtf8Error extends WebSocketsError {
  readonly code = 'WS_ERR_INVALID_UTF8';
  readonly closeCode = INVALID_DATA;
}

/** A message is larger than `maxMessageSize` (declared, accumulated or decompressed): 1009. */
export class MessageTooBigError extends WebSocketsError {
  readonly code = 'WS_ERR_MESSAGE_TOO_BIG';
  readonly closeCode = MESSAGE_TOO_BIG;
  constructor(
    /** The message's size as its frames declare it, or `null` when only "over the limit" is known (after decompression). */
    readonly actual: number | null,
    readonly limit: number,
    readonly afterDecompression = false,
  ) {
    // Short enough for a close reason (123 bytes) whatever the numbers.
    super(
      actual === null
        ? `message over ${limit} bytes${afterDecompression ? ' after decompression' : ''} (${describeSetting('maxMessageSize')})`
        : `message of ${actual} bytes${afterDecompression ? ' after decompression' : ''}; the limit is ${limit} (${describeSetting('maxMessageSize')})`,
    );
  }
}

/** A message arrives in more frames than `maxFragments` allows: the connection fails with 1008 (as ws does). */
export class TooManyFragmentsError extends WebSocketsError {
  readonly code = 'WS_ERR_TOO_MANY_FRAGMENTS';
  readonly closeCode = POLICY_VIOLATION;
  constructor(readonly limit: number) {
    super(`message in more than ${limit} fragments (${describeSetting('maxFragments')})`);
  }
}

/**
 * A send would have put more than `maxBufferedAmount` bytes in wait for a peer that does not read them, under the
 * `'close'` slow-consumer policy: the waiting sends are dropped (their promises reject with this error) and the
 * connection is closed with 1013 (Try Again Later).
 */
export class SlowConsumerError extends WebSocketsError {
  readonly code = 'WS_ERR_SLOW_CONSUMER';
  readonly closeCode = TRY_AGAIN_LATER;
  constructor(readonly limit: number) {
    super(`more than ${limit} bytes waiting to be sent to a peer that does not read them (${describeSetting('maxBufferedAmount')})`);
  }

  /** The close reason on the wire (at most 123 bytes). */
  static reason(limit: number): string {
    return `send buffer over ${limit} bytes (${describeSetting('maxBufferedAmount')})`;
  }
}

/** An operation that the connection's state does not allow, such as sending after the close. */
export class InvalidStateError extends WebSocketsError {
  readonly code = 'WS_ERR_INVALID_STATE';
}

/** The connection is closed; `code` and `reason` are those of the closing handshake (1006 when there was none). */
export class ConnectionClosedError extends WebSocketsError {
  readonly code = 'WS_ERR_CONNECTION_CLOSED';
  constructor(
    readonly closeCode: number,
    readonly reason: string,
  ) {
    super(`connection closed: ${closeCode}${reason ? ` ${reason}` : ''}`);
  }
}

/**
 * Server side, reported once per burst (the server's `'error'` event): the process (EMFILE) or the system (ENFILE)
 * has no file descriptor free, so the operating system resets new clients before the server sees them.
 */
export class FileDescriptorLimitError extends WebSocketsError {
  readonly code = 'WS_ERR_FD_LIMIT';
  constructor(
    /** `EMFILE`: the process's limit (`ulimit -n`); `ENFILE`: the system's. */
    readonly exhausted: 'EMFILE' | 'ENFILE',
    /** The process's limit on open files when known (Linux), else `null`. */
    readonly limit: number | null,
    /** Connections (open, or in their handshake) that the reporting server holds. */
    readonly connections: number,
  ) {
    const what =
      exhausted === 'EMFILE'
        ? `the process is out of file descriptors (EMFILE: its limit is ${limit === null ? 'set by' : `${limit},`} ulimit -n)`
        : 'the system is out of file descriptors (ENFILE: the system-wide limit, fs.file-max on Linux)';
    const raise = exhausted === 'EMFILE' ? 'ulimit -n, LimitNOFILE= in a systemd unit' : 'sysctl fs.file-max';
    super(
      `${what}: new clients are reset by the operating system before the server sees them; this server holds ` +
        `${connections} connections. Set maxConnections (${describeSetting('maxConnections')}) below the limit so ` +
        `that clients over it get 503, or raise the limit (${raise})`,
    );
  }
}

/** An option or environment variable has an invalid value; thrown when a server, client or module is created. */
export class ConfigError extends WebSocketsError {
  readonly code = 'WS_ERR_CONFIG';
  constructor(
    message: string,
    readonly setting: string,
    readonly value: unknown,
  ) {
    super(message);
  }
}

/**
 * A gateway's message nests arrays and objects deeper than `maxJsonDepth`; the default parser refuses it before
 * `JSON.parse`, and the client gets an exception frame with the message's `id` when it could be read.
 */
export class MessageTooDeepError extends WebSocketsError {
  readonly code = 'WS_ERR_MESSAGE_TOO_DEEP';
  constructor(
    /** The limit in force, in levels (the message itself is level 1). */
    readonly limit: number,
    /** The message's `id`, read from its top level, when there was one. */
    readonly id?: string | number,
  ) {
    super(`JSON nested deeper than the limit of ${limit} levels (${describeSetting('maxJsonDepth')})`);
  }
}

/**
 * `join()` would put a client in more rooms than `maxRoomsPerClient`. Thrown inside a message handler, it reaches
 * the client as an exception frame with this message (and the request's `id`).
 */
export class RoomLimitError extends WebSocketsError {
  readonly code = 'WS_ERR_ROOM_LIMIT';
  constructor(
    /** The limit in force, in rooms. */
    readonly limit: number,
    /** The room that was refused. */
    readonly room: string,
  ) {
    super(`cannot join more than the limit of ${limit} rooms per client (${describeSetting('maxRoomsPerClient')})`);
  }
}

/** `ioredis` is not installed although a Redis URL is configured. */
export class RedisClientMissingError extends WebSocketsError {
  readonly code = 'WS_ERR_REDIS_CLIENT_MISSING';
  constructor(options?: { cause?: unknown }) {
    super(
      `a Redis URL is configured (${describeSetting('redisUrl')}) but the ioredis package is not installed; ` +
        `install it with: npm install ioredis`,
      options,
    );
  }
}

/** Redis could not be reached when the bus started. */
export class RedisUnavailableError extends WebSocketsError {
  readonly code = 'WS_ERR_REDIS_UNAVAILABLE';
  constructor(
    /** The URL, without its password. */
    readonly url: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      `cannot connect to Redis at ${url} (${describeSetting('redisUrl')}): ${reason}; start Redis, fix the URL, or ` +
        `unset it to keep broadcasts in this process`,
      options,
    );
  }
}

/**
 * A gateway's message that its parser refused (invalid JSON, no `event`): the `invalidMessages` policy applies, and
 * this error's message is what the client is told. A custom parser may throw it with the message's `id`, so that
 * the refusal still correlates.
 */
export class InvalidMessageError extends WebSocketsError {
  readonly code = 'WS_ERR_INVALID_MESSAGE';
  constructor(
    message: string,
    /** The message's `id`, when it could be read, so that the refusal still correlates. */
    readonly id?: string | number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
