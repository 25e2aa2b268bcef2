/**
 * The `refusals` setting over real sockets: a 4xx refusal by the handshake hook or `allowedOrigins` sent as HTTP or
 * in-band (a 101, then at once a close with 4000 + status and the message), `auto` choosing by the `Origin` header;
 * what stays HTTP in every mode (malformed requests, 5xx, connection limits); and what the ws library and this
 * package's client see.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import type { IncomingMessage } from 'node:http';
import { resolveConfig } from '../../lib/config/index.js';
import { ConfigError, HandshakeError, InvalidStatusError } from '../../lib/errors.js';
import type { HandshakeDecision } from '../../lib/node/server.js';
import { AUTH_MARKER_SUBPROTOCOL, bearerSubprotocol } from '../../lib/protocol/bearer-subprotocol.js';
import { rawConnect } from '../support/net.js';
import { Harness, next, WAIT_MS, wsClosed } from './harness.js';

const harness = new Harness();
afterEach(() => harness.cleanup());

const ORIGIN = 'http://app.test';
const KEY_HEADERS = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';

/** What the server answered a raw request with, once it ended the stream. */
async function answer(port: number, extra: string, path = '/'): Promise<string> {
  const raw = await rawConnect(port);
  await raw.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n${KEY_HEADERS}${extra}\r\n`);
  return (await raw.readUntilClose(WAIT_MS)).toString('latin1');
}

/** The in-band answer: a 101 and exactly one close frame, then the end of the stream. */
function inBand(code: number, reason: string): RegExp {
  const frame = Buffer.concat([Buffer.from([0x88, 2 + Buffer.byteLength(reason), code >> 8, code & 0xff]), Buffer.from(reason)]).toString('latin1');
  return new RegExp(`^HTTP/1\\.1 101 Switching Protocols\\r\\n[^]*\\r\\n\\r\\n${frame.replace(/[^\w ]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}$`);
}

function refuseWith(status: number, body: string): () => HandshakeDecision {
  return () => ({ reject: { status, body } });
}

describe('refusals setting', () => {
  it("resolves from the option, then WEBSOCKETS_REFUSALS, then 'auto', and refuses other words", () => {
    expect(resolveConfig({}, {}).refusals).toBe('auto');
    expect(resolveConfig({}, { WEBSOCKETS_REFUSALS: 'in-band' }).refusals).toBe('in-band');
    expect(resolveConfig({ refusals: 'http' }, { WEBSOCKETS_REFUSALS: 'in-band' }).refusals).toBe('http');
    expect(() => resolveConfig({}, { WEBSOCKETS_REFUSALS: 'inband' })).toThrow(
      new ConfigError('WEBSOCKETS_REFUSALS must be "http", "in-band" or "auto"; got "inband" (option refusals, env WEBSOCKETS_REFUSALS)', 'refusals', 'inband'),
    );
    expect(() => resolveConfig({ refusals: 'HTTP' as 'http' }, {})).toThrow('option refusals must be "http", "in-band" or "auto"; got "HTTP"');
  });
});

describe.each([
  ['http', false, false],
  ['http', true, false],
  ['in-band', false, true],
  ['in-band', true, true],
  ['auto', false, false],
  ['auto', true, true],
] as const)('refusals: %s, Origin header: %s', (refusals, withOrigin, expectInBand) => {
  const origin = withOrigin ? `Origin: ${ORIGIN}\r\n` : '';

  it(`sends a hook's 401 ${expectInBand ? 'in-band as 4401' : 'as HTTP 401'}`, async () => {
    const { server, port } = await harness.listen({ refusals, handshake: refuseWith(401, 'missing or wrong token') });
    const refused = next<[HandshakeError]>(server, 'handshakeError');
    const text = await answer(port, origin);
    if (expectInBand) expect(text).toMatch(inBand(4401, 'missing or wrong token'));
    else expect(text).toMatch(/^HTTP\/1\.1 401 Unauthorized\r\n[^]*\r\n\r\nmissing or wrong token$/);
    // Either way the server reports the refusal with its status.
    expect((await refused)[0].httpStatus).toBe(401);
    expect(server.clients.size).toBe(0);
  });
});

