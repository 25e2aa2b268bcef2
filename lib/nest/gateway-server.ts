/**
 * `WebSocketsGatewayServer`: the server object a gateway gets from `@WebSocketServer()`. It wraps one node-layer
 * `WebSocketServer` (one port and path) and adds rooms and broadcast. A broadcast goes to this instance's clients at
 * once and over a `BroadcastBus` channel named after the port and path, so that a shared bus reaches the clients of
 * every other instance of the app. Room membership stays local: only the messages cross the bus.
 *
 * A client is in at most `maxRoomsPerClient` rooms (`join()` throws `RoomLimitError` above it), so that a client
 * cannot grow the membership tables without bound. A broadcast that a client misses because its connection closed
 * while the message waited is only counted: one debug line sums them up per `DROP_REPORT_INTERVAL_MS`, where a line
 * per message would let one dying member of a busy room flood the log.
 */
import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { RoomLimitError } from '../errors.js';
import { WebSocket, type WebSocketData } from '../node/websocket.js';
import { PreparedMessage } from '../protocol/prepared-message.js';
import type { WebSocketServer } from '../node/server.js';
import type { BroadcastBus, BroadcastEnvelope } from './broadcast-bus.js';

/** Chooses the local clients a `broadcast()` reaches. */
export type BroadcastFilter = (client: WebSocket) => boolean;

/** Every client of the gateway but some, as `server.except(client)` gives them. */
export interface WebSocketsBroadcast {
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

/** The gateway's server: its clients, rooms and broadcast. */
export class WebSocketsGatewayServer {
  /** The port given to `@WebSocketGateway()`: 0 for the app's own server. */
  readonly port: number;
  /** The path this server owns, or `null` for every path. */
  readonly path: string | null;
  /** Whether it is served over TLS. */
  readonly secure: boolean;
  /** The bus channel of this port and path. */
  readonly channel: string;
  /** This server's id on the bus: the `origin` of what it publishes. */
  readonly #origin = randomUUID();
  readonly #server: WebSocketServer;
  readonly #bus: BroadcastBus;
  readonly #logger: Logger;
  readonly #rooms = new Map<string, Set<WebSocket>>();
  readonly #membership = new WeakMap<WebSocket, Set<string>>();
  readonly #unsubscribe: Promise<() => Promise<void>>;
  readonly #address: () => AddressInfo | null;
  readonly #maxRoomsPerClient: number | null;
  readonly #onRoomLimit: ((error: RoomLimitError) => void) | undefined;
  /** Broadcast messages not delivered since the last report, the clients they were for, and the last reason. */
  #dropped = 0;
  readonly #droppedClients = new Set<WebSocket>();
  #dropReason = '';
  #dropReport: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  /** Each client's last broadcast send and how many broadcast messages share its promise (see `#watch`). */
  readonly #lastSend = new WeakMap<WebSocket, { readonly promise: Promise<boolean>; messages: number }>();

  /** @internal Made by `WebSocketsAdapter.create()`. */
  constructor(init: {
    server: WebSocketServer;
    port: number;
    path: string | null;
    secure: boolean;
    bus: BroadcastBus;
    logger: Logger;
    address: () => AddressInfo | null;
    /** Most rooms one client can be in, `null` for no limit. */
    maxRoomsPerClient: number | null;
    /** Told of each `RoomLimitError` before it is thrown (the adapter turns it into the request's exception frame). */
    onRoomLimit?: (error: RoomLimitError) => void;
  }) {
    this.#server = init.server;
    this.port = init.port;
    this.path = init.path;
    this.secure = init.secure;
    this.#bus = init.bus;
    this.#logger = init.logger;
    this.#address = init.address;
    this.#maxRoomsPerClient = init.maxRoomsPerClient;
    this.#onRoomLimit = init.onRoomLimit;
    this.channel = `ws:${init.port}:${init.path ?? '*'}`;
    this.#unsubscribe = this.#bus.subscribe(this.channel, (envelope) => this.#deliver(envelope));
    this.#unsubscribe.catch((error: unknown) => this.#logger.error(`cannot subscribe to broadcast channel ${this.channel}`, String(error)));
  }

  /** The open connections of this server (on this instance). */
  get clients(): ReadonlySet<WebSocket> {
    return this.#server.clients;
  }

  /** The node-layer server underneath, for its events (`'connection'`, `'handshakeError'`, `'error'`). */
  get webSocketServer(): WebSocketServer {
    return this.#server;
  }

