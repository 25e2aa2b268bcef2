/**
 * The inflated size of a raw DEFLATE stream (RFC 1951) without inflating it: the Huffman codes are decoded and the
 * literal and match lengths added up, and nothing is written. `lib/node/deflate.ts` uses it to size a message that
 * its first, capped inflate could not finish, so that refusing a compression bomb does not first make the whole
 * message limit of zlib output (see there). Faults are reported with zlib's own messages and codes, and the sizes
 * agree with zlib's (test/node/bomb-scan.spec.ts checks both on fuzzed streams).
 */
import { constants } from 'node:zlib';

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
  data: Uint8Array = new Uint8Array(0);
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
