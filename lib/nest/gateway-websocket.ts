/**
 * `GatewayWebSocket`: the class of every gateway connection, a node-layer `WebSocket` with what the gateway protocol
 * adds, at no cost per connection (no property, no closure):
 * - `sendEvent(event, data)` sends `{ "event": event, "data": data }`, what socket.io users write `client.emit()` for;
 * - `emit()` of a name that is no event of the connection and has no listener is the socket.io habit, which here only
 *   fires local listeners and sends nothing: it still does that (EventEmitter semantics), and it says so once per name;
 * - `send()` adds the `id` of the message being handled to the exception frames of Nest's exception filter, which is
 *   never told it (see exception-frames.ts), and names the package limit behind an "Internal server error".
 */
import { Logger } from '@nestjs/common';
import { WebSocket, type SendOptions, type WebSocketData } from '../node/websocket.js';
import type { PreparedMessage } from '../protocol/prepared-message.js';
import { EXCEPTION_FRAME_PREFIX, UNKNOWN_EXCEPTION_FRAME_PREFIX, exceptionFrame, messageContext } from './exception-frames.js';
import type { ClientTelemetry } from './telemetry/websockets-telemetry.js';

/** The events a connection emits itself (and EventEmitter's own). */
const CONNECTION_EVENTS: ReadonlySet<string | symbol> = new Set(['message', 'close', 'error', 'ping', 'pong', 'drop', 'newListener', 'removeListener']);
/** Names already warned about, once per process. */
const warned = new Set<string>();
const logger = new Logger('WebSocketsAdapter');

export class GatewayWebSocket extends WebSocket {
  /**
   * @internal Set when the connection opens while OpenTelemetry is on (`WebSocketsTelemetry.observe()`); absent
   * otherwise, so that a connection without telemetry carries no field for it and a send pays one check.
   */
  declare telemetry?: ClientTelemetry;
  /** @internal With telemetry: exception frames sent so far (a handler during whose run this grows failed). */
  declare exceptionsSent?: number;

  /**
   * Sends `{ "event": event, "data": data }` as JSON text: the gateway protocol's message, what a client's
   * `on(event, ...)` receives (`nestjs-websockets/client`). The promise is already handled, as with `send()`.
   * @returns resolves `true` once written, `false` when dropped (slow-consumer policy `'drop'`, or `volatile`)
   * @throws (rejection) as `send()`; TypeError when `data` cannot be serialized as JSON
   */
  sendEvent(event: string, data?: unknown, options?: SendOptions): Promise<boolean> {
    let text: string;
    try {
      text = JSON.stringify({ event, data });
    } catch (error) {
      const failed = Promise.reject(error as Error);
      failed.catch(() => undefined);
      return failed;
    }
    return this.sendRaw(text, options);
  }

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    const delivered = super.emit(event, ...args);
    if (!delivered && typeof event === 'string' && !CONNECTION_EVENTS.has(event) && !warned.has(event)) {
      warned.add(event);
      logger.warn(
        `client.emit(${JSON.stringify(event)}, ...) only fires listeners on the server and sends nothing to the client ` +
          `(this is not socket.io); to send the event, use client.sendEvent(${JSON.stringify(event)}, data)`,
      );
    }
    return delivered;
  }

  override send(data: WebSocketData | PreparedMessage, options?: SendOptions): Promise<boolean> {
    if (typeof data === 'string' && data.startsWith(EXCEPTION_FRAME_PREFIX) && data.endsWith('}')) {
      if (this.telemetry !== undefined) this.exceptionsSent = (this.exceptionsSent ?? 0) + 1;
      const context = messageContext.getStore();
      if (context !== undefined && context.client === this) {
        const limitError = context.limitError;
        context.limitError = undefined;
        data =
          limitError !== undefined && data.startsWith(UNKNOWN_EXCEPTION_FRAME_PREFIX)
            ? JSON.stringify(exceptionFrame(limitError.message, context.id, limitError.code))
            : `${data.slice(0, -1)},"id":${JSON.stringify(context.id)}}`;
      }
    }
    return this.sendRaw(data, options);
  }

  /**
   * The client's resumable session (`nestjs-websockets/client` with `session: true`, on a gateway with `sessions`
   * on): `resumed` tells a resumed session from a new one in `handleConnection`. `undefined` for other clients.
   */
  get session(): ClientSession | undefined {
    return undefined;
  }

  /**
   * @internal What every message of this connection goes through, the adapter's own replies included (they skip
   * `send()`'s rewriting): a session's connection keeps what goes out here for its client, and OpenTelemetry
   * counts it here.
   */
  sendRaw(data: WebSocketData | PreparedMessage, options?: SendOptions): Promise<boolean> {
    if (this.telemetry !== undefined) this.telemetry.telemetry.messageSent(this.telemetry.traffic, data);
    return super.send(data, options);
  }
}

/** What `client.session` says of a resumable session. */
export interface ClientSession {
  /** The session's id, also the connection's `id`: the same on every connection of the session. */
  readonly id: string;
  /** Whether this connection resumed the session (its rooms, `client.data` and missed messages were restored). */
  readonly resumed: boolean;
}
