/**
 * Nest's exception filter (`BaseWsExceptionFilter`) answers a failed handler with `client.send(JSON.stringify({
 * event: 'exception', data }))` and is never told the message's `id`, so a client could not tell which request
 * failed. The adapter runs each handler of a message with an `id` inside `messageContext`, and its connections are
 * `GatewayWebSocket`s, whose `send()` adds that `id` to the exception frames the filter sends. This is the one place
 * that changes what a client's `send()` does, and it costs no closure or property per connection.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { PreparedMessage } from '../protocol/prepared-message.js';
import { WebSocket, type SendOptions, type WebSocketData } from '../node/websocket.js';
import { EXCEPTION_EVENT } from './websockets.constants.js';

/** The message being handled. */
export interface MessageContext {
  readonly client: WebSocket;
  readonly id: string | number;
}

/** Set by the adapter around the handlers of a message that has an `id`. */
export const messageContext = new AsyncLocalStorage<MessageContext>();

/** The start of every frame Nest's exception filter sends. */
const EXCEPTION_FRAME_PREFIX = `{"event":${JSON.stringify(EXCEPTION_EVENT)},`;

/** The connections of gateways: a `WebSocket` whose `send()` puts the handled message's `id` on exception frames. */
export class GatewayWebSocket extends WebSocket {
  override send(data: WebSocketData | PreparedMessage, options?: SendOptions): Promise<boolean> {
    if (typeof data === 'string' && data.startsWith(EXCEPTION_FRAME_PREFIX) && data.endsWith('}')) {
      const context = messageContext.getStore();
      if (context !== undefined && context.client === this) data = `${data.slice(0, -1)},"id":${JSON.stringify(context.id)}}`;
    }
    return super.send(data, options);
  }
}
