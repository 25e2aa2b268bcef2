/**
 * The opening handshake as an HTTP/2 extended CONNECT (RFC 8441), sans-I/O: the request read from a header block
 * under the handshake limits and checked as RFC 8441 says, the acceptance and refusals as header blocks, the
 * client's request and its check of the answer.
 */
import { describe, expect, it } from '@jest/globals';
import { resolveConfig, type Limits } from '../../lib/config/index.js';
import { ConfigError, HandshakeError, HandshakeLimitError, InvalidHeaderError, InvalidStatusError } from '../../lib/errors.js';
import { Opcode } from '../../lib/protocol/frame.js';
import {
  acceptStreamHeaders,
  extendedConnectHeaders,
  refusalCloseFrame,
  requestFromHttp2,
  streamRefusal,
  streamRejectionFor,
  validateStreamResponse,
  validateUpgradeRequest,
} from '../../lib/protocol/handshake.js';

const LIMITS: Limits = resolveConfig({}, {}).limits;

/** A browser's extended CONNECT, as Node's `rawHeaders` lists it. */
function block(extra: string[] = [], pseudo: Record<string, string> = {}): string[] {
  const pseudoHeaders = { ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'https', ':path': '/chat?room=1', ':authority': 'example.com:8443', ...pseudo };
  return [
    ...Object.entries(pseudoHeaders).flatMap(([name, value]) => (value === '' ? [] : [name, value])),
    'sec-websocket-version',
    '13',
    'origin',
    'https://example.com',
    'sec-websocket-protocol',
    'chat, superchat',
    'sec-websocket-extensions',
    'permessage-deflate; client_max_window_bits',
    ...extra,
  ];
}

describe('requestFromHttp2 and validateUpgradeRequest over HTTP/2', () => {
  it('reads an extended CONNECT as a request with :authority as Host, and validates it without a key', () => {
    const request = requestFromHttp2(block(), LIMITS);
    expect([request.method, request.target, request.path, request.httpVersion]).toEqual(['CONNECT', '/chat?room=1', '/chat', '2']);
    expect(request.headers.get('Host')).toBe('example.com:8443');
    expect(request.query.get('room')).toBe('1');
    expect(validateUpgradeRequest(request)).toEqual({
      key: '',
      protocols: ['chat', 'superchat'],
      extensions: 'permessage-deflate; client_max_window_bits',
    });
  });

  it('takes a host header when there is no :authority, refuses one that disagrees with it or is repeated', () => {
    expect(requestFromHttp2(block(['host', 'example.com:8443']), LIMITS).headers.getAll('host')).toEqual(['example.com:8443']);
    expect(requestFromHttp2(block(['host', 'a.example'], { ':authority': '' }), LIMITS).headers.get('Host')).toBe('a.example');
    expect(() => requestFromHttp2(block(['host', 'other.example']), LIMITS)).toThrow(/the :authority "example.com:8443" is not the Host header "other.example"/);
    expect(() => requestFromHttp2(block(['host', 'a', 'host', 'b']), LIMITS)).toThrow(InvalidHeaderError);
    const noHost = requestFromHttp2(block([], { ':authority': '' }), LIMITS);
    expect(() => validateUpgradeRequest(noHost)).toThrow(InvalidHeaderError);
    const badHost = requestFromHttp2(block([], { ':authority': 'bad host' }), LIMITS);
    expect(() => validateUpgradeRequest(badHost)).toThrow(InvalidHeaderError);
  });

  it('refuses what is not an extended CONNECT for websocket, with the statuses of HTTP/1.1', () => {
    const status = (fn: () => unknown): number | undefined => {
      try {
        fn();
      } catch (error) {
        return (error as HandshakeError).httpStatus;
      }
      return undefined;
    };
    const get = requestFromHttp2(block([], { ':method': 'GET', ':protocol': '' }), LIMITS);
    expect(() => validateUpgradeRequest(get)).toThrow(expect.objectContaining({ httpStatus: 405, headers: { Allow: 'CONNECT' } }));
    expect(status(() => requestFromHttp2(block([], { ':protocol': '' }), LIMITS))).toBe(400);
    expect(() => requestFromHttp2(block([], { ':protocol': '' }), LIMITS)).toThrow(/a CONNECT without :protocol opens a tunnel/);
    expect(() => requestFromHttp2(block([], { ':protocol': 'webtransport' }), LIMITS)).toThrow('unsupported :protocol "webtransport" (websocket is required)');
    expect(() => requestFromHttp2(block([], { ':path': '' }), LIMITS)).toThrow('the request has no :path');
    expect(() => requestFromHttp2([...block(), ':path', '/again'], LIMITS)).toThrow('invalid pseudo-header ":path" in the request');
    expect(() => requestFromHttp2([...block(), ':status', '200'], LIMITS)).toThrow(HandshakeError);
    const star = requestFromHttp2(block([], { ':path': '*' }), LIMITS);
    expect(status(() => validateUpgradeRequest(star))).toBe(400);
    const v8 = requestFromHttp2(block().map((value) => (value === '13' ? '8' : value)), LIMITS);
    expect(() => validateUpgradeRequest(v8)).toThrow(expect.objectContaining({ httpStatus: 426, headers: { 'Sec-WebSocket-Version': '13' } }));
    expect(() => requestFromHttp2(block(['bad name', 'x']), LIMITS)).toThrow('invalid header name "bad name"');
    expect(() => requestFromHttp2(block(['x-bad', 'a\u0000b']), LIMITS)).toThrow(/invalid value of header x-bad/);
  });

  it('applies the handshake limits to the header block: 414 for the path, 431 for a field or too many', () => {
    const limits = { ...LIMITS, maxLineLength: 80, maxNumHeaders: 6 };
    const long = (fn: () => unknown): HandshakeLimitError => {
      try {
        fn();
      } catch (error) {
        return error as HandshakeLimitError;
      }
      throw new Error('no error');
    };
    expect(long(() => requestFromHttp2(block([], { ':path': `/${'a'.repeat(80)}` }), limits))).toMatchObject({ httpStatus: 414, limitKind: 'request-line' });
    expect(long(() => requestFromHttp2(block(['x-long', 'b'.repeat(80)]), limits))).toMatchObject({ httpStatus: 431, limitKind: 'header-line' });
    expect(long(() => requestFromHttp2(block(['a', '1', 'b', '2', 'c', '3']), limits))).toMatchObject({ httpStatus: 431, limitKind: 'num-headers' });
  });
});

