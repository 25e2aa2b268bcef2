/**
 * WebSockets over HTTP/2 (RFC 8441) between our client and our server: one TLS connection carries many WebSockets,
 * each with its own flow; the handshake is checked as over HTTP/1.1 (statuses on the stream); a reset ends one
 * WebSocket and not its neighbours; the client falls back to HTTP/1.1 where the server does not offer extended
 * CONNECT; a server attaches to an application's `http2.createSecureServer`.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { WebSocketServer as WsServer } from 'ws';
import { ConfigError, InvalidStatusError } from '../../lib/errors.js';
import { connect } from '../../lib/node/client.js';
import { HTTP2_STREAM_WINDOW } from '../../lib/node/http2-server.js';
import { WebSocketServer, type HandshakeInfo } from '../../lib/node/server.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import { makeTestCertificates } from '../support/certs.js';
import { waitUntil, withTimeout } from '../support/net.js';
import { describeWithPeer } from '../support/peers.js';
import { Harness, next, nextWsMessage, QUIET, WAIT_MS } from './harness.js';

const harness = new Harness();
const closers: Array<() => unknown> = [];
afterEach(async () => {
  await harness.cleanup();
  for (const close of closers.splice(0).reverse()) await close();
});

function echo(ws: WebSocket): void {
  ws.on('message', (data: string | Buffer, isBinary: boolean) => void ws.send(data, { binary: isBinary }));
}

/** A TCP forwarder in front of `port` that counts the connections it carries. */
async function countingForwarder(port: number): Promise<{ port: number; connections: () => number }> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const forwarder = net.createServer((client) => {
    count++;
    const upstream = net.connect(port, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => socket.destroy());
      socket.on('close', () => sockets.delete(socket));
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  forwarder.listen(0, '127.0.0.1');
  await once(forwarder, 'listening');
  closers.push(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => forwarder.close(resolve));
  });
  return { port: (forwarder.address() as AddressInfo).port, connections: () => count };
}

/** A raw HTTP/2 session of Node's own client to our server, closed after the test. */
async function rawSession(port: number, ca: string): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`https://localhost:${port}`, { ca });
  session.on('error', () => undefined);
  closers.push(() => session.destroy());
  await next(session, 'remoteSettings');
  return session;
}

/** The response headers of a stream, or its reset. */
function answer(stream: http2.ClientHttp2Stream): Promise<http2.IncomingHttpHeaders> {
  stream.on('error', () => undefined);
  return withTimeout(
    new Promise((resolve, reject) => {
      stream.once('response', resolve);
      stream.once('close', () => reject(new Error(`stream closed with RST_STREAM code ${stream.rstCode}`)));
    }),
    WAIT_MS,
    'the answer to an extended CONNECT',
  );
}

function extendedConnect(port: number, extra: Record<string, string> = {}): http2.OutgoingHttpHeaders {
  return {
    ':method': 'CONNECT',
    ':protocol': 'websocket',
    ':scheme': 'https',
    ':path': '/chat',
    ':authority': `localhost:${port}`,
    'sec-websocket-version': '13',
    ...extra,
  };
}

async function h2Server(options: Parameters<Harness['listen']>[0] = {}): Promise<{ server: WebSocketServer; port: number; ca: string }> {
  const certs = await makeTestCertificates();
  const { server, port } = await harness.listen({ tls: { key: certs.server.key, cert: certs.server.cert }, http2: true, ...options });
  return { server, port, ca: certs.ca.cert };
}

describe('the http2 option', () => {
  it('needs TLS: a ConfigError that says so, from the option or WEBSOCKETS_HTTP2', () => {
    expect(() => new WebSocketServer({ ...QUIET, port: 0, http2: true })).toThrow(ConfigError);
    expect(() => new WebSocketServer({ ...QUIET, port: 0, http2: true })).toThrow(
      /option http2 is true but the server has no TLS: browsers speak HTTP\/2 over TLS only; give the tls option .*\(option http2, env WEBSOCKETS_HTTP2\)/,
    );
    expect(() => new WebSocketServer({ ...QUIET, port: 0, env: { WEBSOCKETS_HTTP2: 'on' } })).toThrow(/WEBSOCKETS_HTTP2 is on but the server has no TLS/);
    expect(() => new WebSocketServer({ ...QUIET, port: 0, env: { WEBSOCKETS_HTTP2: 'maybe' } })).toThrow(
      'WEBSOCKETS_HTTP2 must be "on" or "off"; got "maybe" (option http2, env WEBSOCKETS_HTTP2)',
    );
  });
});

