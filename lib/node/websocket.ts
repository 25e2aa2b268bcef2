/**
 * `WebSocket`: one open connection, server or client side, driving the sans-I/O `Connection` over a Node socket.
 * This file is the facade; the parts live beside it: `IncomingMessages` (messages not yet taken, `for await`),
 * `SendBuffer` (the batch, the water marks, the bound and the slow-consumer policy) and `KeepaliveQueue`.
 *
 * Reading follows the pull model of the core: socket chunks are handed to `Connection.receiveData()` (which only
 * buffers), and events are pulled one at a time with `nextEvent()` while the application keeps up, while the write
 * side is not backed up, and while this turn's budget lasts. Messages go synchronously to `'message'` listeners;
 * otherwise they wait for `for await`. While the unparsed bytes plus the waiting messages are over
 * `readHighWaterMark`, nothing more is parsed or inflated and the socket is paused, so a peer cannot make this side
 * hold more than the documented bound however fast it sends.
 *
 * Over 400 lines because reading, writing and closing share one state (the socket, the `Connection`, the close
 * handshake and its timer, the read pause that the write side can also cause); what stands apart is in the files above.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { ResolvedConfig } from '../config/index.js';
import { ConnectionClosedError, InvalidStateError, SlowConsumerError } from '../errors.js';
import { CloseCode } from '../protocol/close-codes.js';
import { Connection, State, type ConnectionEvent } from '../protocol/connection.js';
import { ParsedHandshakeRequest, type HandshakeRequest } from '../protocol/handshake.js';
import { PreparedMessage } from '../protocol/prepared-message.js';
import { IncomingMessages } from './incoming-messages.js';
import { KeepaliveQueue } from './keepalive.js';
import { SendBuffer, type OutgoingMessage, type SendHost } from './send-buffer.js';

/** What `send()` accepts: strings go as text, everything else as binary (unless `options.binary` says otherwise). */
export type WebSocketData = string | Buffer | ArrayBuffer | ArrayBufferView;

/** Options of `send()`. */
export interface SendOptions {
  /** Send a string as binary (`true`), or bytes as text (`false`: they must be UTF-8). Ignored for a `PreparedMessage`. */
  binary?: boolean;
  /**
   * Drop the message (resolve `false`, emit `'drop'`) instead of waiting when more than `writeHighWaterMark` bytes
   * are already buffered, whatever the slow-consumer policy: for updates that the next one replaces (positions,
   * typing indicators), as socket.io's volatile emits.
   */
  volatile?: boolean;
}

/** `readyState` values, as in the browser's WebSocket. */
export type ReadyState = 0 | 1 | 2 | 3;

/** Everything a `WebSocket` needs once the opening handshake has succeeded (built by the server and the client). */
export interface WebSocketInit {
  /** The socket, already past the handshake (a `net.Socket` or `tls.TLSSocket`). */
  readonly socket: Duplex;
  /** The protocol state machine, OPEN, with the negotiated codec if any. */
  readonly connection: Connection;
  readonly config: Readonly<ResolvedConfig>;
  /** The negotiated subprotocol, '' when none. */
  readonly protocol?: string;
  /** The negotiated `Sec-WebSocket-Extensions` value, '' when none. */
  readonly extensions?: string;
  /** Server side: the handshake request. */
  readonly request?: HandshakeRequest;
  readonly remoteAddress?: string;
  /** Server side: what the handshake hook attached. */
  readonly data?: unknown;
  /** Bytes that arrived after the handshake, in the same reads (pipelined frames). */
  readonly head?: Buffer;
  /** Where errors go when this socket has no `'error'` listener (the server reports them). */
  readonly onUnhandledError?: (error: Error, ws: WebSocket) => void;
}

interface PendingPing {
  readonly payload: Buffer;
  readonly sentAt: number;
  readonly resolve: (rttMs: number) => void;
  readonly reject: (error: Error) => void;
}

/**
 * Events one connection may handle per turn of the event loop; the rest waits for the next turn (the socket is
 * paused meanwhile), so that a peer flooding tiny messages cannot hold the loop for the other connections. A 64 KiB
 * read of 16-byte messages is about 3 000 events, and libuv hands one socket up to 32 such reads per turn.
 */
