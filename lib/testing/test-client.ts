/**
 * `TestClient`: a gateway client for tests, on the client SDK (`WebSocketsClient` with this package's Node
 * WebSocket), that turns the SDK's events into promises a test awaits: `request()` for a reply, `next()` for the
 * next message of an event, `expectClose()` for the close code. Every wait is bounded (2 s by default) and says
 * what it waited for and what came instead. It never reconnects.
 *
 * It keeps every message that answers no request, per event, from the moment it connects: a message that arrives
 * before the test calls `next()` is not missed. At most `MAX_KEPT` messages per event are kept (the oldest go).
 */
import { CloseCode } from '../protocol/close-codes.js';
import { ConnectionLostError } from '../client/errors.js';
import { NodeWebSocket } from '../client/node-websocket.js';
import { WebSocketsClient } from '../client/node.js';
import type { CloseEvent } from '../client/client-events.js';
import type { WebSocketsClientOptions } from '../client/client-options.js';

/** Options of `TestClient.connect()`: the SDK's (but `reconnect`, which is off), and the default wait. */
export interface TestClientOptions extends Omit<WebSocketsClientOptions, 'reconnect'> {
  // `WebSocket`, when given, is `NodeWebSocket` or a class of `NodeWebSocket.with({ ca, headers, ... })`.
  /** How long `connect()`, `next()`, `request()` and `expectClose()` wait by default, in ms. @default 2000 */
  timeoutMs?: number;
}

/** Options of one wait. */
export interface WaitOptions {
  /** How long to wait, in ms. @default the client's `timeoutMs` */
  timeoutMs?: number;
}

/** How a connection ended. */
export interface TestClose {
  readonly code: number;
  readonly reason: string;
}

/** Messages kept per event, waiting for `next()`. */
const MAX_KEPT = 1000;
const DEFAULT_TIMEOUT_MS = 2000;

/** A `next()` that waits. */
interface Waiter {
  readonly deliver: (frame: Frame) => void;
  readonly fail: (close: TestClose) => void;
}

/** A message as the client received it. */
interface Frame {
  readonly event: string;
  readonly data: unknown;
}

export class TestClient {
  /** The SDK client underneath, for what the kit does not wrap (`on()`, `state`, ...). */
  readonly client: WebSocketsClient;
  readonly #timeoutMs: number;
  readonly #kept = new Map<string, Frame[]>();
  readonly #waiting = new Map<string, Waiter[]>();
  /** Event names in the order they came, for the message of a failed wait. */
  readonly #seen: string[] = [];
  #closed: TestClose | undefined;
  readonly #closeWaiters: Array<(close: TestClose) => void> = [];

  private constructor(url: string, options: TestClientOptions) {
    const { timeoutMs, WebSocket, ...sdkOptions } = options;
    this.#timeoutMs = timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const receive = (frame: Frame): void => this.#receive(frame);
    // `NodeWebSocket` or a class of `NodeWebSocket.with(...)`: an EventTarget, which the tap listens to.
    const Base = (WebSocket ?? NodeWebSocket) as typeof NodeWebSocket;
    // A WebSocket that also shows the kit every message, after the SDK took the replies it waits for.
    const Tapped = class extends Base {
      constructor(address: string, protocols?: string | string[]) {
        super(address, protocols);
        this.addEventListener('message', (event: Event) => {
          const frame = parseFrame((event as MessageEvent).data);
          if (frame !== undefined) receive(frame);
        });
      }
    };
    this.client = new WebSocketsClient(url, { ...sdkOptions, WebSocket: Tapped, reconnect: false, requestTimeoutMs: sdkOptions.requestTimeoutMs ?? this.#timeoutMs });
    this.client.on('close', (event: CloseEvent) => this.#onClose(event));
  }

  /**
   * Connects and resolves once the connection is open.
   * @throws (rejection) HandshakeRefusedError when the server refuses (its `status` says why: 401, 403, 404 ...);
   *   ConnectionLostError when the connection fails or closes first; an Error after `timeoutMs`
   */
  static connect(url: string | URL, options: TestClientOptions = {}): Promise<TestClient> {
    const test = new TestClient(String(url), options);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        offOpen();
        offClose();
        void test.client.close();
        reject(new Error(`no connection to ${String(url)} within ${test.#timeoutMs} ms`));
      }, test.#timeoutMs);
      const offOpen = test.client.once('open', () => {
        clearTimeout(timer);
        offClose();
        resolve(test);
      });
      const offClose = test.client.once('close', (event: CloseEvent) => {
        clearTimeout(timer);
        offOpen();
        reject(event.error ?? new ConnectionLostError(event.code, event.reason));
      });
    });
  }

