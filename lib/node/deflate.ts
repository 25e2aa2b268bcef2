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

/** `inflatedSize` result when the output passes the limit. */
export const OVER_LIMIT = -1;
/** `HuffmanCode.decode` results besides an entry. */
const INVALID_CODE = -1;
const MORE_INPUT = -2;

/** RFC 1951 §3.2.5. */
const LENGTH_BASE = Uint16Array.of(3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258);
const LENGTH_EXTRA = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0);
const DIST_BASE = Uint16Array.of(1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577);
const DIST_EXTRA = Uint8Array.of(0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13);
/** RFC 1951 §3.2.7: the order in which the code length code's lengths are sent. */
const CODE_LENGTH_ORDER = Uint8Array.of(16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15);

/** zlib's error for corrupt data, with the code and message zlib gives (`Z_DATA_ERROR`). */
function dataError(message: string): Error {
  return Object.assign(new Error(message), { code: 'Z_DATA_ERROR', errno: constants.Z_DATA_ERROR });
}

/**
 * The input bits of one scan, least significant first as RFC 1951 packs them. `bits` holds `count` (at most 30, so
 * never the sign bit) unread bits; bits past the end of the input read as zeros and are never counted in `count`.
 */
class BitReader {
  data: Uint8Array = Buffer.alloc(0);
  pos = 0;
  bits = 0;
  count = 0;
  /** The input ended inside a symbol or a block: nothing more will come out. */
  ended = false;

  reset(data: Uint8Array): void {
    this.data = data;
    this.ended = false;
    this.pos = 0;
    this.bits = 0;
    this.count = 0;
  }

  /** Loads whole bytes until at least 15 bits are held or the input ends. */
  fill(): void {
    const data = this.data;
    while (this.count < 15 && this.pos < data.length) {
      this.bits |= data[this.pos++]! << this.count;
      this.count += 8;
    }
  }

  /** Makes `n` (<= 15) bits available; false when the input ends first. */
  need(n: number): boolean {
    if (this.count < n) this.fill();
    return this.count >= n;
  }

  /** Takes `n` available bits as a number. */
  take(n: number): number {
    const value = this.bits & ((1 << n) - 1);
    this.bits >>>= n;
    this.count -= n;
    return value;
  }
}

/**
 * A canonical Huffman code (RFC 1951 §3.2.2) for decoding only: a table indexed by the next `fastBits` bits of the
 * stream, whose entries are `symbol << 4 | length` (0 for a longer or unused code), and the per-length counts and
 * sorted symbols that decode the longer codes bit by bit, as zlib's `puff` does.
 */
class HuffmanCode {
  private readonly lengthCount = new Uint16Array(16);
  private readonly nextCode = new Uint16Array(16);
  private readonly offsets = new Uint16Array(16);
  private readonly symbols: Uint16Array;
  /** Entries by the next `fastBits` bits: `symbol << 4 | length`, or 0 for a longer or unused code. */
  readonly fast: Uint16Array;
  readonly fastMask: number;
  /** Longest code length in use; 0 when no symbol has a code. */
  maxLength = 0;

  constructor(
    symbols: number,
    private readonly fastBits: number,
  ) {
    this.symbols = new Uint16Array(symbols);
    this.fast = new Uint16Array(1 << fastBits);
    this.fastMask = (1 << fastBits) - 1;
  }

