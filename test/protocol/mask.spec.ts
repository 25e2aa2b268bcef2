import { describe, it, expect } from '@jest/globals';
import { MASK_KEY_LENGTH, MaskPool, applyMask, defaultMaskSource, unmaskInPlace } from '../../lib/protocol/mask.js';

/** The RFC 6455 §5.3 definition, byte by byte: the reference the word loop must match. */
function reference(data: Uint8Array, key: Uint8Array, keyOffset: number): Buffer {
  const out = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! ^ key[(keyOffset + i) % 4]!;
  return out;
}

function pattern(length: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + 7) & 255;
  return b;
}

describe('mask', () => {
  const key = Buffer.from('37fa213d', 'hex');

  it('masks the RFC 6455 §5.7 example', () => {
    const hello = Buffer.from('Hello');
    unmaskInPlace(hello, key);
    expect(hello).toEqual(Buffer.from('7f9f4d5158', 'hex'));
  });

  it('matches the byte-by-byte definition for every alignment, key offset and length around the word threshold', () => {
    for (const length of [0, 1, 3, 4, 5, 127, 128, 129, 130, 131, 1000, 4099]) {
      for (let align = 0; align < 4; align++) {
        for (let keyOffset = 0; keyOffset < 6; keyOffset++) {
          const data = pattern(length);
          const backing = Buffer.alloc(length + 8);
          const view = backing.subarray(align, align + length);
          data.copy(view);
          unmaskInPlace(view, key, keyOffset);
          expect(view).toEqual(reference(data, key, keyOffset));
          // Masking twice restores the data.
          unmaskInPlace(view, key, keyOffset);
          expect(view).toEqual(data);
        }
      }
    }
  });

  it('copies into another buffer, whatever the relative alignment of source and target', () => {
    for (const length of [10, 200, 1001]) {
      for (let sourceAlign = 0; sourceAlign < 4; sourceAlign++) {
        for (let targetAlign = 0; targetAlign < 4; targetAlign++) {
          const data = pattern(length);
          const source = Buffer.alloc(length + 8);
          data.copy(source, sourceAlign);
          const target = Buffer.alloc(length + 8, 0xee);
          applyMask(source, sourceAlign, key, 1, target, targetAlign, length);
          expect(target.subarray(targetAlign, targetAlign + length)).toEqual(reference(data, key, 1));
          // The bytes around the target and the source itself are untouched.
          expect(target.subarray(0, targetAlign).every((b) => b === 0xee)).toBe(true);
          expect(target.subarray(targetAlign + length).every((b) => b === 0xee)).toBe(true);
          expect(source.subarray(sourceAlign, sourceAlign + length)).toEqual(data);
        }
      }
    }
  });

  it('unmasks a payload piece by piece with the right key offset', () => {
    const data = pattern(1000);
    const masked = reference(data, key, 0);
    for (const cut of [1, 2, 3, 129, 500]) {
      const a = Buffer.from(masked.subarray(0, cut));
      const b = Buffer.from(masked.subarray(cut));
      unmaskInPlace(a, key, 0);
      unmaskInPlace(b, key, cut);
      expect(Buffer.concat([a, b])).toEqual(data);
    }
  });

  it('draws fresh keys from a pool, refilling it before any key is reused', () => {
    const pool = new MaskPool();
    const seen = new Set<string>();
    const into = Buffer.alloc(MASK_KEY_LENGTH);
    // 2048 keys per refill: cross two refills.
    for (let i = 0; i < 5000; i++) {
      pool.fill(into);
      seen.add(into.toString('hex'));
    }
    // 5000 random 32-bit keys collide with probability ~0.3%; allow a couple.
    expect(seen.size).toBeGreaterThan(4995);
    const a = Buffer.alloc(4);
    const b = Buffer.alloc(4);
    defaultMaskSource(a);
    defaultMaskSource(b);
    expect(a.equals(b)).toBe(false);
  });
});
