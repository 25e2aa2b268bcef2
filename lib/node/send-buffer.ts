/**
 * The outgoing side of one connection: what the core queues goes into this tick's `OutgoingBatch` (written at the
 * next tick), sends wait in order while more than `writeHighWaterMark` bytes are unwritten and resume under
 * `writeLowWaterMark`, and nothing may hold more than `maxBufferedAmount` bytes for a peer that does not read: a
 * send past it applies the slow-consumer policy (`'close'`: drop what waits and close with 1013; `'drop'`: skip
 * this message). Every promise handed out is already handled, so a send nobody awaits can never become an
 * unhandled rejection; awaiting it still rejects.
 */
import type { Duplex } from 'node:stream';
import type { ResolvedConfig } from '../config/index.js';
import { SlowConsumerError } from '../errors.js';
import { SEND_EOF, State, type Connection } from '../protocol/connection.js';
import type { PreparedMessage } from '../protocol/prepared-message.js';
import { Fifo } from './fifo.js';
import { OutgoingBatch } from './outgoing-batch.js';

/** A message in the form the core takes it. */
export type OutgoingMessage = string | Buffer | PreparedMessage;

/** What the send buffer needs from its connection. */
export interface SendHost {
  /** The error for a send that cannot happen because the connection is not open. */
  notOpen(operation: string): Error;
  /** The error for a write that failed because the socket is gone. */
  closedError(): Error;
  /** A batch was written: the socket's buffer may be under the low water mark again. */
  written(): void;
  /** The `'close'` policy fired: the waiting sends are already rejected; close the connection with 1013. */
  slowConsumer(error: SlowConsumerError): void;
  /** A message was not sent (the `'drop'` policy, or a volatile send above the high water mark). */
  dropped(message: OutgoingMessage): void;
}

interface PendingSend {
  readonly message: OutgoingMessage;
  readonly text: boolean;
  readonly size: number;
  readonly resolve: (written: boolean) => void;
  readonly reject: (error: Error) => void;
}

const WRITTEN: Promise<boolean> = Promise.resolve(true);
const DROPPED: Promise<boolean> = Promise.resolve(false);
/** At most this many UTF-8 bytes per UTF-16 code unit: a cheap upper bound before an exact count. */
const MAX_UTF8_BYTES_PER_UNIT = 3;

function ignore(): void {}

/** A rejected promise that is already handled (awaiting it still throws). */
function rejected(error: Error): Promise<boolean> {
  const promise = Promise.reject(error);
  promise.catch(ignore);
  return promise;
}

function messageBytes(message: OutgoingMessage): number {
  if (typeof message === 'string') return Buffer.byteLength(message);
  return Buffer.isBuffer(message) ? message.length : message.payload.length;
}

export class SendBuffer {
  /** What this tick has sent, written at the next tick (see `flush`); null when nothing is waiting. */
  #batch: OutgoingBatch | null = null;
  /** Made on first use: most connections never wait. */
  #pending: Fifo<PendingSend> | null = null;
  #pendingBytes = 0;
  #backedUp = false;

  constructor(
    private readonly socket: Duplex,
    private readonly conn: Connection,
    private readonly config: Readonly<ResolvedConfig>,
    private readonly host: SendHost,
  ) {}

  /** Bytes not yet handed to the kernel: the socket's buffer, this tick's batch and the waiting sends. */
  get bufferedAmount(): number {
    return this.unwritten + this.#pendingBytes;
  }

  /** Bytes handed to the socket or batched but not yet to the kernel. */
  get unwritten(): number {
    return this.socket.writableLength + (this.#batch === null ? 0 : this.#batch.bytes);
  }

  /**
   * Sends one message under the water marks, the bound and the policy.
   * @returns resolves `true` once written, `false` when dropped; rejects (already handled) with
   *   `SlowConsumerError` under the `'close'` policy or when the connection closes before the message is written
   */
  send(message: OutgoingMessage, text: boolean, volatile: boolean): Promise<boolean> {
    const config = this.config;
    const buffered = this.bufferedAmount;
    const waiting = this.#pending !== null && this.#pending.length > 0;
    if (volatile && (waiting || buffered > config.writeHighWaterMark)) {
      this.host.dropped(message);
      return DROPPED;
    }
    // A message larger than the bound still goes when nothing else waits; otherwise the bound holds exactly.
    if (buffered > 0 && this.#wouldPass(message, config.maxBufferedAmount - buffered)) {
      if (config.slowConsumer === 'drop') {
        this.host.dropped(message);
        return DROPPED;
      }
      const error = new SlowConsumerError(config.maxBufferedAmount);
      this.rejectWaiting(error);
      this.host.slowConsumer(error);
      return rejected(error);
    }
    if (waiting || buffered > config.writeHighWaterMark) {
      const size = messageBytes(message);
      const promise = new Promise<boolean>((resolve, reject) => {
        (this.#pending ??= new Fifo()).push({ message, text, size, resolve, reject });
      });
      this.#pendingBytes += size;
      promise.catch(ignore);
      return promise;
    }
    return this.#sendNow(message, text);
  }

  /** Whether `message` is larger than `room` bytes; strings are counted exactly only when close to it. */
  #wouldPass(message: OutgoingMessage, room: number): boolean {
    if (typeof message === 'string' && message.length * MAX_UTF8_BYTES_PER_UNIT <= room) return false;
    return messageBytes(message) > room;
  }

  #sendNow(message: OutgoingMessage, text: boolean): Promise<boolean> {
    try {
      if (typeof message === 'string' || Buffer.isBuffer(message)) {
        if (text) this.conn.sendText(message);
        else this.conn.sendBinary(typeof message === 'string' ? Buffer.from(message) : message);
      } else {
        this.conn.sendPrepared(message);
      }
    } catch (error) {
      return rejected(error as Error);
    }
    return this.flush();
  }

