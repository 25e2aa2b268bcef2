/**
 * What the application decides in the handshake (the `handshake` hook, `selectSubprotocol`) cannot produce a
 * response that breaks HTTP or RFC 6455: a subprotocol the client did not offer, a header the handshake writes
 * itself (a second `Server`, `Upgrade`, `Content-Length`, ...) or a refusal whose status is not a refusal (200,
 * 101, ...) is answered 500 to the client, and reported on the server ('error') with a message that says what was
 * wrong and how to fix it. Raw sockets read the exact bytes of each answer.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { DEFAULT_IDENTITY } from '../../lib/config/index.js';
import type { HandshakeDecision, WebSocketServer, WebSocketServerOptions } from '../../lib/node/server.js';
import { endOfHttpHead, rawConnect } from '../support/net.js';
import { Harness, WAIT_MS } from './harness.js';

const harness = new Harness();
afterEach(() => harness.cleanup());

const UPGRADE_HEADERS = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';

/** The server's answer to one upgrade request (with `extra` header lines): status, header lines, and the raw head. */
async function answer(port: number, extra = ''): Promise<{ status: number; headers: string[]; head: string }> {
  const raw = await rawConnect(port);
  await raw.write(`GET / HTTP/1.1\r\nHost: localhost\r\n${UPGRADE_HEADERS}${extra}\r\n`);
  const bytes = await raw.readUntil(endOfHttpHead, WAIT_MS, 'the answer');
  raw.destroy();
  const head = bytes.subarray(0, bytes.indexOf('\r\n\r\n')).toString('latin1');
  const [statusLine, ...headers] = head.split('\r\n');
  return { status: Number(statusLine!.split(' ')[1]), headers, head };
}

/** A server with `options`, whose reported errors are collected. */
async function serverWith(options: Omit<WebSocketServerOptions, 'port'>): Promise<{ server: WebSocketServer; port: number; errors: Error[] }> {
  const { server, port } = await harness.listen(options);
  const errors: Error[] = [];
  server.on('error', (error: Error) => errors.push(error));
  return { server, port, errors };
}

/** The header lines named `name` (case-insensitive). */
function linesOf(headers: readonly string[], name: string): string[] {
  return headers.filter((line) => line.toLowerCase().startsWith(`${name.toLowerCase()}:`));
}

describe('a subprotocol the client did not offer', () => {
  it('from selectSubprotocol: 500 and an error naming what was offered; an offered one still works', async () => {
    const { port, errors } = await serverWith({ selectSubprotocol: (offered) => (offered.includes('v1') ? 'v1' : 'v9') });
    const refused = await answer(port, 'Sec-WebSocket-Protocol: v2, v3\r\n');
    expect(refused.status).toBe(500);
    expect(linesOf(refused.headers, 'Sec-WebSocket-Protocol')).toEqual([]);
    expect(errors.map((error) => error.message)).toEqual([
      'selectSubprotocol chose the subprotocol "v9", which the client did not offer (it offered "v2", "v3"); ' +
        'choose one of the offered subprotocols, or null for none (RFC 6455 §4.2.2)',
    ]);
    const none = await answer(port);
    expect(none.status).toBe(500);
    expect(errors[1]?.message).toContain('which the client did not offer (it offered none)');
    const accepted = await answer(port, 'Sec-WebSocket-Protocol: v1\r\n');
    expect(accepted.status).toBe(101);
    expect(linesOf(accepted.headers, 'Sec-WebSocket-Protocol')).toEqual(['Sec-WebSocket-Protocol: v1']);
    expect(errors.length).toBe(2);
  });

  it('from the handshake hook: 500 and an error', async () => {
    const { port, errors } = await serverWith({ subprotocols: ['chat'], handshake: () => ({ protocol: 'admin' }) });
    const refused = await answer(port, 'Sec-WebSocket-Protocol: chat\r\n');
    expect(refused.status).toBe(500);
    expect(errors.map((error) => error.message)).toEqual([
      'the handshake hook chose the subprotocol "admin", which the client did not offer (it offered "chat"); ' +
        'choose one of the offered subprotocols, or null for none (RFC 6455 §4.2.2)',
    ]);
  });
});

