import { describe, it, expect } from '@jest/globals';
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { InvalidStateError, InvalidUtf8Error, MessageTooBigError, ProtocolError, TooManyFragmentsError } from '../../lib/errors.js';
import type { MessageCodec } from '../../lib/protocol/compression.js';
import { Connection, SEND_EOF, State, type ConnectionEvent, type ConnectionOptions } from '../../lib/protocol/connection.js';

// --- a frame builder independent of lib/protocol/frame-writer.ts -------------------------------------------

const KEY = Buffer.from('37fa213d', 'hex');

interface Build {
  fin?: boolean;
  rsv1?: boolean;
  rsv2?: boolean;
  rsv3?: boolean;
  /** Masking key; null for none. Defaults to KEY. */
  mask?: Buffer | null;
  /** Force the 16- or 64-bit length encoding. */
  length?: 16 | 64;
}

function frame(opcode: number, payload: Buffer | string, b: Build = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const mask = b.mask === undefined ? KEY : b.mask;
  const b0 = (b.fin === false ? 0 : 0x80) | (b.rsv1 ? 0x40 : 0) | (b.rsv2 ? 0x20 : 0) | (b.rsv3 ? 0x10 : 0) | opcode;
  const m = mask ? 0x80 : 0;
  let head: number[];
  if (b.length === 64 || data.length > 0xffff) {
    head = [b0, m | 127, 0, 0, 0, 0, (data.length >>> 24) & 255, (data.length >>> 16) & 255, (data.length >>> 8) & 255, data.length & 255];
  } else if (b.length === 16 || data.length > 125) {
    head = [b0, m | 126, data.length >>> 8, data.length & 255];
  } else {
    head = [b0, m | data.length];
  }
  const body = Buffer.from(data);
  if (mask) for (let i = 0; i < body.length; i++) body[i] ^= mask[i % 4]!;
  return Buffer.concat([Buffer.from(head), mask ? mask : Buffer.alloc(0), body]);
}
/** A frame as a client sends it (masked), for a server connection. */
const c2s = (opcode: number, payload: Buffer | string, b: Build = {}): Buffer => frame(opcode, payload, b);
/** A frame as a server sends it (unmasked), for a client connection. */
const s2c = (opcode: number, payload: Buffer | string, b: Build = {}): Buffer => frame(opcode, payload, { ...b, mask: null });

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const LIMIT = 1024;

function server(options: Partial<ConnectionOptions> = {}): Connection {
  return new Connection({ side: 'server', maxMessageSize: LIMIT, ...options });
}
function client(options: Partial<ConnectionOptions> = {}): Connection {
  return new Connection({ side: 'client', maxMessageSize: LIMIT, createMask: (into) => KEY.copy(into), ...options });
}

/** Feeds copies (the connection unmasks in place) and pulls all events. */
function feed(conn: Connection, ...chunks: Buffer[]): ConnectionEvent[] {
  for (const chunk of chunks) conn.receiveData(Buffer.from(chunk));
  return conn.eventsReceived();
}

/** The bytes queued for sending, concatenated, and whether SEND_EOF was last. */
function sent(conn: Connection): { bytes: Buffer; eof: boolean } {
  const out = conn.dataToSend();
  const eofAt = out.indexOf(SEND_EOF);
  expect(eofAt === -1 || eofAt === out.length - 1).toBe(true);
  return { bytes: Buffer.concat(out.filter((b): b is Buffer => b !== SEND_EOF)), eof: eofAt !== -1 };
}

/** Asserts the server failed with `code` and `reason`: close frame sent, EOF, nothing more parsed. */
function expectFailed(conn: Connection, code: number, reason: string): void {
  const out = sent(conn);
  const payload = out.bytes.subarray(2);
  expect(out.bytes[0]).toBe(0x88);
  expect(payload.readUInt16BE(0)).toBe(code);
  expect(payload.subarray(2).toString()).toBe(reason);
  expect(conn.closeSent).toEqual({ code, reason });
  expect(conn.state).toBe(State.CLOSING);
  if (conn.side === 'server') expect(out.eof).toBe(true);
  expect(conn.failure?.message).toBe(reason);
  // RFC 6455 §7.1.7: nothing after the failure is processed.
  expect(feed(conn, c2s(0x1, 'after'))).toEqual([]);
  expect(conn.bufferedAmount).toBe(0);
}

/** Every way to cut `bytes` in two gives the same events as feeding it whole. */
function expectSameForEverySplit(make: () => Connection, bytes: Buffer, expected: ConnectionEvent[]): void {
  expect(feed(make(), bytes)).toEqual(expected);
  for (let cut = 0; cut <= bytes.length; cut++) {
    expect(feed(make(), bytes.subarray(0, cut), bytes.subarray(cut))).toEqual(expected);
  }
  const conn = make();
  for (let i = 0; i < bytes.length; i++) conn.receiveData(Buffer.from(bytes.subarray(i, i + 1)));
  expect(conn.eventsReceived()).toEqual(expected);
}