  /**
   * Builds the code from `n` code lengths at `lengths[start]`. Returns the number of unused codes of the longest
   * length (0 when the code is complete), or -1 when the lengths are over-subscribed.
   */
  build(lengths: Uint8Array, start: number, n: number): number {
    const { lengthCount, nextCode, offsets, symbols, fast, fastBits } = this;
    lengthCount.fill(0);
    for (let i = 0; i < n; i++) lengthCount[lengths[start + i]!]!++;
    lengthCount[0] = 0;
    let max = 15;
    while (max > 0 && lengthCount[max] === 0) max--;
    this.maxLength = max;
    let left = 1;
    for (let length = 1; length <= 15; length++) {
      left = (left << 1) - lengthCount[length]!;
      if (left < 0) return -1;
    }
    let code = 0;
    offsets[1] = 0;
    for (let length = 1; length <= 15; length++) {
      code = (code + lengthCount[length - 1]!) << 1;
      nextCode[length] = code;
      if (length < 15) offsets[length + 1] = offsets[length]! + lengthCount[length]!;
    }
    fast.fill(0);
    for (let symbol = 0; symbol < n; symbol++) {
      const length = lengths[start + symbol]!;
      if (length === 0) continue;
      symbols[offsets[length]!++] = symbol;
      const canonical = nextCode[length]!++;
      if (length > fastBits) continue;
      // The stream sends a code's most significant bit first: index the table by the code's bits reversed.
      let reversed = 0;
      for (let bit = 0; bit < length; bit++) reversed |= ((canonical >>> bit) & 1) << (length - 1 - bit);
      const entry = (symbol << 4) | length;
      for (let index = reversed; index < fast.length; index += 1 << length) fast[index] = entry;
    }
    // `offsets` now points past each length's symbols: move it back for `slow`.
    for (let length = 15; length >= 1; length--) offsets[length] = offsets[length]! - lengthCount[length]!;
    return left;
  }

  /**
   * Decodes the next symbol from `bits`, which holds `count` bits (>= 15 unless the input ends), without consuming
   * it: its entry, `INVALID_CODE` for an unused code, or `MORE_INPUT` when the input ends inside it. Bits past the
   * end read as zeros, so a code found within the `count` bits held is the right one.
   */
  decode(bits: number, count: number): number {
    const entry = this.fast[bits & this.fastMask]!;
    const found = entry !== 0 ? entry : this.slow(bits);
    if (found === INVALID_CODE) return count < this.maxLength ? MORE_INPUT : INVALID_CODE;
    return (found & 15) > count ? MORE_INPUT : found;
  }

  /** Decodes a code longer than the table from the low 15 bits of `bits`: its entry, or `INVALID_CODE`. */
  slow(bits: number): number {
    const { lengthCount, symbols } = this;
    let code = 0;
    let first = 0;
    let index = 0;
    for (let length = 1; length <= 15; length++) {
      code |= (bits >>> (length - 1)) & 1;
      const n = lengthCount[length]!;
      if (code - n < first) return (symbols[index + code - first]! << 4) | length;
      index += n;
      first = (first + n) << 1;
      code <<= 1;
    }
    return INVALID_CODE;
  }
}

/** Scratch of `inflatedSize`, shared: the scan is synchronous and never re-entered. */
const reader = new BitReader();
const literalCode = new HuffmanCode(288, 10);
const distanceCode = new HuffmanCode(32, 8);
const codeLengthCode = new HuffmanCode(19, 7);
const codeLengths = new Uint8Array(288 + 32);
/** RFC 1951 §3.2.6, built once. Distance codes 30 and 31 have lengths, as in zlib, but are invalid when used. */
const fixedLiteralCode = new HuffmanCode(288, 10);
const fixedDistanceCode = new HuffmanCode(32, 8);
{
  const lengths = new Uint8Array(288);
  lengths.fill(8, 0, 144).fill(9, 144, 256).fill(7, 256, 280).fill(8, 280, 288);
  fixedLiteralCode.build(lengths, 0, 288);
  fixedDistanceCode.build(new Uint8Array(32).fill(5), 0, 32);
}

/**
 * Reads a dynamic block's code lengths (RFC 1951 §3.2.7) into `codeLengths` and builds `literalCode` and
 * `distanceCode`. False when the input ends first; throws zlib's error for the faults zlib reports.
 */