const EVENTS_PER_TURN = 256;
/** The keepalive ping's failure reason, as in Python websockets. */
const KEEPALIVE_TIMEOUT_REASON = 'keepalive ping timeout';
/** Random bytes in a ping that the application sends without data, so that its pong can be matched. */
const PING_PAYLOAD_BYTES = 4;
/** How long a connection closed for a slow consumer may take to flush its close frame when closeTimeoutMs is off. */
const SLOW_CONSUMER_LINGER_MS = 1000;

function ignore(): void {}

/** A rejected promise that is already handled: nobody awaiting it cannot crash the process, awaiting it throws. */
function rejected<T>(error: Error): Promise<T> {
  const promise = Promise.reject(error);
  promise.catch(ignore);
  return promise;
}

/**
 * One WebSocket connection. Created by `WebSocketServer` (server side) and `connect()` (client side), never by hand.
 *
 * Events: `'message'` (data: string | Buffer, isBinary: boolean), `'close'` (code: number, reason: string),
 * `'error'` (error: Error), `'ping'` (data: Buffer), `'pong'` (data: Buffer), `'drop'` (data: string | Buffer: a
 * message not sent under the `'drop'` policy or as a volatile send).
 */
export class WebSocket extends EventEmitter {
  static readonly CONNECTING = State.CONNECTING;
  static readonly OPEN = State.OPEN;
  static readonly CLOSING = State.CLOSING;
  static readonly CLOSED = State.CLOSED;
  readonly CONNECTING = State.CONNECTING;
  readonly OPEN = State.OPEN;
  readonly CLOSING = State.CLOSING;
  readonly CLOSED = State.CLOSED;

  /** The negotiated subprotocol, '' when none. */
  readonly protocol: string;
  /** The negotiated `Sec-WebSocket-Extensions` value, '' when none. */
  readonly extensions: string;
  /** The peer's address, when the socket knows it. */
  readonly remoteAddress: string | undefined;
  /** Whatever the server's handshake hook attached; free for the application to use. */
  data: unknown;
  #id: string | undefined;

  /** Server side: the handshake request, kept compacted (see `ParsedHandshakeRequest.compact`). */
  readonly #request: HandshakeRequest | undefined;
  readonly #socket: Duplex;
  readonly #conn: Connection;
  readonly #config: Readonly<ResolvedConfig>;
  readonly #onUnhandledError: ((error: Error, ws: WebSocket) => void) | undefined;

  // Reading. The parts below are made on first use (null until then): most connections never need them, and every
  // idle connection would keep them.
  #incoming: IncomingMessages | null = null;
  #pumping = false;
  #pumpAgain = false;
  /** The turn's event budget is spent: parsing resumes at the next turn (setImmediate). */
  #yielded = false;
  #discardMessages = false;
  #maxReadBuffered = 0;

  // Writing
  #sender: SendBuffer | null = null;
  #pings: PendingPing[] | null = null;

  // Lifecycle
  #socketClosed = false;
  #closeTimer: NodeJS.Timeout | undefined;
  #closeTimerArmed = false;
  #pongTimer: NodeJS.Timeout | undefined;
  #reportedFailure = false;
  #latencyMs = 0;
  /** What close() returns; made on the first call (most connections never call it), resolved by the socket's close. */
  #closed: Promise<void> | undefined;
  #resolveClosed: (() => void) | undefined;
  #closeCode: number = CloseCode.ABNORMAL_CLOSURE;
  #closeReason = '';

