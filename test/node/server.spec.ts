/**
 * WebSocketServer on its own port, against the `ws` library's client and raw sockets: interop (127.0.0.1 and ::1,
 * with and without compression, fragmented and 1 MiB messages), the Server header, refusals with their statuses,
 * the handshake hook, subprotocols, the message limit, a throwing handler, and close().
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import net from 'node:net';
import { once } from 'node:events';
import { DEFAULT_IDENTITY } from '../../lib/config/index.js';
import { CloseCode } from '../../lib/protocol/close-codes.js';
import { Opcode } from '../../lib/protocol/frame.js';
import { encodeFrame } from '../../lib/protocol/frame-writer.js';
import type { HandshakeInfo, WebSocketServer } from '../../lib/node/server.js';
import { WebSocket } from '../../lib/node/websocket.js';
import { endOfHttpHead, rawConnect, withTimeout } from '../support/net.js';
import { Harness, next, nextWsMessage, WAIT_MS, wsClosed } from './harness.js';

const harness = new Harness();
afterEach(() => harness.cleanup());

/** Echo text as text and binary as binary. */
function echo(server: WebSocketServer): void {
  server.on('connection', (ws: WebSocket) => {
    ws.on('message', (data: string | Buffer, isBinary: boolean) => void ws.send(data, { binary: isBinary }).catch(() => undefined));
  });
}

const UPGRADE_HEADERS = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';

