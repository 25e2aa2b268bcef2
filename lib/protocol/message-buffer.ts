/**
 * The payload of the data message being received, assembled as its pieces arrive, in memory bounded by the
 * message's size whatever the fragmentation and the TCP segmentation.
 *
 * A message that arrives as one piece (the common case) is kept as a view into the received chunk: no copy. From
 * the second piece on, the bytes are copied into one buffer that this object owns: keeping each piece as a view of
 * its own would cost a Buffer object per piece (about 100 bytes of heap for a 1-byte fragment, and it pins the chunk
 * it points into), so a message of a million 1-byte fragments would hold 100 MiB. The buffer is sized from what
 * the frames declare: exactly the message's size once its last frame is known, otherwise doubling, and never more
 * than the message limit.
 */

/** Smallest buffer made for a message that arrives in pieces of unknown total size. */
const MIN_CAPACITY = 1024;
const EMPTY = Buffer.alloc(0);

export class MessageBuffer {
  /** The only piece so far, kept as a view; null once the bytes are copied into `owned`, or when there are none. */
  private first: Buffer | null = null;
  /** The message's bytes once it has more than one piece. */
  private owned: Buffer | null = null;
  private used = 0;

  /** @param maxSize the message limit: the buffer never grows past it */
  constructor(private readonly maxSize: number) {}

  /** Bytes received for this message so far. */
  get size(): number {
    return this.used;
  }

  /** The bytes received so far: a view valid until the next `append()` or `take()`. */
  get bytes(): Buffer {
    if (this.owned !== null) return this.owned;
    return this.first ?? EMPTY;
  }

  /**
   * Adds the next piece of the message.
   * @param piece payload bytes, in order
   * @param expected bytes of the message known to come after this piece (the rest of the current frame), and
   *   `final` when no further frame belongs to the message: the buffer is then sized exactly
   */
  append(piece: Buffer, expected: number, final: boolean): void {
    const length = piece.length;
    if (length === 0) return;
    if (this.owned === null && this.first === null) {
      this.first = piece;
      this.used = length;
      return;
    }
    const needed = this.used + length;
    let owned = this.owned;
    if (owned === null || owned.length < needed) {
      const known = needed + expected;
      const capacity = final ? known : Math.min(this.maxSize, Math.max(known, 2 * needed, MIN_CAPACITY));
      const grown = Buffer.allocUnsafe(Math.max(capacity, needed));
      this.bytes.copy(grown, 0, 0, this.used);
      this.owned = owned = grown;
      this.first = null;
    }
    piece.copy(owned, this.used);
    this.used = needed;
  }

  /** Returns the whole message and starts the next one empty. */
  take(): Buffer {
    const bytes = this.owned === null ? (this.first ?? EMPTY) : this.owned.subarray(0, this.used);
    this.reset();
    return bytes;
  }

  /** Forgets a partial message. */
  reset(): void {
    this.first = null;
    this.owned = null;
    this.used = 0;
  }
}
