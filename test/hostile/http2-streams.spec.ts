/**
 * Hostile HTTP/2 peers against a server with `http2` on: header blocks over the handshake limits (431 / 414 on the
 * stream, or refused by the HTTP/2 layer when far over), a flood of streams (bounded by `maxConnections` with 503
 * and by the session's SETTINGS_MAX_CONCURRENT_STREAMS), a stream that never reads (the slow-consumer policy ends
 * it, the server's buffer stays bounded), a stream that never finishes its handshake and a session that opens none
 * (both cut at `openTimeoutMs`). Through all of it the server keeps serving a well-behaved client.
 */
import { afterEach, expect, it } from '@jest/globals';
import http2 from 'node:http2';
import { connect } from '../../lib/node/client.js';
import type { WebSocketServer, WebSocketServerOptions } from '../../lib/node/server.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import { makeTestCertificates } from '../support/certs.js';
import { waitUntil, withTimeout } from '../support/net.js';
import { describeWithPeer } from '../support/peers.js';
import { Harness, next, WAIT_MS } from '../node/harness.js';

const harness = new Harness();
const sessions: http2.ClientHttp2Session[] = [];
afterEach(async () => {
  for (const session of sessions.splice(0)) session.destroy();
  await harness.cleanup();
});

async function h2Server(options: Omit<WebSocketServerOptions, 'port'> = {}): Promise<{ server: WebSocketServer; port: number; ca: string }> {
  const certs = await makeTestCertificates();
  const { server, port } = await harness.listen({ tls: { key: certs.server.key, cert: certs.server.cert }, http2: true, ...options });
  server.on('error', () => undefined);
  return { server, port, ca: certs.ca.cert };
}

async function rawSession(port: number, ca: string, options: http2.ClientSessionOptions = {}): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`https://localhost:${port}`, { ca, ...options });
  session.on('error', () => undefined);
  sessions.push(session);
  await next(session, 'remoteSettings');
  return session;
}

function request(session: http2.ClientHttp2Session, port: number, extra: http2.OutgoingHttpHeaders = {}): http2.ClientHttp2Stream {
  const stream = session.request(
    {
      ':method': 'CONNECT',
      ':protocol': 'websocket',
      ':scheme': 'https',
      ':path': '/',
      ':authority': `localhost:${port}`,
      'sec-websocket-version': '13',
      ...extra,
    },
    { endStream: false },
  );
  stream.on('error', () => undefined);
  return stream;
}

/** The stream's `:status`, or `reset <code>` when it closed without an answer. */
function outcome(stream: http2.ClientHttp2Stream, ms = WAIT_MS): Promise<number | string> {
  return withTimeout(
    new Promise((resolve) => {
      stream.once('response', (headers) => resolve(Number(headers[':status'])));
      stream.once('close', () => resolve(`reset ${stream.rstCode}`));
    }),
    ms,
    'an answer or a reset',
  );
}

/** A well-behaved client still gets through. */
async function stillServes(port: number, ca: string): Promise<void> {
  const ws = await harness.connect(`wss://localhost:${port}/`, { ca, http2: true });
  void ws.send('ping?');
  expect(await next<[string, boolean]>(ws, 'message')).toEqual(['ping?', false]);
}

function echo(ws: WebSocket): void {
  ws.on('message', (data: string | Buffer, isBinary: boolean) => void ws.send(data, { binary: isBinary }));
}

