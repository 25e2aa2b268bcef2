/**
 * `BroadcastServer`: rooms and broadcasts over one node-layer `WebSocketServer`, on this instance and on every other
 * instance that shares its `BroadcastBus`. A broadcast goes to this instance's clients at once (built once, see
 * `PreparedMessage`) and over the bus channel, whose other subscribers deliver it to theirs. Room membership stays
 * local (`Rooms`): only the messages cross the bus. The Nest adapter's gateway server is one of these.
 *
 * Its `ClusterNode` makes the instances act as one server: every target (`server`, `server.to(room)`,
 * `server.except(client)`) also has cluster-wide `fetchClients()`, `count()`, `join(room)`, `leave(room)` and
 * `disconnect()`; the server has server-side events (`serverSideEmit`, `serverSideRequest`, `onServerEvent`) and
 * presence (`trackPresence`, `presence(room)`).
 *
 * A broadcast that a client misses because its connection closed while the message waited is only counted: one debug
 * line sums them up per `DROP_REPORT_INTERVAL_MS`, where a line per message would let one dying member of a busy room
 * flood the log.
 *
 * A little over 400 lines: it is the one object a gateway's `@WebSocketServer()` gives, so the local broadcast, the
 * targets and the cluster operations meet here; the cluster's machinery itself is in `cluster.ts`, `cluster-messages.ts` and `presence.ts`.
 */
import { SETTINGS } from '../config/settings.js';
import { InvalidStateError, type RoomLimitError } from '../errors.js';
import type { WebSocketServer } from '../node/server.js';
import { WebSocket, type WebSocketData } from '../node/websocket.js';
import { PreparedMessage } from '../protocol/prepared-message.js';
import { newOrigin, type BroadcastBus, type BroadcastEnvelope } from './broadcast-bus.js';
import { ClusterNode, type ClusterCallOptions, type ClusterClient, type ClusterTarget, type ServerEventHandler, type ServerReply } from './cluster.js';
import type { ClusterTargetSpec } from './cluster-messages.js';
import type { PresenceMember, PresenceOptions } from './presence.js';
import type { BroadcastLogger } from './logger.js';
import { Rooms } from './rooms.js';

/** Chooses the local clients a `broadcast()` reaches. */
export type BroadcastFilter = (client: WebSocket) => boolean;

/** Every client of the server but some, as `server.except(client)` gives them; cluster-wide operations included. */
export interface WebSocketsBroadcast extends ClusterTarget {
  /** Sends `data` (text or binary) to every target, on every instance. Resolves once published. */
  send(data: WebSocketData): Promise<void>;
  /** Sends `{ "event": event, "data": data }` as JSON text to every target. */
  emit(event: string, data: unknown): Promise<void>;
}

/** The members of one room, as `server.to(room)` gives them. */
export interface WebSocketsRoom extends WebSocketsBroadcast {
  /** The room's name. */
  readonly name: string;
  /** The members connected to this instance (without the excluded ones). */
  readonly clients: ReadonlySet<WebSocket>;
  /** Sends `data` to every member (on every instance, through the bus). Resolves once published. */
  send(data: WebSocketData): Promise<void>;
  /** Sends `{ "event": event, "data": data }` as JSON text to every member. */
  emit(event: string, data: unknown): Promise<void>;
  /** The same room without these clients (usually the sender): `server.to(room).except(client).emit(...)`. */
  except(...clients: WebSocket[]): WebSocketsRoom;
}

const EMPTY: ReadonlySet<WebSocket> = new Set();

/** Broadcasts not delivered because their client went away are summed up in one debug line per this interval. */
const DROP_REPORT_INTERVAL_MS = 1000;

