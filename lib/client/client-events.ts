/**
 * The events of `WebSocketsClient`: its own (`open`, `close`, `reconnecting`, `error`, `exception`) and how an event
 * map types the server's and the client's events. Types only: nothing of this file reaches a bundle.
 */
import type { ServerExceptionData } from './errors.js';
import type { RequestOptions } from './client-options.js';

/** `'open'`: a connection is open. */
export interface OpenEvent {
  /** The negotiated subprotocol, '' when none. */
  readonly protocol: string;
  /** Whether an earlier connection of this client was open (rejoin rooms, refetch state). */
  readonly reconnected: boolean;
  /**
   * Whether this connection resumed the client's session (`session: true`): nothing was lost meanwhile, what the
   * server sent was replayed in order and what the client sent was sent again. `false` for a new session, when the
   * session could not be resumed (then what was sent meanwhile may be lost: refetch state), and without sessions.
   */
  readonly resumed: boolean;
}

/** `'close'`: a connection (or an attempt) ended. */
export interface CloseEvent {
  /** The close code: the server's, 1006 when the connection failed or dropped, 44xx for a refusal. */
  readonly code: number;
  readonly reason: string;
  /** Whether the client will try again (a `'reconnecting'` event follows). */
  readonly willReconnect: boolean;
  /** Why the client stopped, when it was refused (`HandshakeRefusedError`) or could not create a WebSocket. */
  readonly error?: Error;
}

/** `'reconnecting'`: the next attempt is scheduled. */
export interface ReconnectingEvent {
  /** The attempt's number, from 1 since the last connection that stayed open (`resetAfterMs`). */
  readonly attempt: number;
  /** The wait before it, in ms ("reconnecting in 4 s"). */
  readonly delayMs: number;
  /** The code and reason of the close that led to it. */
  readonly code: number;
  readonly reason: string;
}

/** The client's own events. Their names are reserved: a server event with one of them is not delivered. */
export interface ClientEvents {
  open: OpenEvent;
  close: CloseEvent;
  reconnecting: ReconnectingEvent;
  /**
   * Errors worth reporting: a refusal (`HandshakeRefusedError`), an invalid message from the server
   * (`InvalidServerMessageError`), a failure of `auth` or `query`, a network error where the WebSocket gives one
   * (Node). Browsers give no detail of a failed connection: those are `'close'` events with 1006.
   */
  error: Error;
  /** An `exception` frame that answers no request (an `emit()` the server refused). */
  exception: ServerExceptionData;
}

/**
 * An event map: event name to data type. For client events, a function type `(data: D) => R` says that
 * `request()` of that event is answered with `R` (the reply's data).
 */
export type EventMap = object;

/** The data of an event of an `EventMap`. */
export type EventData<T> = T extends (data: infer D) => unknown ? D : T;
/** What `request()` of an event resolves with: the return type of its function type, else `unknown`. */
export type EventReply<T> = T extends (data: never) => infer R ? Awaited<R> : unknown;
/** `emit()`'s arguments after the event: the data, optional when it may be `undefined`. */
export type EmitArgs<T> = undefined extends EventData<T> ? [data?: EventData<T>] : [data: EventData<T>];
/** `request()`'s arguments after the event: the data (optional when it may be `undefined`), then options. */
export type RequestArgs<T> = undefined extends EventData<T>
  ? [data?: EventData<T>, options?: RequestOptions]
  : [data: EventData<T>, options?: RequestOptions];
/** Every name, every data: what an untyped client takes. */
export type AnyEvents = Record<string, unknown>;