describeWithPeer('openssl', 'hostile HTTP/2 streams', () => {
  it('answers a header block over the handshake limits with 431 / 414 on the stream, and one far over is refused by HTTP/2', async () => {
    const { server, port, ca } = await h2Server({ maxLineLength: 256, maxNumHeaders: 8 });
    server.on('connection', echo);
    const settings = (await rawSession(port, ca)).remoteSettings;
    expect(settings.maxHeaderListSize).toBe(9 * 256);
    const session = await rawSession(port, ca);
    expect(await outcome(request(session, port, { 'x-long': 'a'.repeat(300) }))).toBe(431);
    const many: http2.OutgoingHttpHeaders = {};
    for (let i = 0; i < 10; i++) many[`x-h${i}`] = 'v';
    expect(await outcome(request(session, port, many))).toBe(431);
    expect(await outcome(request(session, port, { ':path': `/${'p'.repeat(300)}` }))).toBe(414);
    // Far beyond SETTINGS_MAX_HEADER_LIST_SIZE: the HTTP/2 layer refuses it before any of it is kept.
    const huge: http2.OutgoingHttpHeaders = {};
    for (let i = 0; i < 100; i++) huge[`x-big${i}`] = 'b'.repeat(200);
    const refused = await outcome(request(await rawSession(port, ca), port, huge));
    expect([431, 'reset 11', 'reset 1']).toContain(refused);
    await stillServes(port, ca);
  });

  it('bounds a flood of streams by maxConnections (503 with Retry-After) and by the session\'s concurrent streams', async () => {
    const { server, port, ca } = await h2Server({ maxConnections: 5 });
    server.on('connection', echo);
    const session = await rawSession(port, ca);
    expect(session.remoteSettings.maxConcurrentStreams).toBe(100);
    const streams = Array.from({ length: 8 }, () => request(session, port));
    const statuses = await Promise.all(streams.map((stream) => outcome(stream)));
    expect(statuses.filter((status) => status === 200)).toHaveLength(5);
    expect(statuses.filter((status) => status === 503)).toHaveLength(3);
    await waitUntil(() => server.clients.size === 5, WAIT_MS, 'five connections');
    const oneMore = request(session, port);
    const [refusal] = await next<[http2.IncomingHttpHeaders]>(oneMore, 'response');
    expect([refusal[':status'], refusal['retry-after']]).toEqual([503, expect.stringMatching(/^\d+$/)]);
    for (const stream of streams) stream.close(http2.constants.NGHTTP2_CANCEL);
    await waitUntil(() => server.clients.size === 0, WAIT_MS, 'the streams to close');

    // Without a connection limit, the session's SETTINGS_MAX_CONCURRENT_STREAMS (100) bounds one client: a peer
    // that ignores it has the extra streams refused by the HTTP/2 layer (RST_STREAM REFUSED_STREAM / PROTOCOL_ERROR).
    const unbounded = await h2Server();
    unbounded.server.on('connection', echo);
    const flood = await rawSession(unbounded.port, ca, { peerMaxConcurrentStreams: 1000 });
    // Node's client queues what the peer's setting does not allow; at most 100 are open at once on the server.
    const many = Array.from({ length: 120 }, () => request(flood, unbounded.port));
    await waitUntil(() => unbounded.server.clients.size === 100, 10_000, 'a hundred connections');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(unbounded.server.clients.size).toBe(100);
    for (const stream of many) stream.close(http2.constants.NGHTTP2_CANCEL);
    await stillServes(unbounded.port, ca);
  }, 30_000);

  it('ends a stream that never reads under the slow-consumer policy, holding at most maxBufferedAmount for it', async () => {
    const { server, port, ca } = await h2Server({ maxBufferedAmount: 256 * 1024, compression: false, closeTimeoutMs: 500 });
    const serverSides: WebSocket[] = [];
    server.on('connection', (ws: WebSocket) => {
      if (serverSides.push(ws) > 1) echo(ws);
    });
    const session = await rawSession(port, ca);
    const stream = request(session, port);
    expect(await outcome(stream)).toBe(200);
    stream.pause(); // never reads: its window fills, then the server's buffer
    await waitUntil(() => serverSides.length === 1, WAIT_MS, 'the connection');
    const ws = serverSides[0]!;
    const errors: Error[] = [];
    ws.on('error', (error: Error) => errors.push(error));
    // (events.once would reject on the 'error' event that comes first.)
    const closed = withTimeout(new Promise<[number]>((resolve) => ws.once('close', (code: number) => resolve([code]))), 5000, 'the close');
    const chunk = Buffer.alloc(32 * 1024, 1);
    let peak = 0;
    for (let i = 0; i < 64 && ws.readyState === 1; i++) {
      void ws.send(chunk);
      peak = Math.max(peak, ws.bufferedAmount);
      await new Promise((resolve) => setImmediate(resolve));
    }
    const [code] = await closed;
    // The code sent (the peer never answers): the close frame cannot reach a peer that does not read, so the
    // stream is reset at closeTimeoutMs.
    expect(code).toBe(1013);
    await waitUntil(() => stream.closed, 2000, 'the stream to be reset');
    expect(errors.map((error) => (error as { code?: string }).code)).toEqual(['WS_ERR_SLOW_CONSUMER']);
    expect(peak).toBeLessThanOrEqual(256 * 1024 + chunk.length);
    await stillServes(port, ca);
  });

  it('cuts a stream whose handshake does not finish, and a session that opens no stream, at openTimeoutMs', async () => {
    const { server, port, ca } = await h2Server({ openTimeoutMs: 300, handshake: () => new Promise(() => undefined) });
    server.on('connection', echo);
    const session = await rawSession(port, ca);
    const stream = request(session, port);
    const started = Date.now();
    expect(await outcome(stream)).toMatch(/^reset/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    await waitUntil(() => session.closed || session.destroyed, 2000, 'the idle session to be closed');

    const idle = await rawSession(port, ca);
    await withTimeout(new Promise((resolve) => idle.once('close', resolve)), 2000, 'the session without streams to close');
    await expect(connect(`wss://localhost:${port}/`, { ca, http2: true, env: {}, openTimeoutMs: 2000 })).rejects.toThrow();
  });
});
