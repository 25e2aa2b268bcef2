/**
 * The client's side of a resumable session (`session: true`, see `session-subprotocol.ts` for the wire): the
 * session's id and secret, the count of messages received on it (acknowledged to the server now and then, so that it
 * can forget them, and named on a resume, so that it replays the rest), and what the client sent that the server
 * has not acknowledged, sent again after a resume.
 */
import { ackFrame, sessionSubprotocol } from '../protocol/session-subprotocol.js';

/** Received messages are acknowledged after this many... */
const ACK_EVERY = 64;
/** ...or this long after the last one. */
const ACK_DELAY_MS = 200;

/** A message sent on the session and not acknowledged yet. */
export interface Unacknowledged {
  readonly seq: number;
  readonly text: string;
  /** The request it carries, if any. */
  readonly id: number | undefined;
}

/** The `$session` frame's data. */
export interface SessionHello {
  readonly id: string;
  readonly secret: string;
  readonly resumed: boolean;
  readonly received: number;
}

/** The data of a `$session` frame, or `null` when it is not one a server of this package sends. */
export function readHello(data: unknown): SessionHello | null {
  if (typeof data !== 'object' || data === null) return null;
  const { id, secret, resumed, received } = data as Record<string, unknown>;
  // What goes back in the subprotocol must be a token: the server's base64url strings and a count.
  const valid = typeof id === 'string' && typeof secret === 'string' && /^[\w-]+$/.test(id + secret) && typeof resumed === 'boolean' && Number.isSafeInteger(received);
  return valid && (received as number) >= 0 ? { id, secret, resumed, received: received as number } : null;
}

export class ClientSessionState {
  #id: string | null = null;
  #secret = '';
  /** Messages received on the session. */
  #received = 0;
  #acked = 0;
  /** Messages sent on the session. */
  #sent = 0;
  #unacknowledged: Unacknowledged[] = [];
  #ackTimer: ReturnType<typeof setTimeout> | undefined;

  /** The session's id, `null` before the first `$session` frame. */
  get id(): string | null {
    return this.#id;
  }

  /** The subprotocol of the next attempt: resume the session if there is one, else ask for one. */
  subprotocol(): string {
    return sessionSubprotocol(this.#id === null ? null : { id: this.#id, secret: this.#secret, received: this.#received });
  }

  /**
   * A `$session` frame arrived. Resumed: what the server did not take is returned, to be sent again first, in order.
   * Not resumed: the old session's counts start again, and what it had not acknowledged is dropped.
   */
  hello(hello: SessionHello): readonly Unacknowledged[] {
    this.#id = hello.id;
    this.#secret = hello.secret;
    if (hello.resumed) {
      const resend = this.#unacknowledged.filter((entry) => entry.seq > hello.received);
      // Sent again, they are numbered again from what the server took.
      this.#sent = hello.received;
      this.#unacknowledged = [];
      return resend;
    }
    this.#unacknowledged = [];
    this.#received = this.#acked = this.#sent = 0;
    return [];
  }

  /** A message goes out on the session. */
  sent(text: string, id: number | undefined): void {
    this.#unacknowledged.push({ seq: ++this.#sent, text, id });
  }

  /** The server acknowledged `count` messages. */
  acknowledged(count: number): void {
    let drop = 0;
    while (drop < this.#unacknowledged.length && this.#unacknowledged[drop]!.seq <= count) drop++;
    if (drop > 0) this.#unacknowledged.splice(0, drop);
  }

  /** A message of the session arrived; `send` writes an acknowledgement when one is due. */
  received(send: (text: string) => void): void {
    this.#received++;
    if (this.#received - this.#acked >= ACK_EVERY) this.#ack(send);
    else this.#ackTimer ??= setTimeout(() => this.#ack(send), ACK_DELAY_MS);
  }

  /** The connection closed: no acknowledgement is due on it. */
  detached(): void {
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
  }

  /** The client closed for good: the session is forgotten. */
  forget(): void {
    this.detached();
    this.#id = null;
    this.#unacknowledged = [];
    this.#received = this.#acked = this.#sent = 0;
  }

  #ack(send: (text: string) => void): void {
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    if (this.#acked === this.#received) return;
    this.#acked = this.#received;
    try {
      send(ackFrame(this.#received));
    } catch {
      // The connection is closing: the count goes with the resume instead.
    }
  }
}