function readDynamicCodes(): boolean {
  if (!reader.need(14)) return false;
  const literals = reader.take(5) + 257;
  const distances = reader.take(5) + 1;
  const codeLengthCodes = reader.take(4) + 4;
  if (literals > 286 || distances > 30) throw dataError('too many length or distance symbols');
  codeLengths.fill(0, 0, 19);
  for (let i = 0; i < codeLengthCodes; i++) {
    if (!reader.need(3)) return false;
    codeLengths[CODE_LENGTH_ORDER[i]!] = reader.take(3);
  }
  const total = literals + distances;
  const left = codeLengthCode.build(codeLengths, 0, 19);
  if (codeLengthCode.maxLength === 0) {
    // zlib reads each length with a 1-bit "code" of length 0 here, then finds no end-of-block code.
    if ((reader.data.length - reader.pos) * 8 + reader.count < total) return false;
    throw dataError('invalid code -- missing end-of-block');
  }
  if (left !== 0) throw dataError('invalid code lengths set');
  let have = 0;
  while (have < total) {
    reader.fill();
    const entry = codeLengthCode.decode(reader.bits, reader.count);
    if (entry === MORE_INPUT) return false;
    const symbol = entry >>> 4;
    const length = entry & 15;
    if (symbol < 16) {
      reader.take(length);
      codeLengths[have++] = symbol;
      continue;
    }
    const extra = symbol === 16 ? 2 : symbol === 17 ? 3 : 7;
    if (!reader.need(length + extra)) return false;
    reader.take(length);
    if (symbol === 16 && have === 0) throw dataError('invalid bit length repeat');
    const value = symbol === 16 ? codeLengths[have - 1]! : 0;
    const repeat = (symbol === 18 ? 11 : 3) + reader.take(extra);
    if (have + repeat > total) throw dataError('invalid bit length repeat');
    codeLengths.fill(value, have, have + repeat);
    have += repeat;
  }
  if (codeLengths[256] === 0) throw dataError('invalid code -- missing end-of-block');
  // zlib accepts an incomplete literal/length or distance code only when it is a single 1-bit code.
  const literalLeft = literalCode.build(codeLengths, 0, literals);
  if (literalLeft < 0 || (literalLeft > 0 && literalCode.maxLength !== 1)) throw dataError('invalid literal/lengths set');
  const distanceLeft = distanceCode.build(codeLengths, literals, distances);
  if (distanceLeft < 0 || (distanceLeft > 0 && distanceCode.maxLength !== 1)) throw dataError('invalid distances set');
  return true;
}

/**
 * Scans the symbols of one Huffman-coded block up to its end-of-block code: the size so far plus the block's output,
 * or `OVER_LIMIT`. Sets `reader.ended` when the input ends inside the block. The hot loop of the scan, so it works
 * on local copies of the reader's state, refilled two bytes at a time (at most 30 bits held: no sign bit).
 */
