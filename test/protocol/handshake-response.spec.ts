import { describe, it, expect, afterEach } from '@jest/globals';
import { once } from 'node:events';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { resolveConfig, type Limits } from '../../lib/config/index.js';
import { sha1Base64WithHashObject } from '../../lib/protocol/handshake-key.js';
import {
  ConfigError,
  HandshakeError,
  HandshakeLimitError,
  InvalidHeaderError,
  InvalidStateError,
  InvalidStatusError,
} from '../../lib/errors.js';
import {
  ResponseParser,
  RequestParser,
  acceptKey,
  acceptResponseHead,
  buildAcceptResponse,
  buildRejectResponse,
  generateKey,
  reasonPhrase,
  rejectionFor,
  validateUpgradeRequest,
  validateUpgradeResponse,
  WEBSOCKET_GUID,
  type HandshakeResponse,
} from '../../lib/protocol/handshake.js';

const LIMITS: Limits = resolveConfig({}, {}).limits;
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';
const MiB = 1_048_576;

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

function response(head: string, body: Buffer | string = ''): Buffer {
  return Buffer.concat([Buffer.from(head.replace(/\r?\n/g, '\r\n'), 'latin1'), Buffer.from(body)]);
}

/** Parses `data` in one push, then signals EOF when `eof` is set. */
function parse(data: Buffer, { eof = false, limits = LIMITS } = {}): HandshakeResponse | null {
  const parser = new ResponseParser(limits);
  const result = parser.push(data);
  return eof ? parser.end() : result;
}

function parseBytewise(data: Buffer, eof = false): HandshakeResponse | null {
  const parser = new ResponseParser(LIMITS);
  let result: HandshakeResponse | null = null;
  for (let i = 0; i < data.length && result === null; i++) result = parser.push(data.subarray(i, i + 1));
  return eof ? parser.end() : result;
}

