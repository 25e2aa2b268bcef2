/**
 * The messages of a gateway's clients: each client's messages are pulled one at a time (so that the node layer can
 * apply backpressure), parsed (JSON `{ event, data, id? }` by default), and dispatched to every gateway bound to the
 * client's server; results (values, promises, `WsResponse`, Observables of many values) go back as JSON with the
 * message's `id`, each send waiting for the client's backpressure. Refused messages follow `invalidMessages`.
 */
import type { Logger, WsMessageHandler } from '@nestjs/common';
import type { Observable } from 'rxjs';
import { InvalidMessageError, MessageTooDeepError, WebSocketsError } from '../errors.js';
import { WebSocket } from '../node/websocket.js';
import { CloseCode } from '../protocol/close-codes.js';
import { errorText, messageOf } from './error-text.js';
import { exceptionFrame, messageContext } from './exception-frames.js';
import { GatewayWebSocket } from './gateway-websocket.js';
import { checkParsedMessage, parseJsonMessage, readTopLevelId } from './message-parser.js';
import type { InvalidMessagePolicy, MessageParser, ParsedMessage } from './websockets-options.interface.js';
import type { TrafficCounts, WebSocketsTelemetry } from './telemetry/websockets-telemetry.js';

/** What a client of an instrumented server is measured with: the telemetry, and its gateways in binding order. */
export interface DispatchInstrumentation {
  readonly telemetry: WebSocketsTelemetry;
  readonly gateways: readonly string[];
}

/** How one server's messages are read. */
export interface MessageSettings {
  readonly parser: MessageParser;
  /** Whether `parser` is the application's (`messageParser`) rather than the default JSON parser. */
  readonly customParser: boolean;
  readonly policy: InvalidMessagePolicy;
}

/** The settings of a client whose server is unknown: the defaults. */
export const DEFAULT_MESSAGE_SETTINGS: MessageSettings = Object.freeze({ parser: parseJsonMessage, customParser: false, policy: 'exception' });

/** A message handler's reply as it goes on the wire. */
interface Reply {
  readonly event: string;
  readonly data: unknown;
  readonly id?: string | number;
}

/** Per connection: the handlers of every gateway bound to it, and how its messages are read. */
interface ClientState {
  /**
   * What Nest bound, once per gateway on the client's server: its handlers (made for this client). Nest's result
   * transform is not kept: `#runHandler` does its work without RxJS. Kept as given and scanned per message, as @nestjs/platform-ws does: a Map per client would cost
   * every idle connection a few hundred bytes for the handful of events a gateway has.
   */
  readonly bindings: Array<{ readonly handlers: readonly WsMessageHandler[]; readonly gateway?: string }>;
  /** OpenTelemetry, when on (else nothing is measured, and no branch taken per message but this field's check). */
  readonly instrumentation: (DispatchInstrumentation & { readonly traffic: TrafficCounts }) | undefined;
  readonly settings: MessageSettings;
  /** The client's messages, pulled one at a time. */
  readonly messages: AsyncIterator<string | Buffer>;
  /** Messages being handled now (at most `MAX_MESSAGES_IN_FLIGHT`). */
  inFlight: number;
  /** Reading stopped at `MAX_MESSAGES_IN_FLIGHT`; the next message is pulled when one finishes. */
  waiting: boolean;
}

/**
 * Messages of one client handled at the same time; the next one is read when one finishes. Reading stops, and the
 * node layer pauses the socket once `readHighWaterMark` bytes are waiting, so a client that floods requests without
 * reading the replies is slowed down instead of filling memory.
 */
const MAX_MESSAGES_IN_FLIGHT = 16;
/** The promise of a reply that has nothing to wait for. */
const RESOLVED: Promise<void> = Promise.resolve();
/** What clients are told of an error that is not theirs to know (Nest's words for an unknown exception). */
const INTERNAL_ERROR_MESSAGE = 'Internal server error';
/** The plain send, for the adapter's own replies (which carry their id already). */
const rawSend = WebSocket.prototype.send;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function ignore(): void {}

