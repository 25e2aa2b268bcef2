/**
 * `ClusterNode`: what makes the instances that share a bus channel act as one server. It knows the other instances
 * (each publishes a heartbeat every `heartbeatMs`; one silent for `expiryMs` is dead, one that closes says goodbye),
 * runs cluster-wide operations on clients (`fetchClients`, `count`, `join`, `leave`, `disconnect`) by asking every
 * live instance and waiting for each answer up to a timeout, carries server-side events and requests, and holds the
 * presence copies (`Presence`). The `BroadcastServer` owns one and exposes its operations.
 *
 * A request waits for the instances alive when it is made: an instance that says goodbye meanwhile is not waited for
 * (its clients are gone), one that is silent past the timeout is named by `ClusterTimeoutError`.
 *
 * Over 400 lines as one file: knowing the instances, asking them and answering them are one protocol over the same
 * control channel (a reply is matched to the instances a heartbeat made known, an expiry ends what waits for them);
 * the message format (cluster-messages.ts) and presence (presence.ts) are apart because they stand alone.
 */
import { ClusterTimeoutError, InvalidStateError } from '../errors.js';
import { WebSocket } from '../node/websocket.js';
import { isWireCloseCode } from '../protocol/close-codes.js';
import { newOrigin, type BroadcastBus } from './broadcast-bus.js';
import {
  CLUSTER_FORMAT,
  parseClusterMessage,
  type ClusterMessage,
  type ClusterMessageBody,
  type ClusterOperation,
  type ClusterTargetSpec,
} from './cluster-messages.js';
import type { BroadcastLogger } from './logger.js';
import { Presence } from './presence.js';

/** One client as `fetchClients()` describes it. */
export interface ClusterClient {
  /** The client's `id` (unique across instances). */
  readonly id: string;
  /** The instance it is connected to (`server.instanceId`). */
  readonly instance: string;
  /** The rooms it is in. */
  readonly rooms: readonly string[];
  /** What `server.setClientData(client, data)` gave (`null` when nothing). */
  readonly data: unknown;
}

/** One instance's answer to `serverSideRequest()`. */
export interface ServerReply {
  readonly instance: string;
  /** What its handler returned (resolved). */
  readonly data?: unknown;
  /** Why there is no data: its handler threw, or it has none for the event. */
  readonly error?: string;
}

/** Told of a server-side event from another instance; what it returns (or resolves to) is the reply to a request. */
export type ServerEventHandler = (data: unknown, from: { readonly instance: string }) => unknown;

/** The options of a cluster-wide call. */
export interface ClusterCallOptions {
  /** How long to wait for the other instances, in ms. @default clusterTimeoutMs (5000) */
  readonly timeoutMs?: number;
}

/** The cluster-wide operations of a target (`server`, `server.to(room)`, `server.except(client)`). */
export interface ClusterTarget {
  /** Every matching client on every instance. @throws ClusterTimeoutError */
  fetchClients(options?: ClusterCallOptions): Promise<ClusterClient[]>;
  /** How many clients match on every instance. @throws ClusterTimeoutError */
  count(options?: ClusterCallOptions): Promise<number>;
  /** Makes every matching client join `room`, wherever it is; resolves to how many matched. @throws ClusterTimeoutError */
  join(room: string, options?: ClusterCallOptions): Promise<number>;
  /** Makes every matching client leave `room`; resolves to how many matched. @throws ClusterTimeoutError */
  leave(room: string, options?: ClusterCallOptions): Promise<number>;
  /**
   * Closes every matching client with `code` (1000 by default) and `reason`; resolves to how many matched.
   * @throws RangeError for a code or reason that cannot be sent; ClusterTimeoutError
   */
  disconnect(code?: number, reason?: string, options?: ClusterCallOptions): Promise<number>;
}

/** What the node needs from its server on this instance. */
export interface ClusterLocal {
  readonly clients: ReadonlySet<WebSocket>;
  members(room: string): ReadonlySet<WebSocket>;
  roomsOf(client: WebSocket): ReadonlySet<string>;
  /** Adds the client to the room; false when it is at its room limit (it stays out). */
  join(client: WebSocket, room: string): boolean;
  leave(client: WebSocket, room: string): void;
  /** Sends text to this instance's members of `room` only (those `accept` accepts). */
  deliver(room: string, text: string, accept?: (member: WebSocket) => boolean): void;
}