describe('Connection: RFC 6455 §5.7 examples', () => {
  it('parses a single-frame unmasked text message (client side)', () => {
    expectSameForEverySplit(client, hex('81 05 48 65 6c 6c 6f'), [{ type: 'text', data: 'Hello' }]);
  });

  it('parses a single-frame masked text message (server side)', () => {
    expectSameForEverySplit(server, hex('81 85 37 fa 21 3d 7f 9f 4d 51 58'), [{ type: 'text', data: 'Hello' }]);
  });

  it('parses a fragmented unmasked text message', () => {
    expectSameForEverySplit(client, hex('01 03 48 65 6c 80 02 6c 6f'), [{ type: 'text', data: 'Hello' }]);
  });

  it('answers an unmasked ping with a masked pong carrying the same data', () => {
    const conn = client();
    expect(feed(conn, hex('89 05 48 65 6c 6c 6f'))).toEqual([{ type: 'ping', data: Buffer.from('Hello') }]);
    // The §5.7 masked pong, since the client's key is 37 fa 21 3d.
    expect(sent(conn)).toEqual({ bytes: hex('8a 85 37 fa 21 3d 7f 9f 4d 51 58'), eof: false });
  });

  it('answers a masked ping with an unmasked pong and reports pongs', () => {
    const conn = server();
    expect(feed(conn, c2s(0x9, 'Hello'), c2s(0xa, 'Hello'))).toEqual([
      { type: 'ping', data: Buffer.from('Hello') },
      { type: 'pong', data: Buffer.from('Hello') },
    ]);
    expect(sent(conn).bytes).toEqual(hex('8a 05 48 65 6c 6c 6f'));
  });

  it('parses 256-byte and 64 KiB binary messages (16- and 64-bit lengths)', () => {
    const small = Buffer.alloc(256, 7);
    const big = Buffer.alloc(65536, 9);
    const s = s2c(0x2, small);
    expect(s.subarray(0, 4)).toEqual(hex('82 7e 01 00'));
    const b = s2c(0x2, big);
    expect(b.subarray(0, 10)).toEqual(hex('82 7f 00 00 00 00 00 01 00 00'));
    expect(feed(client({ maxMessageSize: 65536 }), s, b)).toEqual([
      { type: 'binary', data: small },
      { type: 'binary', data: big },
    ]);
    // Chunked the way a socket delivers it.
    const conn = server({ maxMessageSize: 65536 });
    const masked = c2s(0x2, big);
    for (let i = 0; i < masked.length; i += 1000) conn.receiveData(Buffer.from(masked.subarray(i, i + 1000)));
    expect(conn.eventsReceived()).toEqual([{ type: 'binary', data: big }]);
  });

  it('accepts non-minimal length encodings and empty messages', () => {
    expectSameForEverySplit(server, Buffer.concat([c2s(0x1, 'hi', { length: 16 }), c2s(0x2, 'yo', { length: 64 }), c2s(0x1, ''), c2s(0x2, '')]), [
      { type: 'text', data: 'hi' },
      { type: 'binary', data: Buffer.from('yo') },
      { type: 'text', data: '' },
      { type: 'binary', data: Buffer.alloc(0) },
    ]);
  });

  it('handles control frames inside a fragmented message, and many frames in one chunk', () => {
    const bytes = Buffer.concat([
      c2s(0x2, 'ab', { fin: false }),
      c2s(0x9, 'p'),
      c2s(0x0, '', { fin: false }),
      c2s(0xa, ''),
      c2s(0x0, 'cd'),
      c2s(0x1, 'é€😀', { fin: false }),
      c2s(0x0, 'x'),
    ]);
    expectSameForEverySplit(server, bytes, [
      { type: 'ping', data: Buffer.from('p') },
      { type: 'pong', data: Buffer.alloc(0) },
      { type: 'binary', data: Buffer.from('abcd') },
      { type: 'text', data: 'é€😀x' },
    ]);
  });
});

describe('Connection: pull-based parsing', () => {
  it('only buffers in receiveData and parses one event per nextEvent', () => {
    const conn = server();
    const bytes = Buffer.concat([c2s(0x1, 'one'), c2s(0x9, 'p'), c2s(0x1, 'two')]);
    conn.receiveData(Buffer.from(bytes));
    expect(conn.bufferedAmount).toBe(bytes.length);
    expect(conn.nextEvent()).toEqual({ type: 'text', data: 'one' });
    expect(conn.bufferedAmount).toBe(bytes.length - c2s(0x1, 'one').length);
    // The ping is not answered before it is parsed.
    expect(conn.dataToSend()).toEqual([]);
    expect(conn.nextEvent()).toEqual({ type: 'ping', data: Buffer.from('p') });
    expect(sent(conn).bytes).toEqual(hex('8a 01 70'));
    expect(conn.nextEvent()).toEqual({ type: 'text', data: 'two' });
    expect(conn.nextEvent()).toBeUndefined();
    expect(conn.bufferedAmount).toBe(0);
  });

  it('does not inflate a compressed message before it is pulled', () => {
    let calls = 0;
    const codec: MessageCodec = {
      decompress: (data, max) => {
        calls++;
        return zlibCodec.decompress(data, max);
      },
      compress: (data) => zlibCodec.compress(data),
    };
    const conn = server({ codec });
    conn.receiveData(c2s(0x1, compressed('hello'), { rsv1: true }));
    expect(calls).toBe(0);
    expect(conn.nextEvent()).toEqual({ type: 'text', data: 'hello' });
    expect(calls).toBe(1);
  });
});

