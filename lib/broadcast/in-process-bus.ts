/** The default bus: one process, synchronous delivery, no serialization. */
import type { BroadcastBus, BroadcastBusHealth, BroadcastEnvelope, BroadcastListener } from './broadcast-bus.js';

export class InProcessBroadcastBus implements BroadcastBus {
  /** Channel -> origin -> listener. */
  readonly #channels = new Map<string, Map<string, BroadcastListener>>();

  /** Delivers to the other subscribers before resolving. */
  async publish(channel: string, envelope: BroadcastEnvelope): Promise<void> {
    this.deliver(channel, envelope);
  }

  /**
   * Synchronous delivery, so that a broadcast reaches the sockets in the same tick (an unawaited `broadcast()` still
   * sends in order with the `send()` calls around it).
   */
  deliver(channel: string, envelope: BroadcastEnvelope): void {
    const listeners = this.#channels.get(channel);
    if (listeners === undefined) return;
    for (const [origin, listener] of [...listeners]) if (origin !== envelope.origin) listener(envelope);
  }

  async subscribe(channel: string, origin: string, listener: BroadcastListener): Promise<() => Promise<void>> {
    let listeners = this.#channels.get(channel);
    if (listeners === undefined) {
      listeners = new Map();
      this.#channels.set(channel, listeners);
    }
    listeners.set(origin, listener);
    return async () => {
      if (listeners.get(origin) === listener) listeners.delete(origin);
      if (listeners.size === 0) this.#channels.delete(channel);
    };
  }

  async close(): Promise<void> {
    this.#channels.clear();
  }

  /** Always reachable and subscribed: it is this process. */
  async health(): Promise<BroadcastBusHealth> {
    return { kind: 'in-process', reachable: true, subscribed: true, lagMs: 0 };
  }
}