describeWithPeer('openssl', 'WebSockets over HTTP/2', () => {
  it('carries many WebSockets on one TLS connection, checked and answered as over HTTP/1.1, next to HTTP/1.1 clients', async () => {
    const { server, port, ca } = await h2Server({ subprotocols: ['chat'] });
    const infos: HandshakeInfo[] = [];
    server.on('connection', (ws: WebSocket, info: HandshakeInfo) => {
      infos.push(info);
      echo(ws);
    });
    const forwarder = await countingForwarder(port);
    const url = `wss://localhost:${forwarder.port}/chat`;
    const clients = await Promise.all(
      Array.from({ length: 5 }, () => harness.connect(url, { ca, http2: true, protocols: ['chat'] })),
    );
    expect(forwarder.connections()).toBe(1);
    for (const [i, ws] of clients.entries()) {
      expect([ws.protocol, ws.extensions]).toEqual(['chat', expect.stringMatching(/^permessage-deflate/)]);
      void ws.send(`hello ${i}`);
      void ws.send(Buffer.from([i, 0, 255]));
    }
    for (const [i, ws] of clients.entries()) {
      expect(await next<[string, boolean]>(ws, 'message')).toEqual([`hello ${i}`, false]);
      expect(await next<[Buffer, boolean]>(ws, 'message')).toEqual([Buffer.from([i, 0, 255]), true]);
    }
    expect(infos.map((info) => [info.httpVersion, info.method, info.path, info.secure, info.headers.get('host')])).toEqual(
      Array(5).fill(['2', 'CONNECT', '/chat', true, `localhost:${forwarder.port}`]),
    );
    expect([...server.clients].every((ws) => ws.request?.httpVersion === '2')).toBe(true);

    // The same listener still speaks HTTP/1.1 (ALPN http/1.1) to clients that do not offer h2.
    const h1 = await harness.wsClient(`wss://localhost:${port}/chat`, { ca });
    h1.send('over http/1.1');
    expect((await nextWsMessage(h1))[0].toString()).toBe('over http/1.1');
    expect(infos[5]?.httpVersion).toBe('1.1');

    // Closing one WebSocket ends its stream with the code; the others go on.
    const serverSide = [...server.clients].find((ws) => ws.request?.httpVersion === '2')!;
    const closed = next<[number, string]>(serverSide, 'close');
    const first = clients.find((ws) => ws.readyState === 1)!;
    const seen: Array<[number, string]> = [];
    for (const ws of server.clients) ws.once('close', (code: number, reason: string) => seen.push([code, reason]));
    await first.close(4001, 'done');
    await waitUntil(() => seen.length === 1, WAIT_MS, 'the server sees the close');
    expect(seen).toEqual([[4001, 'done']]);
    void closed;
    const last = clients[4]!;
    void last.send('still here');
    expect(await next<[string, boolean]>(last, 'message')).toEqual(['still here', false]);
    expect(forwarder.connections()).toBe(1);
  });

  it('gives each WebSocket of a session its own backpressure: a reader that stops holds back only its own stream', async () => {
    // Uncompressed, so that the bytes on the wire are the bytes sent.
    const { server, port, ca } = await h2Server({ maxBufferedAmount: null, compression: false });
    const serverSides: WebSocket[] = [];
    server.on('connection', (ws: WebSocket) => serverSides.push(ws));
    const url = `wss://localhost:${port}/`;
    // The stalled client takes no message: it pauses its stream at readHighWaterMark, and HTTP/2 flow control
    // then stops the server's writes to it.
    const stalled = await harness.connect(url, { ca, http2: true, readHighWaterMark: 16_384 });
    const busy = await harness.connect(url, { ca, http2: true });
    await waitUntil(() => serverSides.length === 2, WAIT_MS, 'both connections');
    const [toStalled, toBusy] = serverSides as [WebSocket, WebSocket];
    const chunk = Buffer.alloc(16_384, 7);
    const sends: Array<Promise<boolean>> = [];
    for (let i = 0; i < 64; i++) sends.push(toStalled.send(chunk));
    // 1 MiB to the other WebSocket of the same session arrives in full meanwhile.
    let received = 0;
    busy.on('message', (data: Buffer) => {
      received += data.length;
    });
    for (let i = 0; i < 64; i++) void toBusy.send(chunk);
    await waitUntil(() => received === 64 * chunk.length, 10_000, 'the busy WebSocket receives 1 MiB');
    // The stalled one got at most its read bound plus the flow-control windows; the rest waits on the server.
    expect(toStalled.bufferedAmount).toBeGreaterThan(512 * 1024);
    expect(stalled.readBufferedAmount).toBeLessThanOrEqual(16_384 + HTTP2_STREAM_WINDOW + chunk.length + 64);
    // Once it reads, everything arrives.
    let stalledGot = 0;
    stalled.on('message', (data: Buffer) => {
      stalledGot += data.length;
    });
    await waitUntil(() => stalledGot === 64 * chunk.length, 10_000, 'the stalled WebSocket catches up');
    await Promise.all(sends);
  });

  it('echoes with more in flight each way than a default HTTP/2 window without stalling (both peers pause on backed-up writes)', async () => {
    const { server, port, ca } = await h2Server({ compression: false });
    server.on('connection', echo);
    const sockets = await Promise.all(Array.from({ length: 3 }, () => harness.connect(`wss://localhost:${port}/`, { ca, http2: true, compression: false })));
    const payload = Buffer.alloc(16 * 1024, 0x61);
    await Promise.all(
      sockets.map(async (ws) => {
        let received = 0;
        const all = new Promise<void>((resolve) =>
          ws.on('message', (data: Buffer) => {
            received += data.length;
            if (received === 12 * payload.length) resolve();
          }),
        );
        for (let i = 0; i < 12; i++) void ws.send(payload);
        await withTimeout(all, WAIT_MS, '192 KiB echoed');
      }),
    );
  });

  it('a reset ends one WebSocket (1006 on both sides) and leaves the session and its other streams alone', async () => {
    const { server, port, ca } = await h2Server();
    const serverSides: WebSocket[] = [];
    server.on('connection', (ws: WebSocket) => {
      serverSides.push(ws);
      echo(ws);
    });
    const forwarder = await countingForwarder(port);
    const url = `wss://localhost:${forwarder.port}/`;
    const a = await harness.connect(url, { ca, http2: true });
    const b = await harness.connect(url, { ca, http2: true });
    const c = await harness.connect(url, { ca, http2: true });
    await waitUntil(() => serverSides.length === 3, WAIT_MS, 'three connections');
    const serverClosed = next<[number, string]>(serverSides[0]!, 'close');
    a.terminate();
    expect((await serverClosed)[0]).toBe(1006);
    // The server aborts another: its client sees 1006.
    const clientClosed = next<[number, string]>(b, 'close');
    serverSides[1]!.terminate();
    expect((await clientClosed)[0]).toBe(1006);
    void c.send('alive');
    expect(await next<[string, boolean]>(c, 'message')).toEqual(['alive', false]);
    // A new connection still rides the same TCP connection.
    const d = await harness.connect(url, { ca, http2: true });
    void d.send('new');
    expect(await next<[string, boolean]>(d, 'message')).toEqual(['new', false]);
    expect(forwarder.connections()).toBe(1);
  });

  it('a connection that gives up (openTimeoutMs) ends its stream only, even when it opened the shared session', async () => {
    const { server, port, ca } = await h2Server({ handshake: (info) => (info.query.has('slow') ? new Promise(() => undefined) : undefined) });
    server.on('connection', echo);
    const forwarder = await countingForwarder(port);
    const url = `wss://localhost:${forwarder.port}/`;
    const slow = connect(`${url}?slow`, { ca, http2: true, env: {}, openTimeoutMs: 700 });
    const fast = await harness.connect(url, { ca, http2: true });
    await expect(slow).rejects.toMatchObject({ code: 'WS_ERR_OPEN_TIMEOUT' });
    void fast.send('still on the session');
    expect(await next<[string, boolean]>(fast, 'message')).toEqual(['still on the session', false]);
    expect(forwarder.connections()).toBe(1);
  });

  it('refuses over HTTP/2 with the statuses of HTTP/1.1: origin, hook, path, method, version', async () => {
    const { server, port, ca } = await h2Server({
      path: '/chat',
      allowedOrigins: ['https://good.example'],
      refusals: 'http',
      handshake: (info) => (info.query.get('token') === 'ok' ? undefined : { reject: { status: 401, body: 'no token', headers: { 'WWW-Authenticate': 'Bearer' } } }),
    });
    const errors: number[] = [];
    server.on('handshakeError', (error: { httpStatus: number }) => errors.push(error.httpStatus));
    const url = `wss://localhost:${port}/chat`;
    await expect(connect(`${url}?token=ok`, { ca, http2: true, origin: 'https://evil.example', env: {} })).rejects.toMatchObject({ status: 403 });
    const refused = connect(url, { ca, http2: true, origin: 'https://good.example', env: {} });
    await expect(refused).rejects.toBeInstanceOf(InvalidStatusError);
    await refused.catch((error: InvalidStatusError) => {
      expect([error.status, error.body.toString()]).toEqual([401, 'no token']);
      expect(error.responseHeaders).toContainEqual(['www-authenticate', 'Bearer']);
    });
    const ws = await harness.connect(`${url}?token=ok`, { ca, http2: true, origin: 'https://good.example' });
    expect(ws.readyState).toBe(1);

    const session = await rawSession(port, ca);
    const notFound = await answer(session.request(extendedConnect(port, { ':path': '/elsewhere' }), { endStream: false }));
    expect(notFound[':status']).toBe(404);
    const get = await answer(session.request({ ':path': '/chat' }));
    expect([get[':status'], get.allow]).toEqual([405, 'CONNECT']);
    const oldVersion = await answer(session.request(extendedConnect(port, { 'sec-websocket-version': '8' }), { endStream: false }));
    expect([oldVersion[':status'], oldVersion['sec-websocket-version']]).toEqual([426, '13']);
    expect(oldVersion.upgrade).toBeUndefined();
    expect(errors).toEqual([403, 401, 404, 405, 426]);
  });

  it('sends a browser (Origin, refusals auto) its refusal in-band: :status 200, then a close with 4000 + status', async () => {
    const { port, ca } = await h2Server({ handshake: () => ({ reject: { status: 403, body: 'not you' } }) });
    const ws = await harness.connect(`wss://localhost:${port}/`, { ca, http2: true, origin: 'https://app.example' });
    expect(await next<[number, string]>(ws, 'close')).toEqual([4403, 'not you']);
  });

  it('falls back to HTTP/1.1 against a TLS server without h2, and against an HTTP/2 server without extended CONNECT', async () => {
    const certs = await makeTestCertificates();
    const ca = certs.ca.cert;
    const { server, port } = await harness.listen({ tls: { key: certs.server.key, cert: certs.server.cert } });
    const versions: string[] = [];
    server.on('connection', (ws: WebSocket, info: HandshakeInfo) => {
      versions.push(info.httpVersion);
      echo(ws);
    });
    const ws = await harness.connect(`wss://localhost:${port}/`, { ca, http2: true });
    void ws.send('h1');
    expect(await next<[string, boolean]>(ws, 'message')).toEqual(['h1', false]);
    expect(versions).toEqual(['1.1']);

    // An HTTP/2 server that serves WebSockets over HTTP/1.1 only (the ws library on its 'upgrade' event).
    const h2 = http2.createSecureServer({ key: certs.server.key, cert: certs.server.cert, allowHTTP1: true });
    const wsLibrary = new WsServer({ noServer: true });
    wsLibrary.on('connection', (client) => client.on('message', (data, isBinary) => client.send(data, { binary: isBinary })));
    h2.on('upgrade', (req, socket, head) => wsLibrary.handleUpgrade(req, socket, head, (client) => wsLibrary.emit('connection', client, req)));
    let sessions = 0;
    h2.on('session', () => sessions++);
    h2.listen(0, '127.0.0.1');
    await once(h2, 'listening');
    const appSessions = new Set<http2.ServerHttp2Session>();
    h2.on('session', (session: http2.ServerHttp2Session) => appSessions.add(session));
    closers.push(async () => {
      for (const client of wsLibrary.clients) client.terminate();
      for (const session of appSessions) session.destroy();
      await new Promise((resolve) => h2.close(resolve));
    });
    const h2Port = (h2.address() as AddressInfo).port;
    const fallback = await harness.connect(`wss://localhost:${h2Port}/`, { ca, http2: true });
    void fallback.send('fell back');
    expect(await next<[string, boolean]>(fallback, 'message')).toEqual(['fell back', false]);
    expect(sessions).toBe(1);
    // The origin is remembered: the next connection goes over HTTP/1.1 at once, without another HTTP/2 session.
    const again = await harness.connect(`wss://localhost:${h2Port}/`, { ca, http2: true });
    void again.send('again');
    expect(await next<[string, boolean]>(again, 'message')).toEqual(['again', false]);
    expect(sessions).toBe(1);
  });

  it('attaches to an application http2.createSecureServer: WebSockets over HTTP/2 and HTTP/1.1, its pages untouched', async () => {
    const certs = await makeTestCertificates();
    const ca = certs.ca.cert;
    const h2 = http2.createSecureServer({ key: certs.server.key, cert: certs.server.cert, allowHTTP1: true }, (req, res) => {
      res.end(`page ${req.url} over ${req.httpVersion}`);
    });
    const connectStreams: string[] = [];
    h2.on('stream', (_stream, headers) => {
      if (headers[':method'] === 'CONNECT') connectStreams.push(String(headers[':protocol']));
    });
    const appSessions = new Set<http2.ServerHttp2Session>();
    h2.on('session', (session: http2.ServerHttp2Session) => appSessions.add(session));
    h2.listen(0, '127.0.0.1');
    await once(h2, 'listening');
    closers.push(() => {
      for (const session of appSessions) session.destroy();
      return new Promise((resolve) => h2.close(resolve));
    });
    const port = (h2.address() as AddressInfo).port;
    const server = harness.attach({ server: h2, path: '/ws' });
    const versions: string[] = [];
    server.on('connection', (ws: WebSocket, info: HandshakeInfo) => {
      versions.push(info.httpVersion);
      echo(ws);
    });
    const overH2 = await harness.connect(`wss://localhost:${port}/ws`, { ca, http2: true });
    void overH2.send('h2');
    expect(await next<[string, boolean]>(overH2, 'message')).toEqual(['h2', false]);
    const overH1 = await harness.wsClient(`wss://localhost:${port}/ws`, { ca });
    overH1.send('h1');
    expect((await nextWsMessage(overH1))[0].toString()).toBe('h1');
    expect(versions).toEqual(['2', '1.1']);
    expect(connectStreams).toEqual(['websocket']);

    const session = await rawSession(port, ca);
    const page = session.request({ ':path': '/index.html' });
    const headers = await answer(page);
    page.setEncoding('utf8');
    let body = '';
    for await (const chunk of page) body += chunk;
    expect([headers[':status'], body]).toEqual([200, 'page /index.html over 2.0']);
    const elsewhere = await answer(session.request(extendedConnect(port, { ':path': '/other' }), { endStream: false }));
    expect(elsewhere[':status']).toBe(404);
  });
});