describe('Connection: validation (1002)', () => {
  const cases: Array<[string, Buffer, string, 'with codec'?]> = [
    ['RSV1 without extension', c2s(0x1, 'a', { rsv1: true }), 'RSV1 set without a negotiated extension'],
    ['RSV2', c2s(0x1, 'a', { rsv2: true }), 'RSV2 set without a negotiated extension'],
    ['RSV3', c2s(0x1, 'a', { rsv3: true }), 'RSV3 set without a negotiated extension'],
    ['RSV1 on control with codec', c2s(0x9, 'a', { rsv1: true }), 'RSV1 set on a control frame', 'with codec'],
    ['reserved data opcode', c2s(0x3, 'a'), 'reserved opcode 0x3'],
    ['reserved control opcode', c2s(0xb, 'a'), 'reserved opcode 0xb'],
    ['fragmented control frame', c2s(0x9, 'a', { fin: false }), 'fragmented control frame'],
    ['control frame of 126 bytes', c2s(0x9, Buffer.alloc(126)), 'control frame payload over 125 bytes'],
    ['control frame with a 64-bit length', c2s(0xa, Buffer.alloc(3), { length: 64 }), 'control frame payload over 125 bytes'],
    ['continuation without start', c2s(0x0, 'a'), 'continuation frame without a message to continue'],
    ['new message inside a fragmented one', Buffer.concat([c2s(0x1, 'a', { fin: false }), c2s(0x2, 'b')]), 'new data frame inside a fragmented message'],
    ['unmasked frame to a server', s2c(0x1, 'a'), 'unmasked frame from client'],
    ['64-bit length with MSB set', hex('82 ff 80 00 00 00 00 00 00 01 37 fa 21 3d'), '64-bit payload length with the most significant bit set'],
    ['close payload of 1 byte', c2s(0x8, hex('03')), 'close frame payload of 1 byte'],
    ['close code 1005', c2s(0x8, hex('03ed')), 'close code 1005 is not allowed on the wire'],
    ['close code 1006', c2s(0x8, hex('03ee')), 'close code 1006 is not allowed on the wire'],
    ['close code 1015', c2s(0x8, hex('03f7')), 'close code 1015 is not allowed on the wire'],
    ['close code 999', c2s(0x8, hex('03e7')), 'close code 999 is not allowed on the wire'],
    ['close code 1004', c2s(0x8, hex('03ec')), 'close code 1004 is not allowed on the wire'],
    ['close code 2999', c2s(0x8, hex('0bb7')), 'close code 2999 is not allowed on the wire'],
    ['close code 5000', c2s(0x8, hex('1388')), 'close code 5000 is not allowed on the wire'],
  ];
  for (const [name, bytes, reason, withCodec] of cases) {
    it(`fails with 1002 on ${name}`, () => {
      const conn = server(withCodec ? { codec: zlibCodec } : {});
      expect(feed(conn, bytes)).toEqual([]);
      expect(conn.failure).toBeInstanceOf(ProtocolError);
      expectFailed(conn, 1002, reason);
    });
  }

  it('fails with 1002 on a masked frame sent to a client', () => {
    const conn = client();
    expect(feed(conn, c2s(0x1, 'a'))).toEqual([]);
    const out = sent(conn);
    // The client's close frame is masked; the client does not end the stream itself.
    expect(out.eof).toBe(false);
    expect(out.bytes.subarray(0, 6)).toEqual(hex('88 9a 37 fa 21 3d'));
    expect(conn.closeSent).toEqual({ code: 1002, reason: 'masked frame from server' });
    expect(conn.closeExpected()).toBe(true);
    conn.receiveEof();
    expect(conn.dataToSend()).toEqual([SEND_EOF]);
    expect(conn.state).toBe(State.CLOSED);
    expect(conn.closeExpected()).toBe(false);
  });

  it('fails before the payload arrives when the header alone breaks a rule', () => {
    const conn = server();
    conn.receiveData(hex('83'));
    expect(conn.nextEvent()).toBeUndefined();
    expect(conn.dataToSend()).toEqual([]);
    conn.receiveData(hex('85'));
    expect(conn.nextEvent()).toBeUndefined();
    expectFailed(conn, 1002, 'reserved opcode 0x3');
  });

  it('accepts every close code allowed on the wire, with and without a reason', () => {
    for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]) {
      const conn = server();
      const payload = Buffer.concat([Buffer.from([code >> 8, code & 255]), Buffer.from('bye')]);
      expect(feed(conn, c2s(0x8, payload))).toEqual([{ type: 'close', code, reason: 'bye' }]);
      expect(sent(conn)).toEqual({ bytes: Buffer.concat([hex('88 05'), payload]), eof: true });
    }
  });

  it('fails with 1007 on invalid UTF-8 in a close reason', () => {
    const conn = server();
    expect(feed(conn, c2s(0x8, hex('03e8 ff')))).toEqual([]);
    expect(conn.failure).toBeInstanceOf(InvalidUtf8Error);
    expectFailed(conn, 1007, 'invalid UTF-8 in close reason');
  });
});

