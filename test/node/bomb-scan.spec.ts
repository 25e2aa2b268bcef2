/**
 * The compression-bomb defence of `lib/node/deflate.ts`: a first inflate capped at 16x the compressed size (256 KiB
 * at least), then a scan that sizes the message without inflating it (`inflatedSize`), then refusal or one exact
 * inflate.
 *
 * The scan must agree with zlib byte for byte: the same size for every stream zlib inflates, and an error only where
 * zlib has one (with zlib's message). The fuzz below checks that against zlib itself on valid, corrupted, truncated
 * and random streams, with and without a preset dictionary.
 */
import { Buffer } from 'node:buffer';
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';

import { afterEach, describe, expect, it } from '@jest/globals';

import { ProtocolError } from '../../lib/errors.js';
import { createDeflateCodec } from '../../lib/node/deflate.js';
import { OVER_LIMIT, inflatedSize } from '../../lib/node/inflated-size.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import type { DeflateParams } from '../../lib/protocol/compression.js';
import { clientFrame, closeCodeIn, destroyPeers, RawPeer, upgradeRequest, WAIT_MS } from '../hostile/peer.js';
import { Harness } from './harness.js';
import { bytesAllocatedBy } from '../support/allocations.js';

const MIB = 1 << 20;
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

function params(bits: number, noContextTakeover = false): DeflateParams {
  return { localMaxWindowBits: bits, remoteMaxWindowBits: bits, localNoContextTakeover: noContextTakeover, remoteNoContextTakeover: noContextTakeover };
}

/** A message as a permessage-deflate sender makes it: raw deflate, sync flush, trailer removed. */
function compressed(data: Buffer, options: { dictionary?: Buffer; windowBits?: number; strategy?: number; level?: number } = {}): Buffer {
  const out = deflateRawSync(data, { finishFlush: constants.Z_SYNC_FLUSH, windowBits: 15, ...options });
  return out.subarray(0, out.length - 4);
}

/** A deterministic generator (the fuzz must replay exactly). */
function generator(seed: number): (n: number) => number {
  let state = seed;
  return (n) => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return Math.floor((state / 0x80000000) * n);
  };
}

/** Data of a chosen compressibility: random bytes, a few letters, JSON-like records, or long runs. */
function sample(random: (n: number) => number, size: number): Buffer {
  const data = Buffer.alloc(size);
  const kind = random(4);
  const words = ['{"user":', '"room":', '"online"', 'true,', 'null}', '12345', '"typing",'];
  let pos = 0;
  while (pos < size) {
    if (kind === 0) data[pos++] = random(256);
    else if (kind === 1) data[pos++] = 97 + random(4);
    else if (kind === 2) pos += data.write(words[random(words.length)]!, pos);
    else {
      const end = Math.min(size, pos + 1 + random(2000));
      data.fill(random(3), pos, end);
      pos = end;
    }
  }
  return data;
}

/** What zlib's one-shot inflate (as the codec calls it) makes of `input`: a size, OVER_LIMIT, or its error. */
function zlibOutcome(input: Buffer, dictionary: Buffer | undefined, windowBits: number, limit: number): number | string {
  try {
    return inflateRawSync(input, { windowBits, finishFlush: constants.Z_SYNC_FLUSH, dictionary, maxOutputLength: limit }).length;
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    return code === 'ERR_BUFFER_TOO_LARGE' ? OVER_LIMIT : message;
  }
}

function scanOutcome(input: Buffer, dictionary: Buffer | undefined, limit: number): number | string {
  try {
    return inflatedSize(input, dictionary?.length ?? 0, limit);
  } catch (error) {
    expect((error as NodeJS.ErrnoException).code).toBe('Z_DATA_ERROR');
    return (error as Error).message;
  }
}