  /** @internal Built by the server and the client after a successful handshake. */
  constructor(init: WebSocketInit) {
    super({ captureRejections: true });
    this.#socket = init.socket;
    this.#conn = init.connection;
    this.#config = init.config;
    this.protocol = init.protocol ?? '';
    this.extensions = init.extensions ?? '';
    this.#request = init.request;
    if (init.request instanceof ParsedHandshakeRequest) init.request.compact();
    this.remoteAddress = init.remoteAddress;
    this.data = init.data;
    this.#onUnhandledError = init.onUnhandledError;

    const socket = this.#socket as Partial<Socket> & Duplex;
    // The HTTP server may have set an idle timeout on the socket; the WebSocket has its own keepalive.
    socket.setTimeout?.(0);
    socket.setNoDelay?.(true);
    // RFC 6455 has no use for TLS renegotiation, and each one costs the server a handshake's CPU.
    (socket as Partial<TLSSocket>).disableRenegotiation?.();
    // Listeners shared by every connection (the socket points back at its WebSocket): an idle connection then
    // holds no closure of its own.
    (socket as unknown as SocketWithOwner)[OWNER] = this;
    socket.on('data', WebSocket.#onSocketData);
    socket.on('end', WebSocket.#onSocketEnd);
    socket.on('error', WebSocket.#onSocketError);
    socket.on('close', WebSocket.#onSocketClosed);
    this.on('newListener', WebSocket.#onNewListener);

    if (init.head !== undefined && init.head.length > 0) this.#conn.receiveData(init.head);
    this.#scheduleKeepalive();
    if ((socket as Partial<Socket>).destroyed === true) {
      queueMicrotask(() => this.#onSocketClose());
      return;
    }
    this.#pump();
  }

  static readonly #onSocketData = function (this: SocketWithOwner, chunk: Buffer): void {
    this[OWNER].#onData(chunk);
  };

  static readonly #onSocketEnd = function (this: SocketWithOwner): void {
    this[OWNER].#onEnd();
  };

  /**
   * A reset, a TLS failure or a renegotiation attempt (ERR_TLS_SESSION_ATTACK): the socket is finished, whatever
   * Node would otherwise do with it. 'close' follows and reports 1006; the peer's doing, so nothing is reported.
   */
  static readonly #onSocketError = function (this: SocketWithOwner): void {
    this.destroy();
  };

  static readonly #onSocketClosed = function (this: SocketWithOwner): void {
    this[OWNER].#onSocketClose();
  };

  static readonly #onNewListener = function (this: WebSocket, event: string | symbol): void {
    if (event === 'message' && this.#incoming !== null && this.#incoming.length > 0 && this.#incoming.iterators === 0) {
      setImmediate(() => this.#drainQueueToListeners());
    }
  };

  /** Server side: the handshake request (its header fields are made again from a compact string on first read). */
  get request(): HandshakeRequest | undefined {
    return this.#request;
  }

  /**
   * A stable identifier of this connection, unique across processes (128 random bits, base64url), made on first
   * read; a resumed session gives the connection its session's id instead (`assignId`).
   */
  get id(): string {
    return (this.#id ??= randomBytes(16).toString('base64url'));
  }

  /** @internal Gives the connection an identifier decided elsewhere (a session's), before anyone reads it. */
  assignId(id: string): void {
    this.#id = id;
  }

  /** 0 CONNECTING (never seen here: a WebSocket exists once the handshake is done), 1 OPEN, 2 CLOSING, 3 CLOSED. */
  get readyState(): ReadyState {
    if (this.#socketClosed) return State.CLOSED;
    const state = this.#conn.state;
    return state === State.CLOSED ? State.CLOSING : (state as ReadyState);
  }

  /** Outgoing bytes not yet handed to the kernel: the socket's write buffer, this tick's batch and waiting sends. */
  get bufferedAmount(): number {
    return this.#sender === null ? this.#socket.writableLength : this.#sender.bufferedAmount;
  }

  /**
   * Incoming bytes held for this connection and not yet taken by the application: the socket's read buffer, the
   * bytes the parser has not consumed, and the messages waiting for `for await`.
   */
  get readBufferedAmount(): number {
    return this.#socket.readableLength + this.#conn.bufferedAmount + this.#queuedBytes();
  }

  /** The largest `readBufferedAmount` seen so far (sampled after every read): what the memory bound is checked on. */
  get maxReadBufferedAmount(): number {
    return this.#maxReadBuffered;
  }

  /** Round-trip time of the last ping answered, in ms (0 before the first). */
  get latency(): number {
    return this.#latencyMs;
  }

  /**
   * Sends a message. Strings go as text unless `binary: true`; Buffers, ArrayBuffers and views as binary unless
   * `binary: false` (then they must be UTF-8); a `PreparedMessage` as it was prepared (a broadcast builds its frame
   * once). Waits while `bufferedAmount` is over `writeHighWaterMark`, until it falls under `writeLowWaterMark`;
   * messages keep their order. A send that would put more than `maxBufferedAmount` bytes in wait applies the
   * `slowConsumer` policy.
   *
   * The promise is already handled: a send nobody awaits never becomes an unhandled rejection (as with `ws`, where
   * a failed send goes to an optional callback). Await it to learn what happened.
   * @returns resolves `true` once the message is written to the socket, `false` when it was dropped (`'drop'`
   *   policy, or `volatile`)
   * @throws (rejection) InvalidStateError or ConnectionClosedError when the connection is not OPEN or closes before
   *   the message is written; SlowConsumerError under the `'close'` policy; TypeError for data of another type
   */
  send(data: WebSocketData | PreparedMessage, options: SendOptions = {}): Promise<boolean> {
    if (this.readyState !== State.OPEN) return rejected(this.#notOpen('send'));
    let message: OutgoingMessage;
    let text: boolean;
    if (data instanceof PreparedMessage) {
      message = data;
      text = data.text;
    } else {
      if (typeof data === 'string' || Buffer.isBuffer(data)) message = data;
      else if (data instanceof ArrayBuffer) message = Buffer.from(data);
      else if (ArrayBuffer.isView(data)) message = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      else return rejected(new TypeError('send() takes a string, a Buffer, an ArrayBuffer, an ArrayBufferView or a PreparedMessage'));
      text = options.binary === undefined ? typeof message === 'string' : !options.binary;
    }
    return this.#out().send(message, text, options.volatile === true);
  }

  /**
   * Sends a ping and resolves with the round-trip time in ms once the matching pong arrives (a pong also
   * acknowledges every earlier ping, RFC 6455 §5.5.3). The promise is already handled, as with `send()`.
   * @param data up to 125 bytes; 4 random bytes when omitted
   * @throws (rejection) InvalidStateError when the connection is not OPEN; RangeError for more than 125 bytes
   */
  ping(data?: Buffer): Promise<number> {
    if (this.readyState !== State.OPEN) return rejected(this.#notOpen('ping'));
    const payload = data ?? randomBytes(PING_PAYLOAD_BYTES);
    if (this.#pings !== null && this.#pings.some((ping) => ping.payload.equals(payload))) {
      return rejected(new InvalidStateError('a ping with the same data is already waiting for its pong'));
    }
    try {
      this.#conn.sendPing(payload);
    } catch (error) {
      return rejected(error as Error);
    }
    const promise = new Promise<number>((resolve, reject) => {
      (this.#pings ??= []).push({ payload, sentAt: performance.now(), resolve, reject });
    });
    promise.catch(ignore);
    this.#flush();
    return promise;
  }

  /**
   * Starts the closing handshake (RFC 6455 §7.1.2) and resolves once the socket is closed. Sends still waiting for
   * the write buffer go out first; messages not yet read are dropped and `for await` ends. The socket is destroyed
   * if the peer does not answer within `closeTimeoutMs`. Calling it again, or after the close, just waits.
   * @param code 1000 by default; 1000-1003, 1007-1014 or 3000-4999
   * @param reason at most 123 bytes of UTF-8
   * @throws (rejection, already handled) RangeError for a code or reason that cannot be sent
   */
  close(code: number = CloseCode.NORMAL_CLOSURE, reason = ''): Promise<void> {
    if (this.readyState === State.OPEN) {
      this.#sender?.flushWaiting(true);
      try {
        this.#conn.sendClose(code, reason);
      } catch (error) {
        return rejected(error as Error);
      }
      this.#stopReading();
      this.#flush();
    }
    return this.#whenClosed();
  }

  /** Destroys the socket at once, without a closing handshake; `'close'` reports 1006. */
  terminate(): void {
    this.#stopReading();
    this.#socket.destroy();
  }

  /** Incoming messages, in order; ends when the connection closes (or `close()` is called). */
  [Symbol.asyncIterator](): AsyncIterator<string | Buffer> {
    return this.#messages().iterator();
  }

  /** EventEmitter calls this when an async listener rejects (captureRejections): same as a throwing listener. */
  override [EventEmitter.captureRejectionSymbol](error: unknown, event: string | symbol): void {
    if (event === 'message') this.#handlerFailed(error);
    else this.#reportError(toError(error));
  }

  /** @internal Called by the keepalive queue once `pingIntervalMs` has elapsed since the last schedule. */
  keepaliveDue(): void {
    this.#keepalivePing();
  }

  #whenClosed(): Promise<void> {
    this.#closed ??= this.#socketClosed
      ? Promise.resolve()
      : new Promise((resolve) => {
          this.#resolveClosed = resolve;
        });
    return this.#closed;
  }

  /** The send buffer, made on the first send (an idle connection that never sends has none). */
  #out(): SendBuffer {
    return (this.#sender ??= new SendBuffer(this.#socket, this.#conn, this.#config, this.#sendHost()));
  }

  #sendHost(): SendHost {
    return {
      notOpen: (operation) => this.#notOpen(operation),
      closedError: () => this.#closedError(),
      written: () => {
        if (this.#sender!.wasBackedUp && !this.#sender!.backedUp()) this.#pump();
      },
      slowConsumer: (error) => this.#closeSlowConsumer(error),
      dropped: (message) => this.#emitSafely('drop', message instanceof PreparedMessage ? message.payload : message),
    };
  }

  /** Takes what the core queued into the batch, and arms the close timer once a close frame is on its way. */
  #flush(): Promise<boolean> {
    const done = this.#out().flush();
    if (!this.#closeTimerArmed && this.#conn.closeExpected()) this.#armCloseTimer(this.#config.closeTimeoutMs);
    return done;
  }

  // --- reading -------------------------------------------------------------------------------------------------

  #messages(): IncomingMessages {
    return (this.#incoming ??= new IncomingMessages(
      () => this.#pump(),
      () => this.#socketClosed || this.#discardMessages,
    ));
  }

  #queuedBytes(): number {
    return this.#incoming === null ? 0 : this.#incoming.bytes;
  }

  #onData(chunk: Buffer): void {
    this.#conn.receiveData(chunk);
    // One socket read often holds many frames: the replies that listeners send while its events are dispatched
    // (and the pongs and close frames of the core) join one batch, written at the next tick.
    this.#pump();
  }

  #onEnd(): void {
    this.#conn.receiveEof();
    this.#pump();
  }

  /**
   * Pulls events while the application keeps up, the write side is not backed up and this turn's budget lasts,
   * then flushes what the core wants to send and adjusts the flow.
   */
  #pump(): void {
    if (this.#pumping || this.#yielded) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    let budget = EVENTS_PER_TURN;
    try {
      do {
        this.#pumpAgain = false;
        // Pongs and close frames are answers the core writes by itself: while the peer does not read them, nothing
        // more is parsed, or a ping flood would queue pongs without bound.
        while (!this.#socketClosed && this.#queuedBytes() <= this.#config.readHighWaterMark && !this.#writesBackedUp()) {
          if (budget === 0) {
            this.#yielded = true;
            setImmediate(WebSocket.#resumeTurn, this);
            break;
          }
          const event = this.#conn.nextEvent();
          if (event === undefined) break;
          budget--;
          this.#dispatch(event);
          this.#flush();
        }
      } while (this.#pumpAgain && !this.#yielded);
    } finally {
      this.#pumping = false;
    }
    this.#flush();
    this.#checkFailure();
    this.#updateFlow();
  }

  static #resumeTurn(ws: WebSocket): void {
    ws.#yielded = false;
    ws.#pump();
  }

  #writesBackedUp(): boolean {
    return this.#sender !== null && this.#sender.backedUp();
  }

  #dispatch(event: ConnectionEvent): void {
    switch (event.type) {
      case 'text':
        this.#deliver(event.data, false);
        break;
      case 'binary':
        this.#deliver(event.data, true);
        break;
      case 'ping':
        this.#emitSafely('ping', event.data);
        break;
      case 'pong':
        this.#onPong(event.data);
        this.#emitSafely('pong', event.data);
        break;
      case 'close':
        // The core answers the close frame itself (RFC 6455 §5.5.1) and parses nothing after it; the 'close' event
        // waits for the socket. Messages that arrived before the close frame are still delivered, even to a reader
        // that is behind (a client may send its last messages and its close in one packet): only close() drops them.
        break;
      default: {
        const unexpected: never = event;
        throw new TypeError(`unexpected connection event ${JSON.stringify(unexpected)}`);
      }
    }
  }