describe('Connection: UTF-8 of text messages (1007)', () => {
  it('fails at the first invalid byte, one byte at a time, before the frame ends', () => {
    // "ab" then ED A0 (a UTF-16 surrogate, never valid in UTF-8), in a frame that declares 100 bytes.
    const payload = Buffer.concat([Buffer.from('ab'), hex('ed a0 80'), Buffer.alloc(95, 0x61)]);
    const bytes = c2s(0x1, payload);
    const conn = server();
    const headerLength = 2 + 4;
    let failedAt = -1;
    for (let i = 0; i < bytes.length && failedAt < 0; i++) {
      conn.receiveData(Buffer.from(bytes.subarray(i, i + 1)));
      expect(conn.nextEvent()).toBeUndefined();
      if (conn.failure !== null) failedAt = i - headerLength;
    }
    expect(failedAt).toBe(3); // the A0 byte
    expectFailed(conn, 1007, 'invalid UTF-8 in text message');
  });

  it('fails across fragments at the first invalid byte', () => {
    const conn = server();
    expect(feed(conn, c2s(0x1, hex('e2 82'), { fin: false }))).toEqual([]);
    expect(conn.failure).toBeNull();
    expect(feed(conn, c2s(0x0, hex('28'), { fin: false }))).toEqual([]);
    expectFailed(conn, 1007, 'invalid UTF-8 in text message');
  });

  it('accepts a sequence split across fragments and chunks', () => {
    expectSameForEverySplit(server, Buffer.concat([c2s(0x1, hex('f0 9f'), { fin: false }), c2s(0x0, hex('98 80'))]), [{ type: 'text', data: '😀' }]);
  });

  it('fails on a sequence truncated at the end of the message', () => {
    const conn = server();
    expect(feed(conn, c2s(0x1, hex('61 e2 82'), { fin: false }), c2s(0x0, ''))).toEqual([]);
    expectFailed(conn, 1007, 'invalid UTF-8 in text message: truncated sequence at its end');
    const whole = server();
    expect(feed(whole, c2s(0x1, hex('61 e2 82')))).toEqual([]);
    expectFailed(whole, 1007, 'invalid UTF-8 in text message');
  });

  it('keeps a byte order mark and accepts any bytes in binary messages', () => {
    expect(feed(server(), c2s(0x1, hex('ef bb bf 61')), c2s(0x2, hex('ff fe')))).toEqual([
      { type: 'text', data: '\ufeffa' },
      { type: 'binary', data: hex('ff fe') },
    ]);
  });
});

describe('Connection: maxMessageSize (1009)', () => {
  it('accepts a message of exactly the limit', () => {
    expect(feed(server(), c2s(0x2, Buffer.alloc(LIMIT, 1)))).toEqual([{ type: 'binary', data: Buffer.alloc(LIMIT, 1) }]);
  });

  it('refuses one byte more from the declared length, before any payload byte', () => {
    const conn = server();
    const bytes = c2s(0x2, Buffer.alloc(LIMIT + 1));
    conn.receiveData(Buffer.from(bytes.subarray(0, 8))); // header only: 2 + 2 + 4
    expect(conn.nextEvent()).toBeUndefined();
    expect(conn.failure).toBeInstanceOf(MessageTooBigError);
    expectFailed(conn, 1009, `message of ${LIMIT + 1} bytes; the limit is ${LIMIT} (option maxMessageSize, env WEBSOCKETS_MAX_MESSAGE_SIZE)`);
  });

  it('uses the exact wording of the issue at the default limit', () => {
    const conn = server({ maxMessageSize: 1048576 });
    feed(conn, c2s(0x2, Buffer.alloc(0)).subarray(0, 1), hex('ff 00 00 00 00 00 10 00 01 37 fa 21 3d'));
    expectFailed(conn, 1009, 'message of 1048577 bytes; the limit is 1048576 (option maxMessageSize, env WEBSOCKETS_MAX_MESSAGE_SIZE)');
  });

  it('counts the running total of a fragmented message: limit passes, limit + 1 fails', () => {
    const half = LIMIT / 2;
    const ok = Buffer.concat([c2s(0x2, Buffer.alloc(half), { fin: false }), c2s(0x9, ''), c2s(0x0, Buffer.alloc(half))]);
    expect(feed(server(), ok).map((e) => e.type)).toEqual(['ping', 'binary']);
    const conn = server();
    const over = Buffer.concat([c2s(0x1, 'a'.repeat(half), { fin: false }), c2s(0x0, 'a'.repeat(half + 1))]);
    expect(feed(conn, over)).toEqual([]);
    expectFailed(conn, 1009, `message of ${LIMIT + 1} bytes; the limit is ${LIMIT} (option maxMessageSize, env WEBSOCKETS_MAX_MESSAGE_SIZE)`);
  });

  it('checks a 64-bit length whose high half is non-zero without reading its payload', () => {
    const conn = server();
    // 2**32 + 5 bytes: a parser that shifts by 32 would read 5.
    feed(conn, hex('82 ff 00 00 00 01 00 00 00 05 37 fa 21 3d 00 00 00 00 00'));
    expectFailed(conn, 1009, `message of ${2 ** 32 + 5} bytes; the limit is ${LIMIT} (option maxMessageSize, env WEBSOCKETS_MAX_MESSAGE_SIZE)`);
  });

  it('counts frames separately for separate messages', () => {
    const msg = c2s(0x2, Buffer.alloc(LIMIT));
    expect(feed(server(), msg, msg)).toHaveLength(2);
  });
});

