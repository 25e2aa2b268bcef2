/**
 * `NodeWebSocket`: a WHATWG-style `WebSocket` over this package's `connect()`, for Node (20 has no global
 * `WebSocket`), so that the client SDK runs in Node with every option of the Node client (TLS, proxies, headers,
 * limits from `WEBSOCKETS_*`). Only the Node build of `nestjs-websockets/client` reaches this file.
 *
 * It behaves as a browser's WebSocket does, with two additions that a browser cannot give: the `error` event
 * carries the `error` (ECONNREFUSED, a certificate error, the refusal), and a handshake refused with HTTP 4xx closes
 * with 4000 + status and the response body as reason, as a server's in-band refusal would, so that the client
 * treats both alike; the `close` event of a 503 or 429 carries `retryAfterMs` from `Retry-After`.
 */
import { InvalidStateError, InvalidStatusError } from '../errors.js';
import { connect, type ConnectOptions } from '../node/client.js';
import { retryAfterMs } from '../node/reconnect.js';
import type { WebSocket } from '../node/websocket.js';
import { APPLICATION_CLOSE_CODE_MAX, APPLICATION_CLOSE_CODE_MIN, CloseCode } from '../protocol/close-codes.js';
import { MAX_CLOSE_REASON } from '../protocol/frame.js';
import { isInBandStatus, refusalCloseCode } from '../protocol/in-band-refusal.js';
import { formatSubprotocols } from '../protocol/subprotocols.js';
import { truncateUtf8 } from '../protocol/utf8.js';
import type { WebSocketConstructor, WebSocketLike } from './websocket-like.js';

/** An event as `NodeWebSocket` dispatches it: a DOM `Event` with the fields of its kind. */
export interface NodeWebSocketEvent extends Event {
  /** `message`: a string for text, an `ArrayBuffer` for binary. */
  readonly data?: string | ArrayBuffer;
  /** `close`: the close code. */
  readonly code?: number;
  /** `close`: the close reason. */
  readonly reason?: string;
  /** `close`: whether the closing handshake completed. */
  readonly wasClean?: boolean;
  /** `close` of a 503 or 429 refusal: the `Retry-After`, in ms. */
  readonly retryAfterMs?: number;
  /** `error`: what went wrong. */
  readonly error?: Error;
}

type Handler = ((event: NodeWebSocketEvent) => void) | null;

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

/** A WHATWG-style WebSocket on this package's Node client. */
export class NodeWebSocket extends EventTarget implements WebSocketLike {
  static readonly CONNECTING = CONNECTING;
  static readonly OPEN = OPEN;
  static readonly CLOSING = CLOSING;
  static readonly CLOSED = CLOSED;

  /** The URL as given. */
  readonly url: string;
  /** The negotiated subprotocol, '' until open or when none. */
  protocol = '';
  /** The negotiated extensions, '' until open or when none. */
  extensions = '';
  /** Received binary messages are `ArrayBuffer`s (the only type offered: Node has `Blob`, but nothing asks for it). */
  readonly binaryType = 'arraybuffer';
  onopen: Handler = null;
  onmessage: Handler = null;
  onerror: Handler = null;
  onclose: Handler = null;
  #readyState: number = CONNECTING;
  #ws: WebSocket | null = null;

  /**
   * Connects at once (the result comes as events, as in a browser).
   * @param options `connect()`'s options (TLS, proxy, headers, limits ...); `protocols` comes from the second argument
   * @throws SyntaxError for a URL that cannot be parsed, or a subprotocol that is not a token or is offered twice, as
   *   a browser's WebSocket does
   */
  constructor(url: string | URL, protocols?: string | string[], options: ConnectOptions = {}) {
    super();
    const offered = protocols === undefined ? [] : [protocols].flat();
    try {
      this.url = new URL(url).href;
      formatSubprotocols(offered);
    } catch (error) {
      throw new SyntaxError(`invalid WebSocket URL or subprotocols: ${(error as Error).message}`, { cause: error });
    }
    connect(this.url, { ...options, protocols: offered }).then(
      (ws) => this.#opened(ws),
      (error: unknown) => this.#failed(error),
    );
  }

