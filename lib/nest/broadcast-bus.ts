/**
 * The seam between rooms/broadcast and where messages travel. A gateway server delivers every `broadcast()` and
 * `to(room).send()` to its own clients at once, publishes it on its channel with its `origin`, and delivers to its
 * own clients what it receives from that channel from other origins, so that a bus shared by several instances
 * (`RedisBroadcastBus` on Redis pub/sub) reaches every client of every instance exactly once. The default bus is
 * in-process: delivery is synchronous and nothing is serialized.
 */

/** One message on the bus. It must survive serialization: no functions, no client objects. */
export interface BroadcastEnvelope {
  /** The room to deliver to, or `null` for every client of the gateway. */
  readonly room: string | null;
  /** The payload: a string goes as a text message, a Buffer as a binary one. */
  readonly data: string | Buffer;
  /**
   * Who published it (an opaque id). A gateway server has delivered its own broadcasts to its clients already and
   * ignores envelopes that carry its id, so a bus may hand a publisher its own messages back.
   */
  readonly origin?: string;
}

/** Called with each envelope published on a channel. */
export type BroadcastListener = (envelope: BroadcastEnvelope) => void;

/**
 * Where broadcasts travel. Channels are named after the gateway's port and path (`ws:0:/ws`), which are the same on
 * every instance of the app.
 */
export interface BroadcastBus {
  /**
   * Sends `envelope` to the subscribers of `channel`. Delivering it back to its publisher is allowed (the publisher
   * skips its own `origin`); a bus that crosses processes may skip it instead (`RedisBroadcastBus` does, by instance
   * id).
   */
  publish(channel: string, envelope: BroadcastEnvelope): Promise<void>;
  /**
   * Starts delivering the envelopes of `channel` to `listener`.
   * @returns a function that stops the delivery
   */
  subscribe(channel: string, listener: BroadcastListener): Promise<() => Promise<void>>;
  /** Releases the bus's resources; called by the adapter on `app.close()` after every server is closed. */
  close?(): Promise<void>;
}

/** The default bus: one process, synchronous delivery, no serialization. */
export class InProcessBroadcastBus implements BroadcastBus {
  readonly #channels = new Map<string, Set<BroadcastListener>>();

  /** Delivers to the current subscribers before resolving. */
  async publish(channel: string, envelope: BroadcastEnvelope): Promise<void> {
    this.deliver(channel, envelope);
  }

  /**
   * Synchronous delivery, used by gateway servers so that a broadcast reaches the sockets in the same tick (an
   * unawaited `broadcast()` still sends in order with the `send()` calls around it).
   */
  deliver(channel: string, envelope: BroadcastEnvelope): void {
    const listeners = this.#channels.get(channel);
    if (listeners === undefined) return;
    for (const listener of [...listeners]) listener(envelope);
  }

  async subscribe(channel: string, listener: BroadcastListener): Promise<() => Promise<void>> {
    let listeners = this.#channels.get(channel);
    if (listeners === undefined) {
      listeners = new Set();
      this.#channels.set(channel, listeners);
    }
    listeners.add(listener);
    return async () => {
      listeners.delete(listener);
      if (listeners.size === 0) this.#channels.delete(channel);
    };
  }

  async close(): Promise<void> {
    this.#channels.clear();
  }
}
