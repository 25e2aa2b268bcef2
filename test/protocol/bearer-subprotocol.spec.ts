/**
 * A bearer token in `Sec-WebSocket-Protocol`: the encoding both sides share (base64url of the token, no padding, after
 * a fixed prefix), and what the server does with it (`withSubprotocolCredentials`): out of the list, into
 * `Authorization: Bearer`, unless the client sent an Authorization header itself; malformed ones are 400s whose
 * message never holds the value.
 */
import { describe, expect, it } from '@jest/globals';
import { resolveConfig } from '../../lib/config/index.js';
import { HandshakeError } from '../../lib/errors.js';
import {
  AUTH_MARKER_SUBPROTOCOL,
  BEARER_SUBPROTOCOL_PREFIX,
  bearerSubprotocol,
  bearerTokenOf,
} from '../../lib/protocol/bearer-subprotocol.js';
import { isToken } from '../../lib/protocol/handshake-headers.js';
import { RequestParser, type HandshakeRequest } from '../../lib/protocol/handshake.js';
import { withAuthMarker, withSubprotocolCredentials } from '../../lib/protocol/subprotocols.js';

const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl';

function parse(extra: string): HandshakeRequest {
  const head =
    'GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;
  const request = new RequestParser(resolveConfig({}, {}).limits).push(Buffer.from(head, 'latin1'));
  if (request === null) throw new Error('incomplete request');
  return request;
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('did not throw');
}

describe('bearer subprotocol encoding', () => {
  it('is the prefix and base64url without padding, and decodes back', () => {
    // "ab?" is YWI/ in base64: the / becomes _, and "a" alone needs padding that is dropped.
    expect(bearerSubprotocol('ab?')).toBe(`${BEARER_SUBPROTOCOL_PREFIX}YWI_`);
    expect(bearerSubprotocol('a')).toBe(`${BEARER_SUBPROTOCOL_PREFIX}YQ`);
    expect(bearerSubprotocol('>>>')).toBe(`${BEARER_SUBPROTOCOL_PREFIX}Pj4-`);
    for (const token of [JWT, 'a', 'ab', 'abc', '~!@#$%^&*()_+{}|:"<>?', 'x'.repeat(4000)]) {
      const protocol = bearerSubprotocol(token);
      expect(isToken(protocol)).toBe(true);
      expect(bearerTokenOf(protocol)).toBe(token);
    }
  });

  it('is not the marker or another protocol', () => {
    expect(bearerTokenOf(AUTH_MARKER_SUBPROTOCOL)).toBeNull();
    expect(bearerTokenOf('chat')).toBeNull();
  });

  it.each([
    ['an empty token', BEARER_SUBPROTOCOL_PREFIX],
    ['a character outside base64url', `${BEARER_SUBPROTOCOL_PREFIX}YW+I`],
    ['a length of 4n + 1', `${BEARER_SUBPROTOCOL_PREFIX}YWJjZ`],
    ['a token with a space', bearerSubprotocol('a b')],
    ['a token outside ASCII', bearerSubprotocol('tökén')],
    ['a control character', bearerSubprotocol('a\nb')],
  ])('refuses %s without naming the value', (_what, protocol) => {
    const error = thrown(() => bearerTokenOf(protocol));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe('the bearer subprotocol does not hold a token of visible ASCII characters in base64url');
  });
});

describe('withSubprotocolCredentials', () => {
  it('returns a request without a token as it is', () => {
    const request = parse('Sec-WebSocket-Protocol: chat, superchat\r\n');
    expect(withSubprotocolCredentials(request)).toBe(request);
    const marker = parse(`Sec-WebSocket-Protocol: ${AUTH_MARKER_SUBPROTOCOL}, chat\r\n`);
    expect(withSubprotocolCredentials(marker)).toBe(marker);
    const none = parse('');
    expect(withSubprotocolCredentials(none)).toBe(none);
  });

  it('takes the token out of the list, keeps the marker, and adds Authorization: Bearer', () => {
    const request = withSubprotocolCredentials(parse(`Sec-WebSocket-Protocol: chat, ${AUTH_MARKER_SUBPROTOCOL}, ${bearerSubprotocol(JWT)}\r\n`));
    expect(request.headers.getAll('Sec-WebSocket-Protocol')).toEqual([`chat, ${AUTH_MARKER_SUBPROTOCOL}`]);
    expect(request.headers.get('authorization')).toBe(`Bearer ${JWT}`);
    expect(request.rawHeaders.at(-1)).toEqual(['Authorization', `Bearer ${JWT}`]);
    expect(JSON.stringify(request.rawHeaders)).not.toContain(bearerSubprotocol(JWT));
    // The rest of the request is untouched.
    expect([request.method, request.target, request.headers.get('sec-websocket-key')]).toEqual(['GET', '/ws', 'dGhlIHNhbXBsZSBub25jZQ==']);
  });

  it('drops a field line left empty, and reads the token from any line', () => {
    const request = withSubprotocolCredentials(
      parse(`Sec-WebSocket-Protocol: ${AUTH_MARKER_SUBPROTOCOL}\r\nsec-websocket-protocol: v2\r\nSec-WebSocket-Protocol: ${bearerSubprotocol('t0k3n')}\r\n`),
    );
    expect(request.rawHeaders.filter(([name]) => name.toLowerCase() === 'sec-websocket-protocol')).toEqual([
      ['Sec-WebSocket-Protocol', AUTH_MARKER_SUBPROTOCOL],
      ['sec-websocket-protocol', 'v2'],
    ]);
    expect(request.headers.get('Authorization')).toBe('Bearer t0k3n');
  });

  it('keeps an Authorization header the client sent itself, and drops the token', () => {
    const request = withSubprotocolCredentials(parse(`Authorization: Basic YTpi\r\nSec-WebSocket-Protocol: ${bearerSubprotocol(JWT)}\r\n`));
    expect(request.headers.getAll('authorization')).toEqual(['Basic YTpi']);
    expect(request.headers.has('sec-websocket-protocol')).toBe(false);
  });

  it("answers with the marker when the server chose none and the client offered it (browsers need an answer)", () => {
    expect(withAuthMarker(null, ['chat', AUTH_MARKER_SUBPROTOCOL])).toBe(AUTH_MARKER_SUBPROTOCOL);
    expect(withAuthMarker('chat', ['chat', AUTH_MARKER_SUBPROTOCOL])).toBe('chat');
    expect(withAuthMarker(null, ['chat'])).toBeNull();
  });

  it.each([
    ['two tokens', `${bearerSubprotocol('a')}, ${bearerSubprotocol('b')}`, 'invalid Sec-WebSocket-Protocol header: more than one bearer token'],
    [
      'a token that is not base64url',
      `${BEARER_SUBPROTOCOL_PREFIX}secret*value`,
      'invalid Sec-WebSocket-Protocol header: the bearer subprotocol does not hold a token of visible ASCII characters in base64url',
    ],
  ])('refuses %s with 400, without the value in the message', (_what, value, message) => {
    const error = thrown(() => withSubprotocolCredentials(parse(`Sec-WebSocket-Protocol: ${value}\r\n`)));
    expect(error).toBeInstanceOf(HandshakeError);
    expect((error as HandshakeError).httpStatus).toBe(400);
    expect((error as Error).message).toBe(message);
    expect((error as Error).message).not.toContain('secret');
  });
});
