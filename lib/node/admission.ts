/**
 * Admission control of one `WebSocketServer`: the connection limits checked before the upgrade.
 *
 * A socket takes a slot when it arrives (own listener: as soon as TCP or TLS is up, before its request is read;
 * attached: when Node hands over the upgrade) and gives it back when it closes, so handshakes in progress count as
 * much as open connections: a client that trickles its headers holds a slot until `openTimeoutMs` cuts it. A socket
 * over a limit gets no slot and is answered 503 with `Retry-After` at once.
 *
 * The rate per address is a token bucket: a burst of `maxHandshakesPerSecondPerAddress` new connections, then one
 * every 1/N s. Only admitted sockets take a token, so a refused flood does not push the retry time further out.
 */
import { performance } from 'node:perf_hooks';
import type { ConnectionLimits } from '../config/index.js';
import { ConnectionLimitError } from '../errors.js';

/** A slot held by one socket; `release()` gives it back (calling it again does nothing). */
export interface AdmissionTicket {
  release(): void;
}

/** `Retry-After` for the concurrency limits: when a slot frees is unknown, so the client retries soon. */
export const CONCURRENCY_RETRY_AFTER_SECONDS = 1;
/** Address entries kept before the first sweep of idle ones (an entry is idle once its bucket is full again). */
const FIRST_SWEEP_AT = 1024;
const MS_PER_SECOND = 1000;

interface AddressState {
  open: number;
  /** Tokens left in the bucket at `refilledAt` (only with a rate limit). */
  tokens: number;
  refilledAt: number;
}

/** Counts a server's sockets, in total and per client address, and decides whether a new one may proceed. */
export class Admission {
  readonly #limits: ConnectionLimits;
  readonly #now: () => number;
  readonly #byAddress = new Map<string, AddressState>();
  #open = 0;
  #sweepAt = FIRST_SWEEP_AT;

  /**
   * @param limits the resolved limits (`config.connectionLimits`)
   * @param now a monotonic clock in ms (tests pass their own)
   */
  constructor(limits: ConnectionLimits, now: () => number = () => performance.now()) {
    this.#limits = limits;
    this.#now = now;
  }

  /** Whether any limit is set (when none is, the server skips the bookkeeping). */
  get enabled(): boolean {
    const { maxConnections, maxConnectionsPerAddress, maxHandshakesPerSecondPerAddress } = this.#limits;
    return maxConnections !== null || maxConnectionsPerAddress !== null || maxHandshakesPerSecondPerAddress !== null;
  }

  /** Sockets holding a slot. */
  get open(): number {
    return this.#open;
  }

  /** Client addresses with an entry (open sockets, or a bucket still refilling): bounded, for tests. */
  get trackedAddresses(): number {
    return this.#byAddress.size;
  }

  /**
   * Admits a socket from `address` (per-address limits do not apply when it is unknown).
   * @returns a ticket to release when the socket closes, or the error to refuse it with (503, `Retry-After`)
   */
  admit(address: string | undefined): AdmissionTicket | ConnectionLimitError {
    const { maxConnections, maxConnectionsPerAddress, maxHandshakesPerSecondPerAddress: rate } = this.#limits;
    if (maxConnections !== null && this.#open >= maxConnections) {
      return new ConnectionLimitError('maxConnections', maxConnections, CONCURRENCY_RETRY_AFTER_SECONDS);
    }
    let state: AddressState | undefined;
    const key = address === undefined ? undefined : normalizeAddress(address);
    if (key !== undefined && (maxConnectionsPerAddress !== null || rate !== null)) {
      const now = this.#now();
      state = this.#byAddress.get(key);
      if (state === undefined) {
        if (this.#byAddress.size >= this.#sweepAt) this.#sweep(now);
        state = { open: 0, tokens: rate ?? 0, refilledAt: now };
        this.#byAddress.set(key, state);
      }
      if (maxConnectionsPerAddress !== null && state.open >= maxConnectionsPerAddress) {
        return new ConnectionLimitError('maxConnectionsPerAddress', maxConnectionsPerAddress, CONCURRENCY_RETRY_AFTER_SECONDS);
      }
      if (rate !== null) {
        refill(state, rate, now);
        if (state.tokens < 1) {
          const waitSeconds = (1 - state.tokens) / rate;
          return new ConnectionLimitError('maxHandshakesPerSecondPerAddress', rate, Math.max(1, Math.ceil(waitSeconds)));
        }
        state.tokens -= 1;
      }
      state.open++;
    }
    this.#open++;
    let released = false;
    const held = state;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#open--;
        if (held === undefined || key === undefined) return;
        held.open--;
        // Without a rate limit an idle entry carries nothing; with one, it waits for its bucket to refill (sweep).
        if (held.open === 0 && rate === null && this.#byAddress.get(key) === held) this.#byAddress.delete(key);
      },
    };
  }

  /** Drops the entries of addresses with no socket and a full bucket; the next sweep waits for twice as many. */
  #sweep(now: number): void {
    const rate = this.#limits.maxHandshakesPerSecondPerAddress;
    for (const [key, state] of this.#byAddress) {
      if (state.open > 0) continue;
      if (rate !== null) {
        refill(state, rate, now);
        if (state.tokens < rate) continue;
      }
      this.#byAddress.delete(key);
    }
    this.#sweepAt = Math.max(FIRST_SWEEP_AT, this.#byAddress.size * 2);
  }
}

function refill(state: AddressState, rate: number, now: number): void {
  const elapsed = now - state.refilledAt;
  if (elapsed > 0) {
    state.tokens = Math.min(rate, state.tokens + (elapsed * rate) / MS_PER_SECOND);
    state.refilledAt = now;
  }
}

/** An IPv4 client of a dual-stack listener shows as `::ffff:a.b.c.d`: the same address as `a.b.c.d`. */
function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** Whether `admit()` refused. */
export function isRefusal(result: AdmissionTicket | ConnectionLimitError): result is ConnectionLimitError {
  return result instanceof ConnectionLimitError;
}