/** Turns what `send()` accepts into what the bus carries (a string or a Buffer). */
function toPayload(data: WebSocketData): string | Buffer {
  if (typeof data === 'string' || Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** What a `BroadcastServer` is made of. */
export interface BroadcastServerInit {
  /** The node-layer server whose clients it serves. */
  readonly server: WebSocketServer;
  /** Where broadcasts travel between instances. */
  readonly bus: BroadcastBus;
  /** The bus channel: the same on every instance that serves the same clients (e.g. named after port and path). */
  readonly channel: string;
  readonly logger: BroadcastLogger;
  /** Most rooms one client can be in, `null` for no limit. */
  readonly maxRoomsPerClient: number | null;
  /** Told of each `RoomLimitError` before it is thrown (the Nest adapter turns it into the request's exception frame). */
  readonly onRoomLimit?: (error: RoomLimitError) => void;
  /** Timing of the cluster-wide operations (defaults: `clusterTimeoutMs`, `clusterHeartbeatMs`, `clusterExpiryMs`). */
  readonly cluster?: {
    /** Default bound on a cluster-wide operation, in ms. @default 5000 */
    readonly timeoutMs?: number;
    /** Heartbeat interval, in ms. @default 5000 */
    readonly heartbeatMs?: number;
    /** Silence after which an instance is dead, in ms. @default 15000 */
    readonly expiryMs?: number;
  };
  /** Told how many clients of this instance each broadcast was handed to (`remote`: it came from the bus). For metrics. */
  readonly onDelivered?: (recipients: number, remote: boolean) => void;
  /**
   * Resumable sessions: what is published to a room is also kept for its members that lost their connection
   * (`wants`/`deliver`), and for members whose connection is closing, which a send would no longer reach (`missed`).
   */
  readonly sessions?: SessionDelivery;
}

/** Where broadcasts go for clients that are away (see session-store.ts). */
export interface SessionDelivery {
  wants(room: string | null): boolean;
  deliver(room: string | null, message: PreparedMessage): void;
  missed(client: WebSocket, message: PreparedMessage): void;
}

const EVERY_CLIENT: ClusterTargetSpec = Object.freeze({ room: null, except: Object.freeze([]) });

/** A server's clients, rooms and broadcast. */
export class BroadcastServer {
  /** The bus channel of this server. */
  readonly channel: string;
  readonly #server: WebSocketServer;
  readonly #bus: BroadcastBus;
  readonly #logger: BroadcastLogger;
  readonly #rooms: Rooms;
  readonly #cluster: ClusterNode;
  readonly #onDelivered: ((recipients: number, remote: boolean) => void) | undefined;
  readonly #sessions: SessionDelivery | undefined;
  readonly #unsubscribe: Promise<() => Promise<void>>;
  /** This server's id on the bus: the `origin` of what it publishes, which the bus does not hand back to it. */
  readonly #origin = newOrigin();
  /** Broadcast messages not delivered since the last report, the clients they were for, and the last reason. */
  #dropped = 0;
  readonly #droppedClients = new Set<WebSocket>();
  #dropReason = '';
  #dropReport: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  /** Each client's last broadcast send and how many broadcast messages share its promise (see `#watch`). */
  readonly #lastSend = new WeakMap<WebSocket, { readonly promise: Promise<boolean>; messages: number }>();

  constructor(init: BroadcastServerInit) {
    this.#server = init.server;
    this.#bus = init.bus;
    this.#logger = init.logger;
    this.channel = init.channel;
    this.#rooms = new Rooms(init.maxRoomsPerClient, init.onRoomLimit, {
      joined: (client, room) => this.#cluster.presence.joined(client, room),
      left: (client, room) => this.#cluster.presence.left(client, room),
    });
    this.#cluster = new ClusterNode({
      bus: init.bus,
      channel: init.channel,
      logger: init.logger,
      timeoutMs: init.cluster?.timeoutMs ?? SETTINGS.clusterTimeoutMs.default,
      heartbeatMs: init.cluster?.heartbeatMs ?? SETTINGS.clusterHeartbeatMs.default,
      expiryMs: init.cluster?.expiryMs ?? SETTINGS.clusterExpiryMs.default,
      local: {
        clients: init.server.clients,
        members: (room) => this.#rooms.members(room),
        roomsOf: (client) => this.#rooms.of(client),
        // A client at its room limit stays out, without a RoomLimitError: the limit is the app's, not the caller's
        // (in a Nest handler, the error would otherwise stand for the handler's own request).
        join: (client, room) => {
          const rooms = this.#rooms.of(client);
          const max = this.#rooms.maxRoomsPerClient;
          if (max !== null && !rooms.has(room) && rooms.size >= max) return false;
          this.#rooms.join(client, room);
          return true;
        },
        leave: (client, room) => this.#rooms.leave(client, room),
        deliver: (room, data, accept) => {
          const excluded = accept === undefined ? EMPTY : new Set([...this.#rooms.members(room)].filter((member) => !accept(member)));
          this.#deliverLocally({ room, data }, excluded, true);
        },
      },
    });
    this.#onDelivered = init.onDelivered;
    this.#sessions = init.sessions;
    this.#unsubscribe = this.#bus.subscribe(this.channel, this.#origin, (envelope) => this.#deliverLocally(envelope, EMPTY, true));
    // Not logged here: `ready()` rejects with it, and its owner reports it once (a Nest app fails to start with it).
    this.#unsubscribe.catch(() => undefined);
  }

  /** The open connections of this server (on this instance). */
  get clients(): ReadonlySet<WebSocket> {
    return this.#server.clients;
  }

  /** The node-layer server underneath, for its events (`'connection'`, `'handshakeError'`, `'error'`). */
  get webSocketServer(): WebSocketServer {
    return this.#server;
  }

  /** Most rooms one client can be in (`maxRoomsPerClient`), or `null` for no limit. */
  get maxRoomsPerClient(): number | null {
    return this.#rooms.maxRoomsPerClient;
  }

  /**
   * Adds `client` to `room` (creating the room). A client leaves all its rooms when it disconnects. Joining a room
   * the client is already in changes nothing. Thrown inside a Nest message handler, the error reaches the client as
   * an exception frame that names the limit when the request has an `id` or the gateway uses
   * `WebSocketsExceptionFilter` (else Nest's "Internal server error").
   * @throws RoomLimitError when the client is already in `maxRoomsPerClient` rooms
   */
  join(client: WebSocket, room: string): void;
  /**
   * Makes every client on every instance join `room` (cluster-wide); resolves to how many clients matched.
   * @throws ClusterTimeoutError naming the instances that did not answer within the timeout
   */
  join(room: string, options?: ClusterCallOptions): Promise<number>;
  join(clientOrRoom: WebSocket | string, roomOrOptions?: string | ClusterCallOptions): void | Promise<number> {
    if (typeof clientOrRoom === 'string') return this.#cluster.target(EVERY_CLIENT).join(clientOrRoom, roomOrOptions as ClusterCallOptions | undefined);
    this.#rooms.join(clientOrRoom, roomOrOptions as string);
  }

  /** Removes `client` from `room` (an empty room disappears). */
  leave(client: WebSocket, room: string): void;
  /** Makes every client on every instance leave `room` (cluster-wide); resolves to how many clients matched. */
  leave(room: string, options?: ClusterCallOptions): Promise<number>;
  leave(clientOrRoom: WebSocket | string, roomOrOptions?: string | ClusterCallOptions): void | Promise<number> {
    if (typeof clientOrRoom === 'string') return this.#cluster.target(EVERY_CLIENT).leave(clientOrRoom, roomOrOptions as ClusterCallOptions | undefined);
    this.#rooms.leave(clientOrRoom, roomOrOptions as string);
  }

  /** This instance's id among the instances that share the bus (32 hex digits): `instance` in `fetchClients()`. */
  get instanceId(): string {
    return this.#cluster.instanceId;
  }

  /** This instance and every other one heard from within `clusterExpiryMs` (this one first). */
  instances(): string[] {
    return this.#cluster.instances();
  }

  /** Every client on every instance: `{ id, instance, rooms, data }`. @throws ClusterTimeoutError */
  fetchClients(options?: ClusterCallOptions): Promise<ClusterClient[]> {
    return this.#cluster.target(EVERY_CLIENT).fetchClients(options);
  }

  /** How many clients are connected to every instance. @throws ClusterTimeoutError */
  count(options?: ClusterCallOptions): Promise<number> {
    return this.#cluster.target(EVERY_CLIENT).count(options);
  }

  /** Closes every client on every instance; resolves to how many there were. @throws RangeError, ClusterTimeoutError */
  disconnect(code?: number, reason?: string, options?: ClusterCallOptions): Promise<number> {
    return this.#cluster.target(EVERY_CLIENT).disconnect(code, reason, options);
  }

  /** Sends a server-side event to every other instance (`onServerEvent` there); resolves once published. */
  serverSideEmit(event: string, data: unknown): Promise<void> {
    return this.#cluster.serverSideEmit(event, data);
  }

  /**
   * Sends a server-side event to every other instance and resolves with one reply per instance (its handler's
   * result, or why there is none). @throws ClusterTimeoutError naming the instances that did not reply in time
   */
  serverSideRequest(event: string, data: unknown, options?: ClusterCallOptions): Promise<ServerReply[]> {
    return this.#cluster.serverSideRequest(event, data, options);
  }

  /** Handles another instance's `serverSideEmit` / `serverSideRequest`; returns a function that stops it. */
  onServerEvent(event: string, handler: ServerEventHandler): () => void {
    return this.#cluster.onServerEvent(event, handler);
  }

  /** What `fetchClients()` and `presence()` show of `client`: JSON-serializable (presence copies it to every instance). */
  setClientData(client: WebSocket, data: unknown): void {
    this.#cluster.setData(client, data);
  }

  /** What `setClientData()` gave `client`, or `null`. */
  clientData(client: WebSocket): unknown {
    return this.#cluster.dataOf(client);
  }

  /**
   * Starts presence on this instance: its members of tracked rooms are announced to every instance, and with
   * `events` a room's members get `presence` events. Call it on every instance (a gateway's `afterInit`).
   */
  trackPresence(options?: PresenceOptions): void {
    this.#cluster.presence.track(options);
  }

  /**
   * The members of `room` on every instance, from this instance's copy (eventually consistent; see `trackPresence`).
   * @throws InvalidStateError when `trackPresence()` was not called
   */
  presence(room: string): PresenceMember[] {
    if (!this.#cluster.presence.enabled) throw new InvalidStateError('presence(room) needs trackPresence() first, on every instance');
    return this.#cluster.presence.members(room);
  }

  /** The rooms `client` is in. */
  roomsOf(client: WebSocket): ReadonlySet<string> {
    return this.#rooms.of(client);
  }

  /** The names of the rooms that have members on this instance. */
  get rooms(): ReadonlySet<string> {
    return this.#rooms.names();
  }

  /**
   * Resolves once the server is subscribed to its broadcast channel. `WebSocketsModule` waits for it at start-up.
   * @throws what the bus's `subscribe()` threw (RedisUnavailableError, RedisClientMissingError)
   */
  async ready(): Promise<void> {
    await Promise.all([this.#unsubscribe, this.#cluster.ready()]);
  }

  /** A room, to send to its members: `server.to('lobby').emit('chat', { text })`. */
  to(room: string): WebSocketsRoom {
    return this.#room(room, EMPTY);
  }

  /**
   * Every client but these (on this instance; the others are not connected here):
   * `server.except(client).emit('joined', { name })`.
   */
  except(...clients: WebSocket[]): WebSocketsBroadcast {
    const excluded = new Set(clients);
    return {
      ...this.#cluster.target(() => ({ room: null, except: clients.map((client) => client.id) })),
      send: (data) => this.#publish({ room: null, data: toPayload(data) }, excluded),
      emit: (event, data) => this.#publish({ room: null, data: JSON.stringify({ event, data }) }, excluded),
    };
  }

  #room(room: string, excluded: ReadonlySet<WebSocket>): WebSocketsRoom {
    const members = this.#rooms.members(room);
    return {
      ...this.#cluster.target(() => ({ room, except: [...excluded].map((client) => client.id) })),
      name: room,
      clients: excluded.size === 0 ? members : new Set([...members].filter((client) => !excluded.has(client))),
      send: (data) => this.#publish({ room, data: toPayload(data) }, excluded),
      emit: (event, data) => this.#publish({ room, data: JSON.stringify({ event, data }) }, excluded),
      except: (...clients) => this.#room(room, new Set([...excluded, ...clients])),
    };
  }

  /**
   * Sends `data` to every client. Without a filter it goes through the bus (every instance); with one, only to the
   * local clients it accepts (a function cannot travel to other instances). Each client gets it at its own pace
   * (its send waits on its own backpressure); the promise resolves once the message is published.
   */
  broadcast(data: WebSocketData, filter?: BroadcastFilter): Promise<void> {
    const payload = toPayload(data);
    if (filter === undefined) return this.#publish({ room: null, data: payload });
    this.#server.broadcast(payload, { filter });
    return Promise.resolve();
  }

  /** Sends `{ "event": event, "data": data }` as JSON text to every client (through the bus). */
  emit(event: string, data: unknown): Promise<void> {
    return this.#publish({ room: null, data: JSON.stringify({ event, data }) });
  }

  /**
   * Stops the server: 1001 (going away) to every client, waits up to `closeTimeoutMs`, destroys the rest, and leaves
   * the broadcast channel. Calling it again returns the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        await this.#cluster.close();
        await this.#server.close();
      } finally {
        const unsubscribe = await this.#unsubscribe.catch(() => undefined);
        await unsubscribe?.();
        this.#rooms.clear();
        this.#reportDrops();
      }
    })();
    return this.#closing;
  }

  #publish(envelope: BroadcastEnvelope, excluded: ReadonlySet<WebSocket> = EMPTY): Promise<void> {
    // Local clients first, synchronously: a broadcast keeps its order with the sends around it, and reaches this
    // instance's clients whatever happens to the bus. The bus carries it to the other instances.
    this.#deliverLocally(envelope, excluded);
    // An unawaited broadcast must not become an unhandled rejection: a bus failure is logged, never thrown.
    return this.#bus
      .publish(this.channel, { ...envelope, origin: this.#origin })
      .catch((error: unknown) => this.#logger.error(`broadcast on ${this.channel} not published to other instances: ${String(error)}`));
  }

  /**
   * Sends to this instance's targets, the frame built once for all of them. Each send applies the client's own bound
   * and slow-consumer policy; a client that goes away while the broadcast waits only misses it, counted in one debug
   * line per second (a line per departed member would flood the log of a busy room).
   */
  #deliverLocally(envelope: BroadcastEnvelope, excluded: ReadonlySet<WebSocket>, remote = false): void {
    const targets = envelope.room === null ? this.clients : this.#rooms.members(envelope.room);
    const sessions = this.#sessions;
    const away = sessions !== undefined && sessions.wants(envelope.room);
    if (targets.size === 0 && !away) {
      this.#onDelivered?.(0, remote);
      return;
    }
    const message = new PreparedMessage(envelope.data);
    let recipients = 0;
    for (const client of targets) {
      if (client.readyState === WebSocket.OPEN && !excluded.has(client)) {
        this.#watch(client, client.send(message));
        recipients++;
      } else if (sessions !== undefined && !excluded.has(client)) {
        sessions.missed(client, message);
      }
    }
    if (away) sessions.deliver(envelope.room, message);
    this.#onDelivered?.(recipients, remote);
  }

  /**
   * Counts the broadcast messages `sent` fails to deliver. The sends of one tick to one client share one promise
   * (its batch's): it gets one handler, which counts the messages that share it. A handler per member per message
   * (a derived promise and a closure each, all settled together) made most of a broadcast's cost in garbage
   * collection and microtasks.
   */
  #watch(client: WebSocket, sent: Promise<boolean>): void {
    const last = this.#lastSend.get(client);
    if (last !== undefined && last.promise === sent) {
      last.messages++;
      return;
    }
    const entry = { promise: sent, messages: 1 };
    this.#lastSend.set(client, entry);
    sent.then(undefined, (error: unknown) => this.#countDrop(client, error, entry.messages));
  }

  #countDrop(client: WebSocket, error: unknown, messages: number): void {
    this.#dropped += messages;
    this.#droppedClients.add(client);
    this.#dropReason = String(error);
    this.#dropReport ??= setTimeout(() => this.#reportDrops(), DROP_REPORT_INTERVAL_MS).unref();
  }

  /** One debug line for the broadcasts dropped since the last one. */
  #reportDrops(): void {
    clearTimeout(this.#dropReport);
    this.#dropReport = undefined;
    if (this.#dropped === 0) return;
    this.#logger.debug?.(
      `${this.#dropped} broadcast message(s) on ${this.channel} not delivered to ${this.#droppedClients.size} client(s) ` +
        `whose connection closed before the message was sent (last: ${this.#dropReason})`,
    );
    this.#dropped = 0;
    this.#droppedClients.clear();
  }
}
