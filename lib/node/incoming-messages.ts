/**
 * The messages of one connection that the application has not taken yet, and the `for await` readers waiting for
 * them (python-websockets' `Assembler` plays this part there). Messages go to a waiting reader at once, else into
 * a queue whose size, overhead included, the connection compares with `readHighWaterMark` to pause its socket.
 */

/** A pending `for await` read. */
type Reader = (result: IteratorResult<string | Buffer>) => void;

/**
 * What a waiting message costs besides its bytes (the Buffer or string object and its slot), counted against
 * `readHighWaterMark`: a flood of empty messages must fill the queue too.
 */
export const QUEUED_MESSAGE_OVERHEAD = 64;

const DONE: IteratorResult<string | Buffer> = Object.freeze({ done: true, value: undefined });

export class IncomingMessages {
  /** Bounded by `readHighWaterMark` through `bytes`, so a plain array (and its O(n) shift) stays small. */
  #queue: Array<string | Buffer> = [];
  #bytes = 0;
  /** Made on first use: most connections are read with `'message'` listeners. */
  #readers: Reader[] | null = null;
  #iterators = 0;

  /**
   * @param taken called when the application took a message from the queue (the connection may read again)
   * @param ended whether no further message will come (the connection closed, or stopped reading)
   */
  constructor(
    private readonly taken: () => void,
    private readonly ended: () => boolean,
  ) {}

  /** Bytes waiting, each message counted with `QUEUED_MESSAGE_OVERHEAD`. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Messages waiting. */
  get length(): number {
    return this.#queue.length;
  }

  /** `for await` loops in progress. */
  get iterators(): number {
    return this.#iterators;
  }

  /** Hands `data` to the oldest waiting reader, or queues it. */
  put(data: string | Buffer): void {
    const reader = this.#readers?.shift();
    if (reader !== undefined) {
      reader({ done: false, value: data });
      return;
    }
    this.#queue.push(data);
    this.#bytes += data.length + QUEUED_MESSAGE_OVERHEAD;
  }

  /** Takes the oldest waiting message. */
  shift(): string | Buffer | undefined {
    const message = this.#queue.shift();
    if (message !== undefined) this.#bytes -= message.length + QUEUED_MESSAGE_OVERHEAD;
    return message;
  }

  /** An iterator over the messages, in order; it ends once `ended()` holds and the queue is empty. */
  iterator(): AsyncIterator<string | Buffer> {
    this.#iterators++;
    let done = false;
    const finish = (): IteratorResult<string | Buffer> => {
      if (!done) {
        done = true;
        this.#iterators--;
      }
      return DONE;
    };
    return {
      next: (): Promise<IteratorResult<string | Buffer>> => {
        if (done) return Promise.resolve(DONE);
        const message = this.shift();
        if (message !== undefined) {
          this.taken();
          return Promise.resolve({ done: false, value: message });
        }
        if (this.ended()) return Promise.resolve(finish());
        return new Promise<IteratorResult<string | Buffer>>((resolve) => {
          (this.#readers ??= []).push((result) => resolve(result.done === true ? finish() : result));
        });
      },
      return: (): Promise<IteratorResult<string | Buffer>> => Promise.resolve(finish()),
    };
  }

  /** Drops every waiting message (after `close()` or a failure). */
  clear(): void {
    this.#queue = [];
    this.#bytes = 0;
  }

  /** Ends every pending read. */
  endReaders(): void {
    const readers = this.#readers;
    this.#readers = null;
    if (readers !== null) for (const reader of readers) reader(DONE);
  }
}
