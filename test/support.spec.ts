/**
 * Tests of the test support itself: the certificates work with node:tls (and Python's ssl), the Python peer and
 * its scripts interoperate with ws, Chromium launches (and trusts a test certificate by SPKI), and the raw socket
 * helpers see real bytes.
 */
import { once } from 'node:events';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from '@jest/globals';
import { WebSocket, WebSocketServer } from 'ws';
import { makeTestCertificates, WRONG_HOSTNAME, type TestCertificates } from './support/certs.js';
import { closeChromium, launchChromium, useChromium } from './support/browser.js';
import { destroyRawConnections, endOfHttpHead, freePort, rawConnect, withTimeout } from './support/net.js';
import { cellText, codeSpans, findMarkdownTable, parseMarkdownTables, splitRow } from './support/readme-table.js';
import { describeWithPeer, describeWithPeers, peer, peersRequired, skippedLine, type PeerName } from './support/peers.js';
import {
  hasAsyncioApi,
  pythonWebsocketsVersion,
  runPythonClient,
  runPythonCode,
  startPythonEchoServer,
  type PythonEchoServer,
} from './support/python.js';

const cleanups: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  destroyRawConnections();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Listens on port 0 and registers the close for afterEach. */
async function listen<S extends net.Server>(server: S, host = '127.0.0.1'): Promise<number> {
  server.listen(0, host);
  await once(server, 'listening');
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as net.AddressInfo).port;
}