describe('Connection: maxFragments (1008)', () => {
  const fragments = (count: number, payload: string, opcode = 0x2): Buffer[] => {
    const frames = [c2s(opcode, payload, { fin: count === 1 })];
    for (let i = 1; i < count; i++) frames.push(c2s(0x0, payload, { fin: i === count - 1 }));
    return frames;
  };

  it('accepts a message in exactly maxFragments frames, control frames in between not counted', () => {
    const frames = fragments(8, 'a', 0x1);
    frames.splice(3, 0, c2s(0x9, 'p'));
    expect(feed(server({ maxFragments: 8 }), Buffer.concat(frames))).toEqual([
      { type: 'ping', data: Buffer.from('p') },
      { type: 'text', data: 'aaaaaaaa' },
    ]);
  });

  it('fails with 1008 at the frame one over the limit, empty continuation frames included, before its payload', () => {
    const conn = server({ maxFragments: 8 });
    // Eight empty frames, then the header (with its mask key) of a ninth: the limit is hit before its payload.
    feed(conn, ...fragments(9, '').slice(0, 8).map((f) => Buffer.from(f)), c2s(0x0, 'xyz', { fin: false }).subarray(0, 6));
    expect(conn.failure).toBeInstanceOf(TooManyFragmentsError);
    expect((conn.failure as TooManyFragmentsError).limit).toBe(8);
    expectFailed(conn, 1008, 'message in more than 8 fragments (option maxFragments, env WEBSOCKETS_MAX_FRAGMENTS)');
  });

  it('counts per message: the next message starts again at one', () => {
    const conn = server({ maxFragments: 2 });
    expect(feed(conn, ...fragments(2, 'a'), ...fragments(2, 'b'), c2s(0x2, 'c')).map((e) => e.type)).toEqual(['binary', 'binary', 'binary']);
  });
});

describe('Connection: a message in many pieces', () => {
  it('assembles 100 000 one-byte fragments into one message (binary, text and compressed)', () => {
    const count = 100_000;
    const big = { maxMessageSize: count, maxFragments: count };
    const bytes = Buffer.concat(fragments1(count, 0x2));
    const events = feed(server(big), bytes);
    expect(events).toHaveLength(1);
    expect((events[0] as { data: Buffer }).data.equals(Buffer.alloc(count, 0x61))).toBe(true);
    expect(feed(server(big), Buffer.concat(fragments1(count, 0x1)))).toEqual([{ type: 'text', data: 'a'.repeat(count) }]);
  });

  it('assembles a frame trickled one byte per read, and fails at the first invalid UTF-8 byte of one', () => {
    const text = 'é'.repeat(200);
    const bytes = c2s(0x1, text);
    const conn = server();
    for (let i = 0; i < bytes.length; i++) conn.receiveData(Buffer.from(bytes.subarray(i, i + 1)));
    expect(conn.eventsReceived()).toEqual([{ type: 'text', data: text }]);
    const bad = c2s(0x1, Buffer.concat([Buffer.from(text), hex('ff'), Buffer.from(text)]));
    const failing = server();
    const invalidAt = bad.length - Buffer.byteLength(text) - 1;
    for (let i = 0; i <= invalidAt; i++) failing.receiveData(Buffer.from(bad.subarray(i, i + 1)));
    expect(failing.eventsReceived()).toEqual([]);
    expect(failing.failure).toBeInstanceOf(InvalidUtf8Error);
  });

  it('keeps a message that arrives whole as a view of the received bytes (no copy)', () => {
    const conn = server();
    const chunk = Buffer.from(c2s(0x2, Buffer.alloc(300, 7)));
    conn.receiveData(chunk);
    const [event] = conn.eventsReceived() as Array<{ data: Buffer }>;
    expect(event!.data.buffer).toBe(chunk.buffer);
  });
});

/** A message of `count` one-byte fragments ('a'), as separate frames. */
function fragments1(count: number, opcode: number): Buffer[] {
  const frames = [c2s(opcode, 'a', { fin: false })];
  const middle = c2s(0x0, 'a', { fin: false });
  for (let i = 1; i < count - 1; i++) frames.push(middle);
  frames.push(c2s(0x0, 'a'));
  return frames;
}

// --- permessage-deflate through a codec built on node:zlib in the test -----------------------------------

