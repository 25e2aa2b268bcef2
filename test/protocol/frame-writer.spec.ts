import { describe, it, expect } from '@jest/globals';
import { SINGLE_BUFFER_TEXT_MAX, closePayload, encodeFrame, encodeTextFrame, frameHeader } from '../../lib/protocol/frame-writer.js';
import { FrameParser } from '../../lib/protocol/frame-parser.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('frameHeader', () => {
  it('uses the minimal length encoding at each boundary', () => {
    expect(frameHeader(0x2, 0)).toEqual(hex('82 00'));
    expect(frameHeader(0x2, 125)).toEqual(hex('82 7d'));
    expect(frameHeader(0x2, 126)).toEqual(hex('82 7e 00 7e'));
    expect(frameHeader(0x2, 65535)).toEqual(hex('82 7e ff ff'));
    expect(frameHeader(0x2, 65536)).toEqual(hex('82 7f 00 00 00 00 00 01 00 00'));
    expect(frameHeader(0x2, 2 ** 32 + 5)).toEqual(hex('82 7f 00 00 00 01 00 00 00 05'));
  });

  it('sets FIN, RSV1 and the masking key', () => {
    expect(frameHeader(0x1, 5, { fin: false })).toEqual(hex('01 05'));
    expect(frameHeader(0x1, 5, { rsv1: true })).toEqual(hex('c1 05'));
    expect(frameHeader(0x1, 5, { maskKey: hex('37fa213d') })).toEqual(hex('81 85 37 fa 21 3d'));
    expect(frameHeader(0x1, 300, { maskKey: hex('01020304') })).toEqual(hex('81 fe 01 2c 01 02 03 04'));
  });
});

describe('encodeFrame', () => {
  it('writes the RFC 6455 §5.7 masked "Hello" without touching the caller buffer', () => {
    const hello = Buffer.from('Hello');
    const [header, payload] = encodeFrame(0x1, hello, { maskKey: hex('37fa213d') });
    expect(Buffer.concat([header!, payload!])).toEqual(hex('81 85 37 fa 21 3d 7f 9f 4d 51 58'));
    expect(hello.toString()).toBe('Hello');
  });

  it('returns the header alone for an empty payload, and the payload itself when unmasked', () => {
    expect(encodeFrame(0x9, Buffer.alloc(0))).toEqual([hex('89 00')]);
    const data = Buffer.from('abc');
    expect(encodeFrame(0x2, data)[1]).toBe(data);
  });

  it('round-trips through the parser for sizes around each boundary, masked and not', () => {
    for (const size of [0, 1, 125, 126, 127, 65535, 65536, 70001]) {
      for (const maskKey of [null, hex('a1b2c3d4')]) {
        const data = Buffer.alloc(size);
        for (let i = 0; i < size; i++) data[i] = i & 255;
        const parser = new FrameParser({ side: maskKey ? 'server' : 'client', allowRsv1: false });
        for (const b of encodeFrame(0x2, data, { maskKey })) parser.push(Buffer.from(b));
        expect(parser.readHeader()).toEqual({ fin: true, rsv1: false, opcode: 2, masked: maskKey !== null, length: size });
        const pieces: Buffer[] = [];
        while (parser.payloadRemaining > 0) pieces.push(parser.readPayloadPiece()!);
        expect(Buffer.concat(pieces)).toEqual(data);
      }
    }
  });
});

describe('encodeTextFrame', () => {
  it('writes the header and the UTF-8 of the string in one buffer, which a parser reads back as the same text frame', () => {
    for (const text of ['', 'Hello', '€'.repeat(41), '€'.repeat(42), 'x'.repeat(SINGLE_BUFFER_TEXT_MAX), '€'.repeat(SINGLE_BUFFER_TEXT_MAX)]) {
      const frame = encodeTextFrame(text);
      expect(frame).toEqual(Buffer.concat(encodeFrame(0x1, Buffer.from(text))));
    }
  });
});

describe('closePayload', () => {
  it('writes the code big-endian then the UTF-8 reason', () => {
    expect(closePayload(1000, '')).toEqual(hex('03 e8'));
    expect(closePayload(4000, 'é')).toEqual(hex('0f a0 c3 a9'));
  });
});
