import { describe, it, expect } from '@jest/globals';
import fc from 'fast-check';
import { InvalidUtf8Error } from '../../lib/errors.js';
import { Utf8StreamDecoder, decodeUtf8 } from '../../lib/protocol/utf8.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Feeds `bytes` one byte at a time; returns the index of the byte that failed, or the decoded text. */
function byteByByte(bytes: Buffer): number | string {
  const d = new Utf8StreamDecoder();
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

describe('Utf8StreamDecoder', () => {
  it('decodes valid text for every split point', () => {
    const text = 'aé€😀\u{10ffff}\ufeff';
    const bytes = Buffer.from(text);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const d = new Utf8StreamDecoder();
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
    ];
    for (const [bytes, at] of cases) expect([bytes, byteByByte(hex(bytes))]).toEqual([bytes, at]);
  });

  it('fails at the end on a truncated sequence, and is reusable after end() and reset()', () => {
    const d = new Utf8StreamDecoder();
    d.write(hex('61 e2 82'));
    expect(() => d.end()).toThrow('invalid UTF-8 in text message: truncated sequence at its end');
    d.write(Buffer.from('ok'));
    expect(d.end()).toBe('ok');
    d.write(hex('e2'));
    d.reset();
    d.write(Buffer.from('b'));
    d.write(Buffer.from('c'));
    expect(d.end()).toBe('bc');
    expect(d.end()).toBe('');
  });

  it('agrees with Buffer round-tripping on arbitrary bytes and splits', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.nat(40), (raw, cutAt) => {
        const bytes = Buffer.from(raw);
        const valid = Buffer.from(bytes.toString('utf8')).equals(bytes);
        const cut = Math.min(cutAt, bytes.length);
        const d = new Utf8StreamDecoder();
        let result: string | null;
        try {
          d.write(bytes.subarray(0, cut));
          d.write(bytes.subarray(cut));
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