function scanBlock(literals: HuffmanCode, distances: HuffmanCode, history: number, size: number, limit: number): number {
  const { data } = reader;
  const end = data.length;
  const literalFast = literals.fast;
  const literalMask = literals.fastMask;
  const distanceFast = distances.fast;
  const distanceMask = distances.fastMask;
  let { pos, bits, count } = reader;
  let result = size;
  for (;;) {
    if (count < 15) {
      if (pos + 1 < end) {
        bits |= (data[pos]! | (data[pos + 1]! << 8)) << count;
        pos += 2;
        count += 16;
      } else if (pos < end) {
        bits |= data[pos++]! << count;
        count += 8;
      }
    }
    let entry = literalFast[bits & literalMask]!;
    if (entry === 0 || (entry & 15) > count) {
      entry = literals.decode(bits, count);
      if (entry < 0) {
        if (entry === INVALID_CODE) throw dataError('invalid literal/length code');
        reader.ended = true;
        break;
      }
    }
    const symbol = entry >> 4;
    bits >>= entry & 15;
    count -= entry & 15;
    if (symbol < 256) {
      if (++result > limit) return OVER_LIMIT;
      continue;
    }
    if (symbol === 256) break;
    if (symbol > 285) throw dataError('invalid literal/length code');
    // From here a symbol cut off by the end of the input ends the scan: the bits it consumed no longer matter.
    if (count < 15) {
      if (pos + 1 < end) {
        bits |= (data[pos]! | (data[pos + 1]! << 8)) << count;
        pos += 2;
        count += 16;
      } else if (pos < end) {
        bits |= data[pos++]! << count;
        count += 8;
      }
    }
    const lengthExtra = LENGTH_EXTRA[symbol - 257]!;
    if (count < lengthExtra) {
      reader.ended = true;
      break;
    }
    const length = LENGTH_BASE[symbol - 257]! + (bits & ((1 << lengthExtra) - 1));
    bits >>= lengthExtra;
    count -= lengthExtra;
    if (count < 15) {
      if (pos + 1 < end) {
        bits |= (data[pos]! | (data[pos + 1]! << 8)) << count;
        pos += 2;
        count += 16;
      } else if (pos < end) {
        bits |= data[pos++]! << count;
        count += 8;
      }
    }
    let distanceEntry = distanceFast[bits & distanceMask]!;
    if (distanceEntry === 0 || (distanceEntry & 15) > count) {
      distanceEntry = distances.decode(bits, count);
      if (distanceEntry < 0) {
        if (distanceEntry === INVALID_CODE) throw dataError('invalid distance code');
        reader.ended = true;
        break;
      }
    }
    const distanceSymbol = distanceEntry >> 4;
    if (distanceSymbol > 29) throw dataError('invalid distance code');
    bits >>= distanceEntry & 15;
    count -= distanceEntry & 15;
    if (count < 15) {
      if (pos + 1 < end) {
        bits |= (data[pos]! | (data[pos + 1]! << 8)) << count;
        pos += 2;
        count += 16;
      } else if (pos < end) {
        bits |= data[pos++]! << count;
        count += 8;
      }
    }
    const distanceExtra = DIST_EXTRA[distanceSymbol]!;
    if (count < distanceExtra) {
      reader.ended = true;
      break;
    }
    const distance = DIST_BASE[distanceSymbol]! + (bits & ((1 << distanceExtra) - 1));
    bits >>= distanceExtra;
    count -= distanceExtra;
    if (distance > history + result) throw dataError('invalid distance too far back');
    result += length;
    if (result > limit) return OVER_LIMIT;
  }
  reader.pos = pos;
  reader.bits = bits;
  reader.count = count;
  return result;
}

/**
 * How many bytes zlib's one-shot inflate (with a sync flush) makes of `data`, or `OVER_LIMIT` as soon as that
 * passes `limit`. Throws zlib's error for faults that zlib reports whatever the window; the few it may not (a
 * distance into history that exists but lies beyond the window) are left to the inflate that follows.
 * @param history bytes of preset dictionary, the only history a distance may reach besides the output
 */
export function inflatedSize(data: Uint8Array, history: number, limit: number): number {
  reader.reset(data);
  let size = 0;
  for (;;) {
    if (!reader.need(3)) return size;
    const last = reader.take(1);
    const type = reader.take(2);
    if (type === 0) {
      // Stored block: skip to a byte boundary; the bytes held in `bits` are the next ones of the input.
      reader.pos -= reader.count >>> 3;
      reader.bits = 0;
      reader.count = 0;
      const { data: input, pos } = reader;
      if (pos + 4 > input.length) return size;
      const length = input[pos]! | (input[pos + 1]! << 8);
      if (length !== (~(input[pos + 2]! | (input[pos + 3]! << 8)) & 0xffff)) throw dataError('invalid stored block lengths');
      const copied = Math.min(length, input.length - pos - 4);
      size += copied;
      if (size > limit) return OVER_LIMIT;
      reader.pos = pos + 4 + copied;
      if (copied < length) return size;
    } else if (type === 3) {
      throw dataError('invalid block type');
    } else {
      if (type === 2 && !readDynamicCodes()) return size;
      const literals = type === 1 ? fixedLiteralCode : literalCode;
      const distances = type === 1 ? fixedDistanceCode : distanceCode;
      size = scanBlock(literals, distances, history, size, limit);
      if (size === OVER_LIMIT || reader.ended) return size;
    }
    if (last === 1) return size;
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
