/**
 * Presence: who is in a room across every instance, with the data the app chose to expose (`setClientData()`), and
 * opt-in `presence` events to a room's members when someone joins or leaves.
 *
 * Each instance owns the entries of its own clients and announces every change on the bus (`pj` / `pl`) with its
 * own sequence number; every instance keeps a copy of every other instance's entries. A copy that misses a change
 * (a gap in the numbers, or a heartbeat with a newer number) asks that instance for a snapshot (`psync` / `psnap`),
 * so copies converge within a heartbeat of a lost message: presence is eventually consistent. An instance that says
 * goodbye (`bye`, on close) is forgotten at once; one that dies silently is forgotten when it has been silent for
 * `clusterExpiryMs` (see `ClusterNode`), and its entries go with it (with `left` events).
 *
 * Each instance sends the events of a change to its own members of the room, from its copy: no event crosses the
 * bus twice, and a member sees the events in the order its instance learnt the changes.
 */
import type { WebSocket } from '../node/websocket.js';
import type { ClusterMessage, ClusterMessageBody, PresenceTuple } from './cluster-messages.js';
import type { BroadcastLogger } from './logger.js';

/** One member of a room, on some instance. */
export interface PresenceMember {
  /** The client's `id`. */
  readonly id: string;
  /** The instance it is connected to (`server.instanceId`). */
  readonly instance: string;
  /** What `server.setClientData(client, data)` gave (`null` when nothing). */
  readonly data: unknown;
}

/** How `server.trackPresence()` tracks. Give the same on every instance. */
export interface PresenceOptions {
  /** Which rooms are tracked. @default every room */
  readonly rooms?: (room: string) => boolean;
  /**
   * Send `{"event":"presence","data":{"room":R,"joined":ID}}` (and `"left":ID`) to the room's members when a client
   * joins or leaves a tracked room (the joining client gets its own `joined`); a function chooses the members that
   * get them (those that asked, say). @default false
   */
  readonly events?: boolean | ((member: WebSocket, room: string) => boolean);
}

/** What presence needs from its instance. */
export interface PresenceHost {
  readonly instanceId: string;
  readonly logger: BroadcastLogger;
  /** Publishes a control message to every instance. */
  publish(body: ClusterMessageBody): void;
  /** Sends text to this instance's members of `room` only (those `accept` accepts). */
  deliver(room: string, text: string, accept?: (member: WebSocket) => boolean): void;
  /** This instance's clients, with their rooms (when tracking starts). */
  memberships(): Iterable<readonly [WebSocket, ReadonlySet<string>]>;
  /** The client's data (`setClientData()`). */
  dataOf(client: WebSocket): unknown;
}

/** Room -> client id -> data: one instance's entries. */
type Entries = Map<string, Map<string, unknown>>;

interface InstanceEntries {
  /** The sequence number of the last change applied. */
  seq: number;
  readonly rooms: Entries;
  /** When a snapshot was last asked for (ms since the epoch), to ask at most once per second. */
  syncAskedAt: number;
}

/** Snapshots are asked of one instance at most once per this period. */
const SYNC_PERIOD_MS = 1000;

export class Presence {
  readonly #host: PresenceHost;
  #tracked: ((room: string) => boolean) | null = null;
  #events: boolean | ((member: WebSocket, room: string) => boolean) = false;
  /** This instance's change counter. */
  #seq = 0;
  /** Every instance's entries, this one's included. */
  readonly #instances = new Map<string, InstanceEntries>();
  #snapshotScheduled = false;
  #closed = false;

  constructor(host: PresenceHost) {
    this.#host = host;
    this.#instances.set(host.instanceId, { seq: 0, rooms: new Map(), syncAskedAt: 0 });
  }

  /** Whether `track()` was called. */
  get enabled(): boolean {
    return this.#tracked !== null;
  }

  /** This instance's change counter, carried by its heartbeats. */
  get seq(): number {
    return this.#seq;
  }

