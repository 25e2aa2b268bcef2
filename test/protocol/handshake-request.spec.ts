import { describe, it, expect } from '@jest/globals';
import { resolveConfig, type Limits } from '../../lib/config/index.js';
import {
  ConfigError,
  HandshakeError,
  HandshakeLimitError,
  InvalidHeaderError,
  InvalidStateError,
  OriginNotAllowedError,
} from '../../lib/errors.js';
import {
  RequestParser,
  buildRequest,
  checkOrigin,
  formatHost,
  requestFromParts,
  requestTargetPath,
  validateUpgradeRequest,
  type HandshakeRequest,
} from '../../lib/protocol/handshake.js';

const LIMITS: Limits = resolveConfig({}, {}).limits;
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const UPGRADE_HEADERS = [
  'Host: server.example.com',
  'Upgrade: websocket',
  'Connection: Upgrade',
  `Sec-WebSocket-Key: ${KEY}`,
  'Sec-WebSocket-Version: 13',
];

function bytes(requestLine: string, headers: readonly string[] = UPGRADE_HEADERS): Buffer {
  return Buffer.from(`${requestLine}\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`, 'latin1');
}

function parse(data: Buffer, limits: Limits = LIMITS): HandshakeRequest {
  const parser = new RequestParser(limits);
  const request = parser.push(data);
  if (request === null) throw new Error('incomplete');
  return request;
}

