/**
 * The options of `WebSocketsClient` and of one `request()`, and the state it reports. Types only: nothing of this
 * file reaches a bundle.
 */
import type { ReconnectOptions } from './reconnect-policy.js';
import type { WebSocketConstructor } from './websocket-like.js';

/** Where the client is: `'connecting'` (first attempt), `'open'`, `'reconnecting'` (lost; waiting or trying again), `'closed'`. */
export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Query parameters added to the URL; `null` and `undefined` values are left out. */
export type QueryParams = Readonly<Record<string, string | number | boolean | null | undefined>>;

/** A value, or a function that returns it (or a promise of it), called on every (re)connection. */
export type Provider<T> = T | (() => T | Promise<T>);

/** Options of `WebSocketsClient`. Every field is optional. */
export interface WebSocketsClientOptions {
  /** Subprotocols to offer, in order of preference. */
  protocols?: string | readonly string[];
  /** Added to the URL on every (re)connection, e.g. `{ token }` for a guard that reads the query. */
  query?: Provider<QueryParams | undefined>;
  /**
   * A bearer token (or a function returning one, sync or async, called on every (re)connection), sent in
   * `Sec-WebSocket-Protocol` so that it stays out of URLs and logs. This package's server hands it to guards as
   * `Authorization: Bearer <token>`. Visible ASCII only; `null`, `undefined` or `''` sends none.
   */
  auth?: Provider<string | null | undefined>;
  /** `false` never reconnects; otherwise the backoff (see `ReconnectOptions`). @default on, 0.5 s, x2, 30 s cap, full jitter */
  reconnect?: false | ReconnectOptions;
  /** How long `request()` waits for its reply, in ms, counted from the call. @default 10000 */
  requestTimeoutMs?: number;
  /** Most bytes (UTF-8 JSON) `emit()` and `request()` may queue while not connected. @default 1048576 */
  maxQueuedBytes?: number;
  /**
   * Asks the server for a resumable session: after a dropped connection the client resumes it, gets what it missed
   * (once, in order) and sends again what the server had not received; `'open'` says `resumed: true`, or
   * `resumed: false` when the server could not (then state may have been lost). For servers with `sessions` on.
   * @default false
   */
  session?: boolean;
  /** The WebSocket class. @default the platform's (`globalThis.WebSocket`); in Node, this package's `NodeWebSocket` */
  WebSocket?: WebSocketConstructor;
}

/** Options of one `request()`. */
export interface RequestOptions {
  /** Overrides `requestTimeoutMs` for this request, in ms. */
  timeoutMs?: number;
  /** Rejects the request with the signal's reason when aborted (a queued request is then not sent). */
  signal?: AbortSignal;
}
