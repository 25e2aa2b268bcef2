/**
 * `WebSocket`: one open connection, server or client side, driving the sans-I/O `Connection` over a Node socket.
 *
 * Reading follows the pull model of the core: socket chunks are handed to `Connection.receiveData()` (which only
 * buffers), and events are pulled one at a time with `nextEvent()` while the application keeps up. Messages go
 * synchronously to `'message'` listeners; otherwise they wait in a queue for `for await`. While the unparsed bytes
 * plus the queued messages are over `readHighWaterMark`, nothing more is parsed or inflated and the socket is paused,
 * so a peer cannot make this side hold more than the documented bound however fast it sends.
 *
 * Writing: everything `dataToSend()` returns within one tick joins one batch, written at the next tick in one system
 * call: small frames are copied together, payloads over 4 KiB are written as they are (never copied to prepend a
 * header). `send()` waits while `bufferedAmount` (which counts the batch) is over `writeHighWaterMark` and resumes
 * below `writeLowWaterMark`.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { ResolvedConfig } from '../config.js';
import { ConnectionClosedError, InvalidStateError } from '../errors.js';
import { CloseCode } from '../protocol/close-codes.js';
import { Connection, SEND_EOF, State, type ConnectionEvent } from '../protocol/connection.js';
import type { HandshakeRequest } from '../protocol/handshake.js';
import { headOf, requestOfHead } from './request-head.js';

/** What `send()` accepts: strings go as text, everything else as binary (unless `options.binary` says otherwise). */
export type WebSocketData = string | Buffer | ArrayBuffer | ArrayBufferView;

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

interface PendingSend {
  readonly payload: string | Buffer;
  readonly text: boolean;
  readonly size: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

interface PendingPing {
  readonly payload: Buffer;
  readonly sentAt: number;
  readonly resolve: (rttMs: number) => void;
  readonly reject: (error: Error) => void;
}

type Reader = (result: IteratorResult<string | Buffer>) => void;

const RESOLVED: Promise<void> = Promise.resolve();

/** The keepalive ping's failure reason, as in Python websockets. */
const KEEPALIVE_TIMEOUT_REASON = 'keepalive ping timeout';
/** Random bytes in a ping that the application sends without data, so that its pong can be matched. */
const PING_PAYLOAD_BYTES = 4;

/**
 * One WebSocket connection. Created by `WebSocketServer` (server side) and `connect()` (client side), never by hand.
 *
 * Events: `'message'` (data: string | Buffer, isBinary: boolean), `'close'` (code: number, reason: string),
 * `'error'` (error: Error), `'ping'` (data: Buffer), `'pong'` (data: Buffer).
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

  /**
   * Server side: the request head as it was on the wire (one flat string, about a tenth of the parsed object), parsed
   * again on the first read of `request`: most applications never read it, and every idle connection keeps it.
   */
  #requestHead: string | undefined;
  #request: HandshakeRequest | undefined;
  readonly #socket: Duplex;
  readonly #conn: Connection;
  readonly #config: Readonly<ResolvedConfig>;
  readonly #onUnhandledError: ((error: Error, ws: WebSocket) => void) | undefined;

  // Reading
  // The four lists below are made on first use (null until then): most connections never need them, and an empty
  // array is 32 bytes that every idle connection would keep.
  #queue: Array<string | Buffer> | null = null;
  #queuedBytes = 0;
  #readers: Reader[] | null = null;
  #iterators = 0;
  #pumping = false;
  #pumpAgain = false;
  #discardMessages = false;
  #maxReadBuffered = 0;

  // Writing
  #pendingSends: PendingSend[] | null = null;
  #pendingSendBytes = 0;
  #pings: PendingPing[] | null = null;
  /** What this tick has sent, written at the next tick (see #flush); null when nothing is waiting. */
  #batch: OutgoingBatch | null = null;

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
    if (init.request !== undefined) this.#requestHead = headOf(init.request);
    this.remoteAddress = init.remoteAddress;
    this.data = init.data;
    this.#onUnhandledError = init.onUnhandledError;