function request(path = '/', extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: localhost\r\n${UPGRADE_HEADERS}${extra}\r\n`;
}

/** A masked client frame, as one buffer. */
function clientFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  return Buffer.concat(encodeFrame(opcode, payload, { maskKey: Buffer.from([1, 2, 3, 4]), fin }));
}

describe.each([
  ['127.0.0.1', false],
  ['127.0.0.1', true],
  ['::1', false],
  ['::1', true],
])('ws client against our server on %s, compression %s', (host, compression) => {
  it('echoes text, binary, a fragmented message and a 1 MiB message', async () => {
    const { server, url } = await harness.listen({ host });
    echo(server);
    const client = await harness.wsClient(`${url}/`, { perMessageDeflate: compression });
    expect(client.extensions).toBe(compression ? 'permessage-deflate' : '');

    client.send('héllo');
    expect(await nextWsMessage(client)).toEqual([Buffer.from('héllo'), false]);
    client.send(Buffer.from([0, 1, 2, 255]));
    expect(await nextWsMessage(client)).toEqual([Buffer.from([0, 1, 2, 255]), true]);

    // Three fragments of one text message (RFC 6455 §5.4).
    client.send('frag-', { fin: false });
    client.send('men-', { fin: false });
    client.send('ted', { fin: true });
    expect((await nextWsMessage(client))[0].toString()).toBe('frag-men-ted');

    const big = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
    client.send(big);
    const [echoed, isBinary] = await nextWsMessage(client, 10_000);
    expect(isBinary).toBe(true);
    expect(echoed.equals(big)).toBe(true);

    const closed = wsClosed(client);
    client.close(4000, 'done');
    expect(await closed).toEqual([4000, 'done']);
  });
});

describe('handshake on our own port', () => {
  it('sends the Server header on the 101, from the option, the environment or the default', async () => {
    for (const [options, expected] of [
      [{}, DEFAULT_IDENTITY],
      [{ serverHeader: 'custom/1' }, 'custom/1'],
      [{ env: { WEBSOCKETS_SERVER: 'from-env/2' } }, 'from-env/2'],
      [{ serverHeader: null, env: { WEBSOCKETS_SERVER: 'ignored' } }, undefined],
      [{ env: { WEBSOCKETS_SERVER: '' } }, undefined],
    ] as const) {
      const { port } = await harness.listen(options);
      const raw = await rawConnect(port);
      await raw.write(request());
      const head = (await raw.readUntil(endOfHttpHead, WAIT_MS, '101')).toString('latin1');
      expect(head.startsWith('HTTP/1.1 101 Switching Protocols\r\n')).toBe(true);
      const server = /\r\nServer: ([^\r]*)\r\n/.exec(head)?.[1];
      expect(server).toBe(expected);
      raw.destroy();
    }
  });

  it('answers a 9000-byte request line with 414 and the Server header, then closes', async () => {
    const { port } = await harness.listen({ serverHeader: 'limits-test' });
    const raw = await rawConnect(port);
    const path = `/${'a'.repeat(9000 - 'GET / HTTP/1.1\r\n'.length)}`;
    const line = `GET ${path} HTTP/1.1\r\n`;
    expect(line.length).toBe(9000);
    await raw.write(`${line}Host: localhost\r\n${UPGRADE_HEADERS}\r\n`).catch(() => undefined);
    const response = (await raw.readUntilClose(WAIT_MS)).toString('latin1');
    expect(response.startsWith('HTTP/1.1 414 URI Too Long\r\n')).toBe(true);
    expect(response).toContain('\r\nServer: limits-test\r\n');
    expect(response).toMatch(/request line is \d+ bytes or more; the limit is 8192 \(option maxLineLength, env WEBSOCKETS_MAX_LINE_LENGTH\)/);
  });

  it('accepts a request line of exactly maxLineLength bytes', async () => {
    const { server, port } = await harness.listen();
    const path = `/${'b'.repeat(8192 - 'GET / HTTP/1.1\r\n'.length)}`;
    const connected = next<[WebSocket, HandshakeInfo]>(server, 'connection');
    const raw = await rawConnect(port);
    await raw.write(request(path));
    const [ws, info] = await connected;
    harness.track(ws);
    expect(info.path).toBe(path);
  });

  it('answers 129 headers with 431 and the Server header', async () => {
    const { port } = await harness.listen({ serverHeader: 'limits-test' });
    const raw = await rawConnect(port);
    const extra = Array.from({ length: 129 - 5 }, (_, i) => `X-H${i}: v\r\n`).join('');
    await raw.write(request('/', extra)).catch(() => undefined);
    const response = (await raw.readUntilClose(WAIT_MS)).toString('latin1');
    expect(response.startsWith('HTTP/1.1 431 ')).toBe(true);
    expect(response).toContain('\r\nServer: limits-test\r\n');
  });

  it('answers a plain HTTP request with 426 and a path it does not own with 404', async () => {
    const { port } = await harness.listen({ path: '/ws' });
    const plain = await rawConnect(port);
    await plain.write('GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const refusal = (await plain.readUntilClose(WAIT_MS)).toString('latin1');
    expect(refusal.startsWith('HTTP/1.1 426 ')).toBe(true);
    expect(refusal).toContain('\r\nUpgrade: websocket\r\n');

    const wrong = await rawConnect(port);
    await wrong.write(request('/other'));
    expect((await wrong.readUntilClose(WAIT_MS)).toString('latin1').startsWith('HTTP/1.1 404 ')).toBe(true);

    for (const path of ['/ws', '/ws/', '/ws?x=1']) {
      const ok = await rawConnect(port);
      await ok.write(request(path));
      expect((await ok.readUntil(endOfHttpHead, WAIT_MS, '101')).toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);
      ok.destroy();
    }
  });

  it('close() destroys refused sockets whose client keeps its side open, instead of waiting out the linger', async () => {
    const { server, port } = await harness.listen({ path: '/ws', closeTimeoutMs: 5000 });
    // allowHalfOpen: the client does not answer the server's FIN, as a slow or hostile client would not.
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    socket.on('error', () => undefined);
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    await once(socket, 'connect');
    socket.write(request('/elsewhere'));
    await withTimeout(once(socket, 'end'), WAIT_MS, 'the refusal to end');
    expect(received.startsWith('HTTP/1.1 404 ')).toBe(true);
    // The server keeps a refused socket for closeTimeoutMs (5 s here) so that the client can read the answer; its
    // listener cannot close before that socket is gone, so close() must destroy it rather than wait.
    const started = performance.now();
    await withTimeout(server.close(), 2000, 'server.close() with a refused socket still open');
    expect(performance.now() - started).toBeLessThan(2000);
    socket.destroy();
  });

  it('refuses an origin that is not allowed with 403', async () => {
    // As HTTP: under the default ('auto') a request with an Origin is refused in-band (see refusals.spec.ts).
    const { url } = await harness.listen({
      allowedOrigins: ['https://good.example', /https:\/\/[a-z]+\.trusted\.example/],
      allowMissingOrigin: false,
      refusals: 'http',
    });
    for (const [origin, status] of [
      ['https://good.example', 101],
      ['https://app.trusted.example', 101],
      ['https://evil.example', 403],
      ['https://app.trusted.example.evil.test', 403],
      [undefined, 403],
    ] as const) {
      const client = harness.wsClientRaw(`${url}/`, origin === undefined ? {} : { origin });
      // One promise for either outcome: a race of two timed waits would leave the loser's timer running.
      // With an 'unexpected-response' listener, ws leaves the request to the listener: destroy it.
      const outcome = await withTimeout(
        new Promise<number>((resolve) => {
          client.once('open', () => resolve(101));
          client.once('unexpected-response', (req: { destroy(): void }, res: { statusCode: number }) => {
            req.destroy();
            resolve(res.statusCode);
          });
        }),
        WAIT_MS,
        `the handshake with origin ${String(origin)}`,
      );
      expect([origin, outcome]).toEqual([origin, status]);
      client.terminate();
    }
  });

  it('runs the async hook with the request, and lets it refuse or accept with headers, a protocol and data', async () => {
    const seen: HandshakeInfo[] = [];
    const { server, url } = await harness.listen({
      subprotocols: ['chat.v2', 'chat.v1'],
      handshake: async (info) => {
        seen.push(info);
        await new Promise((resolve) => setTimeout(resolve, 10));
        if (info.query.get('token') !== 'ok') return { reject: { status: 401, body: 'no token', headers: { 'WWW-Authenticate': 'Bearer' } } };
        return { headers: { 'X-Hook': 'yes' }, data: { user: 'alice' } };
      },
    });
    const refused = harness.wsClientRaw(`${url}/room?token=bad`);
    const [, response] = await next<[unknown, import('node:http').IncomingMessage]>(refused, 'unexpected-response');
    expect(response.statusCode).toBe(401);
    expect(response.headers['www-authenticate']).toBe('Bearer');
    expect(response.headers.server).toBe(DEFAULT_IDENTITY);
    const chunks: Buffer[] = [];
    for await (const chunk of response) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('no token');

    const connected = next<[WebSocket, HandshakeInfo]>(server, 'connection');
    const client = harness.wsClientRaw(`${url}/room?token=ok`, { headers: { 'X-Custom': 'c' } });
    const [upgrade] = await next<[import('node:http').IncomingMessage]>(client, 'upgrade');
    expect(upgrade.headers['x-hook']).toBe('yes');
    const [ws, info] = await connected;
    expect(ws.data).toEqual({ user: 'alice' });
    expect(ws.request?.path).toBe('/room');
    expect(info.remoteAddress).toBe('127.0.0.1');
    expect(info.secure).toBe(false);
    expect(info.headers.get('x-custom')).toBe('c');
    expect(seen.map((s) => s.query.get('token'))).toEqual(['bad', 'ok']);
  });

  it('chooses the first of its subprotocols that the client offers, or lets selectSubprotocol choose', async () => {
    const { url } = await harness.listen({ subprotocols: ['v3', 'v2'] });
    const client = await harness.wsClient(`${url}/`);
    expect(client.protocol).toBe('');
    const offered = new (await import('ws')).default(`${url}/`, ['v1', 'v2', 'v3']);
    offered.on('error', () => undefined);
    await next(offered, 'open');
    expect(offered.protocol).toBe('v3');
    offered.terminate();

    const custom = await harness.listen({ selectSubprotocol: (offer) => offer.at(-1) ?? null });
    const other = new (await import('ws')).default(`${custom.url}/`, ['a', 'b']);
    await next(other, 'open');
    expect(other.protocol).toBe('b');
    other.terminate();
  });

  it('processes frames pipelined right behind the request', async () => {
    const { server, port } = await harness.listen();
    echo(server);
    const raw = await rawConnect(port);
    await raw.write(Buffer.concat([Buffer.from(request(), 'latin1'), clientFrame(Opcode.TEXT, Buffer.from('early'))]));
    const reply = await raw.readUntil((bytes) => bytes.includes('early'), WAIT_MS, 'echo of the pipelined frame');
    const body = reply.subarray(reply.indexOf('\r\n\r\n') + 4);
    expect(body.equals(Buffer.from([0x81, 5, ...Buffer.from('early')]))).toBe(true);
  });
});

describe('connections', () => {
  it('closes a message over maxMessageSize with 1009, and accepts one of exactly the limit', async () => {
    const { server, url } = await harness.listen({ maxMessageSize: 1000, compression: false });
    echo(server);
    const client = await harness.wsClient(`${url}/`, { perMessageDeflate: false });
    client.send(Buffer.alloc(1000, 1));
    expect((await nextWsMessage(client))[0].length).toBe(1000);
    const closed = wsClosed(client);
    client.send(Buffer.alloc(1001, 1));
    const [code, reason] = await closed;
    expect(code).toBe(CloseCode.MESSAGE_TOO_BIG);
    expect(reason).toBe('message of 1001 bytes; the limit is 1000 (option maxMessageSize, env WEBSOCKETS_MAX_MESSAGE_SIZE)');
  });

  it('closes with 1009 a compressed message that inflates over the limit', async () => {
    const { server, url } = await harness.listen({ maxMessageSize: 10_000 });
    const errors: Error[] = [];
    server.on('connection', (ws: WebSocket) => ws.on('error', (error: Error) => errors.push(error)));
    const client = await harness.wsClient(`${url}/`, { perMessageDeflate: { threshold: 0 } });
    const closed = wsClosed(client);
    client.send(Buffer.alloc(10_001));
    expect((await closed)[0]).toBe(CloseCode.MESSAGE_TOO_BIG);
    expect(errors.map((e) => (e as Error & { code: string }).code)).toEqual(['WS_ERR_MESSAGE_TOO_BIG']);
  });

  it('closes the connection whose handler throws with 1011, reports the error, and keeps the others', async () => {
    const { server, url } = await harness.listen();
    const reported: Error[] = [];
    server.on('error', (error: Error) => reported.push(error));
    server.on('connection', (ws: WebSocket) => {
      ws.on('message', (data: string | Buffer) => {
        if (data === 'boom') throw new Error('handler bug');
        void ws.send(`ok:${String(data)}`);
      });
    });
    const victim = await harness.wsClient(`${url}/`);
    const bystander = await harness.wsClient(`${url}/`);
    const closed = wsClosed(victim);
    victim.send('boom');
    expect(await closed).toEqual([CloseCode.INTERNAL_ERROR, '']);
    expect(reported.map((e) => e.message)).toEqual(['handler bug']);
    bystander.send('still here');
    expect((await nextWsMessage(bystander))[0].toString()).toBe('ok:still here');
  });

  it('treats a rejected async handler like a throwing one', async () => {
    const { server, url } = await harness.listen();
    const reported: Error[] = [];
    server.on('connection', (ws: WebSocket) => {
      ws.on('error', (error: Error) => reported.push(error));
      ws.on('message', async () => {
        await Promise.resolve();
        throw new Error('async bug');
      });
    });
    const client = await harness.wsClient(`${url}/`);
    const closed = wsClosed(client);
    client.send('x');
    expect((await closed)[0]).toBe(CloseCode.INTERNAL_ERROR);
    expect(reported.map((e) => e.message)).toEqual(['async bug']);
  });

  it('close() sends 1001 to every client, waits for them, and can be called twice', async () => {
    const { server, url } = await harness.listen();
    const serverSide: WebSocket[] = [];
    server.on('connection', (ws: WebSocket) => serverSide.push(ws));
    const clients = await Promise.all([harness.wsClient(`${url}/`), harness.wsClient(`${url}/`)]);
    const closes = clients.map((client) => wsClosed(client));
    const first = server.close();
    const second = server.close();
    expect(second).toBe(first);
    await first;
    expect(await Promise.all(closes)).toEqual([
      [CloseCode.GOING_AWAY, 'server shutting down'],
      [CloseCode.GOING_AWAY, 'server shutting down'],
    ]);
    expect(serverSide.map((ws) => ws.readyState)).toEqual([WebSocket.CLOSED, WebSocket.CLOSED]);
    expect(server.clients.size).toBe(0);
    await expect(server.listen()).rejects.toThrow('the server is closed');
  });

  it('reports the close code and reason the client sent, and exposes the connection properties', async () => {
    const { server, url } = await harness.listen({ subprotocols: ['p1'] });
    const connected = next<[WebSocket]>(server, 'connection');
    const client = new (await import('ws')).default(`${url}/path?q=1`, ['p1'], { perMessageDeflate: true });
    client.on('error', () => undefined);
    const [ws] = await connected;
    expect(ws.readyState).toBe(WebSocket.OPEN);
    expect(ws.protocol).toBe('p1');
    expect(ws.extensions).toMatch(/^permessage-deflate/);
    expect(ws.remoteAddress).toBe('127.0.0.1');
    expect(ws.bufferedAmount).toBe(0);
    await next(client, 'open');
    const closed = next<[number, string]>(ws, 'close');
    client.close(4321, 'bye');
    expect(await closed).toEqual([4321, 'bye']);
    expect(ws.readyState).toBe(WebSocket.CLOSED);
    await expect(ws.send('late')).rejects.toMatchObject({ code: 'WS_ERR_CONNECTION_CLOSED' });
  });
});
