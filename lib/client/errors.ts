/**
 * The client's errors. Each has a stable `code`, like the package's own errors (lib/errors.ts), of which they are not
 * subclasses: the browser bundle must not carry the server's settings table, which reads `process` at import.
 * Names are set by hand, since a minifier renames classes.
 *
 * WebSocketsClientError               code
 * ├─ HandshakeRefusedError            status, message (a 44xx close: refused by a guard; no reconnection)
 * ├─ ServerExceptionError             status, statusCode, message, messages, data, event (an `exception` frame)
 * ├─ RequestTimeoutError              event, timeoutMs
 * ├─ ConnectionLostError              closeCode, reason (the connection ended before the reply)
 * ├─ QueueFullError                   limit, size (`maxQueuedBytes`)
 * ├─ ClientClosedError                (after `close()`, until `connect()`)
 * ├─ InvalidServerMessageError        (a message that is not a JSON object with an `event` string)
 * └─ ClientConfigError                option, value
 */

/** The base of the client's errors. */
export abstract class WebSocketsClientError extends Error {
  /** A stable identifier, e.g. `WS_ERR_REQUEST_TIMEOUT`; safe to match on. */
  abstract readonly code: string;
}

/**
 * The server refused the handshake: a close with 4400-4499 (4000 + HTTP status, sent in-band by a server with
 * `refusals: 'in-band'` or `'auto'`), or in Node an HTTP 4xx. The client does not reconnect (except for 408 and 429).
 */
export class HandshakeRefusedError extends WebSocketsClientError {
  override readonly name = 'HandshakeRefusedError';
  readonly code = 'WS_ERR_HANDSHAKE_REFUSED';
  constructor(
    /** The HTTP status of the refusal: 401, 403, 404 ... */
    readonly status: number,
    /** The server's message (the close reason), or `handshake refused with HTTP <status>` when it sent none. */
    message: string,
  ) {
    super(message || `handshake refused with HTTP ${status}`);
  }
}

/** What an `exception` frame carries (`{"event":"exception","data":{status,message,...},"id"?}`). */
export interface ServerExceptionData {
  /** `'error'` for Nest's exception filter. */
  readonly status?: string;
  /** The HTTP-like status of an `HttpException` (400 for a `ValidationPipe` failure). */
  readonly statusCode?: number;
  /** What went wrong: a string, or a list (a `ValidationPipe` failure gives one line per constraint). */
  readonly message?: string | readonly string[];
  /** The package's own error code, e.g. `WS_ERR_ROOM_LIMIT`. */
  readonly code?: string;
  /** Anything else the server put in. */
  readonly [key: string]: unknown;
}

/** A request was answered with an `exception` frame. */
export class ServerExceptionError extends WebSocketsClientError {
  override readonly name = 'ServerExceptionError';
  readonly code = 'WS_ERR_SERVER_EXCEPTION';
  /** `data.status` (`'error'`). */
  readonly status: string | undefined;
  /** `data.statusCode` (400, 403 ...), when the server sent one. */
  readonly statusCode: number | undefined;
  /** `data.message` as a list: one element for a string. */
  readonly messages: readonly string[];
  constructor(
    /** The event of the request. */
    readonly event: string,
    /** The frame's `data`, as received. */
    readonly data: ServerExceptionData,
  ) {
    const messages = Array.isArray(data.message) ? data.message.map(String) : [String(data.message ?? 'exception')];
    super(messages.join('; '));
    this.status = data.status;
    this.statusCode = data.statusCode;
    this.messages = messages;
  }
}

/** No reply came within the request's timeout (counted from the call, time in the queue included). */
export class RequestTimeoutError extends WebSocketsClientError {
  override readonly name = 'RequestTimeoutError';
  readonly code = 'WS_ERR_REQUEST_TIMEOUT';
  constructor(
    readonly event: string,
    readonly timeoutMs: number,
  ) {
    super(`no reply to ${JSON.stringify(event)} within ${timeoutMs} ms (option requestTimeoutMs, or request(..., { timeoutMs }))`);
  }
}

/** The connection ended after the request was sent and before its reply (or before it could be sent, for good). */
export class ConnectionLostError extends WebSocketsClientError {
  override readonly name = 'ConnectionLostError';
  readonly code = 'WS_ERR_CONNECTION_LOST';
  constructor(
    readonly closeCode: number,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`connection lost (close ${closeCode}${reason ? ` ${reason}` : ''})`, options);
  }
}

/** `emit()` or `request()` while not connected would queue more than `maxQueuedBytes`. */
export class QueueFullError extends WebSocketsClientError {
  override readonly name = 'QueueFullError';
  readonly code = 'WS_ERR_QUEUE_FULL';
  constructor(
    /** `maxQueuedBytes`. */
    readonly limit: number,
    /** What the queue would hold with this message, in bytes (UTF-8). */
    readonly size: number,
  ) {
    super(`messages waiting for the connection would take ${size} bytes; the limit is ${limit} (option maxQueuedBytes)`);
  }
}

/** `emit()` or `request()` after `close()`, or a request or queued message that `close()` ended. */
export class ClientClosedError extends WebSocketsClientError {
  override readonly name = 'ClientClosedError';
  readonly code = 'WS_ERR_CLIENT_CLOSED';
  constructor() {
    super('the client is closed; connect() opens it again');
  }
}

/** The server sent something other than a JSON object with an `event` string (reported to `'error'` listeners). */
export class InvalidServerMessageError extends WebSocketsClientError {
  override readonly name = 'InvalidServerMessageError';
  readonly code = 'WS_ERR_INVALID_SERVER_MESSAGE';
  constructor(readonly data: unknown) {
    super('the server sent a message that is not a JSON object with an "event" string');
  }
}

/** An option of the client is invalid (thrown by the constructor). */
export class ClientConfigError extends WebSocketsClientError {
  override readonly name = 'ClientConfigError';
  readonly code = 'WS_ERR_CLIENT_CONFIG';
  constructor(
    readonly option: string,
    readonly value: unknown,
    expected: string,
  ) {
    super(`option ${option} must be ${expected}; got ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`);
  }
}
