/**
 * The part of the WHATWG `WebSocket` interface the client uses, declared here so that the client depends on no DOM
 * library and no Node type: a browser's `WebSocket`, Node 22's, undici's, the `ws` package's and this package's
 * `NodeWebSocket` all fit.
 */

/** What the client reads from an `open`, `message`, `error` or `close` event. */
export interface WebSocketLikeEvent {
  /** `message`: the data; the gateway protocol is JSON text, so anything else is refused. */
  readonly data?: unknown;
  /** `close`: the close code (1006 when the connection failed or dropped). */
  readonly code?: number;
  /** `close`: the close reason. */
  readonly reason?: string;
  /**
   * `error` (not in browsers): what went wrong, e.g. ECONNREFUSED from `NodeWebSocket`; reported to the client's
   * `'error'` listeners.
   */
  readonly error?: unknown;
  /**
   * `close` (not in browsers): how long the server asked to wait before trying again (`Retry-After` of a 503 or 429
   * refusal, in ms); `NodeWebSocket` sets it.
   */
  readonly retryAfterMs?: number;
}

/**
 * A WebSocket as the client drives it: the `on*` handlers, `send` of text, `close`. The client sets the handlers and
 * reads the fields of `WebSocketLikeEvent` from what they are called with; their parameter is `never` here so that
 * every WebSocket's own handler type (the DOM's, ws's, undici's) fits.
 */
export interface WebSocketLike {
  /** 0 CONNECTING, 1 OPEN, 2 CLOSING, 3 CLOSED. */
  readonly readyState: number;
  /** The negotiated subprotocol, '' when none. */
  readonly protocol: string;
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** A WHATWG `WebSocket` constructor: `new WebSocket(url, protocols)`. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** `readyState` of an open WebSocket. */
export const OPEN = 1;
