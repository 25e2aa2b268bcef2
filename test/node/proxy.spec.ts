/**
 * connect() through proxies: Debian's tinyproxy (HTTP CONNECT, with and without Basic authentication, behind a TLS
 * front as an https:// proxy) and microsocks (SOCKS5 and SOCKS5h, with and without a user), ws and wss; refusals as
 * ProxyError with the proxy's status; proxies that answer garbage, go over a limit, trickle or hang up (fake ones
 * here, since no real proxy misbehaves on demand); and which proxy the environment picks.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { ConfigError, HandshakeLimitError, IncompleteResponseError, OpenTimeoutError, ProxyError } from '../../lib/errors.js';
import { connect, type ConnectOptions } from '../../lib/node/client.js';
import { isTransientError } from '../../lib/node/reconnect.js';
import type { WebSocketServer } from '../../lib/node/server.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import { makeTestCertificates, type TestCertificates } from '../support/certs.js';
import { describeWithPeer, describeWithPeers } from '../support/peers.js';
import { startMicrosocks, startTinyproxy, stopProxies, type ProxyPeer } from '../support/proxies.js';
import { withTimeout } from '../support/net.js';
import { Harness, next, WAIT_MS } from './harness.js';

const harness = new Harness();
const fakes: net.Server[] = [];
const fakeSockets: net.Socket[] = [];
afterEach(async () => {
  await harness.cleanup();
  for (const socket of fakeSockets.splice(0)) socket.destroy();
  for (const server of fakes.splice(0)) server.close();
});
afterAll(() => stopProxies());

/** Our server on 127.0.0.1 (TLS with `certs`), answering each message with `echo: <message>`. */
async function echoServer(certs?: TestCertificates): Promise<{ server: WebSocketServer; port: number }> {
  const { server, port } = await harness.listen(certs === undefined ? {} : { tls: { cert: certs.server.cert, key: certs.server.key } });
  server.on('connection', (ws: WebSocket) => ws.on('message', (data) => void ws.send(`echo: ${String(data)}`)));
  return { server, port };
}

/** Connects (tracked), sends one message and expects the echo: the tunnel carries the WebSocket both ways. */
async function roundTrip(url: string, options: ConnectOptions): Promise<void> {
  const ws = await harness.connect(url, options);
  const reply = next<[string]>(ws, 'message');
  await ws.send('through');
  expect((await reply)[0]).toBe('echo: through');
}

