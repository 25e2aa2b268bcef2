/**
 * Attacks over real sockets on 127.0.0.1. Each test asserts how the server answered the attacker AND that a
 * well-behaved client (the `ws` library) on the same server kept working and lost nothing, and that the server
 * reported no error of its own. Bounded in time and count; short timeouts stand in for the defaults.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { performance } from 'node:perf_hooks';
import { constants, deflateRawSync } from 'node:zlib';
import { ConnectionClosedError } from '../../lib/errors.js';
import type { WebSocketServer, WebSocketServerOptions } from '../../lib/node/server.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import { makeTestCertificates } from '../support/certs.js';
import { describeWithPeer } from '../support/peers.js';
import { withTimeout } from '../support/net.js';
import type { ClientOptions as WsClientOptions } from 'ws';
import { Harness } from '../node/harness.js';
import { clientFrame, closeCodeIn, closeGoodClients, destroyPeers, GoodClient, RawPeer, upgradeRequest, WAIT_MS } from './peer.js';

const TEXT = 0x1;
const BINARY = 0x2;
const CONTINUATION = 0x0;
const CLOSE = 0x8;

const harness = new Harness();
afterEach(async () => {
  destroyPeers();
  closeGoodClients();
  await harness.cleanup();
});

interface Target {
  server: WebSocketServer;
  port: number;
  url: string;
  /** The server side of every connection, in order. */
  connections: WebSocket[];
  /** Close codes seen by the server, by connection index. */
  closes: Map<WebSocket, number>;
  /** Errors the server reported as its own ('error' events): must stay empty. */
  errors: Error[];
  /** Messages received on connections to `/log` (not echoed). */
  logged: string[];
  good: GoodClient;
}

/** An echo server with a well-behaved client already connected (and exchanging). */
async function target(options: Omit<WebSocketServerOptions, 'port'> = {}, clientOptions: WsClientOptions = {}): Promise<Target> {
  const { server, port, url } = await harness.listen({ closeTimeoutMs: 1000, ...options });
  const connections: WebSocket[] = [];
  const closes = new Map<WebSocket, number>();
  const errors: Error[] = [];
  const logged: string[] = [];
  server.on('error', (error: Error) => errors.push(error));
  server.on('connection', (ws: WebSocket) => {
    connections.push(ws);
    ws.on('close', (code: number) => closes.set(ws, code));
    ws.on('error', () => undefined); // the peer's fault, answered with a close code
    if (ws.request?.path === '/flood') return;
    if (ws.request?.path === '/log') {
      ws.on('message', (data: string | Buffer) => logged.push(data.toString()));
      return;
    }
    ws.on('message', (data: string | Buffer, isBinary: boolean) => void ws.send(data, { binary: isBinary }).catch(() => undefined));
  });
  const good = await GoodClient.open(url, clientOptions);
  await good.exchange(10);
  return { server, port, url, connections, closes, errors, logged, good };
}

/** The well-behaved client still gets every message back, and the server reported nothing of its own. */
async function expectUnharmed(t: Target, count = 50): Promise<void> {
  await t.good.exchange(count);
  expect(t.good.intact).toBe(true);
  expect(t.errors).toEqual([]);
}

/** A raw client past the opening handshake (101 read). */
async function upgraded(port: number, extra: readonly string[] = [], path = '/'): Promise<RawPeer> {
  const peer = await RawPeer.connect(port);
  await peer.write(upgradeRequest(path, extra));
  const head = await peer.head();
  expect(head).toMatch(/^HTTP\/1\.1 101 /);
  return peer;
}

