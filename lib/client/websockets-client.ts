/**
 * `WebSocketsClient`: the client of the gateway protocol (`{"event","data","id"?}` as JSON text, replies carrying
 * the request's `id`, failures as `exception` frames), for browsers and Node, over any WHATWG `WebSocket`.
 *
 * It connects at once and keeps connecting (see `reconnect-policy.ts`); while not connected, `emit()` and `request()`
 * queue their messages (up to `maxQueuedBytes`), sent in order right after the next `'open'` listeners have run, so
 * that an app can join its rooms again first. A request settles with the first message that carries its `id`; a
 * message that settles nothing is delivered to the listeners of its event.
 *
 * With `session: true` it asks for a resumable session (see client-session.ts): 'open' then waits for the server's
 * `$session` frame, requests sent on a dropped connection stay pending until the resume says whether their replies
 * will come, and what the server had not received is sent again before the queue.
 *
 * Over 400 lines (about 540): the queue, the requests, the session and the reconnection share the state of one
 * connection at a time (which socket is current, what was sent on it), and split apart they would pass it around.
 * Its types are in client-options.ts and client-events.ts, its rules of reconnection in reconnect-policy.ts, the
 * session's counts in client-session.ts.
 */
import { CloseCode, REFUSAL_CLOSE_CODE_OFFSET } from '../protocol/close-codes.js';
import { AUTH_MARKER_SUBPROTOCOL, bearerSubprotocol } from '../protocol/bearer-subprotocol.js';
import { ACK_EVENT, SESSION_EVENT } from '../protocol/session-subprotocol.js';
import { ClientSessionState, readHello } from './client-session.js';
import {
  ClientClosedError,
  ClientConfigError,
  ConnectionLostError,
  HandshakeRefusedError,
  InvalidServerMessageError,
  QueueFullError,
  RequestTimeoutError,
  ServerExceptionError,
  type ServerExceptionData,
} from './errors.js';
import { closeOutcome, reconnectDelay, resolveReconnect, type ResolvedReconnect } from './reconnect-policy.js';
import { OPEN, type WebSocketConstructor, type WebSocketLike, type WebSocketLikeEvent } from './websocket-like.js';
import type { AnyEvents, ClientEvents, EmitArgs, EventMap, EventReply, RequestArgs } from './client-events.js';
import type { ClientState, QueryParams, WebSocketsClientOptions } from './client-options.js';

/** The server events a listener can be added for: every name but the client's own. */
type Names<M> = Exclude<keyof M & string, keyof ClientEvents>;
type Listener = (value: never) => void;

interface Pending {
  readonly event: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  readonly timer: ReturnType<typeof setTimeout>;
  /** Sent on the current connection (its reply is lost with it), rather than waiting in the queue. */
  sent: boolean;
  cleanup?: () => void;
}

interface Queued {
  readonly text: string;
  readonly bytes: number;
  readonly id: number | undefined;
}

const EXCEPTION_EVENT = 'exception';
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_QUEUED_BYTES = 1_048_576;
const RESERVED: ReadonlySet<string> = new Set(['open', 'close', 'reconnecting', 'error']);
/** How long a client that asked for a session waits for the server's `$session` frame before going on without. */
const DEFAULT_SESSION_HELLO_TIMEOUT_MS = 5000;
const encoder = new TextEncoder();

/**
 * A client of a gateway. Connects when created.
 * @typeParam S the server's events: name to data (`{ chat: { room: string; text: string } }`)
 * @typeParam C the client's events: name to data, or to `(data) => reply` for requests
 * @throws ClientConfigError (from the constructor) for an invalid option, a URL that is not ws, wss, http, https
 *   or relative to the page, or no WebSocket class on this platform
 */
