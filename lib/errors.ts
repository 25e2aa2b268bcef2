/**
 * The error classes of the package. Every error has a stable `code` string; errors that map to the wire carry the
 * `closeCode` or `httpStatus` that the I/O layer answers with, so no `instanceof` chain is needed to map them.
 *
 * WebSocketsError                     code
 * ├─ HandshakeError                   httpStatus (400 unless a subclass says otherwise)
 * │  ├─ HandshakeLimitError           setting, limit, actual: 414 / 431 on a server; thrown on a client
 * │  ├─ InvalidHeaderError            name, value
 * │  ├─ InvalidStatusError            status, headers, body (client: the server did not answer 101)
 * │  ├─ OriginNotAllowedError         origin (403)
 * │  ├─ ConnectionLimitError          setting, limit, retryAfterSeconds (503 with Retry-After, before the upgrade)
 * │  ├─ OpenTimeoutError              timeoutMs (client: the opening handshake took too long)
 * │  └─ RedirectError                 location (client: too many, insecure or invalid redirects)
 * ├─ ProtocolError                    closeCode 1002
 * ├─ InvalidUtf8Error                 closeCode 1007
 * ├─ MessageTooBigError               closeCode 1009, limit, actual
 * ├─ InvalidStateError                e.g. send() after close
 * ├─ ConnectionClosedError            code, reason
 * ├─ FileDescriptorLimitError         cause, limit, connections (server: clients are being reset by the OS)
 * └─ ConfigError                      setting, value
 *
 * Messages name the limit, its value and how to change it; what goes on the wire is short.
 */
import { describeSetting, type SettingName } from './settings.js';

/** Close codes used by errors (duplicated from close-codes.ts would create a cycle; these are checked by a test). */
const PROTOCOL_ERROR = 1002;
const INVALID_DATA = 1007;
const MESSAGE_TOO_BIG = 1009;

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
  override readonly code = 'WS_ERR_INVALID_HEADER';
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

/** The client's request carries an Origin that the server does not allow (403). */
export class OriginNotAllowedError extends HandshakeError {
  override readonly code = 'WS_ERR_ORIGIN_NOT_ALLOWED';
  constructor(readonly origin: string | undefined) {
    super(origin === undefined ? 'missing Origin header' : `origin not allowed: ${origin}`, 403);
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
    readonly actual: number,
    readonly limit: number,
    readonly afterDecompression = false,
  ) {
    super(
      `message of ${actual} bytes${afterDecompression ? ' after decompression' : ''} exceeds the limit of ${limit} bytes (maxMessageSize)`,
    );
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