function yes(): true {
  return true;
}

function isTrue(value: unknown): boolean {
  return value === true;
}

function isWsResponse(value: unknown): value is { event: string; data: unknown } {
  return typeof value === 'object' && value !== null && typeof (value as { event?: unknown }).event === 'string' && 'data' in value;
}

/** What a handler's result becomes on the wire: a `WsResponse` as it is, any other value under the message's event. */
function toReply(value: unknown, message: ParsedMessage): Reply {
  const { event, id } = message;
  if (isWsResponse(value)) return id === undefined ? { event: value.event, data: value.data } : { event: value.event, data: value.data, id };
  return id === undefined ? { event, data: value } : { event, data: value, id };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/** RxJS's own test (`isObservable`), without loading RxJS: a handler's Observable comes from the app's copy. */
function isObservable(value: unknown): value is Observable<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { lift?: unknown }).lift === 'function' && typeof (value as { subscribe?: unknown }).subscribe === 'function';
}

/**
 * The `id` of a message that its parser refused: the one the error carries (`InvalidMessageError`,
 * `MessageTooDeepError`), else the top-level `"id"` of the raw message read as JSON text, best effort.
 */
function refusedMessageId(error: unknown, raw: string | Buffer): string | number | undefined {
  if (error instanceof InvalidMessageError || error instanceof MessageTooDeepError) return error.id;
  if (typeof raw === 'string') return readTopLevelId(raw);
  try {
    return readTopLevelId(utf8.decode(raw));
  } catch {
    return undefined;
  }
}

export class MessageDispatch {
  readonly #clients = new WeakMap<WebSocket, ClientState>();

  constructor(
    private readonly logger: Logger,
    /** Logs a routine event (an invalid message) when `verboseLogs` is on. */
    private readonly routine: (message: string) => void = () => undefined,
  ) {}

  /**
   * Binds one gateway's message handlers to a client. Nest calls it once per gateway on a shared server, so the
   * handlers accumulate; the client's messages are read once, by one loop, and dispatched to all of them.
   */
  bind(client: WebSocket, handlers: WsMessageHandler[], settings: MessageSettings, instrumentation?: DispatchInstrumentation): void {
    let state = this.#clients.get(client);
    if (state === undefined) {
      const measured =
        instrumentation === undefined ? undefined : { ...instrumentation, traffic: instrumentation.telemetry.trafficOf(instrumentation.gateways[0] ?? 'Gateway') };
      state = { bindings: [], settings, messages: client[Symbol.asyncIterator](), inFlight: 0, waiting: false, instrumentation: measured };
      this.#clients.set(client, state);
      this.#pull(client, state);
    }
    const gateway = instrumentation?.gateways[state.bindings.length] ?? instrumentation?.gateways[0];
    state.bindings.push(gateway === undefined ? { handlers } : { handlers, gateway });
  }