  #deliver(data: string | Buffer, isBinary: boolean): void {
    if (this.#discardMessages) return;
    if (this.listenerCount('message') > 0) {
      try {
        this.emit('message', data, isBinary);
      } catch (error) {
        this.#handlerFailed(error);
        return;
      }
      if (this.#incoming === null || this.#incoming.iterators === 0) return;
    }
    this.#messages().put(data);
  }

  #drainQueueToListeners(): void {
    const incoming = this.#incoming;
    while (incoming !== null && incoming.iterators === 0 && this.listenerCount('message') > 0) {
      const message = incoming.shift();
      if (message === undefined) break;
      try {
        this.emit('message', message, typeof message !== 'string');
      } catch (error) {
        this.#handlerFailed(error);
        return;
      }
    }
    this.#pump();
  }

  /**
   * Pauses the socket while unparsed plus waiting bytes are over `readHighWaterMark`, while the write side is backed
   * up and while the turn's budget is spent; resumes otherwise.
   */
  #updateFlow(): void {
    if (this.#socketClosed) return;
    const held = this.readBufferedAmount;
    if (held > this.#maxReadBuffered) this.#maxReadBuffered = held;
    const backlog = this.#conn.bufferedAmount + this.#queuedBytes();
    const writesBackedUp = this.#sender !== null && this.#sender.wasBackedUp;
    // isPaused() rather than a flag of our own: the server pauses the socket while the handshake hook runs.
    if (backlog > this.#config.readHighWaterMark || writesBackedUp || this.#yielded) {
      if (!this.#socket.isPaused()) this.#socket.pause();
    } else if (this.#socket.isPaused()) {
      this.#socket.resume();
    }
  }

  /** After close() or a failure: unread messages are dropped, readers end, and reading no longer waits on them. */
  #stopReading(): void {
    this.#discardMessages = true;
    this.#incoming?.clear();
    this.#incoming?.endReaders();
  }

  // --- keepalive and pings -------------------------------------------------------------------------------------

  #onPong(data: Buffer): void {
    const pings = this.#pings;
    const index = pings === null ? -1 : pings.findIndex((ping) => ping.payload.equals(data));
    if (index < 0) return;
    const now = performance.now();
    this.#latencyMs = now - pings![index]!.sentAt;
    // RFC 6455 §5.5.3: a pong may answer several pings; it acknowledges the matching one and all earlier ones.
    for (const ping of pings!.splice(0, index + 1)) ping.resolve(now - ping.sentAt);
  }