    const socket = this.#socket as Partial<Socket> & Duplex;
    // The HTTP server may have set an idle timeout on the socket; the WebSocket has its own keepalive.
    socket.setTimeout?.(0);
    socket.setNoDelay?.(true);
    // Listeners shared by every connection (the socket points back at its WebSocket): an idle connection then
    // holds no closure of its own.
    (socket as unknown as SocketWithOwner)[OWNER] = this;
    socket.on('data', WebSocket.#onSocketData);
    socket.on('end', WebSocket.#onSocketEnd);
    // A reset, or a TLS error that leaves the socket open (ERR_TLS_SESSION_ATTACK, a refused renegotiation): end the
    // connection; 'close' follows and reports 1006. The peer's doing, so it is not reported as an error.
    socket.on('error', destroyOnError);
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

  static readonly #onSocketClosed = function (this: SocketWithOwner): void {
    this[OWNER].#onSocketClose();
  };

  static readonly #onNewListener = function (this: WebSocket, event: string | symbol): void {
    if (event === 'message' && this.#queue !== null && this.#queue.length > 0 && this.#iterators === 0) {
      setImmediate(() => this.#drainQueueToListeners());
    }
  };

  /** Server side: the parsed handshake request (parsed again from the stored head on the first read). */
  get request(): HandshakeRequest | undefined {
    if (this.#request === undefined && this.#requestHead !== undefined) {
      this.#request = requestOfHead(this.#requestHead);
      this.#requestHead = undefined;
    }
    return this.#request;
  }

  /** 0 CONNECTING (never seen here: a WebSocket exists once the handshake is done), 1 OPEN, 2 CLOSING, 3 CLOSED. */
  get readyState(): ReadyState {
    if (this.#socketClosed) return State.CLOSED;
    const state = this.#conn.state;
    return state === State.CLOSED ? State.CLOSING : (state as ReadyState);
  }

  /** Outgoing bytes not yet handed to the kernel: the socket's write buffer plus sends waiting for it to drain. */
  get bufferedAmount(): number {
    return this.#unwritten() + this.#pendingSendBytes;
  }

  /**
   * Incoming bytes held for this connection and not yet taken by the application: the socket's read buffer, the
   * bytes the parser has not consumed, and the messages queued for `for await`.
   */
  get readBufferedAmount(): number {
    return this.#socket.readableLength + this.#conn.bufferedAmount + this.#queuedBytes;
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
   * `binary: false` (then they must be UTF-8). Waits while `bufferedAmount` is over `writeHighWaterMark`, until it
   * falls under `writeLowWaterMark`; messages keep their order.
   * @returns a promise that resolves once the message has been written to the socket
   * @throws InvalidStateError (rejection) when the connection is not OPEN
   */
  send(data: WebSocketData, options: { binary?: boolean } = {}): Promise<void> {
    if (this.readyState !== State.OPEN) return Promise.reject(this.#notOpen('send'));
    let payload: string | Buffer;
    if (typeof data === 'string') payload = data;
    else if (Buffer.isBuffer(data)) payload = data;
    else if (data instanceof ArrayBuffer) payload = Buffer.from(data);
    else if (ArrayBuffer.isView(data)) payload = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    else return Promise.reject(new TypeError('send() takes a string, a Buffer, an ArrayBuffer or an ArrayBufferView'));
    const text = options.binary === undefined ? typeof payload === 'string' : !options.binary;
    const size = typeof payload === 'string' ? payload.length : payload.length;
    if ((this.#pendingSends !== null && this.#pendingSends.length > 0) || this.bufferedAmount > this.#config.writeHighWaterMark) {
      return new Promise((resolve, reject) => {
        (this.#pendingSends ??= []).push({ payload, text, size, resolve, reject });
        this.#pendingSendBytes += size;
      });
    }
    return this.#sendNow(payload, text);
  }

  /**
   * Sends a ping and resolves with the round-trip time in ms once the matching pong arrives (a pong also
   * acknowledges every earlier ping, RFC 6455 §5.5.3).
   * @param data up to 125 bytes; 4 random bytes when omitted
   * @throws InvalidStateError (rejection) when the connection is not OPEN
   */
  ping(data?: Buffer): Promise<number> {
    if (this.readyState !== State.OPEN) return Promise.reject(this.#notOpen('ping'));
    const payload = data ?? randomBytes(PING_PAYLOAD_BYTES);
    if (this.#pings !== null && this.#pings.some((ping) => ping.payload.equals(payload))) {
      return Promise.reject(new InvalidStateError('a ping with the same data is already waiting for its pong'));
    }
    try {
      this.#conn.sendPing(payload);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const promise = new Promise<number>((resolve, reject) => {
      (this.#pings ??= []).push({ payload, sentAt: performance.now(), resolve, reject });
    });
    this.#flush();
    return promise;
  }

  /**
   * Starts the closing handshake (RFC 6455 §7.1.2) and resolves once the socket is closed. Sends still waiting for
   * the write buffer go out first; messages not yet read are dropped and `for await` ends. The socket is destroyed
   * if the peer does not answer within `closeTimeoutMs`. Calling it again, or after the close, just waits.
   * @param code 1000 by default; 1000-1003, 1007-1014 or 3000-4999
   * @param reason at most 123 bytes of UTF-8
   */
  close(code: number = CloseCode.NORMAL_CLOSURE, reason = ''): Promise<void> {
    if (this.readyState === State.OPEN) {
      this.#flushPendingSends(true);
      try {
        this.#conn.sendClose(code, reason);
      } catch (error) {
        return Promise.reject(error as Error);
      }
      this.#stopReading();
      this.#flush();
    }
    if (this.#closed === undefined) {
      this.#closed = this.#socketClosed
        ? Promise.resolve()
        : new Promise((resolve) => {
            this.#resolveClosed = resolve;
          });
    }
    return this.#closed;
  }

  /** Destroys the socket at once, without a closing handshake; `'close'` reports 1006. */
  terminate(): void {
    this.#stopReading();
    this.#socket.destroy();
  }

  /** Incoming messages, in order; ends when the connection closes (or `close()` is called). */
  [Symbol.asyncIterator](): AsyncIterator<string | Buffer> {
    this.#iterators++;
    let done = false;
    const finish = (): IteratorResult<string | Buffer> => {
      if (!done) {
        done = true;
        this.#iterators--;
      }
      return { done: true, value: undefined };
    };
    return {
      next: (): Promise<IteratorResult<string | Buffer>> => {
        if (done) return Promise.resolve({ done: true, value: undefined });
        const message = this.#queue?.shift();
        if (message !== undefined) {
          this.#queuedBytes -= message.length;
          this.#pump();
          return Promise.resolve({ done: false, value: message });
        }
        if (this.#socketClosed || this.#discardMessages) return Promise.resolve(finish());
        return new Promise<IteratorResult<string | Buffer>>((resolve) => {
          (this.#readers ??= []).push((result) => resolve(result.done === true ? finish() : result));
        });
      },
      return: (): Promise<IteratorResult<string | Buffer>> => Promise.resolve(finish()),
    };
  }

  /** EventEmitter calls this when an async listener rejects (captureRejections): same as a throwing listener. */
  override [EventEmitter.captureRejectionSymbol](error: unknown, event: string | symbol): void {
    if (event === 'message') this.#handlerFailed(error);
    else this.#reportError(toError(error));
  }

  // --- reading -------------------------------------------------------------------------------------------------

  #onData(chunk: Buffer): void {
    this.#conn.receiveData(chunk);
    // One socket read often holds many frames: the replies that listeners send while its events are dispatched
    // (and the pongs and close frames of the core) join one batch, written at the next tick (see #flush).
    this.#pump();
  }

  #onEnd(): void {
    this.#conn.receiveEof();
    this.#pump();
  }

  /** Pulls events while the application keeps up, then flushes what the core wants to send and adjusts the flow. */
  #pump(): void {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#pumpAgain = false;
        while (!this.#socketClosed && this.#queuedBytes <= this.#config.readHighWaterMark) {
          const event = this.#conn.nextEvent();
          if (event === undefined) break;
          this.#dispatch(event);
          this.#flush();
        }
      } while (this.#pumpAgain);
    } finally {
      this.#pumping = false;
    }
    this.#flush();
    this.#checkFailure();
    this.#updateFlow();
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
      if (this.#iterators === 0) return;
    }
    const reader = this.#readers?.shift();
    if (reader !== undefined) {
      reader({ done: false, value: data });
      return;
    }
    (this.#queue ??= []).push(data);
    this.#queuedBytes += data.length;
  }

  #drainQueueToListeners(): void {
    while (this.#iterators === 0 && this.listenerCount('message') > 0) {
      const message = this.#queue?.shift();
      if (message === undefined) break;
      this.#queuedBytes -= message.length;
      try {
        this.emit('message', message, typeof message !== 'string');
      } catch (error) {
        this.#handlerFailed(error);
        return;
      }
    }
    this.#pump();
  }

  /** Pauses the socket while unparsed plus queued bytes are over `readHighWaterMark`; resumes below it. */
  #updateFlow(): void {
    if (this.#socketClosed) return;
    const held = this.readBufferedAmount;
    if (held > this.#maxReadBuffered) this.#maxReadBuffered = held;
    const backlog = this.#conn.bufferedAmount + this.#queuedBytes;
    // isPaused() rather than a flag of our own: the server pauses the socket while the handshake hook runs.
    if (backlog > this.#config.readHighWaterMark) {
      if (!this.#socket.isPaused()) this.#socket.pause();
    } else if (this.#socket.isPaused()) {
      this.#socket.resume();
    }
  }

  /** After close() or a failure: unread messages are dropped, readers end, and reading no longer waits on them. */
  #stopReading(): void {
    this.#discardMessages = true;
    this.#queue = null;
    this.#queuedBytes = 0;
    this.#endReaders();
  }

  /** Ends every pending `for await` read. */
  #endReaders(): void {
    const readers = this.#readers;
    this.#readers = null;
    if (readers !== null) for (const reader of readers) reader({ done: true, value: undefined });
  }

  // --- writing -------------------------------------------------------------------------------------------------

  #sendNow(payload: string | Buffer, text: boolean): Promise<void> {
    try {
      if (text) this.#conn.sendText(payload);
      else this.#conn.sendBinary(typeof payload === 'string' ? Buffer.from(payload) : payload);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return this.#flush();
  }

  /**
   * Takes everything the core has queued into this tick's batch, written at the next tick: the replies to all the
   * messages of one socket read (whether listeners answer at once or after an await, as Nest handlers do) leave in
   * one system call. Resolves once the batch has been handed to the kernel; every send of one tick shares that
   * promise. The end of the stream (SEND_EOF) writes the batch at once and ends the socket.
   */
  #flush(): Promise<void> {
    const chunks = this.#conn.dataToSend();
    let done: Promise<void> = RESOLVED;
    if (chunks.length > 0) {
      const socket = this.#socket;
      if (socket.destroyed || socket.writableEnded) {
        done = Promise.reject(this.#closedError());
        done.catch(ignore);
      } else {
        let eof = false;
        let batch = this.#batch;
        for (let i = 0; i < chunks.length; i++) {
          const chunk = chunks[i]!;
          if (chunk === SEND_EOF) {
            eof = true;
            continue;
          }
          if (batch === null) {
            batch = this.#batch = new OutgoingBatch();
            process.nextTick(WebSocket.#writeBatch, this);
          }
          batch.add(chunk);
        }
        if (batch !== null) done = batch.promise();
        if (eof) {
          WebSocket.#writeBatch(this);
          socket.end();
        }
      }
    }
    if (!this.#closeTimerArmed && this.#conn.closeExpected()) this.#armCloseTimer();
    return done;
  }

  /**
   * Writes this tick's batch: runs of small chunks (frame headers, small payloads) copied into one buffer, large
   * payloads as they are, all inside one cork so that Node makes one `writev`. Before, every header and payload was a
   * `socket.write()` of its own: with 10 small messages per read, Node's writable machinery for 20 chunks cost more
   * than the copy of 380 bytes (32 B echo, full bench runs: 2.7 -> 2.1 µs of server CPU per message).
   */
  static #writeBatch(ws: WebSocket): void {
    const batch = ws.#batch;
    if (batch === null) return;
    ws.#batch = null;
    const socket = ws.#socket;
    if (socket.destroyed || socket.writableEnded) {
      batch.settle(ws.#closedError());
      return;
    }
    const pieces = batch.pieces();
    const last = pieces.length - 1;
    socket.cork();
    for (let i = 0; i < last; i++) socket.write(pieces[i]!);
    socket.write(pieces[last]!, (error) => {
      batch.settle(error ? ws.#closedError() : null);
      ws.#onWritten();
    });
    socket.uncork();
  }

  /** Outgoing bytes not yet handed to the kernel: the socket's buffer and this tick's batch. */
  #unwritten(): number {
    return this.#socket.writableLength + (this.#batch === null ? 0 : this.#batch.bytes);
  }

  /** A write completed: let waiting sends go once the buffer is under the low water mark. */
  #onWritten(): void {
    if (this.#pendingSends !== null && this.#pendingSends.length > 0 && this.#unwritten() < this.#config.writeLowWaterMark) {
      this.#flushPendingSends(false);
    }
  }

  /** Sends waiting messages in order until the buffer is over the high water mark again (or all of them). */
  #flushPendingSends(all: boolean): void {
    const pending = this.#pendingSends;
    while (pending !== null && pending.length > 0) {
      if (!all && this.#unwritten() > this.#config.writeHighWaterMark) break;
      const next = pending.shift()!;
      this.#pendingSendBytes -= next.size;
      if (this.#conn.state !== State.OPEN) {
        next.reject(this.#notOpen('send'));
        continue;
      }
      this.#sendNow(next.payload, next.text).then(next.resolve, next.reject);
    }
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

  /** @internal Called by the keepalive queue once `pingIntervalMs` has elapsed since the last schedule. */
  static keepaliveDue(ws: WebSocket): void {
    ws.#keepalivePing();
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
      () => {
        // The connection closed while waiting: nothing to do.
      },
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

  #armCloseTimer(): void {
    const timeout = this.#config.closeTimeoutMs;
    this.#closeTimerArmed = true;
    if (timeout === null) return;
    this.#closeTimer = setTimeout(() => this.#socket.destroy(), timeout);
    this.#closeTimer.unref();
  }

  #onSocketClose(): void {
    if (this.#socketClosed) return;
    this.#socketClosed = true;
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
    if (this.#pongTimer !== undefined) clearTimeout(this.#pongTimer);
    if (this.#config.pingIntervalMs !== null) KeepaliveQueue.for(this.#config.pingIntervalMs).cancel(this);
    // The core reports the code and reason of the closing handshake, or 1006 when none completed (RFC 6455 §7.1.5).
    if (this.#conn.state !== State.CLOSED) this.#conn.receiveEof();
    this.#closeCode = this.#conn.closeCode;
    this.#closeReason = this.#conn.closeReason;
    this.#endReaders();
    // Emptied in place: a #flushPendingSends loop running further up the stack holds the same array.
    const pings = this.#pings?.splice(0) ?? [];
    const sends = this.#pendingSends?.splice(0) ?? [];
    // The error (and its stack trace) only when someone waits for it: most connections have nothing pending.
    if (pings.length > 0 || sends.length > 0) {
      const closed = this.#closedError();
      for (const ping of pings) ping.reject(closed);
      for (const send of sends) send.reject(closed);
    }
    this.#pendingSendBytes = 0;
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

/** Chunks up to this size are copied together rather than written one by one (see OutgoingBatch.pieces). */
const COALESCE_MAX_CHUNK = 4096;
/** The largest buffer that small chunks are copied into; past it a new one starts. */
const COALESCE_MAX_RUN = 65_536;

/** The chunks sent within one tick, and the promise that their senders wait on. */
class OutgoingBatch {
  readonly chunks: Buffer[] = [];
  bytes = 0;
  #promise: Promise<void> | undefined;
  #resolve: (() => void) | undefined;
  #reject: ((error: Error) => void) | undefined;
  #settled: Error | null | undefined;

  add(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
  }

  /** Resolves (or rejects) when the batch is written; made on first use, shared by every send of the tick. */
  promise(): Promise<void> {
    if (this.#promise === undefined) {
      if (this.#settled !== undefined) {
        this.#promise = this.#settled === null ? RESOLVED : Promise.reject(this.#settled);
      } else {
        this.#promise = new Promise<void>((resolve, reject) => {
          this.#resolve = resolve;
          this.#reject = reject;
        });
      }
      // Internal flushes (pongs, close frames, keepalive pings) drop the promise; a write failing because the peer
      // reset must not become an unhandled rejection (a crash).
      this.#promise.catch(ignore);
    }
    return this.#promise;
  }

  settle(error: Error | null): void {
    this.#settled = error;
    if (error === null) this.#resolve?.();
    else this.#reject?.(error);
  }

  /** The buffers to write: each run of small chunks joined into one, large chunks as they are. */
  pieces(): Buffer[] {
    const chunks = this.chunks;
    if (chunks.length === 1) return chunks;
    const pieces: Buffer[] = [];
    let runStart = 0;
    let runBytes = 0;
    const endRun = (end: number): void => {
      if (end - runStart === 1) pieces.push(chunks[runStart]!);
      else if (end > runStart) pieces.push(Buffer.concat(chunks.slice(runStart, end), runBytes));
      runBytes = 0;
    };
    for (let i = 0; i < chunks.length; i++) {
      const length = chunks[i]!.length;
      if (length > COALESCE_MAX_CHUNK) {
        endRun(i);
        pieces.push(chunks[i]!);
        runStart = i + 1;
      } else {
        if (runBytes + length > COALESCE_MAX_RUN) {
          endRun(i);
          runStart = i;
        }
        runBytes += length;
      }
    }
    endRun(chunks.length);
    return pieces;
  }
}

const OWNER: unique symbol = Symbol('websocket');
type SocketWithOwner = Duplex & { [OWNER]: WebSocket };

function ignore(): void {}

function destroyOnError(this: Duplex): void {
  this.destroy();
}

/**
 * The keepalive pings of every connection with the same `pingIntervalMs`, on one timer instead of one per
 * connection. Connections are kept in the order they were scheduled, which is the order they fall due (same
 * interval), so the timer is armed for the first one and each firing pings those whose interval has elapsed.
 */
class KeepaliveQueue {
  static readonly #queues = new Map<number, KeepaliveQueue>();
  readonly #interval: number;
  /** Connection -> when its ping is due (performance.now() ms); Map order is scheduling order. */
  readonly #due = new Map<WebSocket, number>();
  #timer: NodeJS.Timeout | undefined;

  private constructor(interval: number) {
    this.#interval = interval;
  }

  static for(interval: number): KeepaliveQueue {
    let queue = KeepaliveQueue.#queues.get(interval);
    if (queue === undefined) {
      queue = new KeepaliveQueue(interval);
      KeepaliveQueue.#queues.set(interval, queue);
    }
    return queue;
  }

  /** Pings `ws` once the interval has elapsed from now (replacing an earlier schedule). */
  schedule(ws: WebSocket): void {
    this.#due.delete(ws);
    const due = performance.now() + this.#interval;
    this.#due.set(ws, due);
    if (this.#timer === undefined) this.#arm(due);
  }

  cancel(ws: WebSocket): void {
    if (!this.#due.delete(ws) || this.#due.size > 0 || this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(due: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#fire(), Math.max(1, Math.ceil(due - performance.now())));
    this.#timer.unref();
  }

  #fire(): void {
    this.#timer = undefined;
    const now = performance.now();
    for (const [ws, due] of this.#due) {
      if (due > now) {
        this.#arm(due);
        return;
      }
      this.#due.delete(ws);
      try {
        WebSocket.keepaliveDue(ws);
      } catch {
        // A ping that cannot be sent (the socket is going away) concerns that connection only.
      }
    }
  }
}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
