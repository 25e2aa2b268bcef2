/**
 * connect() against the `ws` library's server and against raw HTTP servers: interop (with and without
 * compression, fragmented and 1 MiB messages, IPv6), the request it sends (User-Agent, Origin, headers,
 * subprotocols), typed errors on bad responses and limits, and redirects.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { DEFAULT_IDENTITY } from '../../lib/config/index.js';
import { HandshakeError, HandshakeLimitError, InvalidStatusError } from '../../lib/errors.js';
import { connect } from '../../lib/node/client.js';
import { Harness, next } from './harness.js';

const harness = new Harness();
const servers: net.Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) server.close();
  await harness.cleanup();
});

/** A TCP server that answers every connection with `response` (raw bytes) and records the requests. */
async function rawHttpServer(respond: (request: string, port: number) => string): Promise<{ port: number; requests: string[] }> {
  const requests: string[] = [];
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      requests.push(head);
      socket.end(respond(head, (server.address() as AddressInfo).port));
    });
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, requests };
}

describe.each([
  ['127.0.0.1', true],
  ['127.0.0.1', false],
  ['::1', true],
  ['::1', false],
])('our client against the ws server on %s, compression %s', (host, compression) => {
  it('echoes text, binary, fragmented and 1 MiB messages', async () => {
    const { server, port } = await harness.wsServer({ host, perMessageDeflate: compression ? { threshold: 0 } : false });
    server.on('connection', (peer) => {
      peer.on('message', (data, isBinary) => {
        if (!isBinary && data.toString() === 'fragment please') {
          // Fragmented by ws: three frames of one text message.
          peer.send('one-', { fin: false });
          peer.send('two-', { fin: false });
          peer.send('three', { fin: true });
          return;
        }
        peer.send(data, { binary: isBinary });
      });
    });
    const urlHost = host.includes(':') ? `[${host}]` : host;
    const ws = await harness.connect(`ws://${urlHost}:${port}/echo`, { compression });
    expect(ws.extensions === '').toBe(!compression);
    const messages: Array<[string | Buffer, boolean]> = [];
    ws.on('message', (data: string | Buffer, isBinary: boolean) => messages.push([data, isBinary]));
    const big = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    await ws.send('héllo');
    await ws.send(Buffer.from([1, 2, 3]));
    await ws.send('fragment please');
    await ws.send(big);
    await new Promise<void>((resolve) => {
      const check = (): void => (messages.length === 4 ? resolve() : void setTimeout(check, 5));
      check();
    });
    expect(messages.slice(0, 3)).toEqual([
      ['héllo', false],
      [Buffer.from([1, 2, 3]), true],
      ['one-two-three', false],
    ]);
    expect((messages[3]![0] as Buffer).equals(big)).toBe(true);
    const [serverSide] = [...server.clients];
    const closed = next<[number, Buffer]>(serverSide!, 'close');
    await ws.close(4002, 'bye');
    const [code, reason] = await closed;
    expect([code, reason.toString()]).toEqual([4002, 'bye']);
  });
});

describe('the request connect() sends', () => {
  it('carries User-Agent from the option, the environment or the default, and Origin, headers and subprotocols', async () => {
    const seen: IncomingMessage[] = [];
    const { server, port } = await harness.wsServer({ handleProtocols: (protocols) => [...protocols].at(-1) ?? false });
    server.on('connection', (_peer, request) => seen.push(request));
    const url = `ws://127.0.0.1:${port}/`;
    const ws = await harness.connect(url, { protocols: ['a', 'b'], origin: 'https://app.example', headers: { Cookie: 'id=1' } });
    expect(ws.protocol).toBe('b');
    await harness.connect(url, { userAgentHeader: 'agent/1' });
    await harness.connect(url, { env: { WEBSOCKETS_USER_AGENT: 'env-agent/2' } });
    await harness.connect(url, { userAgentHeader: null });
    await harness.connect(url, { env: { WEBSOCKETS_USER_AGENT: '' } });
    expect(seen.map((request) => request.headers['user-agent'])).toEqual([DEFAULT_IDENTITY, 'agent/1', 'env-agent/2', undefined, undefined]);
    expect(seen[0]!.headers.origin).toBe('https://app.example');
    expect(seen[0]!.headers.cookie).toBe('id=1');
    expect(seen[0]!.headers['sec-websocket-protocol']).toBe('a, b');
    expect(seen[0]!.headers['sec-websocket-extensions']).toBe('permessage-deflate; client_max_window_bits');
  });
});

