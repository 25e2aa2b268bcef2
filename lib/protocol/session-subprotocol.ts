/**
 * How a client of `nestjs-websockets/client` asks for a resumable session: in `Sec-WebSocket-Protocol`, after its own
 * subprotocols and the credentials marker (see `bearer-subprotocol.ts`, whose marker a server answers when it
 * chooses no other subprotocol), so that the secret stays out of URLs and access logs:
 *
 *     Sec-WebSocket-Protocol: nestjs-websockets.auth, nestjs-websockets.session.new
 *     Sec-WebSocket-Protocol: nestjs-websockets.auth, nestjs-websockets.session.<id>.<secret>.<received>
 *
 * `<id>` and `<secret>` are what the server gave in its last `$session` frame (base64url), `<received>` the number of
 * messages the client received on the session so far (decimal). A plain WebSocket client never offers it, and sees
 * the protocol of a server without sessions.
 *
 * The frames of the session protocol itself are gateway-protocol JSON messages whose events start with `$`:
 * - server to client, first on every session connection: `{"event":"$session","data":{"id","secret","resumed","received"}}`
 *   (`received`: the messages of the client the server has taken, from which the client sends again what it kept);
 * - both ways: `{"event":"$ack","data":n}`, the number of messages of the session received so far, so that the other
 *   side can forget them. Neither counts as a message of the session.
 *
 * This file imports nothing, so that the browser client can share it.
 */

/** Followed by `new`, or by `<id>.<secret>.<received>`. */
export const SESSION_SUBPROTOCOL_PREFIX = 'nestjs-websockets.session.';
/** The event of the frame that opens every session connection. */
export const SESSION_EVENT = '$session';
/** The event of an acknowledgement (both ways). */
export const ACK_EVENT = '$ack';
/** How an acknowledgement frame starts on the wire (its data, a number, follows), for a check without parsing. */
export const ACK_FRAME_PREFIX = '{"event":"$ack","data":';

/** What a client asks for: a new session, or to resume one. */
export type SessionRequest =
  | { readonly resume: false }
  | { readonly resume: true; readonly id: string; readonly secret: string; readonly received: number };

const BASE64URL = /^[A-Za-z0-9_-]{1,128}$/;
const COUNT = /^(0|[1-9]\d{0,15})$/;

/** The subprotocol of a request for a new session (`null`) or to resume `session`. */
export function sessionSubprotocol(session: { readonly id: string; readonly secret: string; readonly received: number } | null): string {
  return SESSION_SUBPROTOCOL_PREFIX + (session === null ? 'new' : `${session.id}.${session.secret}.${session.received}`);
}

/**
 * The session request among `offered` subprotocols: `null` when none asks for one (or one is malformed: a client of
 * this package never sends that, and it then gets what a plain client gets).
 */
export function sessionRequestOf(offered: readonly string[]): SessionRequest | null {
  for (const protocol of offered) {
    if (!protocol.startsWith(SESSION_SUBPROTOCOL_PREFIX)) continue;
    const rest = protocol.slice(SESSION_SUBPROTOCOL_PREFIX.length);
    if (rest === 'new') return { resume: false };
    const [id = '', secret = '', received = '', extra] = rest.split('.');
    if (extra !== undefined || !BASE64URL.test(id) || !BASE64URL.test(secret) || !COUNT.test(received)) return null;
    const count = Number(received);
    return Number.isSafeInteger(count) ? { resume: true, id, secret, received: count } : null;
  }
  return null;
}

/** The acknowledgement frame of `count` messages received. */
export function ackFrame(count: number): string {
  return `${ACK_FRAME_PREFIX}${count}}`;
}

/** The count of an acknowledgement frame, or `null` when `text` is not one. */
export function ackCount(text: string): number | null {
  if (!text.startsWith(ACK_FRAME_PREFIX) || !text.endsWith('}')) return null;
  const digits = text.slice(ACK_FRAME_PREFIX.length, -1);
  if (!COUNT.test(digits)) return null;
  const count = Number(digits);
  return Number.isSafeInteger(count) ? count : null;
}