  /** The listening address of a gateway on its own port; `null` for one on the app's server. */
  address(): AddressInfo | null {
    return this.#address();
  }

  /** Most rooms one client can be in (`maxRoomsPerClient`), or `null` for no limit. */
  get maxRoomsPerClient(): number | null {
    return this.#maxRoomsPerClient;
  }

  /**
   * Adds `client` to `room` (creating the room). A client leaves all its rooms when it disconnects. Joining a room
   * the client is already in changes nothing. Thrown inside a message handler, the error reaches the client as an
   * exception frame that names the limit when the request has an `id` or the gateway uses `WebSocketsExceptionFilter`
   * (else Nest's "Internal server error").
   * @throws RoomLimitError when the client is already in `maxRoomsPerClient` rooms
   */
  join(client: WebSocket, room: string): void {
    if (client.readyState !== WebSocket.OPEN && client.readyState !== WebSocket.CONNECTING) return;
    let rooms = this.#membership.get(client);
    if (rooms?.has(room) === true) return;
    if (this.#maxRoomsPerClient !== null && (rooms?.size ?? 0) >= this.#maxRoomsPerClient) {
      const error = new RoomLimitError(this.#maxRoomsPerClient, room);
      this.#onRoomLimit?.(error);
      throw error;
    }
    let members = this.#rooms.get(room);
    if (members === undefined) {
      members = new Set();
      this.#rooms.set(room, members);
    }
    members.add(client);
    if (rooms === undefined) {
      rooms = new Set();
      this.#membership.set(client, rooms);
      client.once('close', () => this.#leaveAll(client));
    }
    rooms.add(room);
  }

  /** Removes `client` from `room` (an empty room disappears). */
  leave(client: WebSocket, room: string): void {
    const members = this.#rooms.get(room);
    if (members !== undefined) {
      members.delete(client);
      if (members.size === 0) this.#rooms.delete(room);
    }
    this.#membership.get(client)?.delete(room);
  }

  /** The rooms `client` is in. */
  roomsOf(client: WebSocket): ReadonlySet<string> {
    return this.#membership.get(client) ?? new Set();
  }

  /** The names of the rooms that have members on this instance. */
  get rooms(): ReadonlySet<string> {
    return new Set(this.#rooms.keys());
  }

  /**
   * Resolves once the server is subscribed to its broadcast channel. `WebSocketsModule` waits for it at start-up.
   * @throws what the bus's `subscribe()` threw (RedisUnavailableError, RedisClientMissingError)
   */
  async ready(): Promise<void> {
    await this.#unsubscribe;
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
      send: (data) => this.#publish({ room: null, data: toPayload(data) }, excluded),
      emit: (event, data) => this.#publish({ room: null, data: JSON.stringify({ event, data }) }, excluded),
    };
  }

  #room(room: string, excluded: ReadonlySet<WebSocket>): WebSocketsRoom {
    const members = this.#rooms.get(room) ?? EMPTY;
    return {
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

  #deliver(envelope: BroadcastEnvelope): void {
    if (envelope.origin === this.#origin) return;
    this.#deliverLocally(envelope, EMPTY);
  }

  /**
   * Sends to this instance's targets, the frame built once for all of them. Each send applies the client's own bound
   * and slow-consumer policy; a client that goes away while the broadcast waits only misses it, counted in one debug
   * line per second (a line per departed member would flood the log of a busy room).
   */
  #deliverLocally(envelope: BroadcastEnvelope, excluded: ReadonlySet<WebSocket>): void {
    const targets = envelope.room === null ? this.clients : (this.#rooms.get(envelope.room) ?? EMPTY);
    if (targets.size === 0) return;
    const message = new PreparedMessage(envelope.data);
    for (const client of targets) {
      if (client.readyState === WebSocket.OPEN && !excluded.has(client)) this.#watch(client, client.send(message));
    }
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
    this.#logger.debug(
      `${this.#dropped} broadcast message(s) on ${this.channel} not delivered to ${this.#droppedClients.size} client(s) ` +
        `whose connection closed before the message was sent (last: ${this.#dropReason})`,
    );
    this.#dropped = 0;
    this.#droppedClients.clear();
  }

  #leaveAll(client: WebSocket): void {
    const rooms = this.#membership.get(client);
    if (rooms === undefined) return;
    for (const room of [...rooms]) this.leave(client, room);
    this.#membership.delete(client);
  }
}
