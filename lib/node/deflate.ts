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
 *
 * Compression bombs: a message is inflated once, up to 16x its compressed size (256 KiB at least); past that its
 * inflated size is computed without inflating (`inflatedSize`) before it is refused or inflated. See below.
 */
import { Buffer } from 'node:buffer';
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';

import { ProtocolError } from '../errors.js';
import type { CodecFactory, DeflateParams, MessageCodec } from '../protocol/compression.js';
import { OVER_LIMIT, inflatedSize } from './inflated-size.js';

/** RFC 7692 §7.2.1: a message's compressed data ends with an empty stored block, which the sender removes. */
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/**
 * zlib refuses an 8-bit window for raw deflate (Node silently raises it to 9). That is still within the RFC:
 * zlib never emits a distance larger than 2^windowBits - 262 (`MAX_DIST` = window minus `MIN_LOOKAHEAD`), so a
 * 9-bit compressor reaches back at most 250 bytes, which a peer with a 256-byte window inflates. zlib itself maps
 * 8 to 9 for the zlib format for the same reason. Inflating keeps the negotiated 8: zlib's inflate accepts it.
 */
const MIN_DEFLATE_WINDOW_BITS = 9;

/** Output chunk of the one-shot calls (Node's default): the most an inflate makes past its cap before it stops. */
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

// ------------------------------------------------------------------------------------------------------------------
// Inflated size without inflating
//
// Node's one-shot inflate writes every output byte into a fresh 16 KiB buffer and keeps them all until it returns or
// passes `maxOutputLength`, so refusing a bomb in one inflate costs the limit in buffers (1 MiB by default) that live
// until the next garbage collection; V8 forces one for external memory only past tens of MiB. Ten bombs at once held
// 10.5 MiB that way. So the first inflate of a message stops at FIRST_PASS_RATIO times its compressed size, which
// legitimate messages rarely pass; one that passes is sized by `inflatedSize`, which decodes the Huffman codes and
// adds up literal and match lengths without writing any output, then refused, or inflated into one buffer of its
// exact size. The scan is not done first: in JS it decodes at ~4 ns a symbol against zlib's ~1.5, which would double
// the cost of ordinary messages, while past 16x there are few symbols per output byte and it is cheap.
// ------------------------------------------------------------------------------------------------------------------

/**
 * The first inflate of a message stops at this many times its compressed size (or `FIRST_PASS_MIN`, if larger):
 * few legitimate messages compress better (JSON and text: 3-10x), and a bomb refused there leaves that much
 * garbage, not the limit. Deflate reaches 1032x (a 258-byte match in 2 bits), so past it the message is scanned.
 */
const FIRST_PASS_RATIO = 16;
/** Below this the first pass is never the one that stops: small messages keep one inflate whatever their ratio. */
const FIRST_PASS_MIN = 256 * 1024;

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
    const dictionary = this.inflateHistory?.dictionary();
    const input = Buffer.concat([data, TRAILER]);
    let out: Buffer | null;
    try {
      // Most messages inflate once, as they always did. Only one that inflates past FIRST_PASS_RATIO times its
      // compressed size (and past FIRST_PASS_MIN) is sized by a scan, then refused or inflated into one buffer of
      // its exact size (one byte spare, or Node, finding its buffer full, allocates another to look for more).
      const firstCap = Math.min(maxOutput, Math.max(FIRST_PASS_MIN, input.length * FIRST_PASS_RATIO));
      out = this.inflate(input, dictionary, firstCap, INFLATE_CHUNK_SIZE);
      if (out === null && firstCap < maxOutput) {
        const size = inflatedSize(input, dictionary?.length ?? 0, maxOutput);
        if (size !== OVER_LIMIT) out = this.inflate(input, dictionary, maxOutput, Math.max(constants.Z_MIN_CHUNK, size + 1));
      }
    } catch (error) {
      throw new ProtocolError(`invalid compressed data: ${String((error as Error | null)?.message)}`, { cause: error });
    }
    if (out === null || out.length > maxOutput) return null; // the latter only when maxOutput is 0: Node's cap is >= 1
    this.inflateHistory?.append(out);
    return compact(out);
  }

  /** One-shot inflate of a whole message; `null` as soon as the output passes `cap`. */
  private inflate(input: Buffer, dictionary: Buffer | undefined, cap: number, chunkSize: number): Buffer | null {
    try {
      return inflateRawSync(input, {
        windowBits: this.params.remoteMaxWindowBits,
        // Z_SYNC_FLUSH: a message ends on a sync point, not with a final block, so the stream is "unfinished".
        finishFlush: constants.Z_SYNC_FLUSH,
        dictionary,
        // Node stops and throws as soon as its output passes this: at most one chunk beyond the cap is made.
        maxOutputLength: Math.max(1, cap),
        chunkSize,
      });
    } catch (error) {
      if (isTooLarge(error)) return null;
      throw error;
    }
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
