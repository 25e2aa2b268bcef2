import { afterAll, beforeAll, describe, it, expect } from '@jest/globals';
import fc from 'fast-check';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { MASK_KEY_LENGTH, MaskPool, SimdMask, applyMask, defaultMaskSource, loadSimdMask, unmaskInPlace, type WasmApi } from '../../lib/protocol/mask.js';
import { compileForChild, type CompiledTree } from '../support/compile.js';

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

describe('mask, SIMD pass (WebAssembly) and its fallback', () => {
  const key = Buffer.from('a1b2c3d4', 'hex');
  const realWasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly!;

  it('runs here: this Node has WebAssembly with SIMD, and the module loads (no silent fallback)', () => {
    expect(loadSimdMask(realWasm)).toBeInstanceOf(SimdMask);
    const simd = new SimdMask(realWasm);
    const data = pattern(100);
    const out = Buffer.alloc(100);
    // Whole 16-byte lanes only: 96 of 100 bytes, the rest is left to the JS loop.
    expect(simd.apply(data, 0, key, 3, out, 0, 100)).toBe(96);
    expect(out.subarray(0, 96)).toEqual(reference(data, key, 3).subarray(0, 96));
    expect(out.subarray(96).every((b) => b === 0)).toBe(true);
  });

  // A Node without SIMD cannot be had here, so these stand-ins for `WebAssembly` fail the way such an engine does.
  it('gives no SIMD pass, rather than throwing, where WebAssembly is missing or cannot compile or instantiate the module', () => {
    expect(loadSimdMask(undefined)).toBeNull();
    class NoSimdModule {
      constructor() {
        throw new Error('WebAssembly.Module(): Compiling function #0:"xor" failed: Wasm SIMD unsupported');
      }
    }
    expect(loadSimdMask({ Module: NoSimdModule, Instance: realWasm.Instance })).toBeNull();
    class OutOfMemoryInstance {
      readonly exports = {};
      constructor() {
        throw new RangeError('WebAssembly.Instance(): Out of memory: Cannot allocate Wasm memory for new instance');
      }
    }
    expect(loadSimdMask({ Module: realWasm.Module, Instance: OutOfMemoryInstance })).toBeNull();
    // Without the stand-in, the constructor itself does throw: the fallback is loadSimdMask's doing.
    expect(() => new SimdMask({ Module: NoSimdModule, Instance: realWasm.Instance })).toThrow(/SIMD unsupported/);
  });

  it('matches the byte-by-byte definition above the SIMD threshold, across 64 KiB blocks, in place and copied', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2000, max: 200_000 }),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.boolean(),
        (length, sourceAlign, targetAlign, keyOffset, inPlace) => {
          const data = pattern(length);
          const expected = reference(data, key, keyOffset);
          if (inPlace) {
            const view = Buffer.alloc(length + 8).subarray(sourceAlign, sourceAlign + length);
            data.copy(view);
            unmaskInPlace(view, key, keyOffset);
            expect(view.equals(expected)).toBe(true);
          } else {
            const source = Buffer.alloc(length + 8);
            data.copy(source, sourceAlign);
            const target = Buffer.alloc(length + 16, 0xee);
            applyMask(source, sourceAlign, key, keyOffset, target, targetAlign, length);
            expect(target.subarray(targetAlign, targetAlign + length).equals(expected)).toBe(true);
            expect(target.subarray(targetAlign + length).every((b) => b === 0xee)).toBe(true);
            expect(source.subarray(sourceAlign, sourceAlign + length).equals(data)).toBe(true);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  describe('in a child process, loading mask.ts on a platform without the SIMD pass', () => {
    let tree: CompiledTree;
    beforeAll(async () => {
      tree = await compileForChild('mask-fallback-', ['lib/protocol/mask.ts']);
    }, 60_000);
    afterAll(() => tree?.remove());

    /** Runs `prelude`, then imports mask.js and masks 100 003 bytes; returns `typeof WebAssembly` and the digest. */
    async function maskInChild(nodeFlags: string[], prelude: string): Promise<{ wasm: string; digest: string }> {
      const script = `
        ${prelude}
        const { applyMask } = await import(${JSON.stringify(pathToFileURL(tree.entry('lib/protocol/mask.ts')).href)});
        const data = Buffer.alloc(100003); for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) & 255;
        const key = Buffer.from('a1b2c3d4', 'hex');
        applyMask(data, 0, key, 1, data, 0, data.length);
        process.stdout.write(JSON.stringify({ wasm: typeof WebAssembly, digest: (await import('node:crypto')).createHash('sha256').update(data).digest('hex') }));
      `;
      const { stdout } = await promisify(execFile)(process.execPath, [...nodeFlags, '--input-type=module', '-e', script], { timeout: 20_000 });
      return JSON.parse(stdout) as { wasm: string; digest: string };
    }

    const expected = (): string => createHash('sha256').update(reference(pattern(100_003), key, 1)).digest('hex');

    it('where there is no WebAssembly (node --jitless), the JS loop gives the same bytes', async () => {
      const result = await maskInChild(['--jitless'], '');
      expect(result.wasm).toBe('undefined');
      expect(result.digest).toBe(expected());
    }, 30_000);

    it('where WebAssembly cannot compile the module (an engine without SIMD), the import does not throw and the JS loop gives the same bytes', async () => {
      // Every compile fails, as it does for a SIMD module on an engine without SIMD; the rest of WebAssembly stays.
      const prelude = `
        const { CompileError } = WebAssembly;
        WebAssembly.Module = class { constructor() { throw new CompileError('WebAssembly.Module(): Wasm SIMD unsupported'); } };
      `;
      const result = await maskInChild([], prelude);
      expect(result.wasm).toBe('object');
      expect(result.digest).toBe(expected());
    }, 30_000);
  });
});
