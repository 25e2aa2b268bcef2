import { Buffer } from 'node:buffer';
import { createRequire } from 'node:module';
import { constants, deflateRawSync } from 'node:zlib';

import { describe, it, expect } from '@jest/globals';
import fc from 'fast-check';

import { resolveConfig, type CompressionOptions } from '../../lib/config/index.js';
import { ProtocolError } from '../../lib/errors.js';
import { INFLATE_CHUNK_SIZE, createDeflateCodec } from '../../lib/node/deflate.js';
import type { DeflateParams, MessageCodec } from '../../lib/protocol/compression.js';
import { acceptDeflateResponse, deflateOffer, negotiateDeflate } from '../../lib/protocol/extensions.js';
import { bytesAllocatedBy } from '../support/allocations.js';

/** ws's own permessage-deflate (a dev dependency), as it is driven by its Receiver and Sender. */
interface WsPerMessageDeflate {
  accept(configurations: ReadonlyArray<Record<string, string[] | true[]>>): Record<string, unknown>;
  offer(): Record<string, unknown>;
  compress(data: Buffer, fin: boolean, callback: (error: Error | null, result?: Buffer) => void): void;
  decompress(data: Buffer, fin: boolean, callback: (error: Error | null, result?: Buffer) => void): void;
  cleanup(): void;
}
interface WsPerMessageDeflateOptions {
  isServer?: boolean;
  maxPayload?: number;
  serverNoContextTakeover?: boolean;
  clientNoContextTakeover?: boolean;
  serverMaxWindowBits?: number | boolean;
  clientMaxWindowBits?: number | boolean;
  threshold?: number;
}
const require = createRequire(import.meta.url);
const wsDir = require.resolve('ws').replace(/index\.js$/, 'lib/');
const PerMessageDeflate = require(`${wsDir}permessage-deflate.js`) as new (options: WsPerMessageDeflateOptions) => WsPerMessageDeflate;
const parseWsExtensions = (require(`${wsDir}extension.js`) as { parse(header: string): Record<string, Array<Record<string, string[] | true[]>>> }).parse;

function wsCompress(ws: WsPerMessageDeflate, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => ws.compress(data, true, (error, result) => (error ? reject(error) : resolve(result!))));
}
function wsDecompress(ws: WsPerMessageDeflate, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => ws.decompress(data, true, (error, result) => (error ? reject(error) : resolve(result!))));
}

const MIB = 1 << 20;

/** Byte equality through Buffer.equals (jest's deep equality walks a buffer byte by byte, which is slow). */
function expectBytes(actual: Buffer | null | undefined, expected: Buffer): void {
  if (actual === null || actual === undefined || !actual.equals(expected)) expect(actual).toEqual(expected);
}

function params(bits: number, noContextTakeover = false): DeflateParams {
  return { localMaxWindowBits: bits, remoteMaxWindowBits: bits, localNoContextTakeover: noContextTakeover, remoteNoContextTakeover: noContextTakeover };
}

/** A reproducible stream of messages that repeat across message boundaries, as chat or JSON traffic does. */
function messages(count: number, seed: number): Buffer[] {
  let state = seed;
  const random = (n: number): number => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state % n;
  };
  const words = ['alpha', 'beta', 'gamma', '{"type":"update","id":', '"room":"lobby"}', '\u00e9t\u00e9', 'zeta'];
  return Array.from({ length: count }, (_, i) => {
    const size = [0, 1, 10, 100, 255, 256, 257, 4096, 5000, 40_000][random(10)]!;
    const bytes = Buffer.alloc(size);
    let at = 0;
    while (at < size) {
      if (random(5) === 0) bytes[at++] = random(256); // some incompressible noise
      else at += bytes.write(words[random(words.length)]!, at);
    }
    return i % 7 === 3 ? Buffer.from(bytes) : bytes;
  });
}

function roundTrip(sender: MessageCodec, receiver: MessageCodec, list: Buffer[]): void {
  for (const message of list) {
    const compressed = sender.compress(message);
    expectBytes(receiver.decompress(compressed, MIB), message);
  }
}

