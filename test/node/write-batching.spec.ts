/**
 * Write batching over real sockets: what a connection sends within one tick leaves in one write (small frames
 * copied together, large payloads as they are), in order, and every send of that tick resolves once it is written.
 * The byte-level checks use a raw TCP client, so that the number of reads it gets is what the server wrote.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { ConnectionClosedError } from '../../lib/errors.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import { Opcode } from '../../lib/protocol/frame.js';
import { encodeFrame } from '../../lib/protocol/frame-writer.js';
import { endOfHttpHead, rawConnect, type RawConnection } from '../support/net.js';
import { Harness, WAIT_MS, next, nextWsMessage } from './harness.js';

const harness = new Harness();
afterEach(() => harness.cleanup());

/** A raw client past the opening handshake, with the server's side of the connection. */
async function rawClient(options: { asyncEcho: boolean }): Promise<{ raw: RawConnection; ws: WebSocket; afterHandshake: number }> {
  const { server, port } = await harness.listen({ compression: false });
  const connected = next<[WebSocket]>(server, 'connection');
  const raw = await rawConnect(port);
  await raw.write(
    'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  const head = await raw.readUntil(endOfHttpHead, WAIT_MS, 'the 101 response');
  expect(head.toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);
  const [ws] = await connected;
  harness.track(ws);
  ws.on('message', (data: string | Buffer, isBinary: boolean) => {
    const echo = (): void => void ws.send(data, { binary: isBinary }).catch(() => undefined);
    // Nest handlers answer after an await: their replies must join the same batch.
    if (options.asyncEcho) void Promise.resolve().then(echo);
    else echo();
  });
  return { raw, ws, afterHandshake: head.length };
}

/** What the client sends: masked text frames, all in one buffer (so they arrive in one read). */
function maskedTexts(texts: readonly string[]): Buffer {
  return Buffer.concat(texts.flatMap((text) => encodeFrame(Opcode.TEXT, Buffer.from(text), { maskKey: randomBytes(4) })));
}

/** What the server must answer: the same texts, unmasked. */
function serverTexts(texts: readonly string[]): Buffer {
  return Buffer.concat(texts.flatMap((text) => encodeFrame(Opcode.TEXT, Buffer.from(text))));
}

describe('write batching', () => {
  for (const asyncEcho of [false, true]) {
    it(`answers all the messages of one read in one write (${asyncEcho ? 'replies after an await' : 'replies at once'})`, async () => {
      const { raw, afterHandshake } = await rawClient({ asyncEcho });
      const texts = Array.from({ length: 10 }, (_, i) => `message ${i} ${'x'.repeat(20)}`);
      const expected = serverTexts(texts);
      const readsBefore = countReads(raw);
      await raw.write(maskedTexts(texts));
      const received = await raw.readUntil((bytes) => bytes.length >= afterHandshake + expected.length, WAIT_MS, 'the 10 echoes');
      expect(received.subarray(afterHandshake)).toEqual(expected);
      // One write of 10 frames (20 header and payload chunks before batching) arrives as one read on loopback.
      expect(countReads(raw) - readsBefore).toBe(1);
    });
  }

  it('keeps the order of small and large messages sent in one tick, and each arrives intact', async () => {
    const { server, url } = await harness.listen({ compression: false });
    const connected = next<[WebSocket]>(server, 'connection');
    const client = await harness.wsClient(`${url}/`, { perMessageDeflate: false });
    const [ws] = await connected;
    const received: Array<[Buffer, boolean]> = [];
    const all = new Promise<void>((resolve) =>
      client.on('message', (data: Buffer, isBinary: boolean) => {
        received.push([data, isBinary]);
        if (received.length === sent.length) resolve();
      }),
    );
    // Small frames are copied together (up to 64 KiB per copy), payloads over 4 KiB go as they are.
    const sent: Array<string | Buffer> = [
      'first',
      randomBytes(200_000),
      'between',
      randomBytes(4096),
      randomBytes(4097),
      ...Array.from({ length: 40 }, (_, i) => randomBytes(3000 + i)),
      'last',
    ];
    const writes = sent.map((message) => ws.send(message));
    await Promise.all(writes);
    await all;
    // Compared by digest: jest's deep equality on 500 KB of buffers takes a second.
    const digest = (message: string | Buffer): string =>
      `${typeof message === 'string' ? 'text' : 'binary'} ${createHash('sha256').update(message).digest('hex')}`;
    expect(received.map(([data, isBinary]) => digest(isBinary ? data : data.toString()))).toEqual(sent.map(digest));
  });

  it('counts what the tick has sent in bufferedAmount until it is written, and resolves every send of the tick', async () => {
    const { server, url } = await harness.listen({ compression: false });
    const connected = next<[WebSocket]>(server, 'connection');
    const client = await harness.wsClient(`${url}/`, { perMessageDeflate: false });
    const [ws] = await connected;
    expect(ws.bufferedAmount).toBe(0);
    const first = ws.send('a');
    const second = ws.send(Buffer.alloc(30_000, 1));
    // Not written yet: the batch goes at the next tick, and bufferedAmount says so (backpressure sees it).
    expect(ws.bufferedAmount).toBeGreaterThanOrEqual(1 + 30_000);
    await expect(Promise.all([first, second])).resolves.toEqual([true, true]);
    const [data] = await nextWsMessage(client);
    expect(data.toString()).toBe('a');
  });

  it('rejects the sends of a tick whose socket is destroyed before the batch is written', async () => {
    const { server, url } = await harness.listen({ compression: false });
    const connected = next<[WebSocket]>(server, 'connection');
    await harness.wsClient(`${url}/`, { perMessageDeflate: false });
    const [ws] = await connected;
    const pending = [ws.send('one'), ws.send('two')];
    const closed = next(ws, 'close');
    ws.terminate();
    for (const send of pending) await expect(send).rejects.toBeInstanceOf(ConnectionClosedError);
    await closed;
    await expect(ws.send('after')).rejects.toBeInstanceOf(ConnectionClosedError);
  });
});

/** How many reads the raw client's socket has delivered so far (its 'data' events). */
function countReads(raw: RawConnection): number {
  const counted = raw.socket as typeof raw.socket & { reads?: number };
  if (counted.reads === undefined) {
    counted.reads = 0;
    raw.socket.on('data', () => counted.reads!++);
  }
  return counted.reads;
}
