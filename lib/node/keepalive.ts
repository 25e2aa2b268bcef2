/**
 * The keepalive pings of every connection with the same `pingIntervalMs`, on one timer instead of one per
 * connection. Connections are kept in the order they were scheduled, which is the order they fall due (same
 * interval), so the timer is armed for the first one and each firing pings those whose interval has elapsed.
 */

/** What the queue calls when a connection's interval has elapsed. */
export interface KeepaliveTarget {
  keepaliveDue(): void;
}

export class KeepaliveQueue {
  static readonly #queues = new Map<number, KeepaliveQueue>();
  readonly #interval: number;
  /** Connection -> when its ping is due (performance.now() ms); Map order is scheduling order. */
  readonly #due = new Map<KeepaliveTarget, number>();
  #timer: NodeJS.Timeout | undefined;

  private constructor(interval: number) {
    this.#interval = interval;
  }

  static for(interval: number): KeepaliveQueue {
    let queue = KeepaliveQueue.#queues.get(interval);
    if (queue === undefined) {
      queue = new KeepaliveQueue(interval);
      KeepaliveQueue.#queues.set(interval, queue);
    }
    return queue;
  }

  /** Calls `target.keepaliveDue()` once the interval has elapsed from now (replacing an earlier schedule). */
  schedule(target: KeepaliveTarget): void {
    this.#due.delete(target);
    const due = performance.now() + this.#interval;
    this.#due.set(target, due);
    if (this.#timer === undefined) this.#arm(due);
  }

  cancel(target: KeepaliveTarget): void {
    if (!this.#due.delete(target) || this.#due.size > 0 || this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(due: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#fire(), Math.max(1, Math.ceil(due - performance.now())));
    this.#timer.unref();
  }

  #fire(): void {
    this.#timer = undefined;
    const now = performance.now();
    for (const [target, due] of this.#due) {
      if (due > now) {
        this.#arm(due);
        return;
      }
      this.#due.delete(target);
      try {
        target.keepaliveDue();
      } catch {
        // A ping that cannot be sent (the socket is going away) concerns that connection only.
      }
    }
  }
}
