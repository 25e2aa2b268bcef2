/**
 * The HTTP CONNECT exchange in bytes: the request the client sends to a proxy, and the proxy's answer read by
 * `ResponseParser` in CONNECT mode under the handshake limits (HTTP/1.0 accepted, a 2xx has no body and the
 * tunnel's first bytes are kept in `rest`, a refusal's body is read as any response's).
 */
import { describe, expect, it } from '@jest/globals';
import { resolveConfig, type Limits } from '../../lib/config/index.js';
import { ConfigError, HandshakeError, HandshakeLimitError, IncompleteResponseError } from '../../lib/errors.js';
import { ResponseParser } from '../../lib/protocol/handshake.js';
import { basicCredentials, buildConnectRequest } from '../../lib/protocol/proxy-connect.js';

const LIMITS: Limits = resolveConfig({}, {}).limits;

function crlf(text: string): Buffer {
  return Buffer.from(text.replace(/\r?\n/g, '\r\n'), 'latin1');
}

describe('buildConnectRequest', () => {
  it('names the destination with its port in the request-target and Host, with User-Agent', () => {
    expect(buildConnectRequest({ host: 'example.com', port: 443, userAgent: 'ua/1' }).toString('latin1')).toBe(
      'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nUser-Agent: ua/1\r\n\r\n',
    );
    expect(buildConnectRequest({ host: '::1', port: 8080, userAgent: null }).toString('latin1')).toBe(
      'CONNECT [::1]:8080 HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n',
    );
  });

  it('adds Proxy-Authorization: Basic from the credentials, UTF-8 (RFC 7617)', () => {
    const request = buildConnectRequest({ host: '127.0.0.1', port: 80, userAgent: null, credentials: { username: 'alice', password: 'pä:ss' } });
    expect(request.toString('latin1')).toBe(
      `CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: 127.0.0.1:80\r\nProxy-Authorization: Basic ${Buffer.from('alice:pä:ss').toString('base64')}\r\n\r\n`,
    );
    expect(basicCredentials({ username: 'Aladdin', password: 'open sesame' })).toBe('Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==');
  });

  it('refuses what cannot be written safely: a user name with a colon, a bad host or port, a bad user agent', () => {
    expect(() => basicCredentials({ username: 'a:b', password: 'c' })).toThrow('a proxy user name cannot contain ":"');
    for (const host of ['', 'a b', 'a/b', 'a@b', 'evil\r\nX: y']) {
      expect(() => buildConnectRequest({ host, port: 80, userAgent: null })).toThrow(ConfigError);
    }
    for (const port of [0, 65_536, 1.5]) {
      expect(() => buildConnectRequest({ host: 'h', port, userAgent: null })).toThrow('invalid tunnel destination');
    }
    expect(() => buildConnectRequest({ host: 'h', port: 1, userAgent: 'a\r\nb' })).toThrow(ConfigError);
  });
});

describe('ResponseParser for CONNECT', () => {
  const connect = (): ResponseParser => new ResponseParser(LIMITS, { method: 'CONNECT' });

  it('opens the tunnel after the head of a 2xx, HTTP/1.1 or 1.0, and keeps what follows in rest', () => {
    for (const version of ['1.1', '1.0']) {
      const parser = connect();
      const tunnel = Buffer.from('\x81\x02hi', 'latin1');
      const response = parser.push(Buffer.concat([crlf(`HTTP/${version} 200 Connection established\nProxy-agent: tinyproxy\n\n`), tunnel]));
      expect(response).toMatchObject({ httpVersion: version, status: 200, reason: 'Connection established', body: Buffer.alloc(0) });
      expect(parser.rest).toEqual(tunnel);
    }
    // A Content-Length on a 2xx to CONNECT is ignored (RFC 9110 §9.3.6): the bytes after the head are the tunnel.
    const parser = connect();
    expect(parser.push(crlf('HTTP/1.1 200 OK\nContent-Length: 5\n\nabc'))?.status).toBe(200);
    expect(parser.rest.toString()).toBe('abc');
  });

  it('reads the body of a refusal, delimited by the end of the connection for HTTP/1.0 (tinyproxy)', () => {
    const parser = connect();
    expect(parser.push(crlf('HTTP/1.0 407 Proxy Authentication Required\nProxy-Authenticate: Basic realm="x"\n\n<html>no</html>'))).toBeNull();
    expect(parser.end()).toMatchObject({ httpVersion: '1.0', status: 407, body: Buffer.from('<html>no</html>') });
    expect(connect().push(crlf('HTTP/1.1 403 Forbidden\nContent-Length: 2\n\nno'))).toMatchObject({ status: 403, body: Buffer.from('no') });
  });

  it('applies the handshake limits to the answer', () => {
    expect(() => connect().push(crlf(`HTTP/1.1 200 ${'x'.repeat(9000)}\n\n`))).toThrow(HandshakeLimitError);
    expect(() => connect().push(crlf(`HTTP/1.1 200 OK\n${'X: y\n'.repeat(129)}\n`))).toThrow('more than 128 headers');
    expect(() => connect().push(crlf(`HTTP/1.0 502 Bad\nContent-Length: ${LIMITS.maxBodySize + 1}\n\n`))).toThrow(/response body is \d+ bytes or more/);
  });

  it('refuses other versions and garbage, and reports a connection closed before the answer', () => {
    expect(() => connect().push(crlf('HTTP/2.0 200 OK\n\n'))).toThrow('(HTTP/1.1 is required, or 1.0 from a proxy)');
    expect(() => connect().push(crlf('SSH-2.0-OpenSSH_9.2\n'))).toThrow(HandshakeError);
    const closed = connect();
    closed.push(crlf('HTTP/1.1 200 Conn'));
    expect(() => closed.end()).toThrow(IncompleteResponseError);
    // Outside CONNECT, HTTP/1.0 stays refused.
    expect(() => new ResponseParser(LIMITS).push(crlf('HTTP/1.0 200 OK\n\n'))).toThrow('(HTTP/1.1 is required)');
  });
});
