import { describe, it, expect } from '@jest/globals';
import { ProtocolError } from '../../lib/errors.js';
import { FrameParser } from '../../lib/protocol/frame-parser.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('FrameParser', () => {
  it('reads a header then payload pieces as views, one chunk at a time', () => {
    const p = new FrameParser({ side: 'client', allowRsv1: false });
    const chunk = hex('82 06 61 62 63');
    p.push(chunk);
    p.push(Buffer.alloc(0));
    p.push(hex('64 65 66 81 00'));
    expect(p.bufferedAmount).toBe(10);
    expect(p.readHeader()).toEqual({ fin: true, rsv1: false, opcode: 2, masked: false, length: 6 });
    const first = p.readPayloadPiece()!;
    expect(first.toString()).toBe('abc');
    expect(first.buffer).toBe(chunk.buffer); // a view, not a copy
    expect(p.payloadRemaining).toBe(3);
    expect(p.readPayloadPiece()!.toString()).toBe('def');
    expect(p.payloadRemaining).toBe(0);
    expect(p.readHeader()).toMatchObject({ opcode: 1, length: 0 });
    expect(p.readHeader()).toBeNull();
    expect(p.readPayloadPiece()).toBeNull();
    expect(p.bufferedAmount).toBe(0);
  });

  it('reads a 64-bit length whose high half is non-zero as hi * 2**32 + lo', () => {
    const p = new FrameParser({ side: 'client', allowRsv1: false });
    p.push(hex('82 7f 00 00 00 01 00 00 00 05'));
    expect(p.readHeader()?.length).toBe(2 ** 32 + 5);
    const q = new FrameParser({ side: 'client', allowRsv1: false });
    q.push(hex('82 7f 7f ff ff ff ff ff ff ff'));
    expect(q.readHeader()?.length).toBe(2 ** 63 - 1);
  });

  it('copies a header field and a control payload that straddle chunks, and unmasks with the right key phase', () => {
    const p = new FrameParser({ side: 'server', allowRsv1: false });
    // Masked ping "Hello" (RFC 6455 §5.7 key), cut inside the mask key and inside the payload.
    const bytes = hex('89 85 37 fa 21 3d 7f 9f 4d 51 58');
    for (const b of [bytes.subarray(0, 3), bytes.subarray(3, 8), bytes.subarray(8)]) p.push(Buffer.from(b));
    expect(p.readHeader()).toEqual({ fin: true, rsv1: false, opcode: 9, masked: true, length: 5 });
    expect(p.readPayloadWhole()!.toString()).toBe('Hello');
  });

  it('hands out a masked data payload in pieces that unmask correctly', () => {
    const p = new FrameParser({ side: 'server', allowRsv1: false });
    const bytes = hex('81 85 37 fa 21 3d 7f 9f 4d 51 58');
    p.push(Buffer.from(bytes.subarray(0, 7)));
    expect(p.readHeader()?.length).toBe(5);
    expect(p.readPayloadPiece()!.toString()).toBe('H');
    expect(p.readPayloadWhole()).toBeNull();
    p.push(Buffer.from(bytes.subarray(7)));
    expect(p.readPayloadPiece()!.toString()).toBe('ello');
  });

  it('returns an empty control payload without waiting', () => {
    const p = new FrameParser({ side: 'client', allowRsv1: false });
    p.push(hex('8a 00'));
    p.readHeader();
    expect(p.readPayloadWhole()).toEqual(Buffer.alloc(0));
  });

  it('refuses to read a header in the middle of a payload (a caller bug, not a peer error)', () => {
    const p = new FrameParser({ side: 'client', allowRsv1: false });
    p.push(hex('82 02 61'));
    p.readHeader();
    expect(() => p.readHeader()).toThrow('readHeader() called before the payload of the previous frame was read');
  });

  it('accepts RSV1 on the first frame of a data message when an extension allows it', () => {
    const p = new FrameParser({ side: 'client', allowRsv1: true });
    p.push(hex('c1 00'));
    expect(p.readHeader()).toMatchObject({ rsv1: true, opcode: 1 });
  });

  it('throws ProtocolError on header rules and forgets everything on clear()', () => {
    const p = new FrameParser({ side: 'client', allowRsv1: false });
    p.push(hex('82 ff'));
    expect(() => p.readHeader()).toThrow(new ProtocolError('masked frame from server'));
    p.clear();
    expect(p.bufferedAmount).toBe(0);
  });
});
