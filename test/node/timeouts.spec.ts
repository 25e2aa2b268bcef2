/**
 * Every timeout over real sockets, with short values: the open timeout (a trickling client on the server, a silent
 * server on the client), the keepalive ping timeout (1011 `keepalive ping timeout`), and the close timeout.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { CloseCode } from '../../lib/protocol/close-codes.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import { connect } from '../../lib/node/client.js';
import { endOfHttpHead, rawConnect } from '../support/net.js';
import { Harness, next, WAIT_MS } from './harness.js';

const harness = new Harness();
const cleanups: Array<() => void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  await harness.cleanup();
});

const REQUEST = 'GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
const SHORT_MS = 300;

describe('openTimeoutMs', () => {
  it('cuts off a client that trickles its handshake at the deadline, without answering', async () => {
    const { server, port } = await harness.listen({ openTimeoutMs: SHORT_MS });
    const handshakeErrors: unknown[] = [];
    server.on('handshakeError', (error) => handshakeErrors.push(error));
    const raw = await rawConnect(port);
    const started = performance.now();
    let sent = 0;
    const trickle = setInterval(() => {
      if (raw.closed || sent >= REQUEST.length - 2) return;
      raw.write(REQUEST[sent++]!).catch(() => undefined);
    }, 20);
    cleanups.push(() => clearInterval(trickle));
    const received = await raw.readUntilClose(WAIT_MS);
    const elapsed = performance.now() - started;
    expect(received.length).toBe(0);
    expect(elapsed).toBeGreaterThanOrEqual(SHORT_MS - 20);
    expect(elapsed).toBeLessThan(SHORT_MS + 1000);
    expect(sent).toBeGreaterThan(3);
    expect(handshakeErrors).toEqual([]);
  });

  it('with null, waits as long as the client takes', async () => {
    const { server, port } = await harness.listen({ openTimeoutMs: null });
    const connected = next<[WebSocket]>(server, 'connection');
    const raw = await rawConnect(port);
    await raw.write(REQUEST.slice(0, 20));
    await new Promise((resolve) => setTimeout(resolve, SHORT_MS));
    await raw.write(REQUEST.slice(20));
    harness.track((await connected)[0]);
    expect((await raw.readUntil(endOfHttpHead, WAIT_MS, '101')).toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);
  });

  it('makes connect() fail with a clear error when the server never answers', async () => {
    const silent = net.createServer((socket) => socket.on('error', () => undefined));
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    cleanups.push(() => silent.close());
    const { port } = silent.address() as AddressInfo;
    const started = performance.now();
    const failure = connect(`ws://127.0.0.1:${port}/`, { openTimeoutMs: SHORT_MS, env: {} });
    await expect(failure).rejects.toThrow(
      `timed out during the opening handshake after ${SHORT_MS} ms (option openTimeoutMs, env WEBSOCKETS_OPEN_TIMEOUT_MS)`,
    );
    await expect(failure).rejects.toMatchObject({ code: 'WS_ERR_OPEN_TIMEOUT', timeoutMs: SHORT_MS });
    expect(performance.now() - started).toBeGreaterThanOrEqual(SHORT_MS - 20);
  });
});

describe('keepalive', () => {
  it('fails with 1011 "keepalive ping timeout" when no pong comes back', async () => {
    const { server, port } = await harness.listen({ pingIntervalMs: 100, pingTimeoutMs: 200 });
    const connected = next<[WebSocket]>(server, 'connection');
    const raw = await rawConnect(port);
    await raw.write(REQUEST);
    const [ws] = await connected;
    const closed = next<[number, string]>(ws, 'close', WAIT_MS);
    // The raw client never answers: the server sees a ping, then fails the connection.
    const bytes = await raw.readUntilClose(WAIT_MS);
    const frames = bytes.subarray(bytes.indexOf('\r\n\r\n') + 4);
    expect(frames[0]).toBe(0x89); // the keepalive ping
    const close = frames.subarray(2 + frames[1]!);
    expect(close[0]).toBe(0x88);
    expect(close.readUInt16BE(2)).toBe(CloseCode.INTERNAL_ERROR);
    expect(close.subarray(4).toString()).toBe('keepalive ping timeout');
    // The application sees the code it sent, not 1006: a keepalive timeout is not a dropped network.
    expect((await closed)[0]).toBe(CloseCode.INTERNAL_ERROR);
  });

  it('keeps a connection that answers its pings, and measures the round trip', async () => {
    const { server, url } = await harness.listen({ pingIntervalMs: 50, pingTimeoutMs: 100 });
    const connected = next<[WebSocket]>(server, 'connection');
    const client = await harness.wsClient(`${url}/`);
    const [ws] = await connected;
    let pings = 0;
    client.on('ping', () => pings++);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(pings).toBeGreaterThanOrEqual(3);
    expect(ws.readyState).toBe(1);
    expect(ws.latency).toBeGreaterThan(0);
    const rtt = await ws.ping(Buffer.from('app'));
    expect(rtt).toBeGreaterThan(0);
    expect(rtt).toBeLessThan(WAIT_MS);
  });
});

describe('closeTimeoutMs', () => {
  it('destroys the socket when the peer does not answer the close frame in time', async () => {
    const { server, port } = await harness.listen({ closeTimeoutMs: SHORT_MS });
    const connected = next<[WebSocket]>(server, 'connection');
    const raw = await rawConnect(port);
    await raw.write(REQUEST);
    const [ws] = await connected;
    const started = performance.now();
    const closing = ws.close(1000, 'bye');
    expect(ws.readyState).toBe(2);
    const [code] = await next<[number]>(ws, 'close', WAIT_MS);
    await closing;
    const elapsed = performance.now() - started;
    // The server sent its close frame and waits for the client's (RFC 6455 §7.1.2); the silent client never sends
    // one, so the close timer destroys the socket; 'close' reports the code the server sent.
    expect(code).toBe(CloseCode.NORMAL_CLOSURE);
    expect(elapsed).toBeGreaterThanOrEqual(SHORT_MS - 20);
    expect(elapsed).toBeLessThan(SHORT_MS + 1000);
  });
});