  /** Sends `{ event, data }` without waiting for anything. */
  emit(event: string, data?: unknown): void {
    this.client.emit(event, data);
  }

  /**
   * Sends `{ event, data, id }` and resolves with the reply's data.
   * @throws (rejection) ServerExceptionError for an exception frame; RequestTimeoutError after `timeoutMs`
   */
  request<T = unknown>(event: string, data?: unknown, options: WaitOptions = {}): Promise<T> {
    return this.client.request(event, data, { timeoutMs: options.timeoutMs ?? this.#timeoutMs }) as Promise<T>;
  }

  /**
   * The data of the next message of `event` that answers no request (one kept since the connection opened, or the
   * next to come).
   * @throws (rejection) an Error after `timeoutMs` that lists the events received instead, or when the connection
   *   closes first
   */
  next<T = unknown>(event: string, options: WaitOptions = {}): Promise<T> {
    const kept = this.#kept.get(event);
    const frame = kept?.shift();
    if (frame !== undefined) return Promise.resolve(frame.data as T);
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    return new Promise<T>((resolve, reject) => {
      let waiters = this.#waiting.get(event);
      if (waiters === undefined) this.#waiting.set(event, (waiters = []));
      const waiter: Waiter = {
        deliver: (next) => {
          clearTimeout(timer);
          resolve(next.data as T);
        },
        fail: (close) => {
          clearTimeout(timer);
          reject(new Error(`no ${JSON.stringify(event)} message before the connection closed with ${close.code} (received: ${this.#received()})`));
        },
      };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1);
        reject(new Error(`no ${JSON.stringify(event)} message within ${timeoutMs} ms (received: ${this.#received()})`));
      }, timeoutMs);
      if (this.#closed !== undefined) return waiter.fail(this.#closed);
      waiters.push(waiter);
    });
  }

  /**
   * Resolves once the connection is closed with `code` (the server's close frame, else the client's; 1006 when it
   * dropped), at once when it already was.
   * @throws (rejection) an Error that names the code it closed with instead, or after `timeoutMs` while still open
   */
  expectClose(code: number, options: WaitOptions = {}): Promise<TestClose> {
    const check = (close: TestClose): TestClose => {
      if (close.code !== code) throw new Error(`expected close code ${code}, got ${close.code}${close.reason === '' ? '' : ` (${close.reason})`}`);
      return close;
    };
    if (this.#closed !== undefined) return Promise.resolve(this.#closed).then(check);
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    return new Promise<TestClose>((resolve, reject) => {
      const waiter = (close: TestClose): void => {
        clearTimeout(timer);
        try {
          resolve(check(close));
        } catch (error) {
          reject(error as Error);
        }
      };
      const timer = setTimeout(() => {
        this.#closeWaiters.splice(this.#closeWaiters.indexOf(waiter), 1);
        reject(new Error(`expected close code ${code} within ${timeoutMs} ms, but the connection is still ${this.client.state}`));
      }, timeoutMs);
      this.#closeWaiters.push(waiter);
    });
  }

  /** Closes the connection (1000 unless told) and resolves once it is closed. */
  close(code: number = CloseCode.NORMAL_CLOSURE, reason = ''): Promise<void> {
    return this.client.close(code, reason);
  }

  #receive(frame: Frame): void {
    if (this.#seen.length < MAX_KEPT) this.#seen.push(frame.event);
    const waiter = this.#waiting.get(frame.event)?.shift();
    if (waiter !== undefined) {
      waiter.deliver(frame);
      return;
    }
    let kept = this.#kept.get(frame.event);
    if (kept === undefined) this.#kept.set(frame.event, (kept = []));
    if (kept.length >= MAX_KEPT) kept.shift();
    kept.push(frame);
  }

  #onClose(event: CloseEvent): void {
    if (this.#closed !== undefined) return;
    this.#closed = { code: event.code, reason: event.reason };
    for (const waiter of this.#closeWaiters.splice(0)) waiter(this.#closed);
    for (const waiters of this.#waiting.values()) for (const waiter of waiters.splice(0)) waiter.fail(this.#closed);
  }

  #received(): string {
    return this.#seen.length === 0 ? 'nothing' : this.#seen.map((name) => JSON.stringify(name)).join(', ');
  }

}

/** The `{ event, data }` of a message that answers no request (no `id`), or `undefined`. */
function parseFrame(data: unknown): Frame | undefined {
  if (typeof data !== 'string') return undefined;
  try {
    const frame = JSON.parse(data) as { event?: unknown; data?: unknown; id?: unknown };
    if (typeof frame !== 'object' || frame === null || typeof frame.event !== 'string' || frame.id !== undefined) return undefined;
    return { event: frame.event, data: frame.data };
  } catch {
    return undefined;
  }
}