const TAIL = hex('00 00 ff ff');
/** A stand-in for lib/node/deflate.ts: RFC 7692 §7.2 framing on node:zlib, with the output cap. */
const zlibCodec: MessageCodec = {
  decompress(data, maxOutput) {
    try {
      return inflateRawSync(Buffer.concat([data, TAIL]), { maxOutputLength: maxOutput, finishFlush: constants.Z_SYNC_FLUSH });
    } catch (error) {
      if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') return null;
      throw error;
    }
  },
  compress(data) {
    const out = deflateRawSync(data, { finishFlush: constants.Z_SYNC_FLUSH });
    return out.subarray(0, out.length - TAIL.length);
  },
};
const compressed = (text: string): Buffer => zlibCodec.compress(Buffer.from(text));

describe('Connection: compressed messages', () => {
  it('inflates a compressed text message split into fragments, and binary ones', () => {
    const data = compressed('hello hello hello');
    const bytes = Buffer.concat([
      c2s(0x1, data.subarray(0, 3), { rsv1: true, fin: false }),
      c2s(0x0, data.subarray(3)),
      c2s(0x2, compressed('bin'), { rsv1: true }),
      c2s(0x2, 'raw'),
    ]);
    expectSameForEverySplit(() => server({ codec: zlibCodec }), bytes, [
      { type: 'text', data: 'hello hello hello' },
      { type: 'binary', data: Buffer.from('bin') },
      { type: 'binary', data: Buffer.from('raw') },
    ]);
  });

  it('fails with 1002 on RSV1 on a continuation frame', () => {
    const conn = server({ codec: zlibCodec });
    feed(conn, c2s(0x1, 'a', { fin: false }), c2s(0x0, 'b', { rsv1: true }));
    expectFailed(conn, 1002, 'RSV1 set on a continuation frame');
  });

  it('fails with 1002 on bad deflate data', () => {
    const conn = server({ codec: zlibCodec });
    feed(conn, c2s(0x2, hex('ff ff ff ff'), { rsv1: true }));
    expectFailed(conn, 1002, 'invalid compressed data');
  });

  it('inflates exactly the limit, and refuses one byte more with 1009', () => {
    for (const codec of [zlibCodec]) {
      const ok = server({ codec });
      expect(feed(ok, c2s(0x2, compressed('z'.repeat(LIMIT)), { rsv1: true }))).toEqual([{ type: 'binary', data: Buffer.from('z'.repeat(LIMIT)) }]);
      const conn = server({ codec });
      feed(conn, c2s(0x2, compressed('z'.repeat(LIMIT + 1)), { rsv1: true }));
      expect(conn.failure).toEqual(new MessageTooBigError(null, LIMIT, true));
      expectFailed(conn, 1009, `message over ${LIMIT} bytes after decompression (option maxMessageSize, env WEBSOCKETS_MAX_MESSAGE_SIZE)`);
    }
  });

  it('fails with 1007 on invalid UTF-8 in an inflated text message', () => {
    const conn = server({ codec: zlibCodec });
    const bad = zlibCodec.compress(hex('c3 28'));
    feed(conn, c2s(0x1, bad, { rsv1: true }));
    expectFailed(conn, 1007, 'invalid UTF-8 in text message');
  });

  it('compresses outgoing messages at or above the threshold only', () => {
    const conn = server({ codec: zlibCodec, compressionThreshold: 4 });
    conn.sendText('abc');
    conn.sendText('abcd');
    conn.sendBinary(Buffer.from('abcd'));
    const reader = client({ codec: zlibCodec });
    const out = sent(conn).bytes;
    expect(out[0]).toBe(0x81); // below the threshold: no RSV1
    expect(out[5]).toBe(0xc1); // RSV1 + text
    expect(feed(reader, out)).toEqual([
      { type: 'text', data: 'abc' },
      { type: 'text', data: 'abcd' },
      { type: 'binary', data: Buffer.from('abcd') },
    ]);
  });
});

