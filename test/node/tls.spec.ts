/**
 * wss both ways with certificates made at test time: our server with TLS against the ws client and ours, our client
 * against the ws library's https server and Python's wss server; a wrong hostname or an untrusted certificate is a
 * clear error; a redirect from wss to ws is refused; the hook sees the client certificate; a server on its own port
 * takes its certificate and key from WEBSOCKETS_TLS_CERT / _KEY (no silent plain-text server when they are set).
 */
import { afterEach, expect, it } from '@jest/globals';
import { once } from 'node:events';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { WebSocketServer as WsServer } from 'ws';
import { ConfigError } from '../../lib/errors.js';
import { connect } from '../../lib/node/client.js';
import { WebSocketServer, type HandshakeInfo } from '../../lib/node/server.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import { makeTestCertificates, WRONG_HOSTNAME } from '../support/certs.js';
import { rawConnect } from '../support/net.js';
import { describeWithPeer, describeWithPeers } from '../support/peers.js';
import { startPythonEchoServer, type PythonEchoServer } from '../support/python.js';
import { Harness, next, nextWsMessage } from './harness.js';

const harness = new Harness();
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
  await harness.cleanup();
});

function echo(ws: WebSocket): void {
  ws.on('message', (data: string | Buffer, isBinary: boolean) => void ws.send(data, { binary: isBinary }));
}