describe('refusals and limits', () => {
  it('rejects with InvalidStatusError carrying the status, headers and body', async () => {
    const { port } = await rawHttpServer(() => 'HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\nX-Why: nope\r\n\r\ndenied!');
    const error = await connect(`ws://127.0.0.1:${port}/`, { env: {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidStatusError);
    const status = error as InvalidStatusError;
    expect(status.status).toBe(403);
    expect(status.body.toString()).toBe('denied!');
    expect(status.responseHeaders).toContainEqual(['X-Why', 'nope']);
  });

  it('applies the limits to the response with HandshakeLimitError', async () => {
    const longLine = await rawHttpServer(() => `HTTP/1.1 101 ${'x'.repeat(9000)}\r\n\r\n`);
    await expect(connect(`ws://127.0.0.1:${longLine.port}/`, { env: {} })).rejects.toBeInstanceOf(HandshakeLimitError);
    const manyHeaders = await rawHttpServer(() => `HTTP/1.1 101 Switching Protocols\r\n${'X-A: b\r\n'.repeat(129)}\r\n`);
    await expect(connect(`ws://127.0.0.1:${manyHeaders.port}/`, { env: {} })).rejects.toThrow('more than 128 headers');
    const bigBody = await rawHttpServer(() => `HTTP/1.1 500 Oops\r\nContent-Length: ${1024 * 1024 + 1}\r\n\r\n`);
    await expect(connect(`ws://127.0.0.1:${bigBody.port}/`, { env: {} })).rejects.toThrow(/response body is \d+ bytes or more; the limit is 1048576/);
  });

  it('refuses a URL that is not ws or wss', async () => {
    await expect(connect('http://127.0.0.1:1/', { env: {} })).rejects.toThrow('a WebSocket URL starts with ws://, wss://, ws+unix: or wss+unix:');
  });
});

describe('redirects', () => {
  it('follows 301, 302, 303, 307 and 308 to the WebSocket server', async () => {
    const { server, port } = await harness.wsServer();
    server.on('connection', (peer, request) => peer.send(request.url ?? ''));
    for (const status of [301, 302, 303, 307, 308]) {
      const hop = await rawHttpServer(() => `HTTP/1.1 ${status} Moved\r\nLocation: ws://127.0.0.1:${port}/final?from=${status}\r\nContent-Length: 0\r\n\r\n`);
      const ws = await harness.connect(`ws://127.0.0.1:${hop.port}/start`);
      const [url] = await next<[string]>(ws, 'message');
      expect(url).toBe(`/final?from=${status}`);
    }
  });

  it('resolves a relative Location and maps http to ws', async () => {
    const { server, port } = await harness.wsServer();
    server.on('connection', (peer, request) => peer.send(request.url ?? ''));
    const hop = await rawHttpServer((request) =>
      request.startsWith('GET /second')
        ? `HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:${port}/third\r\n\r\n`
        : 'HTTP/1.1 302 Found\r\nLocation: /second\r\nContent-Length: 0\r\n\r\n',
    );
    const ws = await harness.connect(`ws://127.0.0.1:${hop.port}/first`);
    expect((await next<[string]>(ws, 'message'))[0]).toBe('/third');
    expect(hop.requests.map((r) => r.split(' ')[1])).toEqual(['/first', '/second']);
  });

  it('stops after maxRedirects (10 by default)', async () => {
    const loop = await rawHttpServer((_request, port) => `HTTP/1.1 302 Found\r\nLocation: ws://127.0.0.1:${port}/again\r\nContent-Length: 0\r\n\r\n`);
    const failure = connect(`ws://127.0.0.1:${loop.port}/`, { env: {} });
    await expect(failure).rejects.toThrow('too many redirects (more than 10; option maxRedirects, env WEBSOCKETS_MAX_REDIRECTS)');
    await expect(failure).rejects.toMatchObject({ code: 'WS_ERR_REDIRECT', location: `ws://127.0.0.1:${loop.port}/again` });
    expect(loop.requests).toHaveLength(11);
    const two = await rawHttpServer((_request, port) => `HTTP/1.1 302 Found\r\nLocation: ws://127.0.0.1:${port}/again\r\nContent-Length: 0\r\n\r\n`);
    await expect(connect(`ws://127.0.0.1:${two.port}/`, { env: {}, maxRedirects: 2 })).rejects.toBeInstanceOf(HandshakeError);
    expect(two.requests).toHaveLength(3);
  });

  it('reads maxRedirects from WEBSOCKETS_MAX_REDIRECTS (0 follows none), the option first', async () => {
    const loop = await rawHttpServer((_request, port) => `HTTP/1.1 302 Found\r\nLocation: ws://127.0.0.1:${port}/again\r\nContent-Length: 0\r\n\r\n`);
    await expect(connect(`ws://127.0.0.1:${loop.port}/`, { env: { WEBSOCKETS_MAX_REDIRECTS: '1' } })).rejects.toThrow(
      'too many redirects (more than 1; option maxRedirects, env WEBSOCKETS_MAX_REDIRECTS)',
    );
    expect(loop.requests).toHaveLength(2);
    await expect(connect(`ws://127.0.0.1:${loop.port}/`, { env: { WEBSOCKETS_MAX_REDIRECTS: '0' } })).rejects.toThrow('more than 0');
    expect(loop.requests).toHaveLength(3);
    await expect(connect(`ws://127.0.0.1:${loop.port}/`, { env: { WEBSOCKETS_MAX_REDIRECTS: '9' }, maxRedirects: 0 })).rejects.toThrow('more than 0');
    await expect(connect(`ws://127.0.0.1:${loop.port}/`, { env: { WEBSOCKETS_MAX_REDIRECTS: 'ten' } })).rejects.toThrow(
      'WEBSOCKETS_MAX_REDIRECTS must be a non-negative integer (redirects); got "ten" (option maxRedirects, env WEBSOCKETS_MAX_REDIRECTS)',
    );
    expect(loop.requests).toHaveLength(4);
  });

  it('drops Authorization, Cookie and Proxy-Authorization on a redirect to another origin, and keeps them on the same origin', async () => {
    const { server, port } = await harness.wsServer();
    const seen: IncomingMessage['headers'][] = [];
    server.on('connection', (peer, request) => {
      seen.push(request.headers);
      peer.send('ok');
    });
    // Same host, another port: another origin, e.g. a service the operator of the first one does not control.
    const hop = await rawHttpServer((request) =>
      request.startsWith('GET /same')
        ? `HTTP/1.1 307 Temporary Redirect\r\nLocation: ws://127.0.0.1:${port}/elsewhere\r\nContent-Length: 0\r\n\r\n`
        : 'HTTP/1.1 301 Moved\r\nLocation: /same\r\nContent-Length: 0\r\n\r\n',
    );
    const secrets = { Authorization: 'Bearer s3cret', Cookie: 'session=s3cret', 'Proxy-Authorization': 'Basic czNjcmV0', 'X-Trace': 'kept' };
    for (const headers of [secrets, Object.entries(secrets).map(([name, value]) => [name.toUpperCase(), value] as const)]) {
      const ws = await harness.connect(`ws://127.0.0.1:${hop.port}/start`, { headers });
      await next(ws, 'message');
    }
    // The first hop is on the same origin: the credentials go there, then never past the origin change.
    expect(hop.requests).toHaveLength(4);
    for (const request of hop.requests) expect(request).toMatch(/^Authorization: Bearer s3cret$/im);
    expect(seen).toHaveLength(2);
    for (const headers of seen) {
      expect(headers).not.toHaveProperty('authorization');
      expect(headers).not.toHaveProperty('cookie');
      expect(headers).not.toHaveProperty('proxy-authorization');
      expect(headers['x-trace']).toBe('kept');
    }
    // Without the redirect, the same headers reach the server: it is the origin change that drops them.
    const direct = await harness.connect(`ws://127.0.0.1:${port}/`, { headers: secrets });
    await next(direct, 'message');
    expect(seen[2]).toMatchObject({ authorization: 'Bearer s3cret', cookie: 'session=s3cret' });
  });
});
