/**
 * Room membership on one instance: which clients are in which room, both ways, with at most `maxRoomsPerClient` rooms
 * per client so that a client cannot grow the tables without bound. A client leaves all its rooms when it closes.
 * Membership is local: only broadcasts cross the bus.
 */
import { RoomLimitError } from '../errors.js';
import { WebSocket } from '../node/websocket.js';

const NO_ROOMS: ReadonlySet<string> = new Set();
const NO_MEMBERS: ReadonlySet<WebSocket> = new Set();

/** Told of each change of membership (presence announces them). */
export interface RoomsObserver {
  joined(client: WebSocket, room: string): void;
  left(client: WebSocket, room: string): void;
}

export class Rooms {
  readonly #members = new Map<string, Set<WebSocket>>();
  readonly #rooms = new WeakMap<WebSocket, Set<string>>();

  /**
   * @param maxRoomsPerClient most rooms one client can be in, `null` for no limit
   * @param onLimit told of each `RoomLimitError` before it is thrown
   * @param observer told of each join and leave that changed something
   */
  constructor(
    readonly maxRoomsPerClient: number | null,
    private readonly onLimit?: (error: RoomLimitError) => void,
    private readonly observer?: RoomsObserver,
  ) {}

  /**
   * Adds `client` to `room`. Joining a room the client is in changes nothing; a client that is closing joins nothing.
   * @throws RoomLimitError when the client is already in `maxRoomsPerClient` rooms
   */
  join(client: WebSocket, room: string): void {
    if (client.readyState !== WebSocket.OPEN && client.readyState !== WebSocket.CONNECTING) return;
    let rooms = this.#rooms.get(client);
    if (rooms?.has(room) === true) return;
    if (this.maxRoomsPerClient !== null && (rooms?.size ?? 0) >= this.maxRoomsPerClient) {
      const error = new RoomLimitError(this.maxRoomsPerClient, room);
      this.onLimit?.(error);
      throw error;
    }
    let members = this.#members.get(room);
    if (members === undefined) {
      members = new Set();
      this.#members.set(room, members);
    }
    members.add(client);
    if (rooms === undefined) {
      rooms = new Set();
      this.#rooms.set(client, rooms);
      client.once('close', () => this.leaveAll(client));
    }
    rooms.add(room);
    this.observer?.joined(client, room);
  }

  /** Removes `client` from `room` (an empty room disappears). */
  leave(client: WebSocket, room: string): void {
    const members = this.#members.get(room);
    let left = false;
    if (members !== undefined) {
      left = members.delete(client);
      if (members.size === 0) this.#members.delete(room);
    }
    this.#rooms.get(client)?.delete(room);
    if (left) this.observer?.left(client, room);
  }

  /** Removes `client` from every room. */
  leaveAll(client: WebSocket): void {
    const rooms = this.#rooms.get(client);
    if (rooms === undefined) return;
    for (const room of [...rooms]) this.leave(client, room);
    this.#rooms.delete(client);
  }

  /** The rooms `client` is in. */
  of(client: WebSocket): ReadonlySet<string> {
    return this.#rooms.get(client) ?? NO_ROOMS;
  }

  /** The members of `room` on this instance. */
  members(room: string): ReadonlySet<WebSocket> {
    return this.#members.get(room) ?? NO_MEMBERS;
  }

  /** The names of the rooms that have members on this instance. */
  names(): ReadonlySet<string> {
    return new Set(this.#members.keys());
  }

  clear(): void {
    this.#members.clear();
  }
}