describe('createDeflateCodec', () => {
  it.each([8, 9, 10, 12, 15])('round-trips many messages with context takeover, window bits %i', (bits) => {
    roundTrip(createDeflateCodec(params(bits), 5), createDeflateCodec(params(bits), 5), messages(300, bits));
  });

  it.each([8, 12, 15])('round-trips many messages without context takeover, window bits %i', (bits) => {
    roundTrip(createDeflateCodec(params(bits, true), 5), createDeflateCodec(params(bits, true), 5), messages(300, bits + 100));
  });

  it('round-trips any sequence of messages (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 3000 }), { maxLength: 12 }),
        fc.integer({ min: 8, max: 15 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 9 }),
        (list, bits, noTakeover, memLevel) => {
          const sender = createDeflateCodec(params(bits, noTakeover), memLevel);
          const receiver = createDeflateCodec(params(bits, noTakeover), memLevel);
          for (const message of list) {
            // Repeat each message, so the second copy is found in the history.
            const data = Buffer.concat([message, message]);
            expectBytes(receiver.decompress(sender.compress(data), MIB), data);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('uses the previous messages as history only with context takeover', () => {
    const message = Buffer.from(JSON.stringify({ type: 'update', payload: 'x'.repeat(10) + 'the quick brown fox jumps over the lazy dog' }));
    const takeover = createDeflateCodec(params(12), 5);
    const first = takeover.compress(message);
    const second = takeover.compress(message);
    expect(second.length).toBeLessThan(first.length / 3);
    const fresh = createDeflateCodec(params(12, true), 5);
    expect(fresh.compress(message)).toEqual(first);
    expect(fresh.compress(message)).toEqual(first);
  });

  it('keeps only the last 2^bits bytes of history: older data is forgotten, recent data is used', () => {
    const old = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz'.repeat(3));
    const filler = Buffer.alloc(512);
    for (let i = 0; i < filler.length; i++) filler[i] = (i * 7919 + (i >> 3)) & 0xff;
    const afterOldAndFiller = (bits: number): Buffer => {
      const codec = createDeflateCodec(params(bits), 5);
      codec.compress(old);
      codec.compress(filler);
      return codec.compress(old);
    };
    const afterFillerOnly = (bits: number): Buffer => {
      const codec = createDeflateCodec(params(bits), 5);
      codec.compress(filler);
      return codec.compress(old);
    };
    // 9 bits = 512 bytes: the filler has pushed `old` out, so the history is the filler alone.
    expect(afterOldAndFiller(9)).toEqual(afterFillerOnly(9));
    // 10 bits = 1024 bytes: `old` is still there and referenced.
    expect(afterOldAndFiller(10).length).toBeLessThan(afterFillerOnly(10).length / 2);
  });

  it('compresses an empty message to the single 00 byte of RFC 7692 §7.2.3.6 and inflates it back', () => {
    const codec = createDeflateCodec(params(12), 5);
    expect(codec.compress(Buffer.alloc(0))).toEqual(Buffer.from([0x00]));
    expect(codec.decompress(Buffer.from([0x00]), 0)).toEqual(Buffer.alloc(0));
    expect(codec.decompress(Buffer.alloc(0), 0)).toEqual(Buffer.alloc(0));
  });

  it('strips the 00 00 ff ff trailer that a sync flush ends with (RFC 7692 §7.2.1)', () => {
    const data = Buffer.from('Hello');
    const flushed = deflateRawSync(data, { finishFlush: constants.Z_SYNC_FLUSH, windowBits: 12, memLevel: 5 });
    expect(flushed.subarray(-4)).toEqual(Buffer.from([0x00, 0x00, 0xff, 0xff]));
    expect(createDeflateCodec(params(12), 5).compress(data)).toEqual(flushed.subarray(0, -4));
    // RFC 7692 §7.2.3.1: "Hello" compressed without context takeover.
    expect(createDeflateCodec(params(15, true), 5).decompress(Buffer.from('f248cdc9c90700', 'hex'), 5)).toEqual(data);
  });

  it('passes a message of exactly maxOutput bytes and refuses one byte more', () => {
    const data = Buffer.alloc(100_000, 'abc');
    const compressed = createDeflateCodec(params(12, true), 5).compress(data);
    const codec = createDeflateCodec(params(12, true), 5);
    expectBytes(codec.decompress(compressed, 100_000), data);
    expect(codec.decompress(compressed, 99_999)).toBeNull();
    expect(codec.decompress(createDeflateCodec(params(12), 5).compress(Buffer.from('x')), 0)).toBeNull();
  });

  it('refuses a 16 MiB zip bomb having allocated about 16 times its compressed size, not the limit', () => {
    const bomb = createDeflateCodec(params(15, true), 5).compress(Buffer.alloc(16 * MIB));
    expect(bomb.length).toBeLessThan(20_000);
    const codec = createDeflateCodec(params(15), 5);

    /** Every byte Buffer.allocUnsafe hands out during one decompress (zlib's output chunks come from it). */
    const measure = (maxOutput: number): { result: Buffer | null; bytes: number } => bytesAllocatedBy(() => codec.decompress(bomb, maxOutput));

    const refused = measure(MIB);
    expect(refused.result).toBeNull();
    // The first inflate stops at 16x the input or 256 KiB, whichever is more (plus one chunk); the scan that
    // follows allocates nothing.
    expect(refused.bytes).toBeLessThanOrEqual(Math.max(256 * 1024, 16 * (bomb.length + 4)) + 2 * INFLATE_CHUNK_SIZE + bomb.length + 4);
    expect(refused.bytes).toBeLessThan(MIB / 2);
    // A message that fits comes out of the second inflate in one buffer of its size, not in 16 KiB chunks.
    const whole = measure(32 * MIB);
    expect(whole.result?.length).toBe(16 * MIB);
    expect(whole.result?.buffer.byteLength).toBe(16 * MIB + 1);
    expect(whole.bytes).toBeLessThan(17 * MIB);
  });

  it.each([
    ['an invalid block type', 'ff', 'invalid block type'],
    ['a stored block whose length check fails', '000100ffff', 'invalid stored block lengths'],
    [
      'a reference to history the receiver does not have',
      deflateRawSync('hello world', { dictionary: Buffer.from('hello world'), finishFlush: constants.Z_SYNC_FLUSH }).toString('hex'),
      'invalid distance too far back',
    ],
  ])('throws a ProtocolError (1002) on %s', (_, hex, zlibMessage) => {
    const codec = createDeflateCodec(params(12), 5);
    let caught: unknown;
    try {
      codec.decompress(Buffer.from(hex, 'hex'), MIB);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ProtocolError);
    expect((caught as ProtocolError).closeCode).toBe(1002);
    expect((caught as ProtocolError).message).toBe(`invalid compressed data: ${zlibMessage}`);
    expect(((caught as ProtocolError).cause as { code?: string }).code).toBe('Z_DATA_ERROR');
  });

  it('does not pin a 16 KiB zlib chunk behind each small message', () => {
    const codec = createDeflateCodec(params(12), 5);
    const compressed = codec.compress(Buffer.from('small message'));
    expect(compressed.buffer.byteLength).toBeLessThan(INFLATE_CHUNK_SIZE);
    const inflated = createDeflateCodec(params(12), 5).decompress(compressed, MIB)!;
    expect(inflated.buffer.byteLength).toBeLessThan(INFLATE_CHUNK_SIZE);
  });

  it('is not disturbed when the application reuses the buffers it sent or received', () => {
    const sender = createDeflateCodec(params(10), 5);
    const receiver = createDeflateCodec(params(10), 5);
    const list = messages(50, 7);
    for (const message of list) {
      const expected = Buffer.from(message);
      const inflated = receiver.decompress(sender.compress(message), MIB)!;
      expectBytes(inflated, expected);
      message.fill(0x55);
      inflated.fill(0xaa);
    }
  });
});

describe('byte-level interop with ws PerMessageDeflate', () => {
  const WINDOWS = [8, 9, 10, 11, 12, 13, 14, 15];

  /** Negotiates like a real handshake: our server against a ws client, and returns both ends. */
  function pairWithWsClient(bits: number, noContextTakeover: boolean): { ours: MessageCodec; ws: WsPerMessageDeflate } {
    const options: CompressionOptions = {
      serverMaxWindowBits: bits,
      clientMaxWindowBits: bits,
      serverNoContextTakeover: noContextTakeover,
      clientNoContextTakeover: noContextTakeover,
    };
    const config = resolveConfig({ compression: options }).compression!;
    const ws = new PerMessageDeflate({ isServer: false, maxPayload: MIB });
    const offer = Object.entries(ws.offer())
      .map(([k, v]) => (v === true ? k : `${k}=${String(v)}`))
      .join('; ');
    const agreed = negotiateDeflate(`permessage-deflate; ${offer}`, config)!;
    expect(agreed.params).toEqual({
      localMaxWindowBits: bits,
      remoteMaxWindowBits: bits,
      localNoContextTakeover: noContextTakeover,
      remoteNoContextTakeover: noContextTakeover,
    });
    ws.accept(parseWsExtensions(agreed.response)['permessage-deflate']!);
    return { ours: createDeflateCodec(agreed.params, config.memLevel), ws };
  }

  /** Our client against a ws server. */
  function pairWithWsServer(bits: number, noContextTakeover: boolean): { ours: MessageCodec; ws: WsPerMessageDeflate } {
    const config = resolveConfig({ compression: { clientMaxWindowBits: bits, clientNoContextTakeover: noContextTakeover } }).compression!;
    const ws = new PerMessageDeflate({ isServer: true, maxPayload: MIB, serverMaxWindowBits: bits, serverNoContextTakeover: noContextTakeover });
    const accepted = ws.accept(parseWsExtensions(deflateOffer(config)!)['permessage-deflate']!);
    const response = ['permessage-deflate', ...Object.entries(accepted).map(([k, v]) => (v === true ? k : `${k}=${String(v)}`))].join('; ');
    const agreed = acceptDeflateResponse(response, config)!;
    expect(agreed.remoteMaxWindowBits).toBe(bits);
    expect(agreed.localMaxWindowBits).toBe(bits);
    return { ours: createDeflateCodec(agreed, config.memLevel), ws };
  }

  for (const noContextTakeover of [false, true]) {
    const mode = noContextTakeover ? 'without' : 'with';
    it.each(WINDOWS)(`ws client -> our server and back, ${mode} context takeover, window bits %i`, async (bits) => {
      const { ours, ws } = pairWithWsClient(bits, noContextTakeover);
      try {
        for (const message of messages(120, bits * 31)) {
          const fromWs = await wsCompress(ws, message);
          expectBytes(ours.decompress(fromWs, MIB), message);
          const fromUs = ours.compress(message);
          expectBytes(await wsDecompress(ws, fromUs), message);
        }
      } finally {
        ws.cleanup();
      }
    });

    it.each(WINDOWS)(`our client -> ws server and back, ${mode} context takeover, window bits %i`, async (bits) => {
      const { ours, ws } = pairWithWsServer(bits, noContextTakeover);
      try {
        for (const message of messages(120, bits * 17)) {
          expectBytes(await wsDecompress(ws, ours.compress(message)), message);
          expectBytes(ours.decompress(await wsCompress(ws, message), MIB), message);
        }
      } finally {
        ws.cleanup();
      }
    });
  }

  it('produces the same bytes as ws for the first message (both are zlib at the same settings)', async () => {
    const { ours, ws } = pairWithWsClient(15, true);
    try {
      const message = Buffer.from('{"hello":"world","hello2":"world"}');
      const ourBytes = createDeflateCodec(params(15, true), 8).compress(message);
      expect(await wsCompress(ws, message)).toEqual(ourBytes);
      expect(ours.decompress(ourBytes, MIB)).toEqual(message);
    } finally {
      ws.cleanup();
    }
  });
});
