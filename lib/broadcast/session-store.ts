/**
 * Resumable sessions on one instance: each session's id and secret, what it still owes its client (the messages
 * sent and not acknowledged, then those it missed while away), and the sessions that lost their connection, kept for
 * `sessionTtlMs`, at most `maxDetachedSessions` of them, each within `sessionMaxBufferedBytes`.
 *
 * Messages are numbered implicitly: the n-th message sent on a session is number n, on whichever of its connections
 * it went, and the client counts what it receives the same way. A resume names the count the client reached; the
 * session replays from there, or cannot (the messages were dropped to stay within the bound, or a send was dropped by
 * the slow-consumer policy so that the counts no longer agree) and the client is told `resumed: false`. Never a
 * partial replay.
 *
 * A detached session stays in its rooms: `BroadcastServer` hands it what is published to them (`deliver`), so that
 * what it missed is what the room got, in the room's order.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { WebSocket } from '../node/websocket.js';
import { PreparedMessage } from '../protocol/prepared-message.js';

/** The bounds of a store (resolved from `sessionTtlMs`, `sessionMaxBufferedBytes`, `maxDetachedSessions`). */
export interface SessionBounds {
  readonly ttlMs: number;
  readonly maxBufferedBytes: number;
  readonly maxDetached: number;
}

/** Why a session ended: its close, or the store's bounds. */
export type SessionEndReason = 'closed' | 'expired' | 'evicted' | 'overflow' | 'shutdown' | 'unresumable';

/** One message a session keeps: as it was sent (a broadcast's frame is shared, never copied). */
type Kept = string | Buffer | PreparedMessage;

/** The close of a connection, and who to tell when the session ends. */
export interface SessionEnd {
  readonly code: number;
  readonly reason: string;
}

/** Bytes of what a session keeps for a message, whatever shares it. */
function sizeOf(data: string | Buffer | PreparedMessage): number {
  if (data instanceof PreparedMessage) return data.payload.length;
  return typeof data === 'string' ? Buffer.byteLength(data) : data.length;
}

