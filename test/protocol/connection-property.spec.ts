/**
 * Property tests (fast-check): any split of a valid byte stream gives identical events, and random or mutated
 * bytes never throw out of the core: they parse, or they fail the connection with a close code.
 */
import { describe, it, expect } from '@jest/globals';
import fc from 'fast-check';
import { Connection, SEND_EOF, State, type ConnectionEvent } from '../../lib/protocol/connection.js';
import type { Side } from '../../lib/protocol/frame.js';

const LIMIT = 4096;

/** Builds one frame independently of lib/protocol/frame-writer.ts. */
function frame(opcode: number, fin: boolean, data: Buffer, key: Buffer | null): Buffer {
  const head = [(fin ? 0x80 : 0) | opcode];
  const m = key ? 0x80 : 0;
  if (data.length <= 125) head.push(m | data.length);
  else if (data.length <= 0xffff) head.push(m | 126, data.length >> 8, data.length & 255);
  else head.push(m | 127, 0, 0, 0, 0, (data.length >>> 24) & 255, (data.length >>> 16) & 255, (data.length >> 8) & 255, data.length & 255);
  const body = Buffer.from(data);
  if (key) for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3]!;
  return Buffer.concat([Buffer.from(head), key ?? Buffer.alloc(0), body]);
}

interface Message {
  kind: 'text' | 'binary' | 'ping' | 'pong';
  text: string;
  bytes: Uint8Array;
  /** Fragment sizes (data messages); a ping may be interleaved after the first fragment. */
  cuts: number[];
  interleavedPing: boolean;
}

const messageArb: fc.Arbitrary<Message> = fc.record({
  kind: fc.constantFrom('text', 'binary', 'ping', 'pong'),
  text: fc.string({ unit: 'binary', maxLength: 60 }),
  bytes: fc.uint8Array({ maxLength: 300 }),
  cuts: fc.array(fc.nat(40), { maxLength: 3 }),
  interleavedPing: fc.boolean(),
});

/** The wire bytes of a message sequence, and the events they must give. */
function encode(messages: Message[], masked: boolean, keys: Buffer[]): { bytes: Buffer; events: ConnectionEvent[] } {
  const frames: Buffer[] = [];
  const events: ConnectionEvent[] = [];
  let k = 0;
  const key = (): Buffer | null => (masked ? keys[k++ % keys.length]! : null);
  for (const m of messages) {
    if (m.kind === 'ping' || m.kind === 'pong') {
      const data = Buffer.from(m.bytes.subarray(0, 125));
      frames.push(frame(m.kind === 'ping' ? 0x9 : 0xa, true, data, key()));
      events.push({ type: m.kind, data });
      continue;
    }
    const data = m.kind === 'text' ? Buffer.from(m.text) : Buffer.from(m.bytes);
    // Fragments: cut anywhere, even inside a UTF-8 sequence.
    const pieces: Buffer[] = [];
    let at = 0;
    for (const cut of m.cuts) {
      const end = Math.min(data.length, at + cut);
      pieces.push(data.subarray(at, end));
      at = end;
    }
    pieces.push(data.subarray(at));
    pieces.forEach((piece, i) => {
      frames.push(frame(i === 0 ? (m.kind === 'text' ? 0x1 : 0x2) : 0x0, i === pieces.length - 1, piece, key()));
      if (i === 0 && m.interleavedPing && pieces.length > 1) {
        frames.push(frame(0x9, true, Buffer.from('x'), key()));
        events.push({ type: 'ping', data: Buffer.from('x') });
      }
    });
    events.push(m.kind === 'text' ? { type: 'text', data: m.text } : { type: 'binary', data });
  }
  return { bytes: Buffer.concat(frames), events };
}

/** Splits `bytes` at the given points (sorted, clamped) and copies each chunk. */
function split(bytes: Buffer, points: number[]): Buffer[] {
  const cuts = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let at = 0;
  for (const cut of cuts) {
    chunks.push(Buffer.from(bytes.subarray(at, cut)));
    at = cut;
  }
  chunks.push(Buffer.from(bytes.subarray(at)));
  return chunks;
}

const sideArb = fc.constantFrom<Side>('server', 'client');
const keysArb = fc.array(fc.uint8Array({ minLength: 4, maxLength: 4 }).map((a) => Buffer.from(a)), { minLength: 1, maxLength: 4 });

describe('Connection properties', () => {
  it('gives identical events for any split of a valid stream, pulled at any pace', () => {
    fc.assert(
      fc.property(sideArb, fc.array(messageArb, { maxLength: 8 }), keysArb, fc.array(fc.nat(), { maxLength: 12 }), fc.boolean(), (side, messages, keys, points, pullEarly) => {
        const { bytes, events } = encode(messages, side === 'server', keys);
        const conn = new Connection({ side, maxMessageSize: LIMIT });
        const got: ConnectionEvent[] = [];
        for (const chunk of split(bytes, points)) {
          conn.receiveData(chunk);
          if (pullEarly) got.push(...conn.eventsReceived());
        }
        got.push(...conn.eventsReceived());
        expect(got).toEqual(events);
        expect(conn.failure).toBeNull();
        expect(conn.state).toBe(State.OPEN);
        expect(conn.bufferedAmount).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on random or mutated bytes: events, or a failed connection with a close code', () => {
    const validStream = fc
      .tuple(sideArb, fc.array(messageArb, { maxLength: 5 }), keysArb)
      .chain(([side, messages, keys]) => {
        const { bytes } = encode(messages, side === 'server', keys);
        return fc.tuple(
          fc.constant(side),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }).map((mutations) => {
            const out = Buffer.from(bytes);
            for (const [at, value] of mutations) if (out.length > 0) out[at % out.length] = value;
            return out;
          }),
        );
      });
    const randomStream = fc.tuple(sideArb, fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)));
    fc.assert(
      fc.property(fc.oneof(validStream, randomStream), fc.array(fc.nat(), { maxLength: 8 }), fc.boolean(), ([side, bytes], points, withCodec) => {
        const conn = new Connection({
          side,
          maxMessageSize: 256,
          codec: withCodec ? { decompress: (d) => (d.length % 2 === 0 ? d : null), compress: (d) => d } : null,
        });
        for (const chunk of split(bytes, points)) conn.receiveData(chunk);
        const events = conn.eventsReceived();
        conn.receiveEof();
        events.push(...conn.eventsReceived());
        const out = conn.dataToSend();
        expect(conn.state).toBe(State.CLOSED);
        expect(out.at(-1)).toBe(SEND_EOF);
        if (conn.failure !== null) {
          expect([1002, 1007, 1009]).toContain(conn.failure.closeCode);
          expect(conn.closeSent?.code).toBe(conn.failure.closeCode);
          expect(Buffer.byteLength(conn.closeSent!.reason)).toBeLessThanOrEqual(123);
          // The close frame is the last frame before the EOF.
          const frames = out.filter((b): b is Buffer => b !== SEND_EOF);
          const closeHeader = frames.findLast((b) => (b[0]! & 0x0f) === 0x8 && b.length <= 6);
          expect(closeHeader).toBeDefined();
        } else if (conn.closeReceived === null) {
          expect(conn.closeCode).toBe(1006);
        } else {
          expect(events.at(-1)).toEqual({ type: 'close', ...conn.closeReceived });
        }
      }),
      { numRuns: 1000 },
    );
  });
});