describe('inflatedSize agrees with zlib', () => {
  it('on 2000 valid, corrupted, truncated and random streams, with and without a dictionary', () => {
    const random = generator(20261125);
    const strategies = [constants.Z_DEFAULT_STRATEGY, constants.Z_FILTERED, constants.Z_HUFFMAN_ONLY, constants.Z_RLE, constants.Z_FIXED];
    const tally = { sized: 0, overLimit: 0, bothFailed: 0, zlibOnly: 0 };
    for (let i = 0; i < 2000; i++) {
      const windowBits = 9 + random(7);
      const dictionary = random(3) === 0 ? sample(random, 1 + random(1 << windowBits)) : undefined;
      const data = sample(random, random(30_000));
      let input = Buffer.concat([
        compressed(data, { dictionary, windowBits, strategy: strategies[random(strategies.length)]!, level: random(10) }),
        TRAILER,
      ]);
      const fault = random(10);
      if (fault < 4) {
        for (let flips = 1 + random(3); flips > 0; flips--) input[random(input.length)] ^= 1 << random(8);
      } else if (fault === 4) {
        input = input.subarray(0, random(input.length));
      } else if (fault === 5) {
        input = Buffer.from(Array.from({ length: random(300) }, () => random(256)));
      }
      const limit = random(2) === 0 ? 1 << 30 : 1 + random(data.length + 1);
      const zlib = zlibOutcome(input, dictionary, windowBits, limit);
      const scan = scanOutcome(input, dictionary, limit);
      if (typeof zlib === 'number') {
        // zlib checks its limit once per 16 KiB of output, so it may find an error past the limit that the scan,
        // which stops at the limit, never reaches; otherwise the two must be identical.
        expect(scan).toBe(zlib);
        tally[zlib === OVER_LIMIT ? 'overLimit' : 'sized']++;
      } else if (typeof scan === 'string') {
        expect(scan).toBe(zlib);
        tally.bothFailed++;
      } else {
        // zlib failed and the scan did not: either the scan stopped at the limit first, or the fault is one the
        // scan leaves to zlib (a distance within the history but beyond the window), and zlib runs after it.
        expect(scan === OVER_LIMIT || scan <= limit).toBe(true);
        tally.zlibOnly++;
      }
    }
    // Each main outcome was exercised many times (zlib-only failures are rare with these limits).
    expect(Math.min(tally.sized, tally.overLimit, tally.bothFailed)).toBeGreaterThan(100);
  });

  it('counts matches that reach into the preset dictionary, and rejects one reaching beyond it', () => {
    const history = Buffer.from('the history both sides share '.repeat(100));
    const message = Buffer.concat([history.subarray(-500), Buffer.from('and something new')]);
    const input = Buffer.concat([compressed(message, { dictionary: history }), TRAILER]);
    expect(inflatedSize(input, history.length, MIB)).toBe(message.length);
    expect(() => inflatedSize(input, 0, MIB)).toThrow('invalid distance too far back');
    expect(zlibOutcome(input, undefined, 15, MIB)).toBe('invalid distance too far back');
  });

  it('stops at the first byte over the limit, however much more the stream holds', () => {
    const input = Buffer.concat([compressed(Buffer.alloc(64 * MIB)), TRAILER]);
    expect(inflatedSize(input, 0, MIB)).toBe(OVER_LIMIT);
    expect(inflatedSize(input, 0, 64 * MIB)).toBe(64 * MIB);
    expect(inflatedSize(input, 0, 64 * MIB - 1)).toBe(OVER_LIMIT);
  });
});