/** A fake proxy: `answer(socket, request)` runs once the request head has arrived. Sockets are kept for checks. */
async function fakeProxy(answer: (socket: net.Socket, request: Buffer) => void): Promise<{ port: number; sockets: net.Socket[] }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    fakeSockets.push(socket);
    socket.on('error', () => undefined);
    let received = Buffer.alloc(0);
    let answered = false;
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      // An HTTP request ends with an empty line; a SOCKS5 greeting is 3 or 4 bytes.
      if (answered || (received[0] !== 5 && !received.includes('\r\n\r\n'))) return;
      answered = true;
      answer(socket, received);
    });
  });
  fakes.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, sockets };
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describeWithPeer('tinyproxy', 'an HTTP CONNECT proxy (tinyproxy)', () => {
  let open: ProxyPeer;
  let guarded: ProxyPeer;
  const USER = 'alice';
  const PASSWORD = 'se-cr_et.1'; // tinyproxy's config takes letters, digits, -, _ and . only
  const withCredentials = (proxy: ProxyPeer, user: string, password: string): string =>
    proxy.url.replace('//', `//${encodeURIComponent(user)}:${encodeURIComponent(password)}@`);

  beforeAll(async () => {
    [open, guarded] = await Promise.all([startTinyproxy(), startTinyproxy({ basicAuth: { user: USER, password: PASSWORD } })]);
  });

  it('carries ws through CONNECT, also to a loopback server when the proxy is given explicitly', async () => {
    const { port } = await echoServer();
    await roundTrip(`ws://127.0.0.1:${port}/`, { proxy: open.url });
    expect(open.output()).toContain(`CONNECT 127.0.0.1:${port} HTTP/1.1`);
  });

  it('authenticates with Basic credentials from the proxy URL', async () => {
    const { port } = await echoServer();
    await roundTrip(`ws://127.0.0.1:${port}/`, { proxy: withCredentials(guarded, USER, PASSWORD) });
    expect(guarded.output()).toContain(`CONNECT 127.0.0.1:${port} HTTP/1.1`);
  });

  it('turns a 407 into ProxyError with the status, the reason, the headers and what to do', async () => {
    const { port } = await echoServer();
    const missing = await rejection(connect(`ws://127.0.0.1:${port}/`, { env: {}, proxy: guarded.url }));
    expect(missing).toBeInstanceOf(ProxyError);
    expect(missing).toMatchObject({ code: 'WS_ERR_PROXY', status: 407, reason: 'Proxy Authentication Required', proxy: guarded.url });
    expect(missing.message).toBe(
      `proxy ${guarded.url} refused to open a tunnel to 127.0.0.1:${port}: HTTP 407 Proxy Authentication Required ` +
        '(give a user and password in the proxy URL: http://user:password@host:port)',
    );
    expect((missing as ProxyError).responseHeaders).toContainEqual(['Proxy-Authenticate', 'Basic realm="Tinyproxy"']);
    expect((missing as ProxyError).body.toString()).toContain('Proxy Authentication Required');
    expect(isTransientError(missing)).toBe(false);
    // tinyproxy answers wrong credentials with 401 rather than a second 407.
    const wrong = await rejection(connect(`ws://127.0.0.1:${port}/`, { env: {}, proxy: withCredentials(guarded, USER, 'nope') }));
    expect(wrong).toMatchObject({ code: 'WS_ERR_PROXY', status: 401 });
    expect(wrong.message).toBe(`proxy ${guarded.url} refused to open a tunnel to 127.0.0.1:${port}: HTTP 401 ${(wrong as ProxyError).reason}`);
  });

  it('reports the proxy failing to reach the server as a ProxyError 500 that reconnection retries', async () => {
    const closed = await freeClosedPort();
    const error = await rejection(connect(`ws://127.0.0.1:${closed}/`, { env: {}, proxy: open.url }));
    expect(error).toMatchObject({ code: 'WS_ERR_PROXY', status: 500, reason: 'Unable to connect' });
    expect(isTransientError(error)).toBe(true);
  });

  it('refuses a CONNECT to a port it does not allow with 403', async () => {
    const strict = await startTinyproxy({ connectPorts: [443] });
    const { port } = await echoServer();
    const error = await rejection(connect(`ws://127.0.0.1:${port}/`, { env: {}, proxy: strict.url }));
    expect(error).toBeInstanceOf(ProxyError);
    expect((error as ProxyError).status).toBe(403);
    await strict.stop();
  });

  it('is not used from the environment for a loopback server, and not at all with proxy: null', async () => {
    const { port } = await echoServer();
    const env = { HTTPS_PROXY: open.url, HTTP_PROXY: open.url, ALL_PROXY: open.url };
    await roundTrip(`ws://127.0.0.1:${port}/`, { env });
    // A dead proxy in the environment cannot matter either.
    await roundTrip(`ws://127.0.0.1:${port}/`, { env: { WS_PROXY: 'http://127.0.0.1:1' } });
    await roundTrip(`ws://127.0.0.1:${port}/`, { env, proxy: null });
    expect(open.output()).not.toContain(`CONNECT 127.0.0.1:${port} `);
  });
});