/** A TLS server with `pair`, and the outcome of a client trusting the test CA connecting to it. */
async function tlsOutcome(pair: { cert: string; key: string }, certs: TestCertificates, host: string, servername?: string): Promise<string> {
  const server = tls.createServer({ cert: pair.cert, key: pair.key }, (socket) => socket.end('hello'));
  server.on('tlsClientError', () => undefined);
  const port = await listen(server, host);
  const client = tls.connect({ port, host, ca: certs.ca.cert, ...(servername === undefined ? {} : { servername }) });
  cleanups.push(() => void client.destroy());
  const outcome = new Promise<string>((resolve) => {
    client.once('secureConnect', () => resolve(client.authorized ? 'authorized' : `unauthorized: ${String(client.authorizationError)}`));
    client.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
  return withTimeout(outcome, 5000, `TLS handshake with ${host}`);
}

describe('peers', () => {
  it('formats the line that stands for tests that could not run', () => {
    const status = { name: 'python', debianPackage: 'python3-websockets', available: false, detail: 'python3-websockets not installed', cause: '', install: 'apt-get install python3-websockets' } as const;
    expect(skippedLine(status, 'interop')).toBe('SKIPPED: python3-websockets not installed (apt-get install python3-websockets): interop');
  });

  it('requires peers when CI is set to a true value', () => {
    expect(peersRequired({ CI: 'true' })).toBe(true);
    expect(peersRequired({ CI: '1' })).toBe(true);
    expect(peersRequired({ CI: 'false' })).toBe(false);
    expect(peersRequired({ CI: '' })).toBe(false);
    expect(peersRequired({})).toBe(false);
  });

  it('reports every peer with its Debian package and a reason', () => {
    const names: PeerName[] = ['python', 'chromium', 'redis', 'openssl', 'tinyproxy', 'microsocks'];
    for (const name of names) {
      const status = peer(name);
      expect(status.install).toBe(`apt-get install ${status.debianPackage}`);
      expect(status.available ? status.cause : status.detail).toBe(status.available ? '' : `${status.debianPackage} not installed`);
    }
    expect(peer('redis').debianPackage).toBe('redis-server');
  });
});

describe('net helpers', () => {
  it('withTimeout rejects naming what did not happen, and passes a result through', async () => {
    await expect(withTimeout(new Promise(() => undefined), 20, 'the thing')).rejects.toThrow('the thing did not happen within 20 ms');
    await expect(withTimeout(Promise.resolve(7), 1000, 'seven')).resolves.toBe(7);
  });

  it('rawConnect collects bytes until a predicate holds and until the peer closes', async () => {
    const server = net.createServer((socket) => {
      socket.once('data', (request) => {
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n');
        setImmediate(() => socket.end(`\r\nabc${request.length}`));
      });
    });
    const port = await listen(server);
    const connection = await rawConnect(port);
    await connection.write('GET / HTTP/1.1\r\n\r\n');
    const head = await connection.readUntil(endOfHttpHead, 2000, 'the response head');
    expect(head.toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK\r\nContent-Length: 3\r\n\r\n/);
    const all = await connection.readUntilClose(2000);
    expect(all.toString('latin1')).toBe('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc18');
    expect(connection.closed).toBe(true);
    await expect(connection.readUntil(() => false, 1000, 'more bytes')).rejects.toThrow('connection closed before more bytes');
  });

  it('rawConnect times out a wait that never completes', async () => {
    const port = await listen(net.createServer(() => undefined));
    const connection = await rawConnect(port);
    await expect(connection.readUntil(endOfHttpHead, 30, 'a response')).rejects.toThrow('a response did not happen within 30 ms');
  });

  it('freePort gives a port that can be listened on', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    const server = net.createServer();
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    expect((server.address() as net.AddressInfo).port).toBe(port);
  });
});

describeWithPeer('openssl', 'test certificates', () => {
  it('makes each set once per test file', async () => {
    const [a, b] = await Promise.all([makeTestCertificates(), makeTestCertificates()]);
    expect(a).toBe(b);
    for (const pair of [a.ca, a.server, a.untrusted, a.wrongHost]) {
      expect(pair.cert).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
      expect(pair.key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    }
  }, 30_000);

  it('the server certificate names localhost, 127.0.0.1 and ::1 and is signed by the CA', async () => {
    const certs = await makeTestCertificates();
    const x509 = new (await import('node:crypto')).X509Certificate(certs.server.cert);
    expect(x509.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(x509.ca).toBe(false);
    expect(x509.verify(new (await import('node:crypto')).X509Certificate(certs.ca.cert).publicKey)).toBe(true);
  }, 30_000);

  it('a client trusting the CA accepts the server certificate on 127.0.0.1, by IP and by name', async () => {
    const certs = await makeTestCertificates();
    expect(await tlsOutcome(certs.server, certs, '127.0.0.1')).toBe('authorized');
    expect(await tlsOutcome(certs.server, certs, '127.0.0.1', 'localhost')).toBe('authorized');
  }, 30_000);

  it('a client trusting the CA refuses the self-signed certificate', async () => {
    const certs = await makeTestCertificates();
    expect(await tlsOutcome(certs.untrusted, certs, '127.0.0.1', 'localhost')).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
  }, 30_000);

  it(`a client connecting to localhost refuses the certificate for ${WRONG_HOSTNAME}`, async () => {
    const certs = await makeTestCertificates();
    expect(await tlsOutcome(certs.wrongHost, certs, '127.0.0.1', 'localhost')).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  }, 30_000);
});

describeWithPeer('python', 'python websockets peer', () => {
  let echo: PythonEchoServer | undefined;
  afterEach(async () => {
    await echo?.stop();
    echo = undefined;
  });

  it('runs /usr/bin/python3 with websockets', async () => {
    const version = pythonWebsocketsVersion();
    expect(version).toMatch(/^\d+\.\d+/);
    const result = await runPythonCode('import websockets; print(websockets.__version__)');
    expect(result).toMatchObject({ code: 0, stdout: `${version}\n`, timedOut: false });
    expect(typeof hasAsyncioApi()).toBe('boolean');
  });

  it('kills a run that goes over its time bound', async () => {
    const result = await runPythonCode('import time; time.sleep(30)', [], { timeoutMs: 300 });
    expect(result).toMatchObject({ timedOut: true, signal: 'SIGKILL', code: null });
  });

  it('echo_server.py echoes text and binary to a ws client, and reports the close', async () => {
    echo = await startPythonEchoServer();
    const client = new WebSocket(`ws://127.0.0.1:${echo.port}/path?q=1`);
    cleanups.push(() => client.terminate());
    await withTimeout(once(client, 'open'), 5000, 'ws open');
    const replies: Array<[string, boolean]> = [];
    client.on('message', (data: Buffer, isBinary: boolean) => replies.push([isBinary ? data.toString('hex') : data.toString(), isBinary]));
    client.send('héllo');
    client.send(Buffer.from([0, 255]));
    await withTimeout(new Promise<void>((resolve) => client.on('message', () => replies.length === 2 && resolve())), 5000, 'two echoes');
    expect(replies).toEqual([['héllo', false], ['00ff', true]]);
    client.close(4001, 'done');
    await withTimeout(once(client, 'close'), 5000, 'ws close');
    const closed = await echo.process.waitForEvent((e) => e.event === 'closed', 5000, 'server close event');
    expect(closed).toEqual({ event: 'closed', code: 4001, reason: 'done' });
    expect(echo.process.events().find((e) => e.event === 'connection')).toMatchObject({ path: '/path?q=1' });
  });

  describeWithPeer('openssl', 'over TLS', () => {
    it('client.py talks to a ws server over wss, trusting the test CA', async () => {
      const certs = await makeTestCertificates();
      const server = https.createServer({ cert: certs.server.cert, key: certs.server.key });
      const wss = new WebSocketServer({ server });
      wss.on('connection', (socket) => socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary })));
      cleanups.push(() => new Promise<void>((resolve) => wss.close(() => resolve())));
      const port = await listen(server);
      const { events, result } = await runPythonClient(`wss://localhost:${port}/`, {
        cafile: certs.ca.certFile,
        messages: ['one', Buffer.from('02', 'hex')],
        closeCode: 4002,
        closeReason: 'bye',
      });
      expect(result.code).toBe(0);
      expect(events.slice(1)).toEqual([
        { event: 'message', type: 'text', data: 'one' },
        { event: 'message', type: 'binary', hex: '02' },
        { event: 'closed', code: 4002, reason: 'bye' },
      ]);
    }, 30_000);

    it('client.py refuses the untrusted certificate with an error event', async () => {
      const certs = await makeTestCertificates();
      const server = https.createServer({ cert: certs.untrusted.cert, key: certs.untrusted.key });
      server.on('tlsClientError', () => undefined);
      const port = await listen(server);
      const { events, result } = await runPythonClient(`wss://localhost:${port}/`, { cafile: certs.ca.certFile });
      expect(result.code).toBe(2);
      expect(events).toEqual([expect.objectContaining({ event: 'error', type: 'SSLCertVerificationError' })]);
    }, 30_000);
  });
});