/** Waits for the server to close the raw peer and returns the close code it sent (undefined: none). */
async function closeCodeFrom(peer: RawPeer, ms = WAIT_MS): Promise<number | undefined> {
  return closeCodeIn(await peer.closedByServer(ms));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until the server has seen the close of `count` connections. */
async function serverClosed(t: Target, count: number): Promise<void> {
  const deadline = performance.now() + WAIT_MS;
  while (t.closes.size < count) {
    if (performance.now() > deadline) throw new Error(`the server saw ${t.closes.size} closes, expected ${count}`);
    await sleep(10);
  }
}

describe('slow clients', () => {
  it('headers trickled one byte at a time are cut off at openTimeoutMs, with nothing sent and nothing kept', async () => {
    const t = await target({ openTimeoutMs: 400 });
    const peer = await RawPeer.connect(t.port);
    const request = upgradeRequest();
    const started = performance.now();
    let sent = 0;
    const trickle = (async () => {
      for (const byte of request) {
        if (peer.closed) break;
        await peer.write(Buffer.from([byte])).catch(() => undefined);
        sent++;
        await sleep(10);
      }
    })();
    const received = await peer.closedByServer(WAIT_MS);
    const elapsed = performance.now() - started;
    await trickle;
    expect(received.length).toBe(0);
    expect(sent).toBeLessThan(request.length);
    expect(elapsed).toBeGreaterThanOrEqual(380);
    expect(elapsed).toBeLessThan(3000);
    expect(t.connections.length).toBe(1); // only the good client ever got a connection
    await expectUnharmed(t);
  });

  it('a frame trickled one byte at a time after the upgrade is parsed as it comes and echoed whole', async () => {
    const t = await target();
    const peer = await upgraded(t.port);
    const payload = Buffer.from('x'.repeat(180) + 'é');
    const frame = clientFrame(TEXT, payload);
    for (const byte of frame) {
      await peer.write(Buffer.from([byte]));
      if (byte % 7 === 0) await t.good.exchange(1); // the good client is served in between
    }
    const echo = await peer.until((b) => b.includes(payload), WAIT_MS, 'the echo');
    expect(echo.includes(payload)).toBe(true);
    const serverSide = t.connections[1]!;
    expect(serverSide.maxReadBufferedAmount).toBeLessThanOrEqual(serverSide.readBufferedAmount + frame.length);
    await expectUnharmed(t);
  });

  it('a client that never reads: send() waits on the water marks, the server buffers a bounded amount, and a reset releases everything', async () => {
    const t = await target({ writeHighWaterMark: 65_536, writeLowWaterMark: 16_384 });
    const message = Buffer.alloc(16_384, 7);
    const total = 2000; // 32 MiB: far more than loopback's socket buffers hold
    let sent = 0;
    let most = 0;
    let failure: unknown;
    const flood = new Promise<void>((resolve) => {
      t.server.once('connection', (ws: WebSocket) => {
        void (async () => {
          try {
            for (; sent < total; sent++) {
              await ws.send(message);
              most = Math.max(most, ws.bufferedAmount);
            }
          } catch (error) {
            failure = error;
          }
          resolve();
        })();
      });
    });
    const peer = await RawPeer.connect(t.port);
    await peer.write(upgradeRequest('/flood'));
    peer.socket.pause(); // never read again: the kernel buffers fill, then the server's
    // Wait until the sender has stalled (the count stops moving).
    let last = -1;
    while (sent !== last) {
      last = sent;
      await sleep(300);
    }
    expect(sent).toBeLessThan(total);
    const serverSide = t.connections[1]!;
    // What the server holds for this connection: at most the high water mark plus one message and its header.
    expect(serverSide.bufferedAmount).toBeLessThanOrEqual(65_536 + message.length + 14);
    expect(most).toBeLessThanOrEqual(65_536 + message.length + 14);
    await expectUnharmed(t); // the stalled connection does not hold up the others
    peer.reset();
    await withTimeout(flood, WAIT_MS, 'the flood to stop');
    expect(failure).toBeInstanceOf(ConnectionClosedError);
    await serverClosed(t, 1);
    expect(t.closes.get(serverSide)).toBe(1006);
    expect(serverSide.bufferedAmount).toBe(0);
    await expectUnharmed(t);
  });
});

describe('oversized and bomb messages', () => {
  const DEFLATE = ['Sec-WebSocket-Extensions: permessage-deflate'];

  function compressed(data: Buffer): Buffer {
    const out = deflateRawSync(data, { finishFlush: constants.Z_SYNC_FLUSH, windowBits: 9 });
    return out.subarray(0, out.length - 4);
  }

  it('a compression bomb (64 MiB of zeros in 64 KiB) closes with 1009 after inflating at most the limit plus one chunk', async () => {
    const t = await target({ maxMessageSize: 1_048_576 });
    const bomb = compressed(Buffer.alloc(64 * 1_048_576));
    expect(bomb.length).toBeLessThan(100_000);
    const peer = await upgraded(t.port, DEFLATE);
    const before = process.memoryUsage().arrayBuffers;
    await peer.write(clientFrame(BINARY, bomb, { rsv1: true }));
    expect(await closeCodeFrom(peer)).toBe(1009);
    // Not the 64 MiB: a bound with room for the garbage collector's timing.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1_048_576);
    await serverClosed(t, 1);
    await expectUnharmed(t);
  });

  it('a bomb split into fragments, and one in a context-takeover stream after a valid message, also get 1009', async () => {
    const t = await target({ maxMessageSize: 65_536 });
    const peer = await upgraded(t.port, DEFLATE);
    await peer.write(clientFrame(TEXT, compressed(Buffer.from('hello')), { rsv1: true }));
    await peer.until((b) => b.includes('hello'), WAIT_MS, 'the compressed echo');
    const bomb = compressed(Buffer.alloc(8 * 1_048_576));
    const third = Math.floor(bomb.length / 3);
    await peer.write(clientFrame(BINARY, bomb.subarray(0, third), { rsv1: true, fin: false }));
    await peer.write(clientFrame(CONTINUATION, bomb.subarray(third, 2 * third), { fin: false }));
    await peer.write(clientFrame(CONTINUATION, bomb.subarray(2 * third)));
    expect(await closeCodeFrom(peer)).toBe(1009);
    await expectUnharmed(t);
  });

  it('a frame declaring 2^63 - 1 bytes gets 1009 at once; one declaring 2^64 - 1 (high bit set) gets 1002', async () => {
    const t = await target();
    const huge = await upgraded(t.port);
    await huge.write(clientFrame(BINARY, Buffer.from('abc'), { declaredLength: 2n ** 63n - 1n }));
    expect(await closeCodeFrom(huge)).toBe(1009);
    const invalid = await upgraded(t.port);
    await invalid.write(clientFrame(BINARY, Buffer.from('abc'), { declaredLength: 2n ** 64n - 1n }));
    expect(await closeCodeFrom(invalid)).toBe(1002);
    await serverClosed(t, 2);
    await expectUnharmed(t);
  });

  it('many small fragments adding up past maxMessageSize get 1009 at the fragment that crosses it', async () => {
    const t = await target({ maxMessageSize: 1000 });
    const peer = await upgraded(t.port);
    const piece = Buffer.alloc(100, 0x61);
    await peer.write(clientFrame(TEXT, piece, { fin: false }));
    for (let i = 0; i < 8; i++) await peer.write(clientFrame(CONTINUATION, piece, { fin: false }));
    await sleep(50);
    expect(peer.closed).toBe(false); // 900 bytes: still under the limit
    await peer.write(clientFrame(CONTINUATION, Buffer.alloc(101, 0x61), { fin: false })); // 1001
    expect(await closeCodeFrom(peer)).toBe(1009);
    // Exactly at the limit passes, however fragmented, empty fragments included.
    const exact = await upgraded(t.port);
    const frames = [clientFrame(TEXT, piece, { fin: false })];
    for (let i = 0; i < 2000; i++) frames.push(clientFrame(CONTINUATION, Buffer.alloc(0), { fin: false }));
    for (let i = 0; i < 8; i++) frames.push(clientFrame(CONTINUATION, piece, { fin: false }));
    frames.push(clientFrame(CONTINUATION, piece));
    await exact.write(Buffer.concat(frames));
    await exact.until((b) => b.includes(Buffer.alloc(1000, 0x61)), WAIT_MS, 'the 1000-byte echo');
    await expectUnharmed(t);
  });
});

describe('pipelining and resets', () => {
  it('frames pipelined in the same packet as the handshake request are answered in order after the 101', async () => {
    const t = await target();
    const peer = await RawPeer.connect(t.port);
    const frames = ['one', 'two', 'three'].map((text) => clientFrame(TEXT, Buffer.from(text)));
    await peer.write(Buffer.concat([upgradeRequest(), ...frames]));
    const received = (await peer.until((b) => b.includes('three'), WAIT_MS, 'three echoes')).toString('latin1');
    expect(received).toMatch(/^HTTP\/1\.1 101 /);
    const body = received.slice(received.indexOf('\r\n\r\n') + 4);
    expect(body.indexOf('one')).toBeGreaterThan(0);
    expect(body.indexOf('two')).toBeGreaterThan(body.indexOf('one'));
    expect(body.indexOf('three')).toBeGreaterThan(body.indexOf('two'));
    await peer.write(clientFrame(CLOSE, Buffer.from([0x03, 0xe8])));
    expect(await closeCodeFrom(peer)).toBe(1000);
    await expectUnharmed(t);
  });

  it('messages pipelined with the handshake and a close frame, all in one packet, all reach the application (regression)', async () => {
    const t = await target();
    const peer = await RawPeer.connect(t.port);
    const frames = ['one', 'two', 'three'].map((text) => clientFrame(TEXT, Buffer.from(text)));
    await peer.write(Buffer.concat([upgradeRequest('/log'), ...frames, clientFrame(CLOSE, Buffer.from([0x03, 0xe8]))]));
    expect(await closeCodeFrom(peer)).toBe(1000);
    await serverClosed(t, 1);
    await sleep(20); // the queued messages go to the listener on the next turn
    expect(t.logged).toEqual(['one', 'two', 'three']);
    expect(t.closes.get(t.connections[1]!)).toBe(1000);
    await expectUnharmed(t);
  });

  it('TCP resets mid-handshake, mid-frame and mid-close leave no connection, timer or error behind', async () => {
    const t = await target({ closeTimeoutMs: 10_000, openTimeoutMs: 10_000 });
    // Mid-handshake: half a request, then RST.
    const handshake = await RawPeer.connect(t.port);
    await handshake.write(upgradeRequest().subarray(0, 40));
    await sleep(20);
    handshake.reset();
    // Mid-frame: half a frame, then RST.
    const frame = await upgraded(t.port);
    await frame.write(clientFrame(BINARY, Buffer.alloc(1000)).subarray(0, 500));
    await sleep(20);
    frame.reset();
    // Mid-close: the client sends its close frame and resets before the server's close handshake completes.
    const closing = await upgraded(t.port);
    await closing.write(clientFrame(CLOSE, Buffer.from([0x03, 0xe8])));
    closing.reset();
    // Server-initiated close to a client that resets instead of answering.
    const serverClosing = await upgraded(t.port);
    await withTimeout(
      (async () => {
        while (t.connections.length < 4) await sleep(5);
      })(),
      WAIT_MS,
      'the fourth connection',
    );
    const closePromise = t.connections[3]!.close(1001, 'bye');
    await serverClosing.until((b) => closeCodeIn(b) !== undefined, WAIT_MS, 'the server close frame');
    serverClosing.reset();
    await withTimeout(closePromise, 2000, 'close() to resolve after the reset (not after closeTimeoutMs)');

    await serverClosed(t, 3);
    const codes = t.connections.slice(1).map((ws) => t.closes.get(ws));
    expect(codes[0]).toBe(1006); // mid-frame: no close handshake
    expect([1000, 1006]).toContain(codes[1]); // mid-close: the close frame may or may not have been read first
    expect(codes[2]).toBe(1001); // no answer to our close frame: the code we sent (1006 would say the network dropped)
    expect(t.server.clients.size).toBe(1);
    await expectUnharmed(t);
  });

  it('half-open connections (a peer that never answers) are found by the keepalive ping and closed with 1011', async () => {
    const t = await target({ pingIntervalMs: 150, pingTimeoutMs: 150 });
    const silent = await upgraded(t.port);
    const started = performance.now();
    expect(await closeCodeFrom(silent, 3000)).toBe(1011);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2500);
    const received = silent.received();
    expect(received.includes(Buffer.from('keepalive ping timeout'))).toBe(true);
    // The well-behaved client answered every ping and is still there, several intervals later.
    await serverClosed(t, 1);
    await expectUnharmed(t);
    expect(t.server.clients.size).toBe(1);
  });
});

describeWithPeer('openssl', 'TLS', () => {
  it('garbage instead of a TLS handshake on a wss port closes that socket only', async () => {
    const certs = await makeTestCertificates();
    const t = await target({ tls: { key: certs.server.key, cert: certs.server.cert }, openTimeoutMs: 1000 }, { ca: certs.ca.cert });
    const peers = await Promise.all([0, 1, 2].map(() => RawPeer.connect(t.port)));
    await peers[0]!.write(upgradeRequest()); // plain HTTP to a TLS port
    await peers[1]!.write(Buffer.alloc(4096, 0xff)); // random bytes
    await peers[2]!.write(Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff])); // a TLS record header declaring 65535 bytes, then nothing
    for (const peer of peers.slice(0, 2)) await peer.closedByServer(WAIT_MS);
    await peers[2]!.closedByServer(WAIT_MS); // cut by the TLS handshake timeout (openTimeoutMs)
    for (const peer of peers) expect(peer.received().includes(Buffer.from('HTTP/1.1 101'))).toBe(false);
    expect(t.connections.length).toBe(1);
    await expectUnharmed(t);
  });
});