describe('Connection: closing handshake', () => {
  it('server: echoes a received close with its code and ends the stream', () => {
    const conn = server();
    const events = feed(conn, c2s(0x8, hex('03e8 62 79 65')), c2s(0x1, 'dropped'));
    expect(events).toEqual([{ type: 'close', code: 1000, reason: 'bye' }]);
    expect(sent(conn)).toEqual({ bytes: hex('88 05 03e8 62 79 65'), eof: true });
    expect(conn.closeReceived).toEqual({ code: 1000, reason: 'bye' });
    expect(conn.closeSent).toEqual({ code: 1000, reason: 'bye' });
    expect(conn.state).toBe(State.CLOSING);
    expect(conn.closeExpected()).toBe(true);
    expect(conn.bufferedAmount).toBe(0);
    conn.receiveData(c2s(0x1, 'later'));
    expect(conn.bufferedAmount).toBe(0);
    conn.receiveEof();
    expect(conn.dataToSend()).toEqual([]);
    expect(conn.state).toBe(State.CLOSED);
    expect([conn.closeCode, conn.closeReason]).toEqual([1000, 'bye']);
    expect(conn.failure).toBeNull();
  });

  it('echoes an empty close payload empty (no invented 1005)', () => {
    const conn = client();
    expect(feed(conn, s2c(0x8, ''))).toEqual([{ type: 'close', code: 1005, reason: '' }]);
    expect(sent(conn)).toEqual({ bytes: hex('88 80 37 fa 21 3d'), eof: false });
    expect(conn.closeCode).toBe(1005);
    expect(conn.closeSent).toEqual({ code: 1005, reason: '' });
    // The client waits for the server to end the stream, then ends its own side.
    expect(conn.closeExpected()).toBe(true);
    conn.receiveEof();
    expect(conn.dataToSend()).toEqual([SEND_EOF]);
    expect(conn.state).toBe(State.CLOSED);
  });

  it('client-initiated: sends close, keeps receiving data until the echo, then waits for EOF', () => {
    const conn = client();
    conn.sendClose(1000, 'done');
    expect(sent(conn)).toEqual({ bytes: Buffer.concat([hex('88 86 37 fa 21 3d'), frame(0x8, hex('03e8 64 6f 6e 65')).subarray(6)]), eof: false });
    expect(conn.state).toBe(State.CLOSING);
    expect(conn.closeExpected()).toBe(true);
    expect(() => conn.sendText('x')).toThrow(new InvalidStateError('cannot send a text message: the connection is CLOSING'));
    expect(() => conn.sendClose()).toThrow(InvalidStateError);
    // Data sent by the server before its close is still delivered; pings are still answered (RFC 6455 §5.5.2).
    expect(feed(conn, s2c(0x1, 'late'), s2c(0x9, ''), s2c(0x8, hex('03e8')))).toEqual([
      { type: 'text', data: 'late' },
      { type: 'ping', data: Buffer.alloc(0) },
      { type: 'close', code: 1000, reason: '' },
    ]);
    // The pong is sent; the close is not echoed twice.
    expect(sent(conn)).toEqual({ bytes: hex('8a 80 37 fa 21 3d'), eof: false });
    conn.receiveEof();
    expect(conn.dataToSend()).toEqual([SEND_EOF]);
    expect(conn.state).toBe(State.CLOSED);
  });

  it('server-initiated: sends close without EOF, then ends the stream when the echo arrives', () => {
    const conn = server();
    conn.sendClose(1001);
    expect(sent(conn)).toEqual({ bytes: hex('88 02 03 e9'), eof: false });
    expect(feed(conn, c2s(0x8, hex('03e9')))).toEqual([{ type: 'close', code: 1001, reason: '' }]);
    expect(sent(conn)).toEqual({ bytes: Buffer.alloc(0), eof: true });
    expect(conn.closeSent).toEqual({ code: 1001, reason: '' });
    conn.receiveEof();
    expect(conn.state).toBe(State.CLOSED);
  });

  it('sendClose without a code sends an empty close frame', () => {
    const conn = server();
    conn.sendClose();
    expect(sent(conn).bytes).toEqual(hex('88 00'));
    expect(conn.closeSent).toEqual({ code: 1005, reason: '' });
  });

  it('sendClose validates its arguments', () => {
    const conn = server();
    expect(() => conn.sendClose(1005)).toThrow(RangeError);
    expect(() => conn.sendClose(1006)).toThrow(RangeError);
    expect(() => conn.sendClose(undefined, 'why')).toThrow(RangeError);
    expect(() => conn.sendClose(1000, 'é'.repeat(62))).toThrow(new RangeError('close reason of 124 bytes is over 123 bytes'));
    expect(conn.state).toBe(State.OPEN);
    conn.sendClose(4999, 'x'.repeat(123));
    expect(sent(conn).bytes.subarray(0, 4)).toEqual(hex('88 7d 13 87'));
  });

  it('an EOF without a close frame is an abnormal closure (1006), processed after buffered events', () => {
    for (const make of [server, client]) {
      const conn = make();
      conn.receiveData(make === server ? c2s(0x1, 'last') : s2c(0x1, 'last'));
      conn.receiveData(hex('81'));
      conn.receiveEof();
      conn.receiveEof();
      conn.receiveData(hex('00'));
      expect(conn.state).toBe(State.OPEN);
      expect(conn.eventsReceived()).toEqual([{ type: 'text', data: 'last' }]);
      expect(conn.dataToSend()).toEqual([SEND_EOF]);
      expect(conn.state).toBe(State.CLOSED);
      expect([conn.closeCode, conn.closeReason, conn.closeSent, conn.failure]).toEqual([1006, '', null, null]);
      expect(conn.closeExpected()).toBe(false);
    }
  });

  it('an EOF in the middle of a payload is also 1006', () => {
    const conn = server();
    conn.receiveData(c2s(0x2, 'abcdef').subarray(0, 9));
    expect(conn.nextEvent()).toBeUndefined();
    conn.receiveEof();
    expect(conn.nextEvent()).toBeUndefined();
    expect(conn.closeCode).toBe(1006);
    expect(conn.state).toBe(State.CLOSED);
  });

  it('a close frame received together with EOF closes at once', () => {
    const conn = client();
    conn.receiveData(s2c(0x8, hex('03e8')));
    conn.receiveEof();
    expect(conn.eventsReceived()).toEqual([{ type: 'close', code: 1000, reason: '' }]);
    const out = conn.dataToSend();
    expect(out.at(-1)).toBe(SEND_EOF);
    expect(conn.state).toBe(State.CLOSED);
  });

  it('fail(): server sends close and EOF at once; later input is discarded; sends throw', () => {
    const conn = server();
    conn.receiveData(c2s(0x1, 'pending'));
    conn.fail(1011, 'x'.repeat(200));
    const out = sent(conn);
    expect(out.eof).toBe(true);
    expect(out.bytes.length).toBe(2 + 2 + 123);
    expect(conn.closeSent).toEqual({ code: 1011, reason: 'x'.repeat(123) });
    expect(conn.nextEvent()).toBeUndefined();
    expect(conn.bufferedAmount).toBe(0);
    expect(() => conn.sendBinary(Buffer.from('a'))).toThrow(InvalidStateError);
    expect(() => conn.sendPing()).toThrow(InvalidStateError);
    expect(() => conn.sendPong()).toThrow(InvalidStateError);
    conn.fail(1002);
    expect(conn.dataToSend()).toEqual([]);
    conn.receiveEof();
    expect(conn.state).toBe(State.CLOSED);
    expect(() => conn.sendText('a')).toThrow(new InvalidStateError('cannot send a text message: the connection is CLOSED'));
  });

  it('fail() cuts a long reason between characters and refuses codes that cannot be sent', () => {
    const conn = server();
    expect(() => conn.fail(1005)).toThrow(RangeError);
    conn.fail(1008, `a${'€'.repeat(50)}`);
    // 1 + 3 * 40 = 121 bytes fit; a 41st euro sign would make 124.
    expect(conn.closeSent).toEqual({ code: 1008, reason: `a${'€'.repeat(40)}` });
  });

  it('fail(1006) sends no close frame', () => {
    const conn = client();
    conn.fail(1006);
    expect(conn.dataToSend()).toEqual([]);
    expect(conn.state).toBe(State.OPEN);
    conn.receiveEof();
    expect(conn.dataToSend()).toEqual([SEND_EOF]);
    expect(conn.state).toBe(State.CLOSED);
  });

  it('maps an unexpected error to 1011 without a reason', () => {
    const codec: MessageCodec = {
      decompress: () => {
        throw new Error('boom');
      },
      compress: (d) => d,
    };
    const conn = server({ codec });
    feed(conn, c2s(0x1, 'x', { rsv1: true }));
    // Bad deflate data is 1002; a bug elsewhere would be 1011. Simulate one with a parser that throws a plain error.
    expectFailed(conn, 1002, 'invalid compressed data');
    const broken = server();
    (broken as unknown as { parse: () => never }).parse = () => {
      throw new TypeError('internal detail');
    };
    broken.receiveData(c2s(0x1, 'x'));
    expect(broken.nextEvent()).toBeUndefined();
    expect(sent(broken)).toEqual({ bytes: hex('88 02 03 f3'), eof: true });
    expect(broken.failure).toBeNull();
  });
});

