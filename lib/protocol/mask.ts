/**
 * RFC 6455 §5.3 masking: every byte of a client-to-server payload is XORed with the 4-byte masking key, byte `i`
 * with key byte `i mod 4`. Applying the mask twice restores the data, so one function masks and unmasks.
 *
 * The work is done a 32-bit word at a time through a `Uint32Array` view when the buffers allow it: a byte loop
 * (what `ws` does without its optional native add-on) ran at 0.4-0.7 GB/s against 2.8-3.8 GB/s for the word
 * loop on 64 KiB and 1 MiB payloads (Node 20, x64), aligned or not.
 */
import { randomFillSync } from 'node:crypto';
import { MASK_WASM } from './mask-wasm.js';

/** Size of a masking key (RFC 6455 §5.2). */
export const MASK_KEY_LENGTH = 4;

/**
 * Below this many bytes the two `Uint32Array` views cost more than they save (measured on Node 20: the word loop
 * loses at 32 bytes, breaks even near 128, and is about 6 times faster than the byte loop at 64 KiB).
 */
const WORD_LOOP_THRESHOLD = 128;

/** A reusable scratch key, rotated so that its word lines up with the first aligned byte. */
const rotatedKey = new Uint8Array(MASK_KEY_LENGTH);
const rotatedWord = new Uint32Array(rotatedKey.buffer);

/**
 * XORs `length` bytes of `source` (from `sourceOffset`) with `key` into `target` (from `targetOffset`).
 * `source` and `target` may be the same buffer at the same offset (in-place unmasking).
 * @param keyOffset position of the first byte within the payload, so that a payload can be unmasked piece by
 *   piece as it arrives: byte `i` of the piece uses key byte `(keyOffset + i) mod 4`.
 */
export function applyMask(
  source: Uint8Array,
  sourceOffset: number,
  key: Uint8Array,
  keyOffset: number,
  target: Uint8Array,
  targetOffset: number,
  length: number,
): void {
  if (length >= SIMD_THRESHOLD && simdMask !== null) {
    // The SIMD pass does whole 16-byte lanes, so the key phase of what is left is still keyOffset's.
    const done = simdMask.apply(source, sourceOffset, key, keyOffset, target, targetOffset, length);
    sourceOffset += done;
    targetOffset += done;
    keyOffset += done;
    length -= done;
  }
  let i = 0;
  if (length >= WORD_LOOP_THRESHOLD) {
    // Align on the target. When the source lines up differently (never in place), copy it first (a memcpy) and
    // mask the target in place.
    const misalign = (target.byteOffset + targetOffset) & 3;
    const head = misalign === 0 ? 0 : 4 - misalign;
    if (((source.byteOffset + sourceOffset + head) & 3) !== 0) {
      target.set(source.subarray(sourceOffset, sourceOffset + length), targetOffset);
      source = target;
      sourceOffset = targetOffset;
    }
    for (; i < head; i++) target[targetOffset + i] = source[sourceOffset + i]! ^ key[(keyOffset + i) & 3]!;
    const k = keyOffset + head;
    rotatedKey[0] = key[k & 3]!;
    rotatedKey[1] = key[(k + 1) & 3]!;
    rotatedKey[2] = key[(k + 2) & 3]!;
    rotatedKey[3] = key[(k + 3) & 3]!;
    // Both the key word and the data words are read in the platform's byte order, so XOR lines up byte for byte.
    const word = rotatedWord[0]!;
    const words = (length - head) >>> 2;
    const src = new Uint32Array(source.buffer, source.byteOffset + sourceOffset + head, words);
    const dst = source === target && sourceOffset === targetOffset
      ? src
      : new Uint32Array(target.buffer, target.byteOffset + targetOffset + head, words);
    xorWords(src, dst, words, word);
    i = head + words * 4;
  }
  for (; i < length; i++) target[targetOffset + i] = source[sourceOffset + i]! ^ key[(keyOffset + i) & 3]!;
}

/**
 * `dst[w] = src[w] ^ word` for `words` words, eight per iteration: unrolled, the loop ran at 7.6-8.0 GB/s against
 * 3.6 GB/s one word per iteration (64 KiB and 1 MiB in place, Node 20, x64), which took the 64 KiB echo's unmasking
 * from about a fifth of the server's profile to a tenth.
 */
function xorWords(src: Uint32Array, dst: Uint32Array, words: number, word: number): void {
  let w = 0;
  for (const end = words - 7; w < end; w += 8) {
    dst[w] = src[w]! ^ word;
    dst[w + 1] = src[w + 1]! ^ word;
    dst[w + 2] = src[w + 2]! ^ word;
    dst[w + 3] = src[w + 3]! ^ word;
    dst[w + 4] = src[w + 4]! ^ word;
    dst[w + 5] = src[w + 5]! ^ word;
    dst[w + 6] = src[w + 6]! ^ word;
    dst[w + 7] = src[w + 7]! ^ word;
  }
  for (; w < words; w++) dst[w] = src[w]! ^ word;
}

