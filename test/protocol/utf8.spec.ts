import { describe, it, expect } from '@jest/globals';
import fc from 'fast-check';
import { InvalidUtf8Error } from '../../lib/errors.js';
import { Utf8Validator, decodeUtf8 } from '../../lib/protocol/utf8.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** A message assembled as the core does: pieces appended to one buffer, judged after each append. */
class Assembled {
  readonly validator = new Utf8Validator();
  bytes = Buffer.alloc(0);

  write(piece: Buffer): void {
    this.bytes = Buffer.concat([this.bytes, piece]);
    this.validator.advance(this.bytes, this.bytes.length);
  }

  end(): string {
    const text = this.bytes;
    this.bytes = Buffer.alloc(0);
    this.validator.finish(text.length);
    return text.toString('utf8');
  }
}

/** Feeds `bytes` one byte at a time; returns the index of the byte that failed, or the text. */
function byteByByte(bytes: Buffer): number | string {
  const d = new Assembled();
  for (let i = 0; i < bytes.length; i++) {
    try {
      d.write(bytes.subarray(i, i + 1));
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidUtf8Error);
      return i;
    }
  }
  try {
    return d.end();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidUtf8Error);
    return bytes.length;
  }
}

describe('Utf8Validator', () => {
  it('accepts valid text for every split point', () => {
    const text = 'aé€😀\u{10ffff}\ufeff';
    const bytes = Buffer.from(text);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const d = new Assembled();
      d.write(bytes.subarray(0, cut));
      d.write(bytes.subarray(cut));
      expect(d.end()).toBe(text);
    }
    expect(byteByByte(bytes)).toBe(text);
  });

  it('fails at the first byte that cannot continue a valid sequence', () => {
    const cases: Array<[string, number]> = [
      ['61 ff', 1], // never valid
      ['c0 80', 0], // overlong NUL
      ['c1 bf', 0], // overlong
      ['e0 80 80', 1], // overlong 3-byte
      ['ed a0 80', 1], // UTF-16 surrogate
      ['f0 8f bf bf', 1], // overlong 4-byte
      ['f4 90 80 80', 1], // above U+10FFFF
      ['f5 80 80 80', 0], // above U+10FFFF
      ['e2 82 28', 2], // bad continuation
      ['80', 0], // lone continuation
      ['ce ba e1 bd b9 cf 83 ce bc ce b5 f4 90 80 80 65 64', 12], // Autobahn 6.4.x: fails at 0x90, not at the end
      ['e2 82 ac 80', 3], // a fourth byte after a complete 3-byte character
    ];
    for (const [bytes, at] of cases) expect([bytes, byteByByte(hex(bytes))]).toEqual([bytes, at]);
  });

  it('fails at the end on a truncated sequence, and is reusable after finish() and reset()', () => {
    const d = new Assembled();
    d.write(hex('61 e2 82'));
    expect(() => d.end()).toThrow('invalid UTF-8 in text message: truncated sequence at its end');
    d.write(Buffer.from('ok'));
    expect(d.end()).toBe('ok');
    d.write(hex('e2'));
    d.validator.reset();
    d.bytes = Buffer.alloc(0);
    d.write(Buffer.from('b'));
    d.write(Buffer.from('c'));
    expect(d.end()).toBe('bc');
    expect(d.end()).toBe('');
  });

  it('agrees with Buffer round-tripping on arbitrary bytes and splits', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.array(fc.nat(40), { maxLength: 4 }), (raw, cuts) => {
        const bytes = Buffer.from(raw);
        const valid = Buffer.from(bytes.toString('utf8')).equals(bytes);
        const points = [...new Set(cuts.map((c) => Math.min(c, bytes.length)))].sort((a, b) => a - b);
        const d = new Assembled();
        let result: string | null;
        try {
          let at = 0;
          for (const point of [...points, bytes.length]) {
            d.write(bytes.subarray(at, point));
            at = point;
          }
          result = d.end();
        } catch {
          result = null;
        }
        expect(result).toBe(valid ? bytes.toString('utf8') : null);
      }),
    );
  });
});

describe('decodeUtf8', () => {
  it('decodes valid bytes and names what was invalid', () => {
    expect(decodeUtf8(Buffer.from('héllo'), 'close reason')).toBe('héllo');
    expect(() => decodeUtf8(hex('c3 28'), 'close reason')).toThrow(new InvalidUtf8Error('invalid UTF-8 in close reason'));
  });
});