  /**
   * Reads the client's next message and dispatches it; up to `MAX_MESSAGES_IN_FLIGHT` at once. Promise callbacks
   * rather than an async function with `for await`: an idle connection then holds one pending read, not a suspended
   * function with its registers and a Set of tasks.
   */
  #pull(client: WebSocket, state: ClientState): void {
    state.messages.next().then(
      (result) => {
        if (result.done === true) return;
        if (state.instrumentation !== undefined) state.instrumentation.telemetry.messageReceived(state.instrumentation.traffic, result.value);
        state.inFlight++;
        this.#handleMessage(client, state, result.value).then(
          () => this.#settled(client, state),
          (error: unknown) => {
            this.logger.error(`handling a message from ${client.remoteAddress} failed: ${errorText(error)}`);
            this.#settled(client, state);
          },
        );
        if (state.inFlight < MAX_MESSAGES_IN_FLIGHT) this.#pull(client, state);
        else state.waiting = true;
      },
      (error: unknown) => this.logger.error(`reading from ${client.remoteAddress} failed: ${errorText(error)}`),
    );
  }

  /** One message of the client is handled: read the next one if reading waited for it. */
  #settled(client: WebSocket, state: ClientState): void {
    state.inFlight--;
    if (state.waiting) {
      state.waiting = false;
      this.#pull(client, state);
    }
  }

  /** Parses one message and runs the handlers of its event; resolves once their replies are written. */
  #handleMessage(client: WebSocket, state: ClientState, raw: string | Buffer): Promise<unknown> {
    const { parser, customParser, policy } = state.settings;
    let message: ParsedMessage;
    try {
      // The default parser checks what it returns itself; an application's parser is checked here.
      const parsed = parser(raw, typeof raw !== 'string');
      message = customParser ? checkParsedMessage(parsed) : (parsed as ParsedMessage);
    } catch (error) {
      if (!(error instanceof InvalidMessageError) && !(error instanceof WebSocketsError) && customParser) {
        // A custom parser that throws something else may be an application bug: leave a trace.
        this.logger.warn(`messageParser threw: ${errorText(error)}`);
      }
      const code = error instanceof WebSocketsError ? error.code : undefined;
      return this.#invalid(client, policy, messageOf(error), refusedMessageId(error, raw), code);
    }
    // Most events have one handler: its run is awaited alone, without an array and Promise.all per message.
    let first: Promise<unknown> | undefined;
    let more: Array<Promise<unknown>> | undefined;
    for (const { handlers, gateway } of state.bindings) {
      for (const handler of handlers) {
        if (handler.message !== message.event) continue;
        const execute = (): Promise<void | true> =>
          message.id === undefined
            ? this.#runHandler(client, handler, message)
            : messageContext.run({ client, id: message.id, limitError: undefined }, () => this.#runHandler(client, handler, message));
        const run =
          state.instrumentation === undefined
            ? execute()
            : state.instrumentation.telemetry.handle(gateway ?? 'Gateway', message.event, client, raw, message, message.id, () => execute().then(isTrue));
        if (first === undefined) first = run;
        else (more ??= [first]).push(run);
      }
    }
    if (first === undefined) return this.#invalid(client, policy, `unknown event ${JSON.stringify(message.event)}`, message.id);
    return more === undefined ? first : Promise.all(more).then(ignore);
  }

  /**
   * Runs one handler and sends what it produces. Nest hands its adapters a `transform` that wraps every result in
   * RxJS (`fromPromise(pickResult(result)).pipe(mergeAll())`: an Observable, a subscription and half a dozen
   * operator subscribers per message, for the one value most handlers return). The same semantics without it: the
   * handler's promise is awaited, a plain value is one reply, `undefined` none, and an Observable's values are sent
   * in order (see `#stream`). Nest's exception filter answers what the handler throws; what still gets here is a
   * failure of the pipeline itself (the filter throwing, say `RangeError: Maximum call stack size exceeded` while it
   * serializes a deeply nested cause), which is logged and answered with an exception frame, never with silence.
   * Resolves with `true` when the pipeline failed (for telemetry's outcome).
   */
  #runHandler(client: WebSocket, handler: WsMessageHandler, message: ParsedMessage): Promise<void | true> {
    let result: unknown;
    try {
      if (handler.isAckHandledManually) {
        // `@Ack()` gets a function that sends the reply (with the message's id) whenever the handler calls it.
        const { event, id } = message;
        const ack = (data: unknown): void => void this.#reply(client, { event, data, ...(id === undefined ? {} : { id }) });
        result = handler.callback(message.data, ack);
      } else {
        result = handler.callback(message.data, message.event);
      }
    } catch (error) {
      return this.#failed(client, message, error);
    }
    if (isThenable(result)) {
      // Nest's handlers are async functions: a native promise; another thenable is adopted as `await` would.
      return (result instanceof Promise ? (result as Promise<unknown>) : Promise.resolve(result)).then(
        (value) => this.#deliver(client, handler, message, value),
        (error: unknown) => this.#failed(client, message, error),
      );
    }
    return this.#deliver(client, handler, message, result);
  }

  /** Sends a handler's result: nothing for `undefined` or under `@Ack()`, each value of an Observable, else one reply. */
  #deliver(client: WebSocket, handler: WsMessageHandler, message: ParsedMessage, value: unknown): Promise<void | true> {
    if (isObservable(value)) return this.#stream(client, handler, message, value);
    if (value === undefined || handler.isAckHandledManually) return RESOLVED;
    return this.#reply(client, toReply(value, message));
  }

  /** An Observable's values, each sent once the previous one is written; its error is answered as `#failed` does. */
  #stream(client: WebSocket, handler: WsMessageHandler, message: ParsedMessage, values: Observable<unknown>): Promise<void | true> {
    let chain = RESOLVED;
    return new Promise<{ readonly error: unknown } | undefined>((resolve) => {
      try {
        values.subscribe({
          next: (value) => {
            if (value === undefined || handler.isAckHandledManually) return;
            const reply = toReply(value, message);
            chain = chain.then(() => this.#reply(client, reply));
          },
          error: (error: unknown) => resolve({ error }),
          complete: () => resolve(undefined),
        });
      } catch (error) {
        resolve({ error });
      }
    }).then(async (failure) => {
      await chain;
      return failure === undefined ? undefined : this.#failed(client, message, failure.error);
    });
  }

  /** The handler's pipeline failed: logged, and answered with an exception frame. */
  #failed(client: WebSocket, message: ParsedMessage, error: unknown): Promise<true> {
    this.logger.error(`handler of ${JSON.stringify(message.event)} failed: ${errorText(error)}`);
    return this.#send(client, JSON.stringify(exceptionFrame(INTERNAL_ERROR_MESSAGE, message.id))).then(yes);
  }

  /** Sends one reply as JSON; a value that cannot be serialized becomes an exception frame. */
  #reply(client: WebSocket, reply: Reply): Promise<void> {
    let text: string;
    try {
      text = JSON.stringify(reply);
    } catch (error) {
      this.logger.error(`reply to ${JSON.stringify(reply.event)} cannot be serialized as JSON: ${errorText(error)}`);
      text = JSON.stringify(exceptionFrame(INTERNAL_ERROR_MESSAGE, reply.id));
    }
    return this.#send(client, text);
  }

  /** Applies the `invalidMessages` policy. */
  async #invalid(client: WebSocket, policy: InvalidMessagePolicy, reason: string, id: string | number | undefined, code?: string): Promise<void> {
    this.routine(`invalid message from ${client.remoteAddress}: ${reason}`);
    switch (policy) {
      case 'exception':
        await this.#send(client, JSON.stringify(exceptionFrame(reason, id, code)));
        return;
      case 'ignore':
        return;
      case 'close':
        await client.close(CloseCode.POLICY_VIOLATION, 'invalid message').catch(() => undefined);
        return;
      default: {
        const unexpected: never = policy;
        throw new TypeError(`unexpected policy ${String(unexpected)}`);
      }
    }
  }

  /** Sends a reply; resolves once written, or at once when the client is gone (a failure is only logged). */
  #send(client: WebSocket, text: string): Promise<void> {
    // A session's reply goes to its session even when this connection has closed (see session-websocket.ts).
    if (client.readyState !== WebSocket.OPEN && !(client instanceof GatewayWebSocket && client.session !== undefined)) return RESOLVED;
    // Through `sendRaw`, where a session keeps it and OpenTelemetry counts it. Promise callbacks rather than an async
    // function: two fewer promises per reply on the hot path. `send()` resolves with whether the frame was written;
    // a reply's promise says only that it is settled.
    const sent = client instanceof GatewayWebSocket ? client.sendRaw(text) : rawSend.call(client, text);
    return sent.then(ignore, (error: unknown) => {
      this.logger.debug(`reply to ${client.remoteAddress} not delivered: ${String(error)}`);
    });
  }
}