describe('the answers on a stream', () => {
  it('accepts with :status 200, the subprotocol, extensions, server and the hook headers, checked as for a 101', () => {
    expect(
      acceptStreamHeaders({
        protocol: 'chat',
        extensions: 'permessage-deflate',
        serverHeader: 'test/1',
        headers: [
          ['Set-Cookie', 'a=1'],
          ['Set-Cookie', 'b=2'],
          ['Set-Cookie', 'c=3'],
          ['X-Id', ' 7 '],
        ],
      }),
    ).toEqual({
      ':status': 200,
      'sec-websocket-protocol': 'chat',
      'sec-websocket-extensions': 'permessage-deflate',
      server: 'test/1',
      'set-cookie': ['a=1', 'b=2', 'c=3'],
      'x-id': '7',
    });
    expect(acceptStreamHeaders({ protocol: null, serverHeader: null, headers: { 'X-A': 'b' } })).toEqual({ ':status': 200, 'x-a': 'b' });
    expect(() => acceptStreamHeaders({ protocol: 'a b', serverHeader: null })).toThrow(ConfigError);
    expect(() => acceptStreamHeaders({ serverHeader: null, headers: { Upgrade: 'h2c' } })).toThrow(/header Upgrade is written by the handshake itself/);
    expect(() => acceptStreamHeaders({ serverHeader: null, headers: { Server: 'x' } })).toThrow(/header Server is written by the handshake itself/);
    expect(() => acceptStreamHeaders({ serverHeader: null, headers: { 'X-A': 'b\r\nc' } })).toThrow(ConfigError);
  });

  it('refuses with the status, a plain-text body and the error headers, leaving out what HTTP/2 forbids', () => {
    const refusal = streamRejectionFor(new InvalidHeaderError('Upgrade', undefined, 426, { Upgrade: 'websocket', 'Sec-WebSocket-Version': '13' }), 'srv');
    expect(refusal.headers).toEqual({
      ':status': 426,
      'content-type': 'text/plain; charset=utf-8',
      'content-length': refusal.body.length,
      server: 'srv',
      'sec-websocket-version': '13',
    });
    expect(refusal.body.toString()).toMatch(/^Failed to open a WebSocket connection: /);
    expect(streamRefusal(302, '', { serverHeader: null, headers: { Location: '/elsewhere' } }).headers).toEqual({
      ':status': 302,
      'content-type': 'text/plain; charset=utf-8',
      'content-length': 0,
      location: '/elsewhere',
    });
    expect(() => streamRefusal(200, '', { serverHeader: null })).toThrow(ConfigError);
    expect(() => streamRefusal(302, '', { serverHeader: null })).toThrow(/without a Location header/);
  });

  it('makes the close frame of an in-band refusal on its own', () => {
    const frame = refusalCloseFrame(401, '');
    expect(frame[0]).toBe(0x80 | Opcode.CLOSE);
    expect(frame.readUInt16BE(2)).toBe(4401);
    expect(frame.subarray(4).toString()).toBe('Unauthorized');
    expect(() => refusalCloseFrame(500, 'x')).toThrow(RangeError);
  });
});