describeWithPeer('chromium', 'chromium peer', () => {
  const browser = useChromium();

  it('loads a data: URL', async () => {
    const page = await browser().newPage();
    cleanups.push(() => page.close());
    await page.goto('data:text/html,<title>ready</title><p id="x">42</p>', { timeout: 5000 });
    expect(await page.title()).toBe('ready');
    expect(await page.textContent('#x')).toBe('42');
  });

  describeWithPeers(['chromium', 'openssl'], 'with a test certificate', () => {
    it('trusts the server certificate by its SPKI hash, and nothing else', async () => {
      const certs = await makeTestCertificates();
      const trusting = await launchChromium({ trustSpki: [certs.server.spkiSha256] });
      cleanups.push(() => closeChromium(trusting));
      const server = https.createServer({ cert: certs.server.cert, key: certs.server.key }, (_, res) => res.end('<title>over tls</title>'));
      server.on('tlsClientError', () => undefined);
      const port = await listen(server);
      const page = await trusting.newPage();
      await page.goto(`https://127.0.0.1:${port}/`, { timeout: 5000 });
      expect(await page.title()).toBe('over tls');
      const plain = await browser().newPage();
      cleanups.push(() => plain.close());
      await expect(plain.goto(`https://127.0.0.1:${port}/`, { timeout: 5000 })).rejects.toThrow(/ERR_CERT_AUTHORITY_INVALID/);
    }, 30_000);
  });
});

describe('readme tables', () => {
  const markdown = [
    '# Package',
    '',
    '## Options',
    '',
    '| Option | Env | Default |',
    '|:-------|-----|--------:|',
    '| `maxLineLength` | `WEBSOCKETS_MAX_LINE_LENGTH` | 8192 |',
    '| **serverHeader** | `WEBSOCKETS_SERVER` (empty: none) | `Node.js/x.y.z` |',
    'compression | — | on \\| off',
    '',
    '```md',
    '| not | a table |',
    '|-----|---------|',
    '```',
    '## Errors',
    'code | meaning',
    '--- | ---',
    '`WS_ERR_CONFIG` | [bad option](#options) with a \\| pipe',
    'After the table.',
  ].join('\n');

  it('splits rows on unescaped pipes, with or without the outer ones', () => {
    expect(splitRow('| a | `b` |')).toEqual(['a', '`b`']);
    expect(splitRow('a | b \\| c')).toEqual(['a', 'b | c']);
  });

  it('finds each table with its heading, header line and rows, and ignores fenced code', () => {
    const tables = parseMarkdownTables(markdown);
    expect(tables.map((t) => [t.heading, t.line, t.headers])).toEqual([
      ['Options', 5, ['Option', 'Env', 'Default']],
      ['Errors', 16, ['code', 'meaning']],
    ]);
    expect(tables[0]?.rows).toEqual([
      { Option: '`maxLineLength`', Env: '`WEBSOCKETS_MAX_LINE_LENGTH`', Default: '8192' },
      { Option: '**serverHeader**', Env: '`WEBSOCKETS_SERVER` (empty: none)', Default: '`Node.js/x.y.z`' },
      { Option: 'compression', Env: '—', Default: 'on | off' },
    ]);
    expect(tables[1]?.rows).toEqual([{ code: '`WS_ERR_CONFIG`', meaning: '[bad option](#options) with a | pipe' }]);
  });

  it('picks one table by heading or columns, and says which tables exist when none matches', () => {
    expect(findMarkdownTable(markdown, { heading: 'Errors' }).line).toBe(16);
    expect(findMarkdownTable(markdown, { columns: ['option', 'default'] }).heading).toBe('Options');
    expect(() => findMarkdownTable(markdown, { heading: /Limits/ })).toThrow(/found 0; tables: line 5 under "Options"/);
  });

  it('reduces a cell to its text and its code spans', () => {
    expect(cellText('**serverHeader**')).toBe('serverHeader');
    expect(cellText('[bad option](#options) with `x`')).toBe('bad option with x');
    expect(cellText('*on* by default, 2 * 3')).toBe('on by default, 2 * 3');
    expect(codeSpans('`WEBSOCKETS_SERVER` (empty: none) or `null`')).toEqual(['WEBSOCKETS_SERVER', 'null']);
  });
});
