/**
 * `GatewaySessions`: resumable sessions on one gateway server, between the node layer's connections and Nest's
 * connection and disconnection hooks.
 *
 * A client that asks for a session (see `session-subprotocol.ts`) gets, before anything else, a `$session` frame:
 * its session's id, a fresh secret, whether the session was resumed, and how many of its messages the server took.
 * A resumed session then gets its rooms and `client.data` back and, in order, every message it had not received,
 * all before `handleConnection` runs and before anything new can be sent. A session that cannot be resumed (unknown
 * id, wrong secret, expired, over its byte bound) gives way to a fresh one: `resumed: false`, never part of a replay.
 *
 * Nest sees one session as one client: `handleConnection` runs on each connection (`client.session.resumed` tells
 * which), `handleDisconnect` once, when the session ends (closed by the client, expired, evicted, or the server
 * closing), with the close of its last connection.
 */
import type { Logger } from '@nestjs/common';
import type { BroadcastServer, SessionDelivery } from '../broadcast/broadcast-server.js';
import { Session, SessionStore, type SessionBounds, type SessionEnd } from '../broadcast/session-store.js';
import type { WebSocket } from '../node/websocket.js';
import { CloseCode } from '../protocol/close-codes.js';
import type { PreparedMessage } from '../protocol/prepared-message.js';
import { SESSION_EVENT, sessionRequestOf } from '../protocol/session-subprotocol.js';
import { SUBPROTOCOL_HEADER, parseSubprotocols } from '../protocol/subprotocols.js';
import { SessionWebSocket } from './session-websocket.js';

/**
 * Close codes after which a session ends at once: the client closed it on purpose, or broke the protocol. A close the
 * application asked for (`client.close()`, whatever the code) ends it too; what the node layer closes by itself
 * (keepalive timeout, slow consumer) and a dropped connection leave it waiting for a resume.
 */
const FINAL_CODES: ReadonlySet<number> = new Set([
  CloseCode.NORMAL_CLOSURE,
  CloseCode.PROTOCOL_ERROR,
  CloseCode.UNSUPPORTED_DATA,
  CloseCode.INVALID_DATA,
  CloseCode.POLICY_VIOLATION,
  CloseCode.MESSAGE_TOO_BIG,
  CloseCode.MANDATORY_EXTENSION,
]);

/** The close code that tells a client of `nestjs-websockets/client` to reconnect at once. */
const RESTART_REASON = 'service restart';

export class GatewaySessions implements SessionDelivery {
  readonly store: SessionStore;
  #server: BroadcastServer | undefined;
  #closing = false;

  constructor(
    bounds: SessionBounds,
    private readonly logger: Logger,
    private readonly name: string,
  ) {
    this.store = new SessionStore(bounds);
  }

  /** The server whose rooms sessions are restored into (set once it exists). */
  set server(server: BroadcastServer) {
    this.#server = server;
  }

  /**
   * Gives `client` its session when it asked for one, then calls `proceed(request)` (Nest's connection handler) with
   * the handshake request of the session's first connection. A client that asked for none proceeds as it is.
   */
  connect<R>(client: WebSocket, request: R, proceed: (request: R) => void): void {
    const ask = client instanceof SessionWebSocket && !this.#closing ? sessionRequestOf(offeredSubprotocols(client)) : null;
    if (ask === null) {
      proceed(request);
      return;
    }
    const ws = client as SessionWebSocket;
    let session: Session | undefined;
    if (ask.resume) {
      session = this.store.find(ask.id, ask.secret);
      if (session !== undefined && !session.canReplayFrom(ask.received)) {
        this.logger.debug(`${this.name}: session ${session.id} cannot be resumed from message ${ask.received}: a fresh one is given`);
        this.store.end(session, 'unresumable');
        session = undefined;
      }
    }
    const resumed = session !== undefined;
    let secret: string;
    if (session === undefined) {
      ({ session, secret } = this.store.create());
      session.request = request;
    } else {
      secret = session.newSecret();
      this.#takeOver(session);
    }
    this.store.attach(session, ws);
    ws.assignId(session.id);
    ws.attachSession(session, resumed);
    this.#watch(ws, session);
    ws.sendUnkept(JSON.stringify({ event: SESSION_EVENT, data: { id: session.id, secret, resumed, received: session.received } })).catch(() => undefined);
    if (resumed) {
      ws.data = session.data;
      for (const room of session.rooms) {
        try {
          this.#server?.join(ws, room);
        } catch {
          // A lower maxRoomsPerClient than when it joined: the rooms beyond it are not restored.
        }
      }
      const from = ask.resume ? ask.received : 0;
      session.acknowledge(from);
      for (const { data, binary } of session.replayFrom(from)) {
        ws.sendUnkept(data, binary === undefined ? undefined : { binary }).catch(() => undefined);
      }
    }
    proceed((resumed ? session.request : request) as R);
  }

