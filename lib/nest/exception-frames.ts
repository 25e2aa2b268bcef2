/**
 * Exception frames, `{ "event": "exception", "data": { "status": "error", "message": ... }, "id"?: ... }`, and the
 * context that lets them carry the `id` of the message being handled: Nest's exception filter
 * (`BaseWsExceptionFilter`) answers a failed handler with `client.send(JSON.stringify({ event: 'exception', data }))`
 * and is never told the `id`, so the adapter runs each handler of a message with an `id` inside `messageContext`,
 * and `GatewayWebSocket.send()` (gateway-websocket.ts) adds it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { WebSocketsError } from '../errors.js';
import type { WebSocket } from '../node/websocket.js';
import { EXCEPTION_EVENT } from './websockets.constants.js';

/** The message being handled. */
export interface MessageContext {
  readonly client: WebSocket;
  readonly id: string | number;
  /**
   * A package limit that the handler ran into (`RoomLimitError` from `join()`): Nest's exception filter knows it only
   * as an unknown error ("Internal server error"), so the frame it sends is replaced by one that names the limit.
   */
  limitError: WebSocketsError | undefined;
}

/** A reply frame as it goes on the wire. */
export interface ExceptionFrame {
  readonly event: string;
  readonly data: { readonly status: 'error'; readonly code?: string; readonly message: string };
  readonly id?: string | number;
}

/**
 * An exception frame: `{ "event": "exception", "data": { "status": "error", "message": ... }, "id"?: ... }`, with the
 * error's `code` in `data` for the package's own errors (`WS_ERR_MESSAGE_TOO_DEEP`, `WS_ERR_ROOM_LIMIT`).
 */
export function exceptionFrame(message: string, id: string | number | undefined, code?: string): ExceptionFrame {
  const data = code === undefined ? { status: 'error' as const, message } : { status: 'error' as const, code, message };
  return { event: EXCEPTION_EVENT, data, ...(id === undefined ? {} : { id }) };
}

/** Set by the adapter around the handlers of a message that has an `id`. */
export const messageContext = new AsyncLocalStorage<MessageContext>();

/** The start of every frame Nest's exception filter sends. */
export const EXCEPTION_FRAME_PREFIX = `{"event":${JSON.stringify(EXCEPTION_EVENT)},`;
/** The start of the frame it sends for an exception that is not a `WsException` (Nest's words). */
export const UNKNOWN_EXCEPTION_FRAME_PREFIX = `${EXCEPTION_FRAME_PREFIX}"data":{"status":"error","message":"Internal server error"`;