/** From this many bytes on, the SIMD pass is used where it loaded (it breaks even with the JS loop near 1 KiB). */
const SIMD_THRESHOLD = 2048;

/**
 * The XOR as WebAssembly SIMD, 16 bytes per instruction, over a 64 KiB block of its own memory: the bytes are copied
 * in, XORed and copied out (two memcpys), which still ran at 14-16 GB/s against 6-8 GB/s for the unrolled JS word
 * loop on 4 KiB to 1 MiB (Node 20, x64). Node has no XOR primitive of its own. The module's source is `mask.wat`
 * beside this file; `npm run build:wasm` assembles it into `mask-wasm.ts`.
 */
export class SimdMask {
  /** Bytes XORed per call: the module's one page of memory. */
  static readonly BLOCK = 65_536;
  readonly #memory: Uint8Array;
  readonly #xor: (at: number, end: number, key: number) => void;

  /** @throws whatever `WebAssembly` throws when it cannot compile or instantiate the module (no SIMD) */
  constructor(wasm: WasmApi) {
    const exports = new wasm.Instance(new wasm.Module(MASK_WASM)).exports as {
      memory: { buffer: ArrayBuffer };
      xor: (at: number, end: number, key: number) => void;
    };
    this.#memory = new Uint8Array(exports.memory.buffer);
    this.#xor = exports.xor;
  }

  /**
   * XORs the longest multiple of 16 bytes of `length` as {@link applyMask} does (source and target may be the same
   * bytes), and returns how many it did.
   */
  apply(source: Uint8Array, sourceOffset: number, key: Uint8Array, keyOffset: number, target: Uint8Array, targetOffset: number, length: number): number {
    // WebAssembly is little-endian on every platform: the key's first byte is the word's low byte.
    const word = key[keyOffset & 3]! | (key[(keyOffset + 1) & 3]! << 8) | (key[(keyOffset + 2) & 3]! << 16) | (key[(keyOffset + 3) & 3]! << 24);
    const memory = this.#memory;
    const whole = length - (length & 15);
    for (let done = 0; done < whole; done += SimdMask.BLOCK) {
      const n = Math.min(SimdMask.BLOCK, whole - done);
      memory.set(source.subarray(sourceOffset + done, sourceOffset + done + n), 0);
      this.#xor(0, n, word);
      target.set(memory.subarray(0, n), targetOffset + done);
    }
    return whole;
  }
}

/** The part of the `WebAssembly` global used here (TypeScript declares it only with the DOM library). */
export interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object) => { readonly exports: object };
}

/**
 * The SIMD pass, or null where it cannot run, and then the JS loop does everything: where there is no WebAssembly
 * (`node --jitless`), or where compiling or instantiating the module fails (an engine without SIMD rejects it with a
 * `CompileError`). Loading this module must never throw: unmasking works without the SIMD pass, only slower.
 */
export function loadSimdMask(wasm: WasmApi | undefined): SimdMask | null {
  if (wasm === undefined) return null;
  try {
    return new SimdMask(wasm);
  } catch {
    return null;
  }
}

const simdMask = loadSimdMask((globalThis as { WebAssembly?: WasmApi }).WebAssembly);

/** Unmasks (or masks) `data` in place; `keyOffset` as in {@link applyMask}. */
export function unmaskInPlace(data: Uint8Array, key: Uint8Array, keyOffset = 0): void {
  applyMask(data, 0, key, keyOffset, data, 0, data.length);
}

/** How many keys one refill of the pool provides (8 KiB of randomness per `randomFillSync` call). */
const MASK_POOL_KEYS = 2048;

/**
 * Fresh random masking keys from a pooled buffer: one `randomFillSync` call per {@link MASK_POOL_KEYS} keys
 * instead of one per frame. RFC 6455 §5.3 requires the key to be unpredictable, so the pool is refilled before
 * a key is ever reused.
 */
export class MaskPool {
  private readonly pool = Buffer.allocUnsafe(MASK_POOL_KEYS * MASK_KEY_LENGTH);
  private offset = this.pool.length;

  /** Copies a fresh key into `into` (its first 4 bytes). */
  readonly fill = (into: Buffer): void => {
    if (this.offset === this.pool.length) {
      randomFillSync(this.pool);
      this.offset = 0;
    }
    this.pool.copy(into, 0, this.offset, this.offset + MASK_KEY_LENGTH);
    this.offset += MASK_KEY_LENGTH;
  };
}

/** The process-wide default key source used by client connections that do not inject their own. */
export const defaultMaskSource: (into: Buffer) => void = new MaskPool().fill;
