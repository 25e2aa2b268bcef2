/**
 * `SessionWebSocket`: the connection class of a gateway with `sessions` on. Until a session is attached (a client
 * that asked for none), it is a `GatewayWebSocket` and nothing more. With one:
 * - every message that goes out is kept by the session, numbered, until the client acknowledges it;
 * - the client's `$ack` frames are taken out of its messages (the application never sees them), and every other
 *   message is counted, the count acknowledged to the client now and then (every `ACK_EVERY` messages, or
 *   `ACK_DELAY_MS` after the last), so that it can forget what it sent.
 */
import type { Session } from '../broadcast/session-store.js';
import { WebSocket, type SendOptions, type WebSocketData } from '../node/websocket.js';
import type { PreparedMessage } from '../protocol/prepared-message.js';
import { ackCount, ackFrame } from '../protocol/session-subprotocol.js';
import { GatewayWebSocket, type ClientSession } from './gateway-websocket.js';

/** The client's messages are acknowledged after this many... */
const ACK_EVERY = 64;
/** ...or this long after the last one. */
const ACK_DELAY_MS = 200;
const rawSend = WebSocket.prototype.send;

/** What a session keeps of a message: a string, a Buffer (sharing the caller's bytes) or a prepared broadcast. */
function keepable(data: WebSocketData | PreparedMessage): string | Buffer | PreparedMessage {
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data) && !Buffer.isBuffer(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return data as string | Buffer | PreparedMessage;
}

export class SessionWebSocket extends GatewayWebSocket {
  #session: Session | undefined;
  #resumed = false;
  #acked = 0;
  #ackTimer: NodeJS.Timeout | undefined;
  #closedByServer = false;

  /**
   * @internal Whether the application closed (or terminated) this connection: its session then ends instead of
   * waiting for a resume, or a client that a gateway turned away could come back through its session.
   */
  get closedByServer(): boolean {
    return this.#closedByServer;
  }

  override close(code?: number, reason?: string): Promise<void> {
    this.#closedByServer = true;
    return super.close(code, reason);
  }

  override terminate(): void {
    this.#closedByServer = true;
    super.terminate();
  }

  override get session(): ClientSession | undefined {
    const session = this.#session;
    return session === undefined ? undefined : { id: session.id, resumed: this.#resumed };
  }

  /** @internal The session this connection carries from now on. */
  attachSession(session: Session, resumed: boolean): void {
    this.#session = session;
    this.#resumed = resumed;
    this.#acked = session.received;
  }

  /** @internal The session, for the adapter (`undefined` for a client without one). */
  get sessionState(): Session | undefined {
    return this.#session;
  }

  /** @internal Sends without keeping: the session's own frames, and its replay. */
  sendUnkept(data: WebSocketData | PreparedMessage, options?: SendOptions): Promise<boolean> {
    return rawSend.call(this, data, options);
  }

  /**
   * Every message of a session goes to the session, whichever of its connections it was sent on: on the current one,
   * written and kept until acknowledged; on one that is closing, or while the session has no connection (a reply to
   * a request that was in flight at the cut), kept for the resume; on an old connection of a resumed session, sent
   * on the new one. Once the session has ended, it fails as a send on a closed connection does.
   */
  override sendRaw(data: WebSocketData | PreparedMessage, options?: SendOptions): Promise<boolean> {
    const session = this.#session;
    if (session === undefined || session.ended) return super.sendRaw(data, options);
    const current = session.ws as SessionWebSocket | null;
    if (current !== null && current !== this) return current.sendRaw(data, options);
    const open = current === this && this.readyState === WebSocket.OPEN;
    const kept = session.keep(keepable(data), options?.binary);
    return open ? super.sendRaw(data, options) : Promise.resolve(kept);
  }

  override [Symbol.asyncIterator](): AsyncIterator<string | Buffer> {
    const inner = super[Symbol.asyncIterator]();
    if (this.#session === undefined) return inner;
    const next = async (): Promise<IteratorResult<string | Buffer>> => {
      for (;;) {
        const result = await inner.next();
        const session = this.#session!;
        if (result.done === true) return result;
        // A connection that another took the session from: what it still reads is not the session's.
        if (session.ws !== this) return { done: true, value: undefined };
        const value = result.value;
        if (typeof value === 'string' && value.charCodeAt(10) === 36 /* $ */) {
          const count = ackCount(value);
          if (count !== null) {
            session.acknowledge(count);
            continue;
          }
        }
        session.received++;
        this.#scheduleAck(session);
        return result;
      }
    };
    return { next, return: inner.return?.bind(inner) };
  }

  #scheduleAck(session: Session): void {
    if (session.received - this.#acked >= ACK_EVERY) {
      this.#sendAck(session);
      return;
    }
    this.#ackTimer ??= setTimeout(() => this.#sendAck(session), ACK_DELAY_MS).unref();
  }

  #sendAck(session: Session): void {
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    if (session.ws !== this || this.readyState !== WebSocket.OPEN) return;
    this.#acked = session.received;
    rawSend.call(this, ackFrame(session.received)).catch(() => undefined);
  }
}