export interface ClusterInit {
  readonly bus: BroadcastBus;
  /** The server's bus channel; the node uses `<channel>#cluster` and `<channel>#cluster:<instance>`. */
  readonly channel: string;
  readonly logger: BroadcastLogger;
  readonly local: ClusterLocal;
  /** Default bound on a request, in ms. */
  readonly timeoutMs: number;
  /** Heartbeat interval, in ms. */
  readonly heartbeatMs: number;
  /** Silence after which an instance is dead, in ms. */
  readonly expiryMs: number;
}

interface Pending {
  readonly operation: string;
  readonly waiting: Set<string>;
  readonly replies: Map<string, { readonly result?: unknown; readonly error?: string }>;
  readonly done: (error?: Error) => void;
}

/** Longest reason of a close frame, in bytes (RFC 6455 §5.5: 125-byte control payload less the code). */
const MAX_REASON_BYTES = 123;

/** Malformed control messages are reported at most once per this period. */
const WARN_PERIOD_MS = 10_000;

export class ClusterNode {
  /** This instance's id on the bus (32 hex digits). */
  readonly instanceId = newOrigin();
  readonly presence: Presence;
  readonly #bus: BroadcastBus;
  readonly #channel: string;
  readonly #replyChannel: string;
  readonly #logger: BroadcastLogger;
  readonly #local: ClusterLocal;
  readonly #timeoutMs: number;
  readonly #heartbeatMs: number;
  readonly #expiryMs: number;
  /** Other live instances -> when last heard from (ms since the epoch). */
  readonly #instances = new Map<string, number>();
  readonly #pending = new Map<number, Pending>();
  readonly #handlers = new Map<string, Set<ServerEventHandler>>();
  readonly #data = new WeakMap<WebSocket, unknown>();
  readonly #subscribed: Promise<Array<() => Promise<void>>>;
  #nextRequest = 1;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #lastWarning = 0;