describe('a header the handshake writes itself, from the hook', () => {
  const reserved = ['Server', 'Upgrade', 'Connection', 'Sec-WebSocket-Accept', 'Sec-WebSocket-Protocol', 'Sec-WebSocket-Extensions',
    'Content-Length', 'Transfer-Encoding'];

  it.each(reserved)('%s in an accept: 500 with one Server header, and an error naming the header', async (name) => {
    const { port, errors } = await serverWith({ handshake: () => ({ headers: { [name]: 'x' } }) });
    const refused = await answer(port);
    expect(refused.status).toBe(500);
    expect(linesOf(refused.headers, 'Server')).toEqual([`Server: ${DEFAULT_IDENTITY}`]);
    expect(errors.length).toBe(1);
    expect(errors[0]!.message).toMatch(
      new RegExp(`^the handshake hook returned headers that cannot be sent \\(headers: header ${name} is written by the handshake itself.*\\); fix what the hook returns$`),
    );
  });

  it('Server in an accept: the error says to use serverHeader instead', async () => {
    const { port, errors } = await serverWith({ handshake: () => ({ headers: { server: 'mine' } }) });
    expect((await answer(port)).status).toBe(500);
    expect(errors[0]?.message).toBe(
      'the handshake hook returned headers that cannot be sent (headers: header server is written by the handshake itself; ' +
        'set it with option serverHeader, env WEBSOCKETS_SERVER); fix what the hook returns',
    );
  });

  it.each(['Server', 'Content-Length', 'Connection', 'Content-Type'])('%s in a refusal: 500 with one Server header, and an error', async (name) => {
    const { port, errors } = await serverWith({ handshake: () => ({ reject: { status: 401, body: 'no', headers: { [name]: 'x' } } }) });
    const refused = await answer(port);
    expect(refused.status).toBe(500);
    expect(linesOf(refused.headers, 'Server')).toEqual([`Server: ${DEFAULT_IDENTITY}`]);
    expect(errors[0]?.message).toMatch(new RegExp(`^the handshake hook returned a refusal that cannot be sent \\(headers: header ${name} is written by the handshake itself`));
  });

  it('other headers still go out, in an accept and in a refusal', async () => {
    let accept = true;
    const { port, errors } = await serverWith({
      handshake: (): HandshakeDecision =>
        accept ? { headers: { 'Set-Cookie': 'a=1' } } : { reject: { status: 401, headers: { 'WWW-Authenticate': 'Bearer' } } },
    });
    expect(linesOf((await answer(port)).headers, 'Set-Cookie')).toEqual(['Set-Cookie: a=1']);
    accept = false;
    const refused = await answer(port);
    expect([refused.status, linesOf(refused.headers, 'WWW-Authenticate')]).toEqual([401, ['WWW-Authenticate: Bearer']]);
    expect(errors).toEqual([]);
  });
});

describe('a refusal status that is not a refusal', () => {
  it.each([200, 204, 101, 304, 399, 600, 99, 404.5, Number.NaN])('reject.status %s: 500, and an error that says which statuses work', async (status) => {
    const { port, errors } = await serverWith({ handshake: () => ({ reject: { status, body: 'hello' } }) });
    const refused = await answer(port);
    expect(refused.status).toBe(500);
    expect(refused.head).not.toContain('hello');
    expect(errors.map((error) => error.message)).toEqual([
      `the handshake hook returned a refusal that cannot be sent (a refusal needs a status from 400 to 599, or a redirect ` +
        `(301, 302, 303, 307 or 308) with a Location header; got ${status}); fix what the hook returns`,
    ]);
  });

  it('a redirect needs its Location header; with it, it is sent as is', async () => {
    let location: string | undefined;
    const { port, errors } = await serverWith({
      handshake: (): HandshakeDecision => {
        const headers: Record<string, string> = location === undefined ? {} : { Location: location };
        return { reject: { status: 302, headers } };
      },
    });
    expect((await answer(port)).status).toBe(500);
    expect(errors[0]?.message).toContain('got 302 without a Location header');
    location = 'wss://elsewhere.example/ws';
    const redirect = await answer(port);
    expect([redirect.status, linesOf(redirect.headers, 'Location')]).toEqual([302, [`Location: ${location}`]]);
    expect(errors.length).toBe(1);
  });
});