export class WebSocketsClient<S extends EventMap = AnyEvents, C extends EventMap = AnyEvents> {
  readonly #url: string;
  readonly #options: WebSocketsClientOptions;
  readonly #WebSocket: WebSocketConstructor;
  readonly #protocols: string[];
  readonly #policy: ResolvedReconnect | null;
  readonly #requestTimeoutMs: number;
  readonly #maxQueuedBytes: number;
  readonly #listeners = new Map<string, Set<Listener>>();
  readonly #pending = new Map<number, Pending>();
  readonly #closing = new Map<WebSocketLike, Array<() => void>>();
  #queue: Queued[] = [];
  #queuedBytes = 0;
  #ws: WebSocketLike | null = null;
  #state: ClientState = 'connecting';
  #userClosed = false;
  /** Counts `#start()` calls, so that an attempt whose `auth` resolves after a `close()` is dropped. */
  #generation = 0;
  #attempt = 0;
  #openedAt = 0;
  #everOpened = false;
  #nextId = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The resumable session (`session: true`), else `null`. */
  readonly #session: ClientSessionState | null;
  /** The connection is open at the WebSocket level and waits for the server's `$session` frame. */
  #helloTimer: ReturnType<typeof setTimeout> | undefined;
  #awaitingHello = false;
  /** The current connection carries the session (its messages are counted). */
  #sessionLive = false;
  /** The close of the last connection, for requests a fresh session cannot answer. */
  #lastClose = { code: CloseCode.ABNORMAL_CLOSURE as number, reason: '' };

  constructor(url: string | URL, options: WebSocketsClientOptions = {}) {
    this.#url = String(url);
    this.#options = options;
    const WebSocketClass = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (typeof WebSocketClass !== 'function') {
      throw new ClientConfigError('WebSocket', WebSocketClass, 'a WebSocket class (this platform has none)');
    }
    this.#WebSocket = WebSocketClass;
    this.#protocols = options.protocols === undefined ? [] : [options.protocols].flat();
    this.#policy = resolveReconnect(options.reconnect);
    this.#requestTimeoutMs = checkNumber('requestTimeoutMs', options.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS, 1);
    this.#maxQueuedBytes = checkNumber('maxQueuedBytes', options.maxQueuedBytes, DEFAULT_MAX_QUEUED_BYTES, 0);
    if (options.session !== undefined && typeof options.session !== 'boolean') throw new ClientConfigError('session', options.session, 'a boolean');
    this.#session = options.session === true ? new ClientSessionState() : null;
    this.#urlWith(undefined);
    this.#start();
  }

  /** Where the client is now. */
  get state(): ClientState {
    return this.#state;
  }

  /** The id of the client's resumable session (`session: true`), `null` before the server gave one. */
  get sessionId(): string | null {
    return this.#session?.id ?? null;
  }