function parseBytewise(data: Buffer, limits: Limits = LIMITS): { request: HandshakeRequest | null; parser: RequestParser } {
  const parser = new RequestParser(limits);
  let request: HandshakeRequest | null = null;
  for (let i = 0; i < data.length && request === null; i++) request = parser.push(data.subarray(i, i + 1));
  return { request, parser };
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

/** A request line of exactly `size` bytes, CRLF included. */
function requestLineOf(size: number): string {
  const fixed = 'GET / HTTP/1.1\r\n'.length;
  return `GET /${'a'.repeat(size - fixed)} HTTP/1.1`;
}

/** A header line of exactly `size` bytes, CRLF included. */
function headerLineOf(size: number): string {
  return `X-Fill: ${'v'.repeat(size - 'X-Fill: \r\n'.length)}`;
}

describe('RequestParser', () => {
  it('parses the RFC 6455 §1.3 sample request, headers case-insensitive', () => {
    const request = parse(
      bytes('GET /chat?room=a%20b&x=1 HTTP/1.1', [...UPGRADE_HEADERS, 'Origin: http://example.com', 'X-Dup: 1', 'x-dup:  2 ']),
    );
    expect(request.method).toBe('GET');
    expect(request.target).toBe('/chat?room=a%20b&x=1');
    expect(request.path).toBe('/chat');
    expect(request.query.get('room')).toBe('a b');
    expect(request.httpVersion).toBe('1.1');
    expect(request.headers.get('HOST')).toBe('server.example.com');
    expect(request.headers.get('x-dup')).toBe('1, 2');
    expect(request.headers.getAll('X-DUP')).toEqual(['1', '2']);
    expect(request.headers.getAll('missing')).toEqual([]);
    expect(request.headers.has('origin')).toBe(true);
    expect(request.headers.size).toBe(8);
    expect([...request.headers][0]).toEqual(['Host', 'server.example.com']);
    expect(request.rawHeaders[6]).toEqual(['X-Dup', '1']);
    expect(validateUpgradeRequest(request)).toEqual({ key: KEY, protocols: [], extensions: '' });
  });

  it('keeps absolute-form targets and raw paths', () => {
    expect(parse(bytes('GET ws://h.example:8080 HTTP/1.1')).path).toBe('/');
    const bare = parse(bytes('GET ws://h.example:8080?q=2 HTTP/1.1'));
    expect([bare.path, bare.query.get('q')]).toEqual(['/', '2']);
    const request = parse(bytes('GET http://h.example/a%2Fb?q=1 HTTP/1.1', ['Host: h.example', ...UPGRADE_HEADERS.slice(1)]));
    expect(request.path).toBe('/a%2Fb');
    expect(request.query.get('q')).toBe('1');
    expect(validateUpgradeRequest(request).key).toBe(KEY);
  });

  it('routes the absolute form on its path (requestTargetPath), in either form', () => {
    expect(['/ws', '/ws?x=1', 'http://h/ws?x=1', 'WSS://h:1/ws', '/'].map(requestTargetPath)).toEqual(['/ws', '/ws', '/ws', '/ws', '/']);
    expect(['http://h', 'http://h?x=1', 'http://h/'].map(requestTargetPath)).toEqual(['/', '/', '/']);
  });

  it('accepts the absolute form only when its authority is the Host (RFC 9112 §3.2.2)', () => {
    const withHost = (target: string, host: string): HandshakeRequest =>
      parse(bytes(`GET ${target} HTTP/1.1`, [`Host: ${host}`, ...UPGRADE_HEADERS.slice(1)]));
    const accepted: Array<[string, string]> = [
      ['http://h.example/ws', 'h.example'],
      ['HTTP://H.Example:80/ws', 'h.example'],
      ['ws://h.example/ws', 'H.EXAMPLE:80'],
      ['https://h.example:443/ws', 'h.example'],
      ['wss://h.example/ws', 'h.example:443'],
      ['http://h.example:/ws', 'h.example'],
      ['http://h.example:8080/ws', 'h.example:8080'],
      ['http://[::1]:8080/ws', '[::1]:8080'],
      ['http://[::1]/ws', '[::1]:80'],
    ];
    for (const [target, host] of accepted) expect([target, validateUpgradeRequest(withHost(target, host)).key]).toEqual([target, KEY]);
    const refused: Array<[string, string, string]> = [
      ['http://evil.example/ws', 'h.example', 'the authority of the request target "evil.example" is not the Host header "h.example" (RFC 9112 §3.2.2)'],
      ['http://h.example:8080/ws', 'h.example', 'is not the Host header'],
      ['https://h.example/ws', 'h.example:80', 'is not the Host header'],
      ['http://[::1]/ws', '[::2]', 'is not the Host header'],
      ['http://user@h.example/ws', 'h.example', 'the request target has a userinfo part (user@host), which is not allowed (RFC 9110 §4.2.4)'],
      ['ftp://h.example/ws', 'h.example', 'unsupported scheme "ftp" in the request target (http, https, ws or wss)'],
    ];
    for (const [target, host, message] of refused) {
      const error = thrown(() => validateUpgradeRequest(withHost(target, host))) as HandshakeError;
      expect(error).toBeInstanceOf(HandshakeError);
      expect([target, error.httpStatus, error.message]).toEqual([target, 400, expect.stringContaining(message)]);
    }
  });

  it('gives the same request fed one byte at a time, and keeps pipelined bytes in rest', () => {
    const frame = Buffer.from('81853 7fa213d7f9f4d5158'.replace(/ /g, ''), 'hex');
    const data = Buffer.concat([bytes('GET /chat HTTP/1.1'), frame]);
    const whole = new RequestParser(LIMITS);
    const request = whole.push(data);
    expect(whole.rest).toEqual(frame);
    const { request: bytewise, parser } = parseBytewise(data);
    expect(bytewise).toEqual(request);
    // The head ended before the frame: feed the rest of the frame's bytes to the connection, not the parser.
    expect(parser.rest).toEqual(Buffer.alloc(0));
    expect(() => whole.push(Buffer.from('x'))).toThrow(InvalidStateError);
    expect(new RequestParser(LIMITS).rest).toEqual(Buffer.alloc(0));
  });

  it('does not keep a reference to a chunk the caller reuses', () => {
    const data = bytes('GET /chat HTTP/1.1');
    const parser = new RequestParser(LIMITS);
    const chunk = Buffer.from(data.subarray(0, 20));
    expect(parser.push(chunk)).toBeNull();
    expect(parser.push(Buffer.alloc(0))).toBeNull();
    chunk.fill(0);
    expect(parser.push(data.subarray(20))?.path).toBe('/chat');
  });

  it('is linear when fed one byte at a time', () => {
    // 127 header lines of 8 KiB, each fed byte by byte: about 1 MiB of single-byte pushes.
    const headers = [...UPGRADE_HEADERS, ...Array.from({ length: 123 }, () => headerLineOf(8192))];
    const data = bytes('GET / HTTP/1.1', headers);
    const started = process.hrtime.bigint();
    const { request } = parseBytewise(data);
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    expect(request?.rawHeaders).toHaveLength(128);
    // A quadratic reader re-scanning each line would need ~1e9 byte comparisons here.
    expect(elapsedMs).toBeLessThan(5000);
  });

  describe('request line limit (414)', () => {
    it('accepts 8192 bytes including CRLF and refuses 8193 with the exact message', () => {
      expect(parse(bytes(requestLineOf(8192))).target).toHaveLength(8192 - 'GET  HTTP/1.1\r\n'.length);
      const error = thrown(() => parse(bytes(requestLineOf(8193))));
      expect(error).toBeInstanceOf(HandshakeLimitError);
      expect((error as HandshakeLimitError).httpStatus).toBe(414);
      expect((error as HandshakeLimitError).message).toBe(
        'request line is 8193 bytes or more; the limit is 8192 (option maxLineLength, env WEBSOCKETS_MAX_LINE_LENGTH)',
      );
    });

    it('fails as soon as the limit is passed without an LF, byte by byte or in one chunk', () => {
      const parser = new RequestParser(LIMITS);
      const line = Buffer.from(`GET /${'a'.repeat(8200)}`);
      for (let i = 0; i < 8192; i++) expect(parser.push(line.subarray(i, i + 1))).toBeNull();
      expect(() => parser.push(line.subarray(8192, 8193))).toThrow(
        'request line is 8193 bytes or more; the limit is 8192',
      );
      // Once failed, the parser stays failed.
      expect(() => parser.push(Buffer.from('\r\n'))).toThrow(HandshakeLimitError);
      expect(() => new RequestParser(LIMITS).push(line)).toThrow('request line is 8205 bytes or more');
    });

    it('follows a custom limit', () => {
      const limits = { ...LIMITS, maxLineLength: 100 };
      expect(parse(bytes(requestLineOf(100), ['Host: h']), limits).method).toBe('GET');
      expect(() => parse(bytes(requestLineOf(101), ['Host: h']), limits)).toThrow(
        'request line is 101 bytes or more; the limit is 100 (option maxLineLength, env WEBSOCKETS_MAX_LINE_LENGTH)',
      );
    });
  });

  describe('header limits (431)', () => {
    it('accepts a header line of 8192 bytes including CRLF and refuses 8193', () => {
      expect(parse(bytes('GET / HTTP/1.1', [...UPGRADE_HEADERS, headerLineOf(8192)])).headers.get('x-fill')).toHaveLength(8182);
      const error = thrown(() => parse(bytes('GET / HTTP/1.1', [...UPGRADE_HEADERS, headerLineOf(8193)])));
      expect(error).toBeInstanceOf(HandshakeLimitError);
      expect((error as HandshakeLimitError).httpStatus).toBe(431);
      expect((error as Error).message).toBe(
        'header line is 8193 bytes or more; the limit is 8192 (option maxLineLength, env WEBSOCKETS_MAX_LINE_LENGTH)',
      );
      const bytewise = thrown(() => parseBytewise(bytes('GET / HTTP/1.1', [headerLineOf(8193)])));
      expect((bytewise as Error).message).toBe((error as Error).message);
    });

    it('accepts 128 headers and refuses 129 with the exact message', () => {
      const filler = (n: number) => Array.from({ length: n }, (_, i) => `X-H${i}: ${i}`);
      expect(parse(bytes('GET / HTTP/1.1', [...UPGRADE_HEADERS, ...filler(123)])).rawHeaders).toHaveLength(128);
      const error = thrown(() => parse(bytes('GET / HTTP/1.1', [...UPGRADE_HEADERS, ...filler(124)])));
      expect(error).toBeInstanceOf(HandshakeLimitError);
      expect((error as HandshakeLimitError).httpStatus).toBe(431);
      expect((error as Error).message).toBe('more than 128 headers (option maxNumHeaders, env WEBSOCKETS_MAX_NUM_HEADERS)');
    });

    it('follows custom limits', () => {
      const limits = { ...LIMITS, maxNumHeaders: 2, maxLineLength: 50 };
      expect(parse(bytes('GET / HTTP/1.1', ['A: 1', headerLineOf(50)]), limits).rawHeaders).toHaveLength(2);
      expect(() => parse(bytes('GET / HTTP/1.1', ['A: 1', 'B: 2', 'C: 3']), limits)).toThrow('more than 2 headers');
      expect(() => parse(bytes('GET / HTTP/1.1', [headerLineOf(51)]), limits)).toThrow('header line is 51 bytes');
    });
  });

  it.each([
    ['a bare LF', Buffer.from('GET / HTTP/1.1\nHost: h\r\n\r\n'), /bare LF/],
    ['an empty request line', Buffer.from('\r\nHost: h\r\n\r\n'), /invalid request line ""/],
    ['two spaces', Buffer.from('GET  / HTTP/1.1\r\n\r\n'), /invalid request line/],
    ['a bad method token', Buffer.from('G(T / HTTP/1.1\r\n\r\n'), /invalid request line/],
    ['a bad version', Buffer.from('GET / HTTP/11\r\n\r\n'), /invalid request line/],
    ['a control character in the target', Buffer.from('GET /\x01 HTTP/1.1\r\n\r\n'), /invalid request line/],
    ['obs-fold', bytes('GET / HTTP/1.1', ['Host: h', ' folded']), /obsolete line folding/],
    ['a header without colon', bytes('GET / HTTP/1.1', ['Host h']), /invalid header line "Host h"/],
    ['a space before the colon', bytes('GET / HTTP/1.1', ['Host : h']), /invalid header line/],
    ['an empty header name', bytes('GET / HTTP/1.1', [': h']), /invalid header line/],
    ['a NUL in a value', bytes('GET / HTTP/1.1', ['Host: a\0b']), /invalid value of header Host/],
    ['a CR in a value', bytes('GET / HTTP/1.1', ['Host: a\rb']), /invalid value of header Host/],
  ])('refuses %s with 400', (_name, data, message) => {
    const error = thrown(() => parse(data));
    expect(error).toBeInstanceOf(HandshakeError);
    expect((error as HandshakeError).httpStatus).toBe(400);
    expect((error as Error).message).toMatch(message);
  });

  it('accepts obs-text in a header value and shortens long values in messages', () => {
    expect(parse(bytes('GET / HTTP/1.1', ['X-Name: caf\xe9'])).headers.get('x-name')).toBe('caf\xe9');
    expect(() => parse(bytes('GET / HTTP/1.1', [`X ${'y'.repeat(100)}`]))).toThrow(/"X y{62}\.\.\."$/);
  });
});

describe('validateUpgradeRequest', () => {
  const without = (name: string) => UPGRADE_HEADERS.filter((h) => !h.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  const cases: Array<[string, string, string[], number, string, Record<string, string>]> = [
    ['HTTP/1.0', 'GET / HTTP/1.0', UPGRADE_HEADERS, 505, 'unsupported HTTP version: HTTP/1.0 (HTTP/1.1 is required)', {}],
    ['HTTP/2.0', 'GET / HTTP/2.0', UPGRADE_HEADERS, 505, 'unsupported HTTP version: HTTP/2.0 (HTTP/1.1 is required)', {}],
    ['POST', 'POST / HTTP/1.1', UPGRADE_HEADERS, 405, 'unsupported HTTP method: POST (GET is required)', { Allow: 'GET' }],
    ['lower-case get', 'get / HTTP/1.1', UPGRADE_HEADERS, 405, 'unsupported HTTP method: get (GET is required)', { Allow: 'GET' }],
    ['asterisk target', 'GET * HTTP/1.1', UPGRADE_HEADERS, 400, 'invalid request target "*"', {}],
    ['no Host', 'GET / HTTP/1.1', without('Host'), 400, 'missing Host header', {}],
    ['two Hosts', 'GET / HTTP/1.1', [...UPGRADE_HEADERS, 'Host: b'], 400, 'invalid Host header: server.example.com, b', {}],
    ['a bad Host', 'GET / HTTP/1.1', [...without('Host'), 'Host: a b'], 400, 'invalid Host header: a b', {}],
    ['an empty Host', 'GET / HTTP/1.1', [...without('Host'), 'Host:'], 400, 'empty Host header', {}],
    ['a body', 'GET / HTTP/1.1', [...UPGRADE_HEADERS, 'Content-Length: 5'], 400, 'a WebSocket handshake request has no body', {}],
    ['a chunked body', 'GET / HTTP/1.1', [...UPGRADE_HEADERS, 'Transfer-Encoding: chunked'], 400, 'a WebSocket handshake request has no body', {}],
    ['a bad Content-Length', 'GET / HTTP/1.1', [...UPGRADE_HEADERS, 'Content-Length: -1'], 400, 'invalid Content-Length header: -1', {}],
    ['two Content-Lengths', 'GET / HTTP/1.1', [...UPGRADE_HEADERS, 'Content-Length: 0', 'Content-Length: 0'], 400, 'invalid Content-Length header: 0, 0', {}],
    ['a plain HTTP request', 'GET / HTTP/1.1', ['Host: h', 'Connection: keep-alive'], 426, 'missing Upgrade header', { Upgrade: 'websocket' }],
    ['Upgrade: h2c', 'GET / HTTP/1.1', [...without('Upgrade'), 'Upgrade: h2c'], 426, 'invalid Upgrade header: h2c', { Upgrade: 'websocket' }],
    ['no Connection', 'GET / HTTP/1.1', without('Connection'), 426, 'missing Connection header', { Upgrade: 'websocket' }],
    ['Connection: close', 'GET / HTTP/1.1', [...without('Connection'), 'Connection: close'], 426, 'invalid Connection header: close', { Upgrade: 'websocket' }],
    ['no key', 'GET / HTTP/1.1', without('Sec-WebSocket-Key'), 400, 'missing Sec-WebSocket-Key header', {}],
    ['a short key', 'GET / HTTP/1.1', [...without('Sec-WebSocket-Key'), 'Sec-WebSocket-Key: AAAA'], 400, 'invalid Sec-WebSocket-Key header: AAAA', {}],
    ['a 17-byte key', 'GET / HTTP/1.1', [...without('Sec-WebSocket-Key'), `Sec-WebSocket-Key: ${Buffer.alloc(17).toString('base64')}`], 400, 'invalid Sec-WebSocket-Key header: AAAAAAAAAAAAAAAAAAAAAAA=', {}],
    ['two keys', 'GET / HTTP/1.1', [...UPGRADE_HEADERS, `Sec-WebSocket-Key: ${KEY}`], 400, `invalid Sec-WebSocket-Key header: ${KEY}, ${KEY}`, {}],
    ['version 8', 'GET / HTTP/1.1', [...without('Sec-WebSocket-Version'), 'Sec-WebSocket-Version: 8'], 426, 'invalid Sec-WebSocket-Version header: 8', { 'Sec-WebSocket-Version': '13' }],
    ['no version', 'GET / HTTP/1.1', without('Sec-WebSocket-Version'), 426, 'missing Sec-WebSocket-Version header', { 'Sec-WebSocket-Version': '13' }],
    ['a bad subprotocol', 'GET / HTTP/1.1', [...UPGRADE_HEADERS, 'Sec-WebSocket-Protocol: a b'], 400, 'invalid Sec-WebSocket-Protocol header: a b', {}],
  ];
  it.each(cases)('refuses %s', (_name, line, headers, status, message, extra) => {
    const error = thrown(() => validateUpgradeRequest(parse(bytes(line, headers))));
    expect(error).toBeInstanceOf(HandshakeError);
    expect((error as HandshakeError).httpStatus).toBe(status);
    expect((error as Error).message).toBe(message);
    expect((error as HandshakeError).headers).toEqual(extra);
  });

  it('accepts token lists in any case, IPv6 hosts, Content-Length 0, and returns protocols and extensions', () => {
    const request = parse(
      bytes('GET / HTTP/1.1', [
        'Host: [::1]:8080',
        'Upgrade: WebSocket',
        'Connection: keep-alive, Upgrade',
        'Content-Length: 0',
        `Sec-WebSocket-Key: ${KEY}`,
        'Sec-WebSocket-Version: 13',
        'Sec-WebSocket-Protocol: chat, , superchat',
        'Sec-WebSocket-Protocol: v2',
        'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits',
        'Sec-WebSocket-Extensions: x-foo',
      ]),
    );
    expect(validateUpgradeRequest(request)).toEqual({
      key: KEY,
      protocols: ['chat', 'superchat', 'v2'],
      extensions: 'permessage-deflate; client_max_window_bits, x-foo',
    });
  });
});

describe('checkOrigin', () => {
  const withOrigin = (...origins: string[]) =>
    parse(bytes('GET / HTTP/1.1', [...UPGRADE_HEADERS, ...origins.map((o) => `Origin: ${o}`)]));

  it('allows listed strings and whole-matching RegExps', () => {
    const allowed = ['https://app.example', /https:\/\/[a-z]+\.example\.org/g];
    expect(() => checkOrigin(withOrigin('https://app.example'), allowed, false)).not.toThrow();
    // A global RegExp is not stateful here: twice in a row.
    expect(() => checkOrigin(withOrigin('https://x.example.org'), allowed, false)).not.toThrow();
    expect(() => checkOrigin(withOrigin('https://x.example.org'), allowed, false)).not.toThrow();
  });

  it.each([
    ['an unlisted origin', ['https://evil.test'], 'origin not allowed: https://evil.test'],
    ['a RegExp matching only part', ['https://x.example.org.evil.test'], 'origin not allowed: https://x.example.org.evil.test'],
    ['a different case', ['https://APP.example'], 'origin not allowed: https://APP.example'],
    ['two Origin fields', ['https://app.example', 'https://app.example'], 'origin not allowed: https://app.example, https://app.example'],
  ])('refuses %s with 403', (_name, origins, message) => {
    const error = thrown(() => checkOrigin(withOrigin(...origins), ['https://app.example', /https:\/\/[a-z]+\.example\.org/], false));
    expect(error).toBeInstanceOf(OriginNotAllowedError);
    expect((error as OriginNotAllowedError).httpStatus).toBe(403);
    expect((error as Error).message).toBe(message);
  });

  it('allows or refuses a missing Origin as told', () => {
    expect(() => checkOrigin(withOrigin(), [], true)).not.toThrow();
    expect(() => checkOrigin(withOrigin(), ['https://app.example'], false)).toThrow('missing Origin header');
  });
});

describe('requestFromParts', () => {
  const raw = (headers: readonly string[]) => headers.flatMap((h) => [h.slice(0, h.indexOf(':')), h.slice(h.indexOf(':') + 2)]);

  it('builds the same request as the byte parser', () => {
    const headers = [...UPGRADE_HEADERS, 'X-Dup: 1', 'X-Dup: 2'];
    const fromNode = requestFromParts('GET', '/chat?x=1', '1.1', raw(headers), LIMITS);
    expect(fromNode).toEqual(parse(bytes('GET /chat?x=1 HTTP/1.1', headers)));
    expect(validateUpgradeRequest(fromNode).key).toBe(KEY);
  });

  it('applies the same line limits and header count', () => {
    const target = requestLineOf(8192).slice(4, -9);
    expect(requestFromParts('GET', target, '1.1', raw(UPGRADE_HEADERS), LIMITS).target).toBe(target);
    expect(() => requestFromParts('GET', `${target}a`, '1.1', raw(UPGRADE_HEADERS), LIMITS)).toThrow(
      'request line is 8193 bytes or more; the limit is 8192 (option maxLineLength, env WEBSOCKETS_MAX_LINE_LENGTH)',
    );
    expect(requestFromParts('GET', '/', '1.1', raw([headerLineOf(8192)]), LIMITS).rawHeaders).toHaveLength(1);
    const long = thrown(() => requestFromParts('GET', '/', '1.1', raw([headerLineOf(8193)]), LIMITS));
    expect((long as HandshakeLimitError).httpStatus).toBe(431);
    expect((long as Error).message).toBe(
      'header line is 8193 bytes or more; the limit is 8192 (option maxLineLength, env WEBSOCKETS_MAX_LINE_LENGTH)',
    );
    const fill = (n: number) => raw(Array.from({ length: n }, (_, i) => `X-H${i}: ${i}`));
    expect(requestFromParts('GET', '/', '1.1', fill(128), LIMITS).rawHeaders).toHaveLength(128);
    const many = thrown(() => requestFromParts('GET', '/', '1.1', fill(129), LIMITS));
    expect((many as HandshakeLimitError).httpStatus).toBe(431);
    expect((many as Error).message).toBe('more than 128 headers (option maxNumHeaders, env WEBSOCKETS_MAX_NUM_HEADERS)');
    expect(() => requestFromParts('GET', '/', '1.1', fill(3), { ...LIMITS, maxNumHeaders: 2 })).toThrow('more than 2 headers');
  });

  it('refuses what Node lets through, by the same rules', () => {
    const status = (fn: () => unknown) => (thrown(fn) as HandshakeError).httpStatus;
    expect(status(() => validateUpgradeRequest(requestFromParts('GET', '/', '1.0', raw(UPGRADE_HEADERS), LIMITS)))).toBe(505);
    expect(status(() => validateUpgradeRequest(requestFromParts('GET', '/', '1.1', raw(UPGRADE_HEADERS.slice(1)), LIMITS)))).toBe(400);
    expect(status(() => validateUpgradeRequest(requestFromParts('GET', '/', '1.1', raw([...UPGRADE_HEADERS, 'Content-Length: 3']), LIMITS)))).toBe(400);
    expect(() => requestFromParts('GET', '/', '1.1', ['Bad Name', 'v'], LIMITS)).toThrow('invalid header name "Bad Name"');
    expect(() => requestFromParts('GET', '/', '1.1', ['X', 'a\nb'], LIMITS)).toThrow('invalid value of header X');
    expect(() => requestFromParts('GET', '/ x', '1.1', [], LIMITS)).toThrow('invalid request line');
  });
});

describe('buildRequest', () => {
  it('writes a request that the server side parses and accepts', () => {
    const data = buildRequest({
      host: formatHost('::1', 8080, false),
      path: '/chat?room=1',
      key: KEY,
      protocols: ['chat', 'superchat'],
      extensions: 'permessage-deflate; client_max_window_bits',
      origin: 'http://example.com',
      userAgent: 'agent/1.0',
      headers: [['Cookie', 'a=1'], ['Cookie', 'b=2']],
    });
    expect(data.toString('latin1')).toBe(
      'GET /chat?room=1 HTTP/1.1\r\nHost: [::1]:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n` +
        'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\nOrigin: http://example.com\r\n' +
        'User-Agent: agent/1.0\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n',
    );
    const request = parse(data);
    expect(validateUpgradeRequest(request)).toEqual({
      key: KEY,
      protocols: ['chat', 'superchat'],
      extensions: 'permessage-deflate; client_max_window_bits',
    });
    expect(() => checkOrigin(request, ['http://example.com'], false)).not.toThrow();
  });

  it('leaves out optional headers', () => {
    const data = buildRequest({ host: 'h', path: '/', key: KEY, userAgent: null, headers: { 'X-A': 'b' } }).toString();
    expect(data).toBe(`GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\nX-A: b\r\n\r\n`);
  });

  it.each([
    [{ path: 'chat' }, 'path must be printable ASCII starting with "/"; got "chat"'],
    [{ path: '/a b' }, 'path must be printable ASCII'],
    [{ host: 'a\r\nX: y' }, 'invalid host'],
    [{ key: 'short' }, 'invalid Sec-WebSocket-Key "short"'],
    [{ protocols: ['a b'] }, 'subprotocol "a b" is not an HTTP token'],
    [{ protocols: ['a', 'a'] }, 'subprotocol a is offered twice'],
    [{ origin: 'x\r\nEvil: 1' }, 'origin: value of header Origin must be printable ASCII'],
    [{ userAgent: 'caf\u00e9' }, 'userAgentHeader: value of header User-Agent must be printable ASCII'],
    [{ headers: { 'Bad Name': 'x' } }, 'headers: header name "Bad Name" is not an HTTP token'],
    [{ headers: [['Sec-WebSocket-Key', KEY]] }, 'headers: header Sec-WebSocket-Key is written by the handshake itself'],
    [{ headers: { 'X-A': 'a\nb' } }, 'headers: value of header X-A must be printable ASCII'],
  ])('refuses %p', (override, message) => {
    const error = thrown(() => buildRequest({ host: 'h', path: '/', key: KEY, userAgent: 'u', ...override } as Parameters<typeof buildRequest>[0]));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(message);
  });

  it('formats hosts', () => {
    expect(formatHost('example.com', 80, false)).toBe('example.com');
    expect(formatHost('example.com', 443, true)).toBe('example.com');
    expect(formatHost('example.com', 443, false)).toBe('example.com:443');
    expect(formatHost('::1', 443, true)).toBe('[::1]');
    expect(formatHost('[::1]', 9000, true)).toBe('[::1]:9000');
  });

  it('keeps InvalidHeaderError for header problems', () => {
    expect(thrown(() => validateUpgradeRequest(parse(bytes('GET / HTTP/1.1', ['Host: h']))))).toBeInstanceOf(InvalidHeaderError);
  });
});