  /**
   * Takes Nest's disconnection callback of a session's connection: called once, when the session ends.
   * @returns false for a client without a session (the caller binds the callback to its close as usual)
   */
  bindDisconnect(client: WebSocket, callback: (close: SessionEnd) => void): boolean {
    const session = client instanceof SessionWebSocket ? client.sessionState : undefined;
    if (session === undefined || session.ws !== client) return false;
    session.onEnd = (close, why) => {
      this.logger.debug(`${this.name}: session ${session.id} ended (${why})`);
      callback(Object.freeze({ code: close.code, reason: close.reason }));
    };
    return true;
  }

  /**
   * The server is stopping: every session client is closed with 1012 (Service Restart: reconnect now, to another
   * instance or this one once back), and every session ends.
   */
  async shutdown(clients: Iterable<WebSocket>): Promise<void> {
    this.#closing = true;
    const closing: Array<Promise<void>> = [];
    for (const client of clients) {
      if (client instanceof SessionWebSocket && client.sessionState !== undefined) {
        closing.push(client.close(CloseCode.SERVICE_RESTART, RESTART_REASON).catch(() => undefined));
      }
    }
    await Promise.all(closing);
    this.store.endAll();
  }

  wants(room: string | null): boolean {
    return this.store.wants(room);
  }

  deliver(room: string | null, message: PreparedMessage): void {
    this.store.deliver(room, message);
  }

  /** A broadcast reached a member whose connection is closing: its session keeps it for the resume. */
  missed(client: WebSocket, message: PreparedMessage): void {
    const session = client instanceof SessionWebSocket ? client.sessionState : undefined;
    if (session !== undefined && session.ws === client) session.keep(message);
  }

  /** The session's connection is still open (the client saw the cut before the server): it is replaced. */
  #takeOver(session: Session): void {
    const old = session.ws;
    if (old === null) return;
    session.rooms = [...(this.#server?.roomsOf(old) ?? [])];
    session.data = old.data;
    session.ws = null;
    old.terminate();
  }

  /** Follows a session's connection: a drop breaks the count; a close ends or detaches the session. */
  #watch(ws: SessionWebSocket, session: Session): void {
    ws.on('drop', () => {
      if (session.ws === ws) session.markBroken();
    });
    // Before the rooms' own listener, which takes the connection out of its rooms.
    ws.prependListener('close', (code: number, reason: string) => {
      if (session.ws !== ws) return;
      const close = { code, reason };
      if (this.#closing || session.broken || FINAL_CODES.has(code) || ws.closedByServer) {
        session.lastClose = close;
        this.store.end(session, session.broken ? 'overflow' : this.#closing ? 'shutdown' : 'closed');
        return;
      }
      this.store.detach(session, [...(this.#server?.roomsOf(ws) ?? [])], ws.data, close);
    });
  }
}

/** The subprotocols a connection's client offered. */
function offeredSubprotocols(client: WebSocket): string[] {
  try {
    return parseSubprotocols(client.request?.headers.getAll(SUBPROTOCOL_HEADER) ?? []);
  } catch {
    return [];
  }
}