describeWithPeer('openssl', 'wss', () => {
  it('our TLS server talks to the ws client and to our client, which verifies it against the CA', async () => {
    const certs = await makeTestCertificates();
    const { server, port } = await harness.listen({ tls: { key: certs.server.key, cert: certs.server.cert } });
    const infos: HandshakeInfo[] = [];
    server.on('connection', (ws: WebSocket, info: HandshakeInfo) => {
      infos.push(info);
      echo(ws);
    });
    const wsClient = await harness.wsClient(`wss://localhost:${port}/`, { ca: certs.ca.cert });
    wsClient.send('over tls');
    expect((await nextWsMessage(wsClient))[0].toString()).toBe('over tls');

    // The certificate names localhost and the IP 127.0.0.1: both verify.
    for (const host of ['localhost', '127.0.0.1']) {
      const ours = await harness.connect(`wss://${host}:${port}/`, { ca: certs.ca.cert });
      await ours.send(Buffer.from('binary over tls'));
      const [data, isBinary] = await next<[Buffer, boolean]>(ours, 'message');
      expect([data.toString(), isBinary]).toEqual(['binary over tls', true]);
    }
    expect(infos.every((info) => info.secure)).toBe(true);
  });

  it('refuses an untrusted certificate and a wrong hostname with a clear error', async () => {
    const certs = await makeTestCertificates();
    const untrusted = await harness.listen({ tls: { key: certs.untrusted.key, cert: certs.untrusted.cert } });
    await expect(connect(`wss://localhost:${untrusted.port}/`, { ca: certs.ca.cert, env: {} })).rejects.toMatchObject({
      code: 'DEPTH_ZERO_SELF_SIGNED_CERT',
      message: 'self-signed certificate',
    });
    const wrong = await harness.listen({ tls: { key: certs.wrongHost.key, cert: certs.wrongHost.cert } });
    await expect(connect(`wss://localhost:${wrong.port}/`, { ca: certs.ca.cert, env: {} })).rejects.toMatchObject({
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
      message: expect.stringContaining(`is not in the cert's altnames: DNS:${WRONG_HOSTNAME}`),
    });
    // Without the CA, even the right certificate is untrusted; rejectUnauthorized: false accepts it (on purpose).
    const good = await harness.listen({ tls: { key: certs.server.key, cert: certs.server.cert } });
    await expect(connect(`wss://localhost:${good.port}/`, { env: {} })).rejects.toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    const insecure = await harness.connect(`wss://localhost:${good.port}/`, { rejectUnauthorized: false });
    expect(insecure.readyState).toBe(1);
    // servername checks another name than the URL's host.
    await expect(connect(`wss://localhost:${wrong.port}/`, { ca: certs.ca.cert, env: {}, servername: 'localhost' })).rejects.toMatchObject({
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
    const named = await harness.connect(`wss://127.0.0.1:${wrong.port}/`, { ca: certs.ca.cert, servername: WRONG_HOSTNAME });
    expect(named.readyState).toBe(1);
  });

  it('our client talks to the ws library over https, and never follows a redirect from wss to ws', async () => {
    const certs = await makeTestCertificates();
    const httpsServer = https.createServer({ key: certs.server.key, cert: certs.server.cert }, (req, res) => {
      res.writeHead(302, { Location: `ws://127.0.0.1:1${req.url ?? '/'}` }).end();
    });
    const wss = new WsServer({ server: httpsServer, path: '/ws' });
    wss.on('connection', (peer) => peer.on('message', (data, isBinary) => peer.send(data, { binary: isBinary })));
    httpsServer.listen(0, '127.0.0.1');
    await once(httpsServer, 'listening');
    closers.push(() => new Promise((resolve) => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      httpsServer.closeAllConnections();
      httpsServer.close(resolve);
    }));
    const { port } = httpsServer.address() as AddressInfo;
    const ws = await harness.connect(`wss://localhost:${port}/ws`, { ca: certs.ca.cert });
    await ws.send('to ws over tls');
    expect((await next<[string]>(ws, 'message'))[0]).toBe('to ws over tls');
    // Any other path answers 302 to ws:// (an upgrade request without a listener is a plain request to Node).
    const plainUpgrade = https.createServer({ key: certs.server.key, cert: certs.server.cert });
    plainUpgrade.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 302 Found\r\nLocation: ws://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n'));
    plainUpgrade.listen(0, '127.0.0.1');
    await once(plainUpgrade, 'listening');
    closers.push(() => new Promise((resolve) => {
      plainUpgrade.closeAllConnections();
      plainUpgrade.close(resolve);
    }));
    const downgradePort = (plainUpgrade.address() as AddressInfo).port;
    const failure = connect(`wss://localhost:${downgradePort}/`, { ca: certs.ca.cert, env: {} });
    await expect(failure).rejects.toThrow(
      `refusing a redirect from wss://localhost:${downgradePort}/ to ws://127.0.0.1:1/: wss must not go down to ws`,
    );
    await expect(failure).rejects.toMatchObject({ code: 'WS_ERR_REDIRECT', location: 'ws://127.0.0.1:1/' });
  });

  it('passes TLS options through: requestCert shows the client certificate to the hook', async () => {
    const certs = await makeTestCertificates();
    const seen: Array<string | string[] | undefined> = [];
    const { port } = await harness.listen({
      tls: { key: certs.server.key, cert: certs.server.cert, ca: certs.ca.cert, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' },
      handshake: (info) => {
        seen.push(info.peerCertificate?.subject.CN);
      },
    });
    const ws = await harness.connect(`wss://localhost:${port}/`, { ca: certs.ca.cert, cert: certs.server.cert, key: certs.server.key });
    expect(ws.readyState).toBe(1);
    expect(seen).toEqual(['localhost']);
  });
});

describeWithPeer('openssl', 'TLS from WEBSOCKETS_TLS_CERT / _KEY on a server on its own port', () => {
  it('turns TLS on: wss works, and a plain-text handshake gets no 101', async () => {
    const certs = await makeTestCertificates();
    const env = { WEBSOCKETS_TLS_CERT: certs.server.certFile, WEBSOCKETS_TLS_KEY: certs.server.keyFile };
    const { server, port } = await harness.listen({ env });
    server.on('connection', echo);
    const ours = await harness.connect(`wss://localhost:${port}/`, { ca: certs.ca.cert });
    await ours.send('from the variables');
    expect((await next<[string]>(ours, 'message'))[0]).toBe('from the variables');
    const plain = await rawConnect(port);
    await plain.write(`GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    const answer = await plain.readUntilClose(5000);
    expect(answer.includes('HTTP/1.1 101')).toBe(false);
  });

  it('fills the fields an explicit tls option leaves out; a key and certificate in the option win; tls: false stays plain', async () => {
    const certs = await makeTestCertificates();
    const env = { WEBSOCKETS_TLS_CERT: certs.server.certFile, WEBSOCKETS_TLS_KEY: certs.server.keyFile };
    const merged = await harness.listen({ env, tls: { minVersion: 'TLSv1.3' } });
    const tls12 = tls.connect({ port: merged.port, host: '127.0.0.1', servername: 'localhost', ca: certs.ca.cert, maxVersion: 'TLSv1.2' });
    const [refused] = (await once(tls12, 'error')) as [NodeJS.ErrnoException];
    expect(refused.code).toMatch(/^ERR_SSL_(TLSV1_ALERT_PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL)$/);
    tls12.destroy();
    expect((await harness.connect(`wss://localhost:${merged.port}/`, { ca: certs.ca.cert })).readyState).toBe(1);
    const own = await harness.listen({ env, tls: { key: certs.untrusted.key, cert: certs.untrusted.cert } });
    await expect(connect(`wss://localhost:${own.port}/`, { ca: certs.ca.cert, env: {} })).rejects.toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    const plain = await harness.listen({ env, tls: false });
    expect((await harness.connect(`ws://127.0.0.1:${plain.port}/`)).readyState).toBe(1);
  });

  it('refuses a certificate without its key, or a key without its certificate, naming both variables', async () => {
    const certs = await makeTestCertificates();
    const message =
      /^a TLS (certificate|key) is configured without its (key|certificate); set option tls\.(key|cert), env WEBSOCKETS_TLS_(KEY|CERT) as well, or remove option tls\.(cert|key), env WEBSOCKETS_TLS_(CERT|KEY)$/;
    for (const env of [{ WEBSOCKETS_TLS_CERT: certs.server.certFile }, { WEBSOCKETS_TLS_KEY: certs.server.keyFile }]) {
      let error: unknown;
      try {
        new WebSocketServer({ port: 0, env });
      } catch (thrown) {
        error = thrown;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).toContain('WEBSOCKETS_TLS_CERT');
      expect((error as Error).message).toContain('WEBSOCKETS_TLS_KEY');
    }
  });

  it('leaves a server attached to an http server alone: the http server decides', async () => {
    const certs = await makeTestCertificates();
    const { server: httpServer, port } = await harness.httpServer();
    const attached = harness.attach({ server: httpServer, env: { WEBSOCKETS_TLS_CERT: certs.server.certFile } });
    attached.on('connection', echo);
    const ws = await harness.connect(`ws://127.0.0.1:${port}/`);
    await ws.send('plain');
    expect((await next<[string]>(ws, 'message'))[0]).toBe('plain');
  });
});

describeWithPeers(['openssl', 'python'], 'wss with Python websockets', () => {
  it('our client talks to its wss server', async () => {
    const certs = await makeTestCertificates();
    const python: PythonEchoServer = await startPythonEchoServer({ tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile } });
    closers.push(() => python.stop());
    const ws = await harness.connect(`wss://localhost:${python.port}/`, { ca: certs.ca.cert });
    await ws.send('python over tls');
    expect((await next<[string]>(ws, 'message'))[0]).toBe('python over tls');
  }, 20_000);
});