  /**
   * A `NodeWebSocket` class whose instances connect with `options`: for the client's `WebSocket` option, e.g.
   * `new WebSocketsClient(url, { WebSocket: NodeWebSocket.with({ ca, headers: { Cookie } }) })`.
   */
  static with(options: ConnectOptions): WebSocketConstructor {
    return class extends NodeWebSocket {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols, options);
      }
    };
  }

  /** 0 CONNECTING, 1 OPEN, 2 CLOSING, 3 CLOSED. */
  get readyState(): number {
    return this.#readyState;
  }

  /** Bytes sent and not yet handed to the kernel. */
  get bufferedAmount(): number {
    return this.#ws?.bufferedAmount ?? 0;
  }

  /**
   * Sends a message: a string as text, bytes as binary. After the close it is dropped, as in a browser.
   * @throws InvalidStateError while CONNECTING
   */
  send(data: string | ArrayBuffer | ArrayBufferView): void {
    if (this.#readyState === CONNECTING) throw new InvalidStateError('send() before the connection is open');
    if (this.#readyState !== OPEN || this.#ws === null) return;
    // A failed send ends in the close event; the promise is already handled.
    void this.#ws.send(data);
  }

  /**
   * Starts the closing handshake. During CONNECTING it fails the connection, as a browser does: `close` with 1006
   * follows at once, and a handshake that still succeeds is cut.
   * @throws DOMException `InvalidAccessError` for a code other than 1000 or 3000-4999, `SyntaxError` for a reason
   *   over 123 bytes, as a browser's WebSocket does
   */
  close(code?: number, reason?: string): void {
    if (code !== undefined && code !== CloseCode.NORMAL_CLOSURE && !(Number.isInteger(code) && code >= APPLICATION_CLOSE_CODE_MIN && code <= APPLICATION_CLOSE_CODE_MAX)) {
      throw new DOMException(`close code ${code} is neither 1000 nor in 3000-4999`, 'InvalidAccessError');
    }
    if (reason !== undefined && Buffer.byteLength(reason) > MAX_CLOSE_REASON) {
      throw new DOMException(`close reason over ${MAX_CLOSE_REASON} bytes`, 'SyntaxError');
    }
    if (this.#readyState >= CLOSING) return;
    this.#readyState = CLOSING;
    if (this.#ws !== null) {
      void this.#ws.close(code, reason).catch(() => undefined);
      return;
    }
    setImmediate(() => {
      this.#readyState = CLOSED;
      this.#fire('close', { code: CloseCode.ABNORMAL_CLOSURE, reason: '', wasClean: false });
    });
  }

  #opened(ws: WebSocket): void {
    if (this.#readyState !== CONNECTING) {
      // close() came first and has reported 1006.
      ws.terminate();
      return;
    }
    this.#ws = ws;
    ws.on('message', (data: string | Buffer, isBinary: boolean) => {
      const body = isBinary ? (data as Buffer).buffer.slice((data as Buffer).byteOffset, (data as Buffer).byteOffset + data.length) : data;
      this.#fire('message', { data: body as string | ArrayBuffer });
    });
    ws.on('error', (error: Error) => this.#fire('error', { error }));
    ws.once('close', (code: number, reason: string) => {
      this.#readyState = CLOSED;
      this.#fire('close', { code, reason, wasClean: code !== CloseCode.ABNORMAL_CLOSURE });
    });
    this.protocol = ws.protocol;
    this.extensions = ws.extensions;
    this.#readyState = OPEN;
    this.#fire('open', {});
  }

  /** The handshake failed: `error`, then `close` with 1006, or 4000 + status for an HTTP 4xx refusal. */
  #failed(error: unknown): void {
    if (this.#readyState === CLOSED || this.#readyState === CLOSING) return;
    this.#readyState = CLOSED;
    // Passed on as it is: Node's own errors may come from another realm, where `instanceof Error` is false.
    this.#fire('error', { error: error as Error });
    let code: number = CloseCode.ABNORMAL_CLOSURE;
    let reason = '';
    const close: { retryAfterMs?: number } = {};
    if (error instanceof InvalidStatusError) {
      if (isInBandStatus(error.status)) {
        code = refusalCloseCode(error.status);
        reason = truncateUtf8(error.body.toString('utf8').trim(), MAX_CLOSE_REASON);
      }
      const wait = retryAfterMs(error);
      if (wait !== null) close.retryAfterMs = wait;
    }
    this.#fire('close', { code, reason, wasClean: false, ...close });
  }

  #fire(type: string, fields: Partial<Omit<NodeWebSocketEvent, keyof Event>>): void {
    const event = Object.assign(new Event(type), fields) as NodeWebSocketEvent;
    const handler = (this as unknown as Record<string, Handler>)[`on${type}`];
    handler?.call(this, event);
    this.dispatchEvent(event);
  }
}