  /**
   * Takes everything the core has queued into this tick's batch, written at the next tick: the replies to all the
   * messages of one socket read (whether listeners answer at once or after an await, as Nest handlers do) leave in
   * one system call. Resolves once the batch has been handed to the kernel; every send of one tick shares that
   * promise. The end of the stream (SEND_EOF) writes the batch at once and ends the socket.
   */
  flush(): Promise<boolean> {
    const chunks = this.conn.dataToSend();
    if (chunks.length === 0) return WRITTEN;
    const socket = this.socket;
    if (socket.destroyed || socket.writableEnded) return rejected(this.host.closedError());
    let eof = false;
    let batch = this.#batch;
    for (let i = 0; i < chunks.length; i++) {
      const chunk = chunks[i]!;
      if (chunk === SEND_EOF) {
        eof = true;
        continue;
      }
      if (batch === null) {
        batch = this.#batch = new OutgoingBatch();
        process.nextTick(SendBuffer.#writeBatch, this);
      }
      batch.add(chunk);
    }
    const done = batch === null ? WRITTEN : batch.promise();
    if (eof) {
      SendBuffer.#writeBatch(this);
      socket.end();
    }
    return done;
  }

  /**
   * Writes this tick's batch inside one cork so that Node makes one `writev`. Before batching, every header and
   * payload was a `socket.write()` of its own, and Node's writable machinery for 20 chunks cost more than copying
   * the small ones together.
   */
  static #writeBatch(self: SendBuffer): void {
    const batch = self.#batch;
    if (batch === null) return;
    self.#batch = null;
    const socket = self.socket;
    if (socket.destroyed || socket.writableEnded) {
      batch.settle(self.host.closedError());
      return;
    }
    const pieces = batch.pieces();
    const last = pieces.length - 1;
    socket.cork();
    for (let i = 0; i < last; i++) socket.write(pieces[i]!);
    socket.write(pieces[last]!, (error) => {
      batch.settle(error ? self.host.closedError() : null);
      self.#onWritten();
    });
    socket.uncork();
  }

  /** A write completed: let waiting sends go once under the low water mark, and tell the connection. */
  #onWritten(): void {
    if (this.#pending !== null && this.#pending.length > 0 && this.unwritten < this.config.writeLowWaterMark) this.flushWaiting(false);
    this.host.written();
  }

  /** Whether the socket's write buffer is over `writeHighWaterMark`, with hysteresis down to `writeLowWaterMark`. */
  backedUp(): boolean {
    const unwritten = this.socket.writableLength;
    if (this.#backedUp) {
      if (unwritten < this.config.writeLowWaterMark) this.#backedUp = false;
    } else if (unwritten > this.config.writeHighWaterMark) {
      this.#backedUp = true;
    }
    return this.#backedUp;
  }

  /** Whether `backedUp()` said so last time (without measuring again). */
  get wasBackedUp(): boolean {
    return this.#backedUp;
  }

  /** Sends waiting messages in order until the buffer is over the high water mark again (or all of them). */
  flushWaiting(all: boolean): void {
    const pending = this.#pending;
    while (pending !== null && pending.length > 0) {
      if (this.conn.state !== State.OPEN || this.socket.destroyed) {
        // One error for all of them: building one (and its stack trace) per waiting send cost 5 µs each.
        this.rejectWaiting(this.host.notOpen('send'));
        return;
      }
      if (!all && this.unwritten > this.config.writeHighWaterMark) break;
      const next = pending.shift()!;
      this.#pendingBytes -= next.size;
      this.#sendNow(next.message, next.text).then(next.resolve, next.reject);
    }
  }

  /** Rejects every waiting send with `error` and forgets them (their memory is freed at once). */
  rejectWaiting(error: Error): void {
    const pending = this.#pending;
    this.#pendingBytes = 0;
    if (pending === null || pending.length === 0) return;
    for (const send of pending.drain()) send.reject(error);
  }
}