  /** Bytes of the messages waiting for a connection. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /**
   * Listens to one of the client's events (`'open'`, `'close'`, `'reconnecting'`, `'error'`, `'exception'`) or to
   * a server event. A throwing listener does not disturb the client or the other listeners: its error is rethrown
   * from a timer, where the platform reports it.
   * @returns a function that removes the listener
   */
  on<K extends keyof ClientEvents>(event: K, listener: (value: ClientEvents[K]) => void): () => void;
  on<K extends Names<S>>(event: K, listener: (data: S[K]) => void): () => void;
  on(event: string, listener: Listener): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event as keyof ClientEvents, listener as () => void);
  }

  /** Like `on()`, for the next event only. */
  once<K extends keyof ClientEvents>(event: K, listener: (value: ClientEvents[K]) => void): () => void;
  once<K extends Names<S>>(event: K, listener: (data: S[K]) => void): () => void;
  once(event: string, listener: (value: never) => void): () => void {
    const off = this.on(event as keyof ClientEvents, (value) => {
      off();
      listener(value as never);
    });
    return off;
  }

  /** Removes a listener added with `on()`. */
  off<K extends keyof ClientEvents>(event: K, listener: (value: ClientEvents[K]) => void): void;
  off<K extends Names<S>>(event: K, listener: (data: S[K]) => void): void;
  off(event: string, listener: Listener): void {
    this.#listeners.get(event)?.delete(listener);
  }

  /**
   * Sends `{"event","data"}`, fire and forget: at once when open, else queued until the next connection opens.
   * A message in flight when the connection drops is lost (at most once), unless a session resumes: then it is
   * sent again if the server had not received it (exactly once).
   * @throws QueueFullError when not connected and the queue would pass `maxQueuedBytes`
   * @throws ClientClosedError after `close()` (or once the client gave up)
   * @throws TypeError when `data` cannot be serialized as JSON
   */
  emit<K extends keyof C & string>(event: K, ...args: EmitArgs<C[K]>): void {
    if (this.#state === 'closed') throw new ClientClosedError();
    this.#send(JSON.stringify({ event, data: args[0] }), undefined);
  }

  /**
   * Sends `{"event","data","id"}` and resolves with the `data` of the first message that carries the same `id`,
   * whatever its event; queued like `emit()` while not connected.
   * @throws (rejection) ServerExceptionError for an `exception` frame; RequestTimeoutError after `timeoutMs` from
   *   the call; ConnectionLostError when the connection it was sent on closes first (with a session: when the next
   *   connection does not resume it); QueueFullError; ClientClosedError; HandshakeRefusedError when the client is
   *   refused before it could send it; the signal's reason when aborted
   */
  request<K extends keyof C & string>(event: K, ...args: RequestArgs<C[K]>): Promise<EventReply<C[K]>> {
    const [data, options = {}] = args;
    return new Promise((resolve, reject) => {
      if (this.#state === 'closed') throw new ClientClosedError();
      const timeoutMs = checkNumber('timeoutMs', options.timeoutMs, this.#requestTimeoutMs, 1);
      const id = ++this.#nextId;
      const text = JSON.stringify({ event, data, id });
      const timer = setTimeout(() => this.#settle(id, new RequestTimeoutError(event, timeoutMs)), timeoutMs);
      const pending: Pending = { event, resolve: resolve as (value: unknown) => void, reject, timer, sent: false };
      this.#pending.set(id, pending);
      const { signal } = options;
      if (signal !== undefined) {
        const abort = (): void => this.#settle(id, signal.reason);
        if (signal.aborted) return abort();
        signal.addEventListener('abort', abort);
        pending.cleanup = () => signal.removeEventListener('abort', abort);
      }
      try {
        this.#send(text, id);
      } catch (error) {
        this.#settle(id, error);
      }
    });
  }

  /**
   * Closes the connection (or stops reconnecting) for good: waiting and queued requests reject with
   * `ClientClosedError`, queued messages are dropped, and no reconnection follows. Resolves once the WebSocket has
   * closed (at once when there is none).
   * @param code 1000, or 3000-4999
   * @throws (rejection) what the WebSocket throws for another code or a reason over 123 bytes (the connection is then
   *   closed with 1000)
   */
  close(code: number = CloseCode.NORMAL_CLOSURE, reason = ''): Promise<void> {
    this.#userClosed = true;
    this.#state = 'closed';
    this.#generation++;
    clearTimeout(this.#timer);
    this.#failAll(new ClientClosedError());
    this.#session?.forget();
    const ws = this.#ws;
    if (ws === null) return Promise.resolve();
    return new Promise((resolve) => {
      const waiting = this.#closing.get(ws) ?? [];
      this.#closing.set(ws, [...waiting, resolve]);
      try {
        ws.close(code, reason);
      } catch (error) {
        // A code or reason the WebSocket refuses: it is closed all the same (1000), and the caller told why.
        ws.close();
        throw error;
      }
    });
  }

  /** Opens a closed client again (after `close()`, a refusal, or giving up), with a fresh backoff. */
  connect(): void {
    if (this.#state !== 'closed') return;
    this.#userClosed = false;
    this.#attempt = 0;
    this.#state = 'connecting';
    this.#ws = null;
    this.#start();
  }

  // --- connection ------------------------------------------------------------------------------------------------

  /** One attempt: `query` and `auth` (maybe async), then a WebSocket. */
  #start(): void {
    const generation = ++this.#generation;
    const { query, auth } = this.#options;
    // In a then(), so that a provider that throws at once counts as a failed attempt too.
    Promise.resolve()
      .then(() => Promise.all([typeof query === 'function' ? query() : query, typeof auth === 'function' ? auth() : auth]))
      .then(
        ([params, token]) => {
          if (generation === this.#generation) this.#open(params, token);
        },
        (error: unknown) => {
          if (generation !== this.#generation) return;
          this.#emit('error', error);
          this.#lost(CloseCode.ABNORMAL_CLOSURE, '', undefined, false);
        },
      );
  }

  /** Creates the WebSocket of an attempt. */
  #open(params: QueryParams | undefined, token: string | null | undefined): void {
    let ws: WebSocketLike;
    try {
      // A server refuses a token it cannot put in a header (400): say so here rather than retry for ever. The
      // message does not show the token.
      if (token && !/^[!-~]+$/.test(token)) throw new ClientConfigError('auth', '<the token>', 'visible ASCII characters (a bearer token)');
      const protocols = token ? [...this.#protocols, AUTH_MARKER_SUBPROTOCOL, bearerSubprotocol(token)] : [...this.#protocols];
      if (this.#session !== null) {
        if (!token) protocols.push(AUTH_MARKER_SUBPROTOCOL);
        protocols.push(this.#session.subprotocol());
      }
      ws = new this.#WebSocket(this.#urlWith(params), protocols);
    } catch (error) {
      // A token, protocols or URL that cannot be sent (a SecurityError for ws: from an https page): trying again
      // cannot help.
      this.#emit('error', error);
      this.#end(CloseCode.ABNORMAL_CLOSURE, '', error as Error);
      return;
    }
    this.#ws = ws;
    ws.onopen = () => this.#onOpen(ws);
    ws.onmessage = (event: WebSocketLikeEvent) => {
      if (this.#ws === ws) this.#onMessage(event.data);
    };
    ws.onerror = (event: WebSocketLikeEvent) => {
      // Not `instanceof Error`: Node's own errors may come from another realm (a vm context, a test runner).
      if (this.#ws === ws && event.error != null) this.#emit('error', event.error);
    };
    ws.onclose = (event: WebSocketLikeEvent) => this.#onClose(ws, event);
  }

  #onOpen(ws: WebSocketLike): void {
    if (this.#ws !== ws) return;
    if (this.#session !== null) {
      // Nothing is sent, and 'open' waits, until the server says whether the session was resumed.
      this.#awaitingHello = true;
      this.#helloTimer = setTimeout(() => {
        if (this.#ws !== ws || !this.#awaitingHello) return;
        this.#emit('error', new ClientConfigError('session', true, `a server with sessions on (no ${SESSION_EVENT} frame came)`));
        this.#opened(ws, false, []);
      }, DEFAULT_SESSION_HELLO_TIMEOUT_MS);
      return;
    }
    this.#opened(ws, false, []);
  }

  /** The connection is open for the application: 'open', then what must be sent again, then the queue. */
  #opened(ws: WebSocketLike, resumed: boolean, resend: ReadonlyArray<{ readonly text: string; readonly id: number | undefined }>): void {
    this.#awaitingHello = false;
    clearTimeout(this.#helloTimer);
    this.#state = 'open';
    this.#openedAt = Date.now();
    const reconnected = this.#everOpened;
    this.#everOpened = true;
    // The credentials marker is what the server answers when it chose no subprotocol: none, for the app.
    // What the server did not take before the cut goes first, before anything the listeners send.
    for (const { text, id } of resend) this.#transmit(ws, text, id);
    this.#emit('open', { protocol: ws.protocol === AUTH_MARKER_SUBPROTOCOL ? '' : ws.protocol, reconnected, resumed });
    // The listeners may have closed the client, or sent what must go first (joining rooms again).
    if (this.#ws !== ws || this.#state !== 'open') return;
    const queue = this.#queue;
    this.#queue = [];
    this.#queuedBytes = 0;
    for (const { text, id } of queue) this.#transmit(ws, text, id);
  }

  #onMessage(raw: unknown): void {
    let frame: unknown;
    try {
      if (typeof raw === 'string') frame = JSON.parse(raw);
    } catch {
      // Reported below.
    }
    const { event, data, id } = (typeof frame === 'object' && frame !== null ? frame : {}) as { event?: unknown; data?: unknown; id?: unknown };
    if (this.#session !== null && this.#sessionFrame(event, data)) return;
    if (typeof event !== 'string') {
      this.#emit('error', new InvalidServerMessageError(raw));
      return;
    }
    const pending = typeof id === 'number' ? this.#pending.get(id) : undefined;
    if (pending?.sent === true) {
      const failure =
        event === EXCEPTION_EVENT
          ? new ServerExceptionError(pending.event, typeof data === 'object' && data !== null ? (data as ServerExceptionData) : { message: String(data) })
          : undefined;
      this.#settle(id as number, failure, data);
      return;
    }
    if (!RESERVED.has(event)) this.#emit(event, data);
  }

  #onClose(ws: WebSocketLike, event: WebSocketLikeEvent): void {
    const waiting = this.#closing.get(ws);
    this.#closing.delete(ws);
    if (this.#ws === ws) {
      this.#ws = null;
      const code = event.code ?? CloseCode.ABNORMAL_CLOSURE;
      const reason = event.reason ?? '';
      const refusal = closeOutcome(code) === 'refused' ? new HandshakeRefusedError(code - REFUSAL_CLOSE_CODE_OFFSET, reason) : undefined;
      this.#lastClose = { code, reason };
      clearTimeout(this.#helloTimer);
      this.#awaitingHello = false;
      this.#session?.detached();
      // The replies of what was sent on this connection will not come (an in-band refusal opens, then refuses),
      // unless a session carries them over to the next connection.
      const carried = this.#session?.id != null && refusal === undefined && !this.#userClosed;
      this.#sessionLive = false;
      if (!carried) for (const [id, pending] of this.#pending) if (pending.sent) this.#settle(id, refusal ?? new ConnectionLostError(code, reason));
      const wasOpen = this.#state === 'open';
      if (this.#userClosed) this.#emit('close', { code, reason, willReconnect: false });
      else this.#lost(code, reason, event.retryAfterMs, wasOpen, refusal);
    }
    for (const resolve of waiting ?? []) resolve();
  }

  /** A connection or an attempt ended without `close()`: reconnect, or end as its close code says. */
  #lost(code: number, reason: string, retryAfterMs: number | undefined, wasOpen: boolean, refusal?: HandshakeRefusedError): void {
    const policy = this.#policy;
    if (refusal !== undefined) {
      this.#emit('error', refusal);
      this.#end(code, reason, refusal);
      return;
    }
    const outcome = closeOutcome(code);
    if (wasOpen && Date.now() - this.#openedAt >= (policy?.resetAfterMs ?? 0)) this.#attempt = 0;
    const attempt = ++this.#attempt;
    if (outcome === 'final' || policy === null || attempt > policy.maxAttempts) {
      this.#end(code, reason, undefined);
      return;
    }
    // 1012 (Service Restart): the server says it is coming back; the first attempt goes at once.
    let delayMs = code === CloseCode.SERVICE_RESTART && attempt === 1 ? 0 : reconnectDelay(policy, attempt);
    if (retryAfterMs !== undefined) delayMs = Math.max(delayMs, Math.min(retryAfterMs, policy.maxDelayMs));
    this.#state = 'reconnecting';
    this.#timer = setTimeout(() => this.#start(), delayMs);
    // Listeners may call close() or connect(): the timer is already set, close() clears it.
    this.#emit('close', { code, reason, willReconnect: true });
    if (this.#state === 'reconnecting' && this.#attempt === attempt) this.#emit('reconnecting', { attempt, delayMs, code, reason });
  }

  /** The client stops for good: what still waits fails with `error`, else with the close. */
  #end(code: number, reason: string, error: Error | undefined): void {
    this.#state = 'closed';
    this.#failAll(error ?? new ConnectionLostError(code, reason));
    this.#emit('close', error === undefined ? { code, reason, willReconnect: false } : { code, reason, willReconnect: false, error });
  }

  /**
   * The session's side of an incoming message: the `$session` frame (then the connection opens for the
   * application), `$ack`s, and the count of every other message. A server without sessions sends no `$session`: its
   * first message opens the connection without one.
   * @returns true when the message was the session's own
   */
  #sessionFrame(event: unknown, data: unknown): boolean {
    const session = this.#session!;
    const ws = this.#ws!;
    if (this.#awaitingHello) {
      const hello = event === SESSION_EVENT ? readHello(data) : null;
      if (hello === null) {
        this.#opened(ws, false, []);
        return false;
      }
      const resend = session.hello(hello);
      this.#sessionLive = true;
      // A fresh session cannot answer what the old one was asked: those requests fail as the connection did.
      if (!hello.resumed) {
        for (const [id, pending] of this.#pending) if (pending.sent) this.#settle(id, new ConnectionLostError(this.#lastClose.code, this.#lastClose.reason));
      }
      this.#opened(ws, hello.resumed, resend);
      return true;
    }
    if (!this.#sessionLive) return false;
    if (event === ACK_EVENT && typeof data === 'number') {
      session.acknowledged(data);
      return true;
    }
    session.received((text) => {
      if (this.#ws === ws) ws.send(text);
    });
    return false;
  }

  // --- sending ---------------------------------------------------------------------------------------------------

  #send(text: string, id: number | undefined): void {
    const ws = this.#ws;
    if (ws !== null && this.#state === 'open' && ws.readyState === OPEN) {
      this.#transmit(ws, text, id);
      return;
    }
    const size = this.#queuedBytes + encoder.encode(text).length;
    if (size > this.#maxQueuedBytes) throw new QueueFullError(this.#maxQueuedBytes, size);
    this.#queue.push({ text, bytes: size - this.#queuedBytes, id });
    this.#queuedBytes = size;
  }

  #transmit(ws: WebSocketLike, text: string, id: number | undefined): void {
    ws.send(text);
    if (this.#sessionLive) this.#session!.sent(text, id);
    const pending = id === undefined ? undefined : this.#pending.get(id);
    if (pending !== undefined) pending.sent = true;
  }

  /** Settles a request (with `error`, else `value`) and takes it out of the queue if it was still there. */
  #settle(id: number, error: unknown, value?: unknown): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    pending.cleanup?.();
    const index = pending.sent ? -1 : this.#queue.findIndex((entry) => entry.id === id);
    if (index !== -1) this.#queuedBytes -= this.#queue.splice(index, 1)[0]!.bytes;
    if (error === undefined) pending.resolve(value);
    else pending.reject(error);
  }

  /** Rejects every request with `error` and drops the queue. */
  #failAll(error: Error): void {
    for (const id of [...this.#pending.keys()]) this.#settle(id, error);
    this.#queue = [];
    this.#queuedBytes = 0;
  }

  #emit(event: string, value: unknown): void {
    for (const listener of [...(this.#listeners.get(event) ?? [])]) {
      try {
        (listener as (value: unknown) => void)(value);
      } catch (error) {
        setTimeout(() => {
          throw error;
        });
      }
    }
  }

  /**
   * The URL of an attempt: the client's URL (relative to the page in a browser; http and https become ws and wss)
   * with `params` set in its query.
   * @throws ClientConfigError for a scheme other than ws, wss, http or https
   */
  #urlWith(params: QueryParams | undefined): string {
    let url: URL | undefined;
    try {
      url = new URL(this.#url, (globalThis as { location?: { href: string } }).location?.href);
      url.protocol = url.protocol.replace('http', 'ws');
    } catch {
      // Refused below.
    }
    if (!/^wss?:$/.test(url?.protocol ?? '')) throw new ClientConfigError('url', this.#url, 'a ws:, wss:, http: or https: URL');
    for (const [name, value] of Object.entries(params ?? {})) {
      if (value !== null && value !== undefined) url!.searchParams.set(name, String(value));
    }
    return url!.href;
  }
}

/**
 * An optional numeric option: its default when absent, else a number of at least `min`.
 * @throws ClientConfigError
 */
function checkNumber(option: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value >= min) || value === Infinity) throw new ClientConfigError(option, value, `a number of at least ${min}`);
  return value;
}