describe('the codec on messages that compress far better than 16x', () => {
  it('inflates legitimate messages of every ratio up to exactly the limit, and refuses one byte more', () => {
    const random = generator(7);
    const makers: Array<[string, (size: number) => Buffer]> = [
      ['zeros (1000x)', (size) => Buffer.alloc(size)],
      ['a repeated 1 KiB record (~200x)', (size) => Buffer.alloc(size, sample(generator(1), 1024))],
      ['runs of random length (~30x)', (size) => {
        const data = Buffer.alloc(size);
        for (let pos = 0; pos < size; pos += 64) data.fill(random(256), pos, Math.min(size, pos + 16 + random(48)));
        return data;
      }],
      ['JSON-like records (~5x, never scanned)', (size) => Buffer.alloc(size, sample(generator(3), 50_000))],
    ];
    for (const [, make] of makers) {
      for (const limit of [64 * 1024, 100_000, MIB]) {
        const data = make(limit);
        const message = compressed(data);
        expect(createDeflateCodec(params(15, true), 5).decompress(message, limit)?.equals(data)).toBe(true);
        expect(createDeflateCodec(params(15, true), 5).decompress(message, limit - 1)).toBeNull();
      }
    }
  });

  it('keeps context takeover intact through the scan: a message that mostly repeats the last one', () => {
    const sender = createDeflateCodec(params(15), 5);
    const receiver = createDeflateCodec(params(15), 5);
    const first = sample(generator(11), 30_000);
    const second = Buffer.concat(Array.from({ length: 20 }, () => first.subarray(1000, 30_000)));
    const third = Buffer.from('a small message after them');
    for (const message of [first, second, third, second]) {
      const wire = sender.compress(message);
      const inflated = receiver.decompress(wire, MIB);
      expect(inflated?.equals(message)).toBe(true);
    }
  });

  it("reports a fault the scan finds after the first pass with zlib's message and code (1002)", () => {
    // 4 MiB of zeros in ~4 KiB, ending (as every message does) inside the header of the flush's stored block, whose
    // lengths then do not match: the first pass stops at 256 KiB, the scan finds the fault 4 MiB in.
    const input = Buffer.concat([compressed(Buffer.alloc(4 * MIB)), Buffer.from([0x07, 0x00, 0x00, 0x00])]);
    expect(zlibOutcome(Buffer.concat([input, TRAILER]), undefined, 15, 1 << 30)).toBe('invalid stored block lengths');
    let caught: unknown;
    try {
      createDeflateCodec(params(15, true), 5).decompress(input, 8 * MIB);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ProtocolError);
    expect((caught as ProtocolError).closeCode).toBe(1002);
    expect((caught as ProtocolError).message).toBe('invalid compressed data: invalid stored block lengths');
    expect(((caught as ProtocolError).cause as { code?: string }).code).toBe('Z_DATA_ERROR');
    // Past the limit before the fault: the message is too big, whatever follows.
    expect(createDeflateCodec(params(15, true), 5).decompress(input, MIB)).toBeNull();
  });

  it('refuses ten 16 MiB bombs having allocated about 16 times their compressed size each', () => {
    const bomb = compressed(Buffer.alloc(16 * MIB));
    const { result, bytes } = bytesAllocatedBy(() =>
      Array.from({ length: 10 }, () => createDeflateCodec(params(15), 5).decompress(bomb, MIB)),
    );
    expect(result).toEqual(Array(10).fill(null));
    // Before, each bomb made the whole limit in 16 KiB chunks: 10 MiB in all.
    expect(bytes).toBeLessThan(10 * (Math.max(256 * 1024, 16 * (bomb.length + 4)) + bomb.length + 4 + 2 * 16_384));
    expect(bytes).toBeLessThan(4 * MIB);
  });
});

describe('bombs over real sockets', () => {
  const harness = new Harness();
  afterEach(async () => {
    destroyPeers();
    await harness.cleanup();
  });

  it('ten connections sending a 16 MiB bomb at once all get 1009, and the server holds far less than the limit each', async () => {
    const { server, port } = await harness.listen({ maxMessageSize: MIB, closeTimeoutMs: 1000 });
    const closes: number[] = [];
    server.on('connection', (ws: WebSocket) => {
      ws.on('close', (code: number) => closes.push(code));
      ws.on('error', () => undefined);
    });
    const frame = clientFrame(0x2, compressed(Buffer.alloc(16 * MIB)), { rsv1: true });
    const peers = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const peer = await RawPeer.connect(port);
        await peer.write(upgradeRequest('/', ['Sec-WebSocket-Extensions: permessage-deflate']));
        expect(await peer.head()).toMatch(/^HTTP\/1\.1 101 /);
        return peer;
      }),
    );
    const before = process.memoryUsage().arrayBuffers;
    await Promise.all(peers.map((peer) => peer.write(frame)));
    const codes = await Promise.all(peers.map(async (peer) => closeCodeIn(await peer.closedByServer(WAIT_MS))));
    // A collection can only lower this: before the change it grew by ~10.5 MiB here.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(5 * MIB);
    expect(codes).toEqual(Array(10).fill(1009));
  });
});