  constructor(init: ClusterInit) {
    this.#bus = init.bus;
    this.#channel = `${init.channel}#cluster`;
    this.#replyChannel = `${this.#channel}:${this.instanceId}`;
    this.#logger = init.logger;
    this.#local = init.local;
    this.#timeoutMs = init.timeoutMs;
    this.#heartbeatMs = init.heartbeatMs;
    this.#expiryMs = init.expiryMs;
    this.presence = new Presence({
      instanceId: this.instanceId,
      logger: init.logger,
      publish: (body) => this.#publish(this.#channel, body),
      deliver: (room, text, accept) => init.local.deliver(room, text, accept),
      memberships: () => [...init.local.clients].map((client) => [client, init.local.roomsOf(client)] as const),
      dataOf: (client) => this.dataOf(client),
    });
    const onMessage = (envelope: { readonly data: string | Buffer }) => this.#receive(envelope.data);
    this.#subscribed = Promise.all([
      this.#bus.subscribe(this.#channel, this.instanceId, onMessage),
      this.#bus.subscribe(this.#replyChannel, this.instanceId, onMessage),
    ]);
    this.#subscribed.then(
      () => this.#start(),
      () => undefined, // `ready()` rejects with it; its owner reports it.
    );
  }

  /** Resolves once subscribed to the control channels. @throws what the bus's `subscribe()` threw */
  async ready(): Promise<void> {
    await this.#subscribed;
  }

  /** This instance and every other instance heard from within `expiryMs`. */
  instances(): string[] {
    this.#sweep();
    return [this.instanceId, ...this.#instances.keys()];
  }

  /** The data `setClientData()` gave `client`, or `null`. */
  dataOf(client: WebSocket): unknown {
    return this.#data.get(client) ?? null;
  }

  /** Sets what `fetchClients()` and presence show of `client` (JSON-serializable). */
  setData(client: WebSocket, data: unknown): void {
    this.#data.set(client, data);
    this.presence.dataChanged(client, this.#local.roomsOf(client));
  }

  /**
   * The operations of a target. `spec` is a function when the target is made on a hot path (`to(room)` before
   * each `emit()`): the excluded clients' ids are then only read when an operation runs.
   */
  target(spec: ClusterTargetSpec | (() => ClusterTargetSpec)): ClusterTarget {
    const resolve = typeof spec === 'function' ? spec : () => spec;
    return {
      fetchClients: async (options) => [...(await this.#run(resolve(), { op: 'fetchClients' }, options)).values()].flat() as ClusterClient[],
      count: async (options) => this.#sum(await this.#run(resolve(), { op: 'count' }, options)),
      join: async (room, options) => this.#sum(await this.#run(resolve(), { op: 'join', room: checkRoom(room) }, options)),
      leave: async (room, options) => this.#sum(await this.#run(resolve(), { op: 'leave', room: checkRoom(room) }, options)),
      disconnect: async (code = 1000, reason = '', options) => {
        checkClose(code, reason);
        return this.#sum(await this.#run(resolve(), { op: 'disconnect', code, reason }, options));
      },
    };
  }

  /** Sends a server-side event to every other instance; resolves once published. */
  async serverSideEmit(event: string, data: unknown): Promise<void> {
    this.#checkOpen('serverSideEmit');
    await this.#publishNow(this.#channel, { t: 'ev', rid: null, event: checkEvent(event), data });
  }

  /**
   * Sends a server-side event to every other instance and resolves with one reply per instance.
   * @throws ClusterTimeoutError naming the instances that did not reply in time
   */
  async serverSideRequest(event: string, data: unknown, options?: ClusterCallOptions): Promise<ServerReply[]> {
    checkEvent(event);
    const replies = await this.#request('serverSideRequest', (rid) => ({ t: 'ev', rid, event, data }), options);
    return [...replies].map(([instance, reply]) => (reply.error === undefined ? { instance, data: reply.result } : { instance, error: reply.error }));
  }

  /** Handles the server-side events of another instance; returns what stops it. */
  onServerEvent(event: string, handler: ServerEventHandler): () => void {
    checkEvent(event);
    if (typeof handler !== 'function') throw new TypeError(`onServerEvent needs a function; got ${String(handler)}`);
    let handlers = this.#handlers.get(event);
    if (handlers === undefined) {
      handlers = new Set();
      this.#handlers.set(event, handlers);
    }
    handlers.add(handler);
    return () => {
      handlers.delete(handler);
      if (handlers.size === 0 && this.#handlers.get(event) === handlers) this.#handlers.delete(event);
    };
  }

  /** Says goodbye, stops the heartbeat, fails what is still waiting, and leaves the control channels. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.presence.close();
    clearInterval(this.#timer);
    for (const pending of this.#pending.values()) pending.done(new InvalidStateError(`cluster-wide ${pending.operation} cancelled: the server closed`));
    const unsubscribe = await this.#subscribed.catch(() => undefined);
    if (unsubscribe === undefined) return;
    await this.#publishNow(this.#channel, { t: 'bye' }).catch(() => undefined);
    await Promise.all(unsubscribe.map((stop) => stop().catch(() => undefined)));
  }

  // --- Requests ---------------------------------------------------------------------------------------------

  async #run(
    target: ClusterTargetSpec,
    operation: { readonly op: ClusterOperation; readonly room?: string; readonly code?: number; readonly reason?: string },
    options: ClusterCallOptions | undefined,
  ): Promise<Map<string, unknown>> {
    this.#checkOpen(operation.op);
    const local = this.#execute(operation.op, target, operation);
    const remote = await this.#request(operation.op, (rid) => ({ t: 'op', rid, target, ...operation }), options);
    const results = new Map<string, unknown>([[this.instanceId, local]]);
    for (const [instance, reply] of remote) results.set(instance, reply.result);
    return results;
  }

  #sum(results: Map<string, unknown>): number {
    let total = 0;
    for (const value of results.values()) if (typeof value === 'number') total += value;
    return total;
  }

  /** Asks every other live instance and waits for each reply, up to the timeout. */
  #request(
    operation: string,
    body: (rid: number) => ClusterMessageBody,
    options: ClusterCallOptions | undefined,
  ): Promise<Map<string, { readonly result?: unknown; readonly error?: string }>> {
    this.#checkOpen(operation);
    const timeoutMs = options?.timeoutMs ?? this.#timeoutMs;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) {
      return Promise.reject(new RangeError(`cluster-wide ${operation}: timeoutMs must be a positive integer (ms); got ${String(timeoutMs)}`));
    }
    const waiting = new Set(this.instances().slice(1));
    const rid = this.#nextRequest++;
    const replies = new Map<string, { readonly result?: unknown; readonly error?: string }>();
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (error?: Error) => {
        if (!this.#pending.delete(rid)) return;
        clearTimeout(timer);
        if (error === undefined) resolve(replies);
        else reject(error);
      };
      const pending: Pending = { operation, waiting, replies, done };
      this.#pending.set(rid, pending);
      if (waiting.size === 0) {
        done();
        return;
      }
      timer = setTimeout(() => {
        const results = new Map([...replies].map(([instance, reply]) => [instance, reply.error ?? reply.result]));
        done(new ClusterTimeoutError(operation, timeoutMs, [...waiting], results));
      }, timeoutMs);
      this.#publishNow(this.#channel, body(rid)).catch((error: unknown) => done(error instanceof Error ? error : new Error(String(error))));
    });
  }

  /** Runs an operation on this instance's matching clients. */
  #execute(op: ClusterOperation, target: ClusterTargetSpec, args: { readonly room?: string; readonly code?: number; readonly reason?: string }): unknown {
    const clients = this.#match(target);
    switch (op) {
      case 'fetchClients':
        return clients.map((client) => ({ id: client.id, instance: this.instanceId, rooms: [...this.#local.roomsOf(client)], data: this.dataOf(client) }));
      case 'count':
        return clients.length;
      case 'join': {
        let refused = 0;
        for (const client of clients) if (!this.#local.join(client, args.room!)) refused++;
        if (refused > 0) this.#logger.debug?.(`cluster-wide join of ${args.room!}: ${refused} client(s) at their room limit stay out`);
        return clients.length;
      }
      case 'leave':
        for (const client of clients) this.#local.leave(client, args.room!);
        return clients.length;
      case 'disconnect':
        for (const client of clients) client.close(args.code, args.reason).catch(() => undefined);
        return clients.length;
    }
  }

  #match(target: ClusterTargetSpec): WebSocket[] {
    const candidates = target.room === null ? this.#local.clients : this.#local.members(target.room);
    const except = new Set(target.except);
    const matching: WebSocket[] = [];
    for (const client of candidates) if (client.readyState === WebSocket.OPEN && !except.has(client.id)) matching.push(client);
    return matching;
  }

  // --- Messages ---------------------------------------------------------------------------------------------

  #start(): void {
    if (this.#closed) return;
    this.#heartbeat(true);
    this.#timer = setInterval(() => {
      this.#heartbeat(false);
      this.#sweep();
    }, this.#heartbeatMs).unref();
  }

  #heartbeat(hello: boolean): void {
    this.#publish(this.#channel, hello ? { t: 'hb', seq: this.presence.seq, hello } : { t: 'hb', seq: this.presence.seq });
  }

  /** Forgets the instances silent for `expiryMs`. */
  #sweep(): void {
    const now = Date.now();
    for (const [instance, seen] of this.#instances) if (now - seen > this.#expiryMs) this.#forget(instance, `silent for ${now - seen} ms`);
  }

  #forget(instance: string, why: string): void {
    if (!this.#instances.delete(instance)) return;
    this.#logger.debug?.(`instance ${instance} left the cluster of ${this.#channel} (${why})`);
    this.presence.drop(instance);
    for (const pending of this.#pending.values()) {
      if (pending.waiting.delete(instance) && pending.waiting.size === 0) pending.done();
    }
  }

  #receive(data: string | Buffer): void {
    if (this.#closed) return;
    const parsed = parseClusterMessage(data);
    if (!('message' in parsed)) {
      this.#warn(`dropped a malformed message on ${this.#channel}: ${parsed.malformed}`);
      return;
    }
    const { message } = parsed;
    if (message.from === this.instanceId) return;
    try {
      this.#handle(message);
    } catch (error) {
      this.#logger.error(`a cluster message (${message.t}) from ${message.from} failed: ${String(error)}`);
    }
  }

  #handle(message: ClusterMessage): void {
    if (message.t === 'bye') {
      this.#forget(message.from, 'closed');
      return;
    }
    const known = this.#instances.has(message.from);
    this.#instances.set(message.from, Date.now());
    if (!known) this.#logger.debug?.(`instance ${message.from} joined the cluster of ${this.#channel}`);
    switch (message.t) {
      case 'hb':
        // A new instance says hello: answer at once, so that it knows this one before its first request.
        if (message.hello === true) this.#heartbeat(false);
        this.presence.receive(message);
        return;
      case 'op': {
        const result = this.#execute(message.op, message.target, message);
        this.#reply(message.from, message.rid, { result });
        return;
      }
      case 'ev':
        this.#onEvent(message.from, message.rid, message.event, message.data);
        return;
      case 'res': {
        const pending = this.#pending.get(message.rid);
        if (pending === undefined || !pending.waiting.delete(message.from)) return;
        pending.replies.set(message.from, message.error === undefined ? { result: message.result } : { error: message.error });
        if (pending.waiting.size === 0) pending.done();
        return;
      }
      default:
        this.presence.receive(message);
    }
  }

  #onEvent(from: string, rid: number | null, event: string, data: unknown): void {
    const handlers = [...(this.#handlers.get(event) ?? [])];
    if (handlers.length === 0) {
      if (rid !== null) this.#reply(from, rid, { error: `no handler for server event ${JSON.stringify(event)} on instance ${this.instanceId}` });
      return;
    }
    const results = handlers.map((handler) => {
      try {
        return Promise.resolve(handler(data, { instance: from }));
      } catch (error) {
        return Promise.reject(error);
      }
    });
    // Every handler runs; a request's reply is the first one's.
    for (const result of results.slice(1)) result.catch((error: unknown) => this.#logger.error(`a handler of server event ${event} threw: ${String(error)}`));
    results[0]!.then(
      (result) => {
        if (rid !== null) this.#reply(from, rid, { result });
      },
      (error: unknown) => {
        if (rid !== null) this.#reply(from, rid, { error: error instanceof Error ? error.message : String(error) });
        else this.#logger.error(`a handler of server event ${event} threw: ${String(error)}`);
      },
    );
  }

  #reply(to: string, rid: number, reply: { readonly result?: unknown; readonly error?: string }): void {
    this.#publish(`${this.#channel}:${to}`, { t: 'res', rid, ...reply });
  }

  #checkOpen(operation: string): void {
    if (this.#closed) throw new InvalidStateError(`cluster-wide ${operation} after the server closed`);
  }

  /** Publishes; a failure is logged (the bus counts what stays local). */
  #publish(channel: string, body: ClusterMessageBody): void {
    if (this.#closed && body.t !== 'bye') return;
    this.#publishNow(channel, body).catch((error: unknown) => this.#logger.error(`a cluster message on ${channel} was not published: ${String(error)}`));
  }

  #publishNow(channel: string, body: ClusterMessageBody): Promise<void> {
    const text = JSON.stringify({ v: CLUSTER_FORMAT, from: this.instanceId, ...body });
    return this.#bus.publish(channel, { room: null, data: text, origin: this.instanceId });
  }

  #warn(message: string): void {
    const now = Date.now();
    if (now - this.#lastWarning < WARN_PERIOD_MS) {
      this.#logger.debug?.(message);
      return;
    }
    this.#lastWarning = now;
    this.#logger.warn(message);
  }
}

function checkRoom(room: unknown): string {
  if (typeof room !== 'string') throw new TypeError(`a room name must be a string; got ${String(room)}`);
  return room;
}

function checkEvent(event: unknown): string {
  if (typeof event !== 'string' || event === '') throw new TypeError(`a server event name must be a non-empty string; got ${String(event)}`);
  return event;
}

function checkClose(code: unknown, reason: unknown): void {
  if (typeof code !== 'number' || !isWireCloseCode(code)) {
    throw new RangeError(`disconnect(code): ${String(code)} cannot be sent in a close frame (1000-1003, 1007-1014 or 3000-4999)`);
  }
  if (typeof reason !== 'string' || Buffer.byteLength(reason) > MAX_REASON_BYTES) {
    throw new RangeError(`disconnect(code, reason): the reason must be a string of at most ${MAX_REASON_BYTES} bytes of UTF-8`);
  }
}