describeWithPeers(['tinyproxy', 'openssl'], 'wss through tinyproxy, and tinyproxy as an https:// proxy', () => {
  let proxy: ProxyPeer;
  let certs: TestCertificates;
  beforeAll(async () => {
    [proxy, certs] = await Promise.all([startTinyproxy(), makeTestCertificates()]);
  });

  it('carries wss: TLS to the server runs inside the tunnel, the certificate checked for the server', async () => {
    const { port } = await echoServer(certs);
    await roundTrip(`wss://localhost:${port}/`, { proxy: proxy.url, ca: certs.ca.cert });
    expect(proxy.output()).toContain(`CONNECT localhost:${port} HTTP/1.1`);
    const untrusted = await rejection(connect(`wss://localhost:${port}/`, { env: {}, proxy: proxy.url }));
    expect((untrusted as NodeJS.ErrnoException).code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });

  it('speaks TLS to an https:// proxy (here a TLS front for tinyproxy), TLS in TLS for wss', async () => {
    const front = tls.createServer({ cert: certs.server.cert, key: certs.server.key }, (socket) => {
      const upstream = net.connect({ host: '127.0.0.1', port: proxy.port });
      fakeSockets.push(socket, upstream);
      socket.on('error', () => upstream.destroy());
      upstream.on('error', () => socket.destroy());
      socket.pipe(upstream).pipe(socket);
    });
    fakes.push(front);
    front.listen(0, '127.0.0.1');
    await once(front, 'listening');
    const httpsProxy = `https://localhost:${(front.address() as AddressInfo).port}`;
    const { port } = await echoServer(certs);
    await roundTrip(`wss://127.0.0.1:${port}/`, { proxy: httpsProxy, proxyTls: { ca: certs.ca.cert }, ca: certs.ca.cert });
    const plain = await echoServer();
    await roundTrip(`ws://127.0.0.1:${plain.port}/`, { proxy: httpsProxy, proxyTls: { ca: certs.ca.cert } });
    // The proxy's certificate is checked with proxyTls, not with the server's CA option.
    const error = await rejection(connect(`ws://127.0.0.1:${plain.port}/`, { env: {}, proxy: httpsProxy, ca: certs.ca.cert }));
    expect((error as NodeJS.ErrnoException).code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });
});

describeWithPeer('microsocks', 'a SOCKS5 proxy (microsocks)', () => {
  let open: ProxyPeer;
  let guarded: ProxyPeer;
  beforeAll(async () => {
    [open, guarded] = await Promise.all([startMicrosocks(), startMicrosocks({ auth: { user: 'bob', password: 'p@ss:w0rd' } })]);
  });

  it('carries ws through socks5 and socks5h', async () => {
    const { port } = await echoServer();
    await roundTrip(`ws://127.0.0.1:${port}/`, { proxy: open.url });
    await roundTrip(`ws://127.0.0.1:${port}/`, { proxy: open.url.replace('socks5:', 'socks5h:') });
  });

  it('authenticates with the user and password of the proxy URL (RFC 1929, percent-decoded), and says what is wrong otherwise', async () => {
    const { port } = await echoServer();
    await roundTrip(`ws://127.0.0.1:${port}/`, { proxy: guarded.url.replace('//', '//bob:p%40ss%3Aw0rd@') });
    const missing = await rejection(connect(`ws://127.0.0.1:${port}/`, { env: {}, proxy: guarded.url }));
    expect(missing).toBeInstanceOf(ProxyError);
    expect(missing.message).toBe(
      `proxy ${guarded.url} requires authentication; give a user and password in the proxy URL (socks5://user:password@host:port)`,
    );
    const wrong = await rejection(connect(`ws://127.0.0.1:${port}/`, { env: {}, proxy: guarded.url.replace('//', '//bob:guess@') }));
    expect(wrong).toMatchObject({ code: 'WS_ERR_PROXY', reason: 'authentication failed' });
    expect(isTransientError(wrong)).toBe(false);
  });

  it('reports the server refusing the proxy as ProxyError with SOCKS reply 5, which reconnection retries', async () => {
    const closed = await freeClosedPort();
    const error = await rejection(connect(`ws://127.0.0.1:${closed}/`, { env: {}, proxy: open.url }));
    expect(error).toMatchObject({ code: 'WS_ERR_PROXY', status: 5, reason: 'connection refused' });
    expect(error.message).toBe(`proxy ${open.url} refused to connect to 127.0.0.1:${closed}: SOCKS reply 5 (connection refused)`);
    expect(isTransientError(error)).toBe(true);
  });

  it('fails with the network error when the proxy itself is not there', async () => {
    const { port } = await echoServer();
    const closed = await freeClosedPort();
    const error = await rejection(connect(`ws://127.0.0.1:${port}/`, { env: {}, proxy: `socks5h://127.0.0.1:${closed}` }));
    expect(error).toMatchObject({ code: 'ECONNREFUSED', port: closed });
    expect(isTransientError(error)).toBe(true);
  });
});

describeWithPeers(['microsocks', 'openssl'], 'wss through microsocks', () => {
  it('carries wss through socks5h, the certificate checked for the server', async () => {
    const [proxy, certs] = await Promise.all([startMicrosocks(), makeTestCertificates()]);
    const { port } = await echoServer(certs);
    await roundTrip(`wss://127.0.0.1:${port}/`, { proxy: proxy.url.replace('socks5:', 'socks5h:'), ca: certs.ca.cert });
  });
});

describe('proxies that misbehave', () => {
  it('applies the handshake limits to the answer to CONNECT and names the limit', async () => {
    const longLine = await fakeProxy((socket) => socket.write(`HTTP/1.1 200 OK\r\nX-Padding: ${'x'.repeat(9000)}\r\n\r\n`));
    const error = await rejection(connect('ws://127.0.0.1:9/', { env: {}, proxy: `http://127.0.0.1:${longLine.port}` }));
    expect(error).toBeInstanceOf(ProxyError);
    expect(error.cause).toBeInstanceOf(HandshakeLimitError);
    expect(error.message).toMatch(
      /^invalid answer from proxy http:\/\/127\.0\.0\.1:\d+ to CONNECT 127\.0\.0\.1:9: header line is \d+ bytes or more; the limit is 8192 \(option maxLineLength, env WEBSOCKETS_MAX_LINE_LENGTH\)$/,
    );
    const manyHeaders = await fakeProxy((socket) => socket.write(`HTTP/1.1 200 OK\r\n${'X-A: b\r\n'.repeat(20)}\r\n`));
    const limited = await rejection(connect('ws://127.0.0.1:9/', { env: {}, maxNumHeaders: 16, proxy: `http://127.0.0.1:${manyHeaders.port}` }));
    expect(limited.message).toMatch(/more than 16 headers \(option maxNumHeaders, env WEBSOCKETS_MAX_NUM_HEADERS\)$/);
    const bigBody = await fakeProxy((socket) => socket.write(`HTTP/1.1 403 Forbidden\r\nContent-Length: ${2 * 1024 * 1024}\r\n\r\n`));
    const body = await rejection(connect('ws://127.0.0.1:9/', { env: {}, proxy: `http://127.0.0.1:${bigBody.port}` }));
    expect(body.message).toMatch(/response body is \d+ bytes or more; the limit is 1048576 \(option maxBodySize/);
  });

  it('refuses garbage at its first line, and a proxy that hangs up, with a ProxyError', async () => {
    const ssh = await fakeProxy((socket) => socket.write('SSH-2.0-OpenSSH_9.2\r\n'));
    const garbage = await rejection(connect('ws://127.0.0.1:9/', { env: {}, proxy: `http://127.0.0.1:${ssh.port}`, openTimeoutMs: WAIT_MS }));
    expect(garbage).toBeInstanceOf(ProxyError);
    expect(garbage.message).toMatch(/invalid status line "SSH-2.0-OpenSSH_9.2"$/);
    const hangUp = await fakeProxy((socket) => socket.end());
    const ended = await rejection(connect('ws://127.0.0.1:9/', { env: {}, proxy: `http://127.0.0.1:${hangUp.port}` }));
    expect(ended.message).toMatch(/closed the connection before answering CONNECT 127\.0\.0\.1:9$/);
    expect(ended.cause).toBeInstanceOf(IncompleteResponseError);
    expect(isTransientError(ended)).toBe(true);
    const notSocks = await fakeProxy((socket) => socket.write('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const socks = await rejection(connect('ws://127.0.0.1:9/', { env: {}, proxy: `socks5://127.0.0.1:${notSocks.port}` }));
    expect(socks.message).toMatch(/is not a SOCKS5 proxy: its answer starts with byte 72 instead of 5$/);
  });

  it('cuts off a proxy that trickles its answer at openTimeoutMs, HTTP or SOCKS, and closes the connection', async () => {
    for (const scheme of ['http', 'socks5h']) {
      const trickle = await fakeProxy((socket) => {
        const bytes = scheme === 'http' ? Buffer.from('HTTP/1.1 200 Connection established\r\n') : Buffer.from([5]);
        let i = 0;
        const timer = setInterval(() => (i < bytes.length ? socket.write(bytes.subarray(i, ++i)) : undefined), 20);
        socket.on('close', () => clearInterval(timer));
      });
      const started = performance.now();
      const error = await rejection(connect('ws://127.0.0.1:9/', { env: {}, openTimeoutMs: 300, proxy: `${scheme}://127.0.0.1:${trickle.port}` }));
      expect(error).toBeInstanceOf(OpenTimeoutError);
      expect(error.message).toBe('timed out during the opening handshake after 300 ms (option openTimeoutMs, env WEBSOCKETS_OPEN_TIMEOUT_MS)');
      expect(performance.now() - started).toBeLessThan(WAIT_MS);
      // The client closed its side: the proxy's socket closes, with a reset when the client had unread bytes (an
      // 'error' of ECONNRESET, which `once` would take for a failure).
      const [socket] = trickle.sockets;
      socket!.on('error', () => undefined);
      if (!socket!.closed) await withTimeout(new Promise((resolve) => socket!.once('close', resolve)), WAIT_MS, 'the proxy connection to close');
    }
  });

  it('sends the CONNECT request with Host, User-Agent and Basic credentials, and says when they are refused', async () => {
    let request = '';
    const refusing = await fakeProxy((socket, received) => {
      request = received.toString('latin1');
      socket.end('HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n');
    });
    const error = await rejection(
      connect('wss://[::1]:8443/', { env: {}, userAgentHeader: 'probe/1', proxy: `http://us%65r:p%40ss@127.0.0.1:${refusing.port}` }),
    );
    expect(request).toBe(
      `CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\nUser-Agent: probe/1\r\nProxy-Authorization: Basic ${Buffer.from('user:p@ss').toString('base64')}\r\n\r\n`,
    );
    expect(error.message).toBe(
      `proxy http://127.0.0.1:${refusing.port} refused to open a tunnel to [::1]:8443: HTTP 407 Proxy Authentication Required ` +
        '(the proxy refused the user name and password of the proxy URL)',
    );
    expect(error.message).not.toContain('p@ss');
  });

  it('refuses a tunnel whose proxy sends bytes before the TLS handshake of wss', async () => {
    const eager = await fakeProxy((socket) => socket.write('HTTP/1.1 200 OK\r\n\r\nhello'));
    const error = await rejection(connect('wss://127.0.0.1:9/', { env: {}, proxy: `http://127.0.0.1:${eager.port}` }));
    expect(error.message).toMatch(/sent data through the tunnel before the TLS handshake$/);
  });

  it('refuses a bad proxy URL, from the option or from the variable that applies, naming it', async () => {
    const option = await rejection(connect('ws://example.test/', { env: {}, proxy: 'ftp://proxy.test' }));
    expect(option).toBeInstanceOf(ConfigError);
    expect(option.message).toMatch(/^option proxy must be a proxy URL: http:\/\/, https:\/\/, socks5:\/\/ or socks5h:\/\/.*; got "ftp:\/\/proxy.test" \(scheme ftp is not supported\)$/);
    const variable = await rejection(connect('ws://example.test/', { env: { ws_proxy: 'socks4://u:secret@proxy.test' } }));
    expect(variable.message).toMatch(/^ws_proxy must be .*; got "socks4:\/\/u:\*\*\*@proxy.test" \(scheme socks4 is not supported\)$/);
    // The same variable does not matter to a loopback server, nor to a wss URL that reads other variables.
    await expect(connect('wss://127.0.0.1:1/', { env: { ws_proxy: 'socks4://proxy.test' }, openTimeoutMs: WAIT_MS })).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
  });
});

/** A port on 127.0.0.1 that nothing listens on (a moment ago). */
async function freeClosedPort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}