describe('in-band refusals', () => {
  it('cover a HandshakeError thrown by the hook and a refusal by allowedOrigins', async () => {
    const thrower = await harness.listen({
      refusals: 'in-band',
      handshake: () => {
        throw new HandshakeError('no such room', 404);
      },
    });
    expect(await answer(thrower.port, '')).toMatch(inBand(4404, 'no such room'));
    const origins = await harness.listen({ allowedOrigins: ['http://good.test'] });
    expect(await answer(origins.port, 'Origin: http://evil.test\r\n')).toMatch(inBand(4403, 'origin not allowed: http://evil.test'));
    // Under 'auto', a request without Origin refused by allowMissingOrigin: false stays HTTP.
    const strict = await harness.listen({ allowedOrigins: ['http://good.test'], allowMissingOrigin: false });
    expect(await answer(strict.port, '')).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
  });

  it('name an offered subprotocol in the 101 (the credentials marker first), since a browser fails a 101 without one', async () => {
    const { port } = await harness.listen({ refusals: 'in-band', subprotocols: ['chat'], handshake: refuseWith(401, 'no') });
    const withMarker = await answer(port, `Sec-WebSocket-Protocol: chat, ${AUTH_MARKER_SUBPROTOCOL}, ${bearerSubprotocol('t')}\r\n`);
    expect(withMarker).toContain(`\r\nSec-WebSocket-Protocol: ${AUTH_MARKER_SUBPROTOCOL}\r\n`);
    expect(withMarker).not.toContain('nestjs-websockets.bearer');
    expect(await answer(port, 'Sec-WebSocket-Protocol: v2, v1\r\n')).toContain('\r\nSec-WebSocket-Protocol: v2\r\n');
    expect(await answer(port, '')).not.toContain('Sec-WebSocket-Protocol');
  });

  it('use the reason phrase for a refusal without a body, and cut a long one to 123 bytes', async () => {
    const phrase = await harness.listen({ refusals: 'in-band', handshake: () => ({ reject: { status: 403 } }) });
    expect(await answer(phrase.port, '')).toMatch(inBand(4403, 'Forbidden'));
    const long = await harness.listen({ refusals: 'in-band', handshake: refuseWith(401, `${'é'.repeat(100)}`) });
    // 61 two-byte characters make 122 bytes; the 62nd would pass 123.
    expect(await answer(long.port, '')).toMatch(inBand(4401, 'é'.repeat(61)));
  });

  it('never apply to a malformed request, a 5xx, a connection limit or an unknown path', async () => {
    const failing = await harness.listen({
      refusals: 'in-band',
      handshake: () => {
        throw new Error('database down');
      },
    });
    failing.server.on('error', () => undefined);
    expect(await answer(failing.port, '')).toMatch(/^HTTP\/1\.1 500 Internal Server Error\r\n/);
    const unavailable = await harness.listen({ refusals: 'in-band', handshake: refuseWith(503, 'later') });
    expect(await answer(unavailable.port, '')).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/);

    const malformed = await harness.listen({ refusals: 'in-band', path: '/ws', handshake: refuseWith(401, 'no') });
    expect(await answer(malformed.port, `Origin: ${ORIGIN}\r\n`, '/elsewhere')).toMatch(/^HTTP\/1\.1 404 Not Found\r\n/);
    const raw = await rawConnect(malformed.port);
    await raw.write(`GET /ws HTTP/1.1\r\nHost: localhost\r\nOrigin: ${ORIGIN}\r\n${KEY_HEADERS.replace('dGhlIHNhbXBsZSBub25jZQ==', 'short')}\r\n`);
    expect((await raw.readUntilClose(WAIT_MS)).toString('latin1')).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n[^]*Sec-WebSocket-Key/);

    const limited = await harness.listen({ refusals: 'in-band', maxConnections: 1 });
    const holder = await harness.wsClient(`ws://127.0.0.1:${limited.port}/`);
    expect(await answer(limited.port, `Origin: ${ORIGIN}\r\n`)).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\nConnection: close[^]*Retry-After: \d+\r\n/);
    holder.terminate();
    // A bearer subprotocol that holds no token is a malformed request: 400 over HTTP.
    const bad = await harness.listen({ refusals: 'in-band' });
    expect(await answer(bad.port, `Sec-WebSocket-Protocol: ${bearerSubprotocol('two words')}\r\n`)).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
  });

  it('reach the ws library and connect() as a close with 4401 and the message; without Origin they get HTTP 401', async () => {
    const { url } = await harness.listen({ handshake: refuseWith(401, 'missing or wrong token') });
    const browserLike = harness.wsClientRaw(`${url}/`, { origin: ORIGIN });
    await next(browserLike, 'open');
    expect(await wsClosed(browserLike)).toEqual([4401, 'missing or wrong token']);

    const ours = await harness.connect(`${url}/`, { origin: ORIGIN });
    const [code, reason] = await next<[number, string]>(ours, 'close');
    expect([code, reason]).toEqual([4401, 'missing or wrong token']);

    const plain = harness.wsClientRaw(`${url}/`);
    const [, response] = await next<[unknown, IncomingMessage]>(plain, 'unexpected-response');
    expect(response.statusCode).toBe(401);
    const error = await harness.connect(`${url}/`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidStatusError);
    expect((error as InvalidStatusError).status).toBe(401);
  });
});