describe('the client side', () => {
  it('builds an extended CONNECT with the offer, origin, user agent and extra headers', () => {
    expect(
      extendedConnectHeaders({
        authority: 'example.com:8443',
        path: '/chat?x=1',
        protocols: ['chat', 'superchat'],
        extensions: 'permessage-deflate',
        origin: 'https://example.com',
        userAgent: 'ua/1',
        headers: { Authorization: 'Bearer t' },
      }),
    ).toEqual({
      ':method': 'CONNECT',
      ':protocol': 'websocket',
      ':scheme': 'https',
      ':path': '/chat?x=1',
      ':authority': 'example.com:8443',
      'sec-websocket-version': '13',
      'sec-websocket-protocol': 'chat, superchat',
      'sec-websocket-extensions': 'permessage-deflate',
      origin: 'https://example.com',
      'user-agent': 'ua/1',
      authorization: 'Bearer t',
    });
    expect(extendedConnectHeaders({ authority: 'a', path: '/', scheme: 'http', userAgent: null })).toEqual({
      ':method': 'CONNECT',
      ':protocol': 'websocket',
      ':scheme': 'http',
      ':path': '/',
      ':authority': 'a',
      'sec-websocket-version': '13',
    });
    expect(() => extendedConnectHeaders({ authority: 'a', path: 'nope', userAgent: null })).toThrow(ConfigError);
    expect(() => extendedConnectHeaders({ authority: 'a', path: '/', userAgent: null, headers: { Connection: 'close' } })).toThrow(ConfigError);
    expect(() => extendedConnectHeaders({ authority: 'a', path: '/', userAgent: null, headers: { Host: 'b' } })).toThrow(ConfigError);
  });

  it('accepts a 2xx with an offered subprotocol, refuses any other status or an unoffered subprotocol', () => {
    expect(validateStreamResponse(200, [['sec-websocket-protocol', 'chat'], ['sec-websocket-extensions', 'permessage-deflate'], ['server', 'x']], ['chat'])).toEqual({
      protocol: 'chat',
      extensions: 'permessage-deflate',
    });
    expect(validateStreamResponse(200, [], [])).toEqual({ protocol: null, extensions: '' });
    expect(() => validateStreamResponse(200, [['sec-websocket-protocol', 'other']], ['chat'])).toThrow(InvalidHeaderError);
    const refused = (() => {
      try {
        validateStreamResponse(403, [['x', 'y']], [], Buffer.from('no'));
      } catch (error) {
        return error as InvalidStatusError;
      }
      throw new Error('no error');
    })();
    expect(refused).toBeInstanceOf(InvalidStatusError);
    expect([refused.status, refused.responseHeaders, refused.body.toString()]).toEqual([403, [['x', 'y']], 'no']);
    expect(() => validateStreamResponse(101, [], [])).toThrow(InvalidStatusError);
  });
});