  #scheduleKeepalive(): void {
    const interval = this.#config.pingIntervalMs;
    if (interval === null) return;
    KeepaliveQueue.for(interval).schedule(this);
  }

  /**
   * Python websockets' keepalive: after `pingIntervalMs`, ping, and wait up to `pingTimeoutMs` for the pong; the next
   * ping is scheduled only once the pong has come back, so a slow peer never has several keepalive pings pending.
   */
  #keepalivePing(): void {
    if (this.readyState !== State.OPEN) return;
    const timeout = this.#config.pingTimeoutMs;
    this.ping().then(
      () => {
        if (this.#pongTimer !== undefined) clearTimeout(this.#pongTimer);
        this.#pongTimer = undefined;
        if (!this.#socketClosed) this.#scheduleKeepalive();
      },
      ignore, // the connection closed while waiting: nothing to do
    );
    if (timeout !== null) {
      this.#pongTimer = setTimeout(() => {
        this.#pongTimer = undefined;
        if (this.#conn.state !== State.OPEN) return;
        this.#conn.fail(CloseCode.INTERNAL_ERROR, KEEPALIVE_TIMEOUT_REASON);
        this.#stopReading();
        this.#flush();
      }, timeout);
      this.#pongTimer.unref();
    }
  }

  // --- closing -------------------------------------------------------------------------------------------------

  #armCloseTimer(timeoutMs: number | null): void {
    this.#closeTimerArmed = true;
    if (timeoutMs === null) return;
    this.#closeTimer = setTimeout(() => this.#socket.destroy(), timeoutMs);
    this.#closeTimer.unref();
  }

  /**
   * The `'close'` policy: what waited is already dropped; send 1013 behind what the socket still holds, stop
   * reading, and destroy the socket within `closeTimeoutMs` (1 s when it is off) even if the peer never reads again.
   */
  #closeSlowConsumer(error: SlowConsumerError): void {
    if (this.#conn.state !== State.OPEN) return;
    this.#conn.sendClose(CloseCode.TRY_AGAIN_LATER, SlowConsumerError.reason(error.limit));
    this.#stopReading();
    if (!this.#closeTimerArmed) this.#armCloseTimer(this.#config.closeTimeoutMs ?? SLOW_CONSUMER_LINGER_MS);
    this.#flush();
    // The peer's doing: only listeners of this connection hear about it.
    if (this.listenerCount('error') > 0) this.#emitSafely('error', error);
  }

  #onSocketClose(): void {
    if (this.#socketClosed) return;
    this.#socketClosed = true;
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
    if (this.#pongTimer !== undefined) clearTimeout(this.#pongTimer);
    if (this.#config.pingIntervalMs !== null) KeepaliveQueue.for(this.#config.pingIntervalMs).cancel(this);
    // The core reports the peer's close code, else the one sent, else 1006 when neither side sent one (RFC 6455 §7.1.5).
    if (this.#conn.state !== State.CLOSED) this.#conn.receiveEof();
    this.#closeCode = this.#conn.closeCode;
    this.#closeReason = this.#conn.closeReason;
    this.#incoming?.endReaders();
    // Emptied in place: a loop further up the stack may hold the same array.
    const pings = this.#pings?.splice(0) ?? [];
    // The error (and its stack trace) only when someone waits for it: most connections have nothing pending.
    if (pings.length > 0 || (this.#sender !== null && this.#sender.bufferedAmount > this.#socket.writableLength)) {
      const closed = this.#closedError();
      for (const ping of pings) ping.reject(closed);
      this.#sender?.rejectWaiting(closed);
    }
    this.#checkFailure();
    this.#emitSafely('close', this.#closeCode, this.#closeReason);
    this.#resolveClosed?.();
  }

  /** The core failed the connection (protocol error, 1009, ...): report it once, as ws does. */
  #checkFailure(): void {
    if (this.#reportedFailure) return;
    const failure = this.#conn.failure;
    if (failure === undefined || failure === null) return;
    this.#reportedFailure = true;
    this.#stopReading();
    // The peer's fault, already answered with its close code: only listeners of this socket hear about it.
    if (this.listenerCount('error') > 0) this.#emitSafely('error', failure);
  }

  /** A 'message' listener threw: close this connection with 1011 (no reason on the wire) and report the error. */
  #handlerFailed(error: unknown): void {
    if (this.#conn.state === State.OPEN) this.#conn.fail(CloseCode.INTERNAL_ERROR);
    this.#reportedFailure = true;
    this.#stopReading();
    this.#flush();
    this.#reportError(toError(error));
  }

  #reportError(error: Error): void {
    if (this.listenerCount('error') > 0) {
      this.emit('error', error);
    } else if (this.#onUnhandledError !== undefined) {
      this.#onUnhandledError(error, this);
    } else {
      process.emitWarning(error.stack ?? error.message, 'WebSocketWarning');
    }
  }

  /** Emits an event whose listener must not break the I/O loop; a throwing listener is reported. */
  #emitSafely(event: string, ...args: unknown[]): void {
    try {
      this.emit(event, ...args);
    } catch (error) {
      this.#reportError(toError(error));
    }
  }

  #notOpen(operation: string): Error {
    if (this.readyState === State.CLOSED || this.#conn.state !== State.OPEN) return this.#closedError();
    return new InvalidStateError(`cannot ${operation}: the connection is not open (readyState ${this.readyState})`);
  }

  #closedError(): ConnectionClosedError {
    const code = this.#socketClosed ? this.#closeCode : this.#conn.closeCode;
    return new ConnectionClosedError(code, this.#socketClosed ? this.#closeReason : this.#conn.closeReason);
  }
}

const OWNER: unique symbol = Symbol('websocket');
type SocketWithOwner = Duplex & { [OWNER]: WebSocket };

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