  /** Starts tracking (again, with new options): this instance's members of tracked rooms are announced. */
  track(options: PresenceOptions = {}): void {
    if (options.rooms !== undefined && typeof options.rooms !== 'function') {
      throw new TypeError(`trackPresence option rooms must be a function (room) => boolean; got ${String(options.rooms)}`);
    }
    if (options.events !== undefined && typeof options.events !== 'boolean' && typeof options.events !== 'function') {
      throw new TypeError(`trackPresence option events must be a boolean or a function (member, room) => boolean; got ${String(options.events)}`);
    }
    this.#tracked = options.rooms ?? (() => true);
    this.#events = options.events ?? false;
    for (const [client, rooms] of this.#host.memberships()) for (const room of rooms) this.joined(client, room);
  }

  /** The members of `room` on every instance, as this instance knows them. */
  members(room: string): PresenceMember[] {
    const members: PresenceMember[] = [];
    for (const [instance, entries] of this.#instances) {
      const inRoom = entries.rooms.get(room);
      if (inRoom !== undefined) for (const [id, data] of inRoom) members.push({ id, instance, data });
    }
    return members;
  }

  /** How many entries this instance holds, every instance's included. */
  get size(): number {
    let size = 0;
    for (const entries of this.#instances.values()) for (const inRoom of entries.rooms.values()) size += inRoom.size;
    return size;
  }

  // --- This instance's changes ------------------------------------------------------------------------------

  /** A local client joined `room` (or its data changed while in it). */
  joined(client: WebSocket, room: string): void {
    if (this.#closed || this.#tracked === null || !this.#tracked(room)) return;
    const data = this.#host.dataOf(client);
    const id = client.id;
    const added = this.#set(this.#local.rooms, room, id, data);
    this.#local.seq = ++this.#seq;
    this.#host.publish({ t: 'pj', seq: this.#seq, room, id, data });
    if (added) this.#event(room, 'joined', id);
  }

  /** A local client left `room` (or closed). */
  left(client: WebSocket, room: string): void {
    if (this.#closed || this.#tracked === null) return;
    const id = client.id;
    if (!this.#delete(this.#local.rooms, room, id)) return;
    this.#local.seq = ++this.#seq;
    this.#host.publish({ t: 'pl', seq: this.#seq, room, id });
    this.#event(room, 'left', id);
  }

  /** A local client's data changed: announced again in each tracked room it is in. */
  dataChanged(client: WebSocket, rooms: ReadonlySet<string>): void {
    for (const room of rooms) if (this.#local.rooms.get(room)?.has(client.id) === true) this.joined(client, room);
  }

  /** Stops announcing: this instance is closing (its `bye` removes its entries everywhere). */
  close(): void {
    this.#closed = true;
  }

  // --- Other instances' changes -----------------------------------------------------------------------------

  /** Applies a control message about presence from another instance. */
  receive(message: ClusterMessage): void {
    if (this.#tracked === null || this.#closed) return;
    switch (message.t) {
      case 'hb': {
        const entries = this.#entriesOf(message.from);
        if (message.seq > entries.seq) this.#askSnapshot(message.from, entries);
        return;
      }
      case 'pj':
      case 'pl': {
        const entries = this.#entriesOf(message.from);
        if (message.seq <= entries.seq) return;
        if (message.seq !== entries.seq + 1) {
          this.#askSnapshot(message.from, entries);
          return;
        }
        entries.seq = message.seq;
        if (message.t === 'pj') {
          if (this.#set(entries.rooms, message.room, message.id, message.data)) this.#event(message.room, 'joined', message.id);
        } else if (this.#delete(entries.rooms, message.room, message.id)) {
          this.#event(message.room, 'left', message.id);
        }
        return;
      }
      case 'psync':
        if (message.to === this.#host.instanceId) this.#scheduleSnapshot();
        return;
      case 'psnap':
        this.#applySnapshot(message.from, message.seq, message.entries);
        return;
      default:
        return;
    }
  }

  /** Forgets an instance that said goodbye or went silent: its members leave (with events). */
  drop(instance: string): void {
    const entries = this.#instances.get(instance);
    if (entries === undefined || instance === this.#host.instanceId) return;
    this.#instances.delete(instance);
    for (const [room, inRoom] of entries.rooms) for (const id of inRoom.keys()) this.#event(room, 'left', id);
  }

  get #local(): InstanceEntries {
    return this.#instances.get(this.#host.instanceId)!;
  }

  #entriesOf(instance: string): InstanceEntries {
    let entries = this.#instances.get(instance);
    if (entries === undefined) {
      entries = { seq: 0, rooms: new Map(), syncAskedAt: 0 };
      this.#instances.set(instance, entries);
    }
    return entries;
  }

  #askSnapshot(instance: string, entries: InstanceEntries): void {
    const now = Date.now();
    if (now - entries.syncAskedAt < SYNC_PERIOD_MS) return;
    entries.syncAskedAt = now;
    this.#host.publish({ t: 'psync', to: instance });
  }

  /** Several instances may ask at once (a new one starting): one snapshot answers them all. */
  #scheduleSnapshot(): void {
    if (this.#snapshotScheduled) return;
    this.#snapshotScheduled = true;
    setImmediate(() => {
      this.#snapshotScheduled = false;
      if (this.#closed) return;
      const entries: PresenceTuple[] = [];
      for (const [room, inRoom] of this.#local.rooms) for (const [id, data] of inRoom) entries.push([room, id, data]);
      this.#host.publish({ t: 'psnap', seq: this.#seq, entries });
    });
  }

  #applySnapshot(instance: string, seq: number, tuples: readonly PresenceTuple[]): void {
    if (instance === this.#host.instanceId) return;
    const entries = this.#entriesOf(instance);
    if (seq < entries.seq) return;
    const next: Entries = new Map();
    for (const [room, id, data] of tuples) this.#set(next, room, id, data);
    const previous = entries.rooms;
    entries.seq = seq;
    this.#instances.set(instance, { seq, rooms: next, syncAskedAt: entries.syncAskedAt });
    for (const [room, inRoom] of previous) {
      for (const id of inRoom.keys()) if (next.get(room)?.has(id) !== true) this.#event(room, 'left', id);
    }
    for (const [room, inRoom] of next) {
      for (const id of inRoom.keys()) if (previous.get(room)?.has(id) !== true) this.#event(room, 'joined', id);
    }
  }

  /** Sets an entry; true when it is new. */
  #set(rooms: Entries, room: string, id: string, data: unknown): boolean {
    let inRoom = rooms.get(room);
    if (inRoom === undefined) {
      inRoom = new Map();
      rooms.set(room, inRoom);
    }
    const added = !inRoom.has(id);
    inRoom.set(id, data ?? null);
    return added;
  }

  /** Deletes an entry; true when it was there. */
  #delete(rooms: Entries, room: string, id: string): boolean {
    const inRoom = rooms.get(room);
    if (inRoom === undefined || !inRoom.delete(id)) return false;
    if (inRoom.size === 0) rooms.delete(room);
    return true;
  }

  #event(room: string, kind: 'joined' | 'left', id: string): void {
    const events = this.#events;
    if (events === false || this.#tracked === null || !this.#tracked(room)) return;
    const text = JSON.stringify({ event: 'presence', data: { room, [kind]: id } });
    this.#host.deliver(room, text, events === true ? undefined : (member) => events(member, room));
  }
}