function hash(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

/** Bytes a detached session holds besides its messages (measured in bench/sessions.bench.ts, rounded up). */
const SESSION_OVERHEAD_BYTES = 512;

export class Session {
  /** 128 random bits, base64url: the session's id, and the `id` of each of its connections. */
  readonly id = randomBytes(16).toString('base64url');
  /** SHA-256 of the current secret: compared in constant time, never kept in clear. */
  #secretHash: Buffer = Buffer.alloc(32);
  /** The connection now, `null` while detached. */
  ws: WebSocket | null = null;
  /** `client.data` of the last connection, given to the next. */
  data: unknown;
  /** The handshake request of the session's first connection, given to `handleConnection` on every resume. */
  request: unknown;
  /** The rooms it was in when it lost its connection. */
  rooms: readonly string[] = [];
  /** Messages sent on the session (the number of the last). */
  sent = 0;
  /** Messages of the client taken by the application. */
  received = 0;
  /** A message was lost (over the bound, or dropped): the counts cannot be trusted for a resume. */
  broken = false;
  /** The session ended: nothing is kept for it any more. */
  ended = false;
  /** Told once, when the session ends (the gateway's `handleDisconnect`). */
  onEnd: ((end: SessionEnd, why: SessionEndReason) => void) | undefined;
  /** The close of its last connection. */
  lastClose: SessionEnd = { code: 1006, reason: '' };
  /** The messages kept, from `#head` on (an array per session and nothing per message: a room's fan-out keeps one each). */
  #kept: Kept[] = [];
  #head = 0;
  #keptBytes = 0;
  /** The numbers of kept messages sent with an explicit `binary` option (rare), and that option. */
  #binary: Map<number, boolean> | undefined;
  /** When it lost its connection (`performance.now()`), for the TTL. */
  detachedAt = 0;

  constructor(readonly maxBufferedBytes: number) {}

  /** A fresh secret (a new one on every connection: one seen in a log is spent by the time the log is read). */
  newSecret(): string {
    const secret = randomBytes(32).toString('base64url');
    this.#secretHash = hash(secret);
    return secret;
  }

  /** Whether `secret` is the session's, in constant time. */
  checkSecret(secret: string): boolean {
    return timingSafeEqual(hash(secret), this.#secretHash);
  }

  /** Bytes of the messages kept. */
  get keptBytes(): number {
    return this.#keptBytes;
  }

  /** Bytes held, messages and bookkeeping (an estimate for bounds and metrics). */
  get bytes(): number {
    return SESSION_OVERHEAD_BYTES + this.#keptBytes;
  }

  /** The number of the first message kept (`sent + 1` when none is). */
  get firstKept(): number {
    return this.sent - (this.#kept.length - this.#head) + 1;
  }

  /**
   * Keeps a message sent (or missed) as number `sent + 1`. Over the byte bound, the session forgets everything and
   * is marked broken: it goes on while connected but can no longer be resumed.
   * @returns false when the bound was passed
   */
  keep(data: string | Buffer | PreparedMessage, binary?: boolean): boolean {
    const seq = ++this.sent;
    if (this.broken) return false;
    const bytes = sizeOf(data);
    if (this.#keptBytes + bytes > this.maxBufferedBytes) {
      this.markBroken();
      return false;
    }
    this.#kept.push(data);
    this.#keptBytes += bytes;
    if (binary !== undefined) (this.#binary ??= new Map()).set(seq, binary);
    return true;
  }

  /** The client acknowledged `count` messages: forget them. */
  acknowledge(count: number): void {
    let seq = this.firstKept;
    let drop = Math.min(count, this.sent) - seq + 1;
    while (drop > 0 && this.#head < this.#kept.length) {
      this.#keptBytes -= sizeOf(this.#kept[this.#head]!);
      this.#kept[this.#head++] = '';
      this.#binary?.delete(seq++);
      drop--;
    }
    if (this.#head === this.#kept.length) {
      // Emptied in place: the next messages reuse its storage instead of growing a new array.
      this.#kept.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#kept.length) {
      this.#kept = this.#kept.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Whether the messages after `received` can all be replayed. */
  canReplayFrom(received: number): boolean {
    return !this.broken && received <= this.sent && received + 1 >= this.firstKept;
  }

  /** The messages after `received`, in order (`canReplayFrom(received)` must hold). */
  *replayFrom(received: number): Generator<{ readonly data: string | Buffer | PreparedMessage; readonly binary: boolean | undefined }> {
    const first = this.firstKept;
    const kept = this.#kept;
    for (let seq = received + 1; seq <= this.sent; seq++) yield { data: kept[this.#head + seq - first]!, binary: this.#binary?.get(seq) };
  }

  markBroken(): void {
    this.broken = true;
    this.#kept = [];
    this.#head = 0;
    this.#keptBytes = 0;
    this.#binary = undefined;
  }
}

/** The sessions of one gateway server on this instance. */
export class SessionStore {
  readonly #sessions = new Map<string, Session>();
  /** Detached sessions, the longest detached first (a Map keeps insertion order). */
  readonly #detached = new Map<Session, readonly string[]>();
  /** Detached sessions by room. */
  readonly #byRoom = new Map<string, Set<Session>>();
  /** One timer for the store: every session has the same TTL, so the one detached the longest expires first. */
  #sweep: NodeJS.Timeout | undefined;

  constructor(readonly bounds: SessionBounds) {}

  /** Sessions alive (connected or detached). */
  get size(): number {
    return this.#sessions.size;
  }

  /** Sessions without a connection. */
  get detachedCount(): number {
    return this.#detached.size;
  }

  /** Bytes held by detached sessions (their messages and bookkeeping). */
  get detachedBytes(): number {
    let total = 0;
    for (const session of this.#detached.keys()) total += session.bytes;
    return total;
  }

  /** A new session, with its first secret. */
  create(): { readonly session: Session; readonly secret: string } {
    const session = new Session(this.bounds.maxBufferedBytes);
    this.#sessions.set(session.id, session);
    return { session, secret: session.newSecret() };
  }

  /**
   * The session `id` if `secret` is its own, else `undefined` (an unknown id and a wrong secret look the same, and a
   * wrong secret leaves the session as it was: whoever saw an id cannot end a session with it).
   */
  find(id: string, secret: string): Session | undefined {
    const session = this.#sessions.get(id);
    return session !== undefined && session.checkSecret(secret) ? session : undefined;
  }

  /** `session` gets a connection: it leaves the detached sessions and their rooms. */
  attach(session: Session, ws: WebSocket): void {
    this.#undetach(session);
    session.ws = ws;
  }

  /**
   * `session` lost its connection: it is kept for `ttlMs` in `rooms`, while the room's broadcasts are kept for it.
   * When `maxDetached` sessions are already kept, the one detached the longest is ended to make room.
   */
  detach(session: Session, rooms: readonly string[], data: unknown, close: SessionEnd): void {
    session.ws = null;
    session.rooms = rooms;
    session.data = data;
    session.lastClose = close;
    while (this.#detached.size >= this.bounds.maxDetached) {
      const oldest = this.#detached.keys().next().value as Session;
      this.end(oldest, 'evicted');
    }
    this.#detached.set(session, rooms);
    for (const room of rooms) {
      let members = this.#byRoom.get(room);
      if (members === undefined) this.#byRoom.set(room, (members = new Set()));
      members.add(session);
    }
    session.detachedAt = performance.now();
    this.#scheduleSweep();
  }

  /** Ends the sessions whose TTL has passed, and waits for the next one. */
  #scheduleSweep(): void {
    if (this.#sweep !== undefined) return;
    const oldest = this.#detached.keys().next().value as Session | undefined;
    if (oldest === undefined) return;
    const delay = Math.max(0, oldest.detachedAt + this.bounds.ttlMs - performance.now());
    this.#sweep = setTimeout(() => {
      this.#sweep = undefined;
      const now = performance.now();
      for (const session of this.#detached.keys()) {
        if (session.detachedAt + this.bounds.ttlMs > now) break;
        this.end(session, 'expired');
      }
      this.#scheduleSweep();
    }, delay);
    this.#sweep.unref();
  }

  /** Ends `session` for good: its client's next resume gets a fresh session, and the application is told once. */
  end(session: Session, reason: SessionEndReason): void {
    if (this.#sessions.get(session.id) !== session) return;
    this.#sessions.delete(session.id);
    this.#undetach(session);
    session.markBroken();
    session.ended = true;
    const onEnd = session.onEnd;
    session.onEnd = undefined;
    session.ws = null;
    onEnd?.(session.lastClose, reason);
  }

  /** Ends every session (the server is closing). */
  endAll(): void {
    for (const session of [...this.#sessions.values()]) this.end(session, 'shutdown');
    clearTimeout(this.#sweep);
    this.#sweep = undefined;
  }

  /** Whether a broadcast to `room` (`null`: everyone) has detached sessions to keep it for. */
  wants(room: string | null): boolean {
    return room === null ? this.#detached.size > 0 : this.#byRoom.has(room);
  }

  /** Keeps a broadcast for the detached sessions of `room` (`null`: all of them); a session over its bound ends. */
  deliver(room: string | null, message: PreparedMessage): void {
    const targets = room === null ? this.#detached.keys() : (this.#byRoom.get(room)?.values() ?? [].values());
    let over: Session[] | undefined;
    for (const session of targets) if (!session.keep(message)) (over ??= []).push(session);
    for (const session of over ?? []) this.end(session, 'overflow');
  }

  #undetach(session: Session): void {
    const rooms = this.#detached.get(session);
    if (rooms === undefined) return;
    this.#detached.delete(session);
    for (const room of rooms) {
      const members = this.#byRoom.get(room);
      members?.delete(session);
      if (members?.size === 0) this.#byRoom.delete(room);
    }
  }
}