function chunked(body: Buffer, size: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < body.length; i += size) {
    const part = body.subarray(i, i + size);
    parts.push(Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

describe('key exchange', () => {
  it('derives the RFC 6455 §1.3 accept value', () => {
    expect(WEBSOCKET_GUID).toBe('258EAFA5-E914-47DA-95CA-C5AB0DC85B11');
    expect(acceptKey(KEY)).toBe(ACCEPT);
    // The fallback for Node before 20.12 (no crypto.hash) gives the same value.
    expect(sha1Base64WithHashObject(KEY + WEBSOCKET_GUID)).toBe(ACCEPT);
  });

  it('generates 16-byte keys from an injectable source', () => {
    expect(generateKey((n) => Buffer.alloc(n, 0xab))).toBe(Buffer.alloc(16, 0xab).toString('base64'));
    expect(Buffer.from(generateKey(), 'base64')).toHaveLength(16);
    expect(generateKey()).not.toBe(generateKey());
    expect(() => generateKey(() => Buffer.alloc(8))).toThrow('the random source returned 8 bytes; 16 were asked');
  });
});

describe('buildAcceptResponse', () => {
  it('writes the 101 with Server, subprotocol, extensions, date and extra headers', () => {
    const data = buildAcceptResponse({
      key: KEY,
      protocol: 'chat',
      extensions: 'permessage-deflate; server_max_window_bits=12',
      serverHeader: 'test/1.0',
      headers: [['Set-Cookie', 'a=1']],
      date: new Date(Date.UTC(2030, 0, 2, 3, 4, 5)),
    });
    expect(data.toString('latin1')).toBe(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${ACCEPT}\r\nSec-WebSocket-Protocol: chat\r\n` +
        'Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=12\r\n' +
        'Date: Wed, 02 Jan 2030 03:04:05 GMT\r\nServer: test/1.0\r\nSet-Cookie: a=1\r\n\r\n',
    );
    const parsed = parse(data);
    expect(validateUpgradeResponse(parsed!, { key: KEY, protocols: ['x', 'chat'] })).toEqual({
      protocol: 'chat',
      extensions: 'permessage-deflate; server_max_window_bits=12',
    });
  });

  it('is the latin1 encoding of acceptResponseHead, the string the server writes', () => {
    const options = { key: KEY, protocol: 'chat', serverHeader: 'test/1.0', headers: { 'X-Name': 'v' } };
    const head = acceptResponseHead(options);
    expect(head).toBe(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${ACCEPT}\r\nSec-WebSocket-Protocol: chat\r\nServer: test/1.0\r\nX-Name: v\r\n\r\n`,
    );
    expect(buildAcceptResponse(options).equals(Buffer.from(head, 'latin1'))).toBe(true);
    expect(() => acceptResponseHead({ key: 'nope', serverHeader: null })).toThrow(ConfigError);
  });

  it('leaves out the Server header for null, and optional headers when absent', () => {
    const data = buildAcceptResponse({ key: KEY, serverHeader: null, protocol: null, extensions: '' }).toString();
    expect(data).toBe(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${ACCEPT}\r\n\r\n`);
  });

  it.each([
    [{ key: 'nope' }, 'invalid Sec-WebSocket-Key "nope"'],
    [{ protocol: 'a b' }, 'subprotocol "a b" is not an HTTP token'],
    [{ extensions: 'x\r\nEvil: 1' }, 'extensions: value of header Sec-WebSocket-Extensions must be printable ASCII'],
    [{ serverHeader: 'a\nb' }, 'serverHeader: value of header Server must be printable ASCII'],
    [{ headers: { Connection: 'close' } }, 'headers: header Connection is written by the handshake itself'],
    [{ headers: [['X\r\nY', 'v']] }, 'headers: header name "X\\r\\nY" is not an HTTP token'],
    // The serverHeader setting owns Server, whether it is set or null: a hook cannot add a second one.
    [{ headers: { SERVER: 'x' } }, 'headers: header SERVER is written by the handshake itself; set it with option serverHeader, env WEBSOCKETS_SERVER'],
  ])('refuses %p', (override, message) => {
    const error = thrown(() => buildAcceptResponse({ key: KEY, serverHeader: null, ...override } as Parameters<typeof buildAcceptResponse>[0]));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(message);
  });
});

describe('rejections', () => {
  let server: Server | undefined;
  const sockets = new Set<Socket>();
  afterEach(async () => {
    if (server !== undefined) {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      server.close();
      await once(server, 'close');
      server = undefined;
    }
  });

  /** Serves `data` once over a real socket and reads it back with Node's own HTTP client (llhttp). */
  async function throughNodeHttp(data: Buffer): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
    server = createServer((socket) => {
      sockets.add(socket);
      socket.end(data);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const req = httpRequest({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 5000 });
    req.end();
    const [res] = (await once(req, 'response')) as [import('node:http').IncomingMessage];
    let body = '';
    res.setEncoding('utf8');
    for await (const chunk of res) body += chunk as string;
    return { status: res.statusCode!, headers: res.headers, body };
  }

  /** Builds the request bytes, runs the server side, and returns the refusal it would write. */
  function refusal(head: string, serverHeader: string | null = 'srv/1'): { error: HandshakeError; bytes: Buffer } {
    const data = Buffer.from(head.replace(/\r?\n/g, '\r\n'), 'latin1');
    try {
      const request = new RequestParser(LIMITS).push(data);
      validateUpgradeRequest(request!);
    } catch (error) {
      return { error: error as HandshakeError, bytes: rejectionFor(error as HandshakeError, serverHeader) };
    }
    throw new Error('expected a refusal');
  }

  const ok = `Host: h\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Key: ${KEY}\nSec-WebSocket-Version: 13\n`;
  const cases: Array<[number, string, string, Record<string, string>]> = [
    [400, `GET / HTTP/1.1\n${ok}Sec-WebSocket-Key: x\n\n`, `invalid Sec-WebSocket-Key header: ${KEY}, x`, {}],
    [405, `PUT / HTTP/1.1\n${ok}\n`, 'unsupported HTTP method: PUT (GET is required)', { allow: 'GET' }],
    [414, `GET /${'a'.repeat(9000)} HTTP/1.1\n${ok}\n`, 'request line is 9016 bytes or more; the limit is 8192 (option maxLineLength, env WEBSOCKETS_MAX_LINE_LENGTH)', {}],
    [426, 'GET / HTTP/1.1\nHost: h\n\n', 'missing Upgrade header', { upgrade: 'websocket' }],
    [426, `GET / HTTP/1.1\n${ok.replace('Version: 13', 'Version: 7')}\n`, 'invalid Sec-WebSocket-Version header: 7', { 'sec-websocket-version': '13' }],
    [431, `GET / HTTP/1.1\n${ok}X: ${'b'.repeat(9000)}\n\n`, 'header line is 9005 bytes or more; the limit is 8192 (option maxLineLength, env WEBSOCKETS_MAX_LINE_LENGTH)', {}],
    [431, `GET / HTTP/1.1\n${'A: 1\n'.repeat(129)}\n`, 'more than 128 headers (option maxNumHeaders, env WEBSOCKETS_MAX_NUM_HEADERS)', {}],
    [505, `GET / HTTP/1.0\n${ok}\n`, 'unsupported HTTP version: HTTP/1.0 (HTTP/1.1 is required)', {}],
  ];

  it.each(cases)('%i is a complete HTTP response that Node reads', async (status, head, message, extra) => {
    const { error, bytes } = refusal(head);
    expect(error.httpStatus).toBe(status);
    const res = await throughNodeHttp(bytes);
    expect(res.status).toBe(status);
    expect(res.headers.connection).toBe('close');
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(res.body));
    expect(res.headers.server).toBe('srv/1');
    expect(res.body.split('\n')[0]).toBe(`Failed to open a WebSocket connection: ${message}.`);
    for (const [name, value] of Object.entries(extra)) expect(res.headers[name]).toBe(value);
  });

  it('403 for an origin, and no Server header when it is null', async () => {
    const { OriginNotAllowedError } = await import('../../lib/errors.js');
    const bytes = rejectionFor(new OriginNotAllowedError('https://evil.test'), null);
    const res = await throughNodeHttp(bytes);
    expect(res.status).toBe(403);
    expect(res.headers.server).toBeUndefined();
    expect(res.body).toBe('Failed to open a WebSocket connection: origin not allowed: https://evil.test.\n');
  });

  it('tells browser users what happened on a plain HTTP request', () => {
    const { bytes } = refusal('GET / HTTP/1.1\nHost: h\n\n', null);
    const body =
      'Failed to open a WebSocket connection: missing Upgrade header.\n\n' +
      'You cannot access a WebSocket server directly with a browser. You need a WebSocket client.\n';
    expect(bytes.toString()).toBe(
      'HTTP/1.1 426 Upgrade Required\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\nUpgrade: websocket\r\n\r\n${body}`,
    );
  });

  it('builds custom refusals (a hook: redirect, UTF-8 body, date) and refuses bad statuses', () => {
    const bytes = buildRejectResponse(302, 'moved: é', {
      serverHeader: null,
      headers: { Location: '/elsewhere' },
      date: new Date(0),
    });
    const parsed = parse(bytes)!;
    expect(parsed.status).toBe(302);
    expect(parsed.reason).toBe('Found');
    expect(parsed.headers.get('location')).toBe('/elsewhere');
    expect(parsed.headers.get('date')).toBe('Thu, 01 Jan 1970 00:00:00 GMT');
    expect(parsed.body.toString()).toBe('moved: é');
    expect(buildRejectResponse(499, '', { serverHeader: null }).toString()).toMatch(/^HTTP\/1\.1 499 \r\n/);
    expect(reasonPhrase(499)).toBe('');
    expect(buildRejectResponse(308, '', { serverHeader: null, headers: [['location', '/x']] }).toString()).toMatch(/^HTTP\/1\.1 308 Permanent Redirect\r\n/);
    // Only a refusal refuses an upgrade: a 2xx answers it as a success, a 1xx as going on, a 304 as cached.
    const statuses = 'a refusal needs a status from 400 to 599, or a redirect (301, 302, 303, 307 or 308) with a Location header';
    expect(() => buildRejectResponse(101, '', { serverHeader: null })).toThrow(`${statuses}; got 101`);
    for (const status of [200, 299, 304, 399, 600, 400.5, Number.NaN]) {
      expect(() => buildRejectResponse(status, '', { serverHeader: null })).toThrow(`${statuses}; got ${status}`);
    }
    expect(() => buildRejectResponse(301, '', { serverHeader: null })).toThrow(`${statuses}; got 301 without a Location header`);
    expect(() => buildRejectResponse(307, '', { serverHeader: null, headers: { Refresh: '0' } })).toThrow(ConfigError);
    expect(() => buildRejectResponse(403, '', { serverHeader: 'a', headers: { Server: 'b' } })).toThrow(
      'headers: header Server is written by the handshake itself; set it with option serverHeader, env WEBSOCKETS_SERVER',
    );
  });
});

describe('ResponseParser', () => {
  const ACCEPTED = `HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Accept: ${ACCEPT}\n\n`;

  it('parses a 101, byte by byte too, and keeps frames sent with it in rest', () => {
    const frame = Buffer.from('810548656c6c6f', 'hex');
    const data = Buffer.concat([response(ACCEPTED), frame]);
    const parser = new ResponseParser(LIMITS);
    const parsed = parser.push(data)!;
    expect(parsed).toMatchObject({ httpVersion: '1.1', status: 101, reason: 'Switching Protocols', body: Buffer.alloc(0) });
    expect(parser.rest).toEqual(frame);
    expect(parser.end()).toBe(parsed);
    expect(() => parser.push(Buffer.from('x'))).toThrow(InvalidStateError);
    expect(parseBytewise(data)).toEqual(parsed);
    expect(validateUpgradeResponse(parsed, { key: KEY, protocols: [] })).toEqual({ protocol: null, extensions: '' });
  });

  it('accepts a status line without a reason', () => {
    expect(parse(response('HTTP/1.1 204\n\n'))).toMatchObject({ status: 204, reason: '' });
    expect(parse(response('HTTP/1.1 304 \n\n'))).toMatchObject({ status: 304, reason: '' });
  });

  describe('status line limit', () => {
    it('accepts 8192 bytes including CRLF and refuses 8193', () => {
      const line = (size: number) => `HTTP/1.1 101 ${'r'.repeat(size - 'HTTP/1.1 101 \r\n'.length)}`;
      expect(parse(response(`${line(8192)}\n\n`))?.reason.length).toBe(8192 - 'HTTP/1.1 101 \r\n'.length);
      const error = thrown(() => parse(response(`${line(8193)}\n\n`)));
      expect(error).toBeInstanceOf(HandshakeLimitError);
      expect((error as Error).message).toBe(
        'status line is 8193 bytes or more; the limit is 8192 (option maxLineLength, env WEBSOCKETS_MAX_LINE_LENGTH)',
      );
    });

    it('applies the header limits', () => {
      const headers = (n: number) => 'X: 1\n'.repeat(n);
      expect(parse(response(`HTTP/1.1 101 OK\n${headers(128)}\n`))?.rawHeaders).toHaveLength(128);
      expect(() => parse(response(`HTTP/1.1 101 OK\n${headers(129)}\n`))).toThrow(
        'more than 128 headers (option maxNumHeaders, env WEBSOCKETS_MAX_NUM_HEADERS)',
      );
      expect(() => parse(response(`HTTP/1.1 101 OK\nX: ${'y'.repeat(8188)}\n\n`))).toThrow(
        'header line is 8193 bytes or more; the limit is 8192',
      );
    });
  });

  it.each([
    ['HTTP/1.0 101 OK', /unsupported HTTP version in status line "HTTP\/1.0 101 OK"/],
    ['HTTP/1.1 99 OK', /invalid status line/],
    ['HTTP/1.1 600 OK', /invalid status line/],
    ['HTTP/1.1 2000 OK', /invalid status line/],
    ['ICY 200 OK', /invalid status line/],
  ])('refuses the status line %s', (line, message) => {
    const error = thrown(() => parse(response(`${line}\n\n`)));
    expect(error).toBeInstanceOf(HandshakeError);
    expect((error as Error).message).toMatch(message);
  });

  describe('bodies of refusals (1 MiB limit)', () => {
    const page = (size: number) => Buffer.alloc(size, 0x61);
    const LIMIT_MESSAGE = (n: number) =>
      `response body is ${n} bytes or more; the limit is 1048576 (option maxBodySize, env WEBSOCKETS_MAX_BODY_SIZE)`;

    it('reads a Content-Length body of exactly 1 MiB and refuses one more byte at once', () => {
      const ok = parse(response(`HTTP/1.1 401 Unauthorized\nContent-Length: ${MiB}\n\n`, page(MiB)));
      expect(ok?.body.equals(page(MiB))).toBe(true);
      const parser = new ResponseParser(LIMITS);
      const error = thrown(() => parser.push(response(`HTTP/1.1 401 Unauthorized\nContent-Length: ${MiB + 1}\n\n`)));
      expect(error).toBeInstanceOf(HandshakeLimitError);
      expect((error as Error).message).toBe(LIMIT_MESSAGE(MiB + 1));
      expect(() => parser.end()).toThrow(HandshakeLimitError);
    });

    it('reads a chunked body of exactly 1 MiB and refuses one more byte', () => {
      const ok = parse(response('HTTP/1.1 403 Forbidden\nTransfer-Encoding: gzip, chunked\n\n', chunked(page(MiB), 100_000)));
      expect(ok?.body.equals(page(MiB))).toBe(true);
      expect(() => parse(response('HTTP/1.1 403 Forbidden\nTransfer-Encoding: chunked\n\n', chunked(page(MiB + 1), 100_000)))).toThrow(
        LIMIT_MESSAGE(MiB + 1),
      );
    });

    it('reads a body delimited by EOF of exactly 1 MiB and refuses one more byte', () => {
      const head = response('HTTP/1.1 500 Internal Server Error\n\n');
      expect(parse(Buffer.concat([head, page(MiB)]), { eof: true })?.body.equals(page(MiB))).toBe(true);
      const parser = new ResponseParser(LIMITS);
      expect(parser.push(Buffer.concat([head, page(MiB)]))).toBeNull();
      expect(() => parser.push(Buffer.from('x'))).toThrow(LIMIT_MESSAGE(MiB + 1));
      // A transfer coding other than chunked last also runs to EOF.
      expect(parse(response('HTTP/1.1 500 Oops\nTransfer-Encoding: gzip\n\n', 'zz'), { eof: true })?.body.toString()).toBe('zz');
    });

    it('follows a custom maxBodySize', () => {
      const limits = { ...LIMITS, maxBodySize: 10 };
      expect(parse(response('HTTP/1.1 400 Bad\nContent-Length: 10\n\n', page(10)), { limits })?.body).toHaveLength(10);
      expect(() => parse(response('HTTP/1.1 400 Bad\nContent-Length: 11\n\n'), { limits })).toThrow(
        'response body is 11 bytes or more; the limit is 10 (option maxBodySize, env WEBSOCKETS_MAX_BODY_SIZE)',
      );
    });

    it('gives the same body fed one byte at a time', () => {
      const body = Buffer.from('Hello, chunked world');
      const data = response('HTTP/1.1 404 Not Found\nTransfer-Encoding: chunked\n\n', Buffer.concat([
        Buffer.from('5;ext=1\r\nHello\r\n'),
        chunked(body.subarray(5), 4),
      ]));
      expect(data.toString()).toContain('0\r\n\r\n');
      const whole = parse(Buffer.concat([data.subarray(0, -2), Buffer.from('Trailer: x\r\n\r\n')]));
      expect(whole?.body).toEqual(body);
      expect(parseBytewise(data)).toEqual(parse(data));
      const length = response('HTTP/1.1 404 Not Found\nContent-Length: 5\nContent-Length: 5\n\n', 'Hello');
      expect(parseBytewise(length)?.body.toString()).toBe('Hello');
      expect(parse(response('HTTP/1.1 404 Not Found\nContent-Length: 0\n\n'))?.body).toEqual(Buffer.alloc(0));
    });

    it.each([
      ['a bad chunk size', 'Transfer-Encoding: chunked\n\nzz\r\n', /invalid chunk size line "zz"/],
      ['a chunk without CRLF', 'Transfer-Encoding: chunked\n\n2\r\nabX\r\n', /missing CRLF after a chunk/],
      ['conflicting Content-Lengths', 'Content-Length: 1\nContent-Length: 2\n\n', /invalid Content-Length header: 1, 2/],
      ['a negative Content-Length', 'Content-Length: -1\n\n', /invalid Content-Length header: -1/],
    ])('refuses %s', (_name, rest, message) => {
      expect(() => parse(response(`HTTP/1.1 400 Bad\n${rest}`))).toThrow(message);
    });

    it('counts trailers against maxNumHeaders', () => {
      const limits = { ...LIMITS, maxNumHeaders: 2 };
      const head = 'HTTP/1.1 400 Bad\nTransfer-Encoding: chunked\n\n0\r\n';
      expect(parse(response(head, 'T: 1\r\n\r\n'), { limits })?.status).toBe(400);
      expect(() => parse(response(head, 'T: 1\r\nU: 2\r\n\r\n'), { limits })).toThrow('more than 2 headers');
    });

    it('fails at EOF before the response is complete', () => {
      const partial = new ResponseParser(LIMITS);
      partial.push(Buffer.from('HTTP/1.1 101 OK\r\n'));
      expect(() => partial.end()).toThrow('connection closed before the handshake response was complete');
      const midBody = new ResponseParser(LIMITS);
      midBody.push(response('HTTP/1.1 400 Bad\nContent-Length: 5\n\n', 'abc'));
      expect(() => midBody.end()).toThrow('connection closed in the middle of the handshake response body');
      expect(() => midBody.push(Buffer.from('de'))).toThrow(HandshakeError);
    });
  });
});

describe('validateUpgradeResponse', () => {
  const OK = ['Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${ACCEPT}`];
  const res = (status: string, headers: readonly string[], body = '') =>
    parse(response(`HTTP/1.1 ${status}\n${headers.map((h) => `${h}\n`).join('')}\n`, body), { eof: true })!;

  it('surfaces a non-101 as InvalidStatusError with headers and body (redirects included)', () => {
    const error = thrown(() =>
      validateUpgradeResponse(res('301 Moved Permanently', ['Location: ws://elsewhere/', 'Content-Length: 4'], 'gone'), {
        key: KEY,
        protocols: [],
      }),
    );
    expect(error).toBeInstanceOf(InvalidStatusError);
    const status = error as InvalidStatusError;
    expect(status.status).toBe(301);
    expect(status.message).toBe('server rejected WebSocket connection: HTTP 301');
    expect(status.responseHeaders).toContainEqual(['Location', 'ws://elsewhere/']);
    expect(status.body.toString()).toBe('gone');
  });

  it.each([
    ['no Upgrade', OK.slice(1), 'missing Upgrade header'],
    ['Upgrade: h2c', ['Upgrade: h2c', ...OK.slice(1)], 'invalid Upgrade header: h2c'],
    ['two upgrades', ['Upgrade: websocket, h2c', ...OK.slice(1)], 'invalid Upgrade header: websocket, h2c'],
    ['no Connection', [OK[0], OK[2]], 'missing Connection header'],
    ['Connection: close', [OK[0], 'Connection: close', OK[2]], 'invalid Connection header: close'],
    ['no accept', OK.slice(0, 2), 'missing Sec-WebSocket-Accept header'],
    ['a wrong accept', [...OK.slice(0, 2), `Sec-WebSocket-Accept: ${acceptKey('AAAAAAAAAAAAAAAAAAAAAA==')}`], 'invalid Sec-WebSocket-Accept header'],
    ['two accepts', [...OK, `Sec-WebSocket-Accept: ${ACCEPT}`], 'invalid Sec-WebSocket-Accept header'],
    ['a subprotocol not offered', [...OK, 'Sec-WebSocket-Protocol: other'], 'invalid Sec-WebSocket-Protocol header: other'],
    ['two subprotocols', [...OK, 'Sec-WebSocket-Protocol: chat, v2'], 'invalid Sec-WebSocket-Protocol header: chat, v2'],
    ['a bad subprotocol', [...OK, 'Sec-WebSocket-Protocol: a b'], 'invalid Sec-WebSocket-Protocol header: a b'],
  ])('refuses %s with InvalidHeaderError', (_name, headers, message) => {
    const error = thrown(() => validateUpgradeResponse(res('101 Switching Protocols', headers), { key: KEY, protocols: ['chat', 'v2'] }));
    expect(error).toBeInstanceOf(InvalidHeaderError);
    expect((error as Error).message).toContain(message);
  });

  it('accepts case-insensitive tokens, an offered subprotocol and returns extensions', () => {
    const accepted = validateUpgradeResponse(
      res('101 Switching Protocols', [
        'upgrade: WebSocket',
        'connection: keep-alive, upgrade',
        `sec-websocket-accept: ${ACCEPT}`,
        'Sec-WebSocket-Protocol: v2',
        'Sec-WebSocket-Extensions: permessage-deflate',
      ]),
      { key: KEY, protocols: ['chat', 'v2'] },
    );
    expect(accepted).toEqual({ protocol: 'v2', extensions: 'permessage-deflate' });
  });
});
