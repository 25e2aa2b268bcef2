/**
 * permessage-deflate (RFC 7692) on Node's zlib, behind the `MessageCodec` seam of `protocol/compression.ts`.
 *
 * Each message is one synchronous, one-shot zlib call (`inflateRawSync` / `deflateRawSync`): no zlib stream lives
 * between messages. Context takeover (RFC 7692 §7.1.1) is kept by remembering the last 2^windowBits bytes of
 * uncompressed data on each side and handing them to the next call as the preset dictionary, which is exactly the
 * LZ77 history a persistent stream would have. Between messages a connection therefore holds only its two windows
 * (4 KiB each with the default 12 bits) instead of two zlib states (tens of KiB), and nothing when context
 * takeover is off.
 *
 * Why not a persistent stream: Node offers no public synchronous API on a zlib stream (the sync helpers close
 * their handle after one call), and the asynchronous one needs a thread-pool hop and a limiter per message.
 */
import { Buffer } from 'node:buffer';
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';

import { ProtocolError } from '../errors.js';
import type { CodecFactory, DeflateParams, MessageCodec } from '../protocol/compression.js';

/** RFC 7692 §7.2.1: a message's compressed data ends with an empty stored block, which the sender removes. */
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/**
 * zlib refuses an 8-bit window for raw deflate (Node silently raises it to 9). That is still within the RFC:
 * zlib never emits a distance larger than 2^windowBits - 262 (`MAX_DIST` = window minus `MIN_LOOKAHEAD`), so a
 * 9-bit compressor reaches back at most 250 bytes, which a peer with a 256-byte window inflates. zlib itself maps
 * 8 to 9 for the zlib format for the same reason. Inflating keeps the negotiated 8: zlib's inflate accepts it.
 */
const MIN_DEFLATE_WINDOW_BITS = 9;

/** Output chunk of the one-shot calls (Node's default): the most a zip bomb inflates past `maxOutput`. */
export const INFLATE_CHUNK_SIZE = constants.Z_DEFAULT_CHUNK;

/**
 * The last `capacity` bytes of a connection's uncompressed data in one direction: the LZ77 history that context
 * takeover carries from message to message. Allocated on first use, never grown.
 */
class SlidingWindow {
  private buffer: Buffer | null = null;
  private length = 0;

  constructor(private readonly capacity: number) {}

  /** The history as a view (valid until the next `append`), or `undefined` when there is none yet. */
  dictionary(): Buffer | undefined {
    return this.length === 0 ? undefined : this.buffer!.subarray(0, this.length);
  }

  /** Appends a message's uncompressed bytes, dropping the oldest beyond the capacity. Copies: callers own `data`. */
  append(data: Buffer): void {
    if (data.length === 0) return;
    const buffer = (this.buffer ??= Buffer.allocUnsafe(this.capacity));
    if (data.length >= this.capacity) {
      data.copy(buffer, 0, data.length - this.capacity);
      this.length = this.capacity;
      return;
    }
    const keep = Math.min(this.length, this.capacity - data.length);
    buffer.copyWithin(0, this.length - keep, this.length);
    data.copy(buffer, keep);
    this.length = keep + data.length;
  }
}

/**
 * A one-shot zlib call returns a view into a 16 KiB output chunk; a small message would keep the whole chunk alive
 * as long as the application (or the send queue) holds it. Copy such results into a buffer of their own size.
 */
function compact(out: Buffer): Buffer {
  return out.length < out.buffer.byteLength >>> 1 ? Buffer.from(out) : out;
}

/** Node's `maxOutputLength` error. Matched by code, not class: the error may come from another realm (vm, jest). */
function isTooLarge(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === 'ERR_BUFFER_TOO_LARGE';
}

class DeflateCodec implements MessageCodec {
  private readonly inflateHistory: SlidingWindow | null;
  private readonly deflateHistory: SlidingWindow | null;

  constructor(
    private readonly params: DeflateParams,
    private readonly memLevel: number,
  ) {
    this.inflateHistory = params.remoteNoContextTakeover ? null : new SlidingWindow(2 ** params.remoteMaxWindowBits);
    this.deflateHistory = params.localNoContextTakeover ? null : new SlidingWindow(2 ** params.localMaxWindowBits);
  }

  decompress(data: Buffer, maxOutput: number): Buffer | null {
    let out: Buffer;
    try {
      out = inflateRawSync(Buffer.concat([data, TRAILER]), {
        windowBits: this.params.remoteMaxWindowBits,
        // Z_SYNC_FLUSH: a message ends on a sync point, not with a final block, so the stream is "unfinished".
        finishFlush: constants.Z_SYNC_FLUSH,
        dictionary: this.inflateHistory?.dictionary(),
        // Node stops and throws as soon as its output passes this: at most one chunk beyond the limit is made.
        maxOutputLength: Math.max(1, maxOutput),
        chunkSize: INFLATE_CHUNK_SIZE,
      });
    } catch (error) {
      if (isTooLarge(error)) return null;
      throw new ProtocolError(`invalid compressed data: ${String((error as Error | null)?.message)}`, { cause: error });
    }
    if (out.length > maxOutput) return null; // only when maxOutput is 0: Node's cap is at least 1
    this.inflateHistory?.append(out);
    return compact(out);
  }

  compress(data: Buffer): Buffer {
    const out = deflateRawSync(data, {
      windowBits: Math.max(MIN_DEFLATE_WINDOW_BITS, this.params.localMaxWindowBits),
      memLevel: this.memLevel,
      finishFlush: constants.Z_SYNC_FLUSH,
      dictionary: this.deflateHistory?.dictionary(),
    });
    this.deflateHistory?.append(data);
    // A sync flush always ends with the empty stored block 00 00 ff ff; an empty message leaves the single 00 byte
    // that RFC 7692 §7.2.3.6 shows.
    return compact(out.subarray(0, out.length - TRAILER.length));
  }
}

/**
 * Builds the permessage-deflate codec of one connection on Node's zlib.
 * @param params the agreed parameters (window bits 8-15, context takeover on each side)
 * @param memLevel zlib memLevel (1-9) of the compressor
 */
export const createDeflateCodec: CodecFactory = (params: DeflateParams, memLevel: number): MessageCodec =>
  new DeflateCodec(params, memLevel);