describe('Connection: sending', () => {
  it('writes the §5.7 frames: unmasked from a server, masked with the injected key from a client', () => {
    const s = server();
    s.sendText('Hello');
    // A small string goes as one buffer, header and UTF-8 together.
    expect(s.dataToSend()).toEqual([hex('81 05 48 65 6c 6c 6f')]);
    const c = client();
    c.sendText(Buffer.from('Hello'));
    expect(sent(c).bytes).toEqual(hex('81 85 37 fa 21 3d 7f 9f 4d 51 58'));
  });

  it('sends a string of up to 1024 code units as one buffer, with a 16-bit length past 125 bytes, and a longer one as header and payload', () => {
    const s = server();
    const accented = 'é'.repeat(100); // 200 UTF-8 bytes
    s.sendText(accented);
    expect(s.dataToSend()).toEqual([Buffer.concat([hex('81 7e 00 c8'), Buffer.from(accented)])]);
    const long = 'x'.repeat(1025);
    s.sendText(long);
    expect(s.dataToSend()).toEqual([hex('81 7e 04 01'), Buffer.from(long)]);
  });

  it('keeps header and payload in separate buffers and does not copy a server payload', () => {
    const s = server();
    const payload = Buffer.alloc(70000, 1);
    s.sendBinary(payload);
    const out = s.dataToSend();
    expect(out).toHaveLength(2);
    expect(out[0]).toEqual(hex('82 7f 00 00 00 00 00 01 11 70'));
    expect(out[1]).toBe(payload);
  });

  it('uses a fresh random key per frame by default', () => {
    const c = new Connection({ side: 'client', maxMessageSize: LIMIT });
    const keys = new Set<string>();
    for (let i = 0; i < 50; i++) {
      c.sendPing(Buffer.from('p'));
      keys.add((c.dataToSend()[0] as Buffer).subarray(2, 6).toString('hex'));
    }
    expect(keys.size).toBe(50);
  });

  it('refuses control payloads over 125 bytes', () => {
    const s = server();
    expect(() => s.sendPing(Buffer.alloc(126))).toThrow(new RangeError('control frame payload of 126 bytes is over 125 bytes'));
    s.sendPong(Buffer.alloc(125));
    expect(sent(s).bytes.length).toBe(127);
  });
});

