/**
 * What one connection sends within one tick, written at the next tick in one system call: runs of small chunks
 * (frame headers, payloads up to 1 KiB) are copied into one buffer, larger payloads and broadcast frames are written
 * as they are (never copied to prepend a header), all inside one cork so that Node makes one `writev`. Every send of
 * the tick shares one promise, made only when a sender asks for it.
 */

/**
 * Chunks up to this size are copied together rather than written one by one (see `pieces()`). Copying saves Node's
 * per-chunk write cost, which only small chunks feel. A larger chunk is often a broadcast frame that every member of
 * a room shares: copied into each member's batch, it becomes garbage multiplied by the room's size, which the
 * allocator keeps as resident memory long after the messages are gone.
 */
const COALESCE_MAX_CHUNK = 1024;
/** The largest buffer that small chunks are copied into; past it a new one starts. */
const COALESCE_MAX_RUN = 65_536;
const WRITTEN: Promise<boolean> = Promise.resolve(true);

function ignore(): void {}

export class OutgoingBatch {
  readonly chunks: Buffer[] = [];
  bytes = 0;
  #promise: Promise<boolean> | undefined;
  #resolve: ((written: boolean) => void) | undefined;
  #reject: ((error: Error) => void) | undefined;
  #settled: Error | null | undefined;

  add(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
  }

  /**
   * Resolves with `true` once the batch is written, or rejects; made on first use, shared by every send of the tick.
   * It is already handled: internal flushes (pongs, close frames, keepalive pings) drop it, and a write failing
   * because the peer reset must not become an unhandled rejection (a crash).
   */
  promise(): Promise<boolean> {
    if (this.#promise === undefined) {
      if (this.#settled !== undefined) {
        this.#promise = this.#settled === null ? WRITTEN : Promise.reject(this.#settled);
      } else {
        this.#promise = new Promise<boolean>((resolve, reject) => {
          this.#resolve = resolve;
          this.#reject = reject;
        });
      }
      this.#promise.catch(ignore);
    }
    return this.#promise;
  }

  settle(error: Error | null): void {
    this.#settled = error;
    if (error === null) this.#resolve?.(true);
    else this.#reject?.(error);
  }

  /** The buffers to write: each run of small chunks joined into one, large chunks as they are. */
  pieces(): Buffer[] {
    const chunks = this.chunks;
    if (chunks.length === 1) return chunks;
    const pieces: Buffer[] = [];
    let runStart = 0;
    let runBytes = 0;
    const endRun = (end: number): void => {
      if (end - runStart === 1) pieces.push(chunks[runStart]!);
      else if (end > runStart) pieces.push(Buffer.concat(chunks.slice(runStart, end), runBytes));
      runBytes = 0;
    };
    for (let i = 0; i < chunks.length; i++) {
      const length = chunks[i]!.length;
      if (length > COALESCE_MAX_CHUNK) {
        endRun(i);
        pieces.push(chunks[i]!);
        runStart = i + 1;
      } else {
        if (runBytes + length > COALESCE_MAX_RUN) {
          endRun(i);
          runStart = i;
        }
        runBytes += length;
      }
    }
    endRun(chunks.length);
    return pieces;
  }
}
