/**
 * TLS of a Nest app's WebSocket servers under attack, over real sockets: the own-port listener of a gateway (TLS
 * from WEBSOCKETS_TLS_CERT / _KEY) cuts a stalled TLS handshake, and a stalled request head after it, at
 * `openTimeoutMs` rather than Node's 120 s (TLS) and 60 s (headers), and so does the app's own https server made
 * with `WebSocketsModule.httpsOptions()` (TLS); TLS 1.2 renegotiation is refused on that listener and on the app's
 * own https server, ending the connection while the other clients go on.
 */
import 'reflect-metadata';
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { NestApplicationOptions, Type } from '@nestjs/common';
import { ConnectedSocket, MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { performance } from 'node:perf_hooks';
import type tls from 'node:tls';
import { CloseCode } from '../../lib/protocol/close-codes.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import { WebSocketsModule, type OnWebSocketsDisconnect, type WebSocketsCloseInfo, type WebSocketsGatewayOptions, type WebSocketsModuleOptions } from '../../lib/nest/index.js';
import { closePeers, connectPeer, WAIT_MS } from './ws-peer.js';
import { destroyRawConnections, freePort, rawConnect, renegotiate, waitUntil, type RawConnection } from '../support/net.js';
import { describeWithPeer } from '../support/peers.js';
import { makeTestCertificates, type TestCertificates } from '../support/certs.js';
import { closeNestApps, startNestApp } from '../support/nest-app.js';

const OWN_PORT = await freePort();
/** Short, so that the tests show the bound; the default is 10 s. */
const OPEN_TIMEOUT_MS = 300;

/** Close codes the gateways saw, in order. */
const disconnects: number[] = [];

@WebSocketGateway<WebSocketsGatewayOptions>(OWN_PORT, { path: '/own' })
class OwnPortGateway implements OnWebSocketsDisconnect {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown): unknown {
    return data;
  }
  handleDisconnect(_client: WebSocket, close: WebSocketsCloseInfo): void {
    disconnects.push(close.code);
  }
}

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/app' })
class AppServerGateway implements OnWebSocketsDisconnect {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown, @ConnectedSocket() _client: WebSocket): unknown {
    return data;
  }
  handleDisconnect(_client: WebSocket, close: WebSocketsCloseInfo): void {
    disconnects.push(close.code);
  }
}


async function start(gateways: Type[], options: WebSocketsModuleOptions, appOptions: NestApplicationOptions = {}): Promise<number> {
  return (await startNestApp({ providers: gateways, options: { host: '127.0.0.1', ...options }, appOptions })).port;
}

afterEach(async () => {
  destroyRawConnections();
  await closePeers();
  await closeNestApps();
  disconnects.length = 0;
});

const UPGRADE = (path: string): string =>
  `GET ${path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

/** How long the server takes to close `connection`, from now. */
async function timeToClose(connection: RawConnection): Promise<number> {
  const started = performance.now();
  await connection.readUntilClose(WAIT_MS);
  return performance.now() - started;
}

/** Renegotiates up to 6 times (Node's own limit is 3 per 10 minutes) while the socket is open; how many completed. */
async function renegotiations(connection: RawConnection): Promise<number> {
  let completed = 0;
  for (let i = 0; i < 6 && !connection.closed; i++) if ((await renegotiate(connection.socket as tls.TLSSocket)) === 'done') completed++;
  return completed;
}

describeWithPeer('openssl', 'TLS of a Nest app', () => {
  let certs: TestCertificates;
  let env: Record<string, string>;
  let tls12: tls.ConnectionOptions;
  beforeAll(async () => {
    certs = await makeTestCertificates();
    env = { WEBSOCKETS_TLS_CERT: certs.server.certFile, WEBSOCKETS_TLS_KEY: certs.server.keyFile };
    tls12 = { ca: certs.ca.cert, servername: 'localhost', maxVersion: 'TLSv1.2' };
  });

  describe('a gateway on its own port with TLS', () => {
    it('cuts a client that sends nothing, or half a ClientHello, at openTimeoutMs', async () => {
      await start([OwnPortGateway], { env, openTimeoutMs: OPEN_TIMEOUT_MS });
      const silent = await rawConnect(OWN_PORT);
      const half = await rawConnect(OWN_PORT);
      // A TLS handshake record header that announces 512 bytes, and 10 of them.
      await half.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0, 0, 0, 0]));
      const [silentMs, halfMs] = await Promise.all([timeToClose(silent), timeToClose(half)]);
      for (const elapsed of [silentMs, halfMs]) {
        expect(elapsed).toBeGreaterThanOrEqual(OPEN_TIMEOUT_MS - 50);
        expect(elapsed).toBeLessThan(3000);
      }
      // The listener still serves.
      const peer = await connectPeer(`wss://localhost:${OWN_PORT}/own`, { ca: certs.ca.cert });
      peer.send({ event: 'echo', data: 'after' });
      expect(await peer.next()).toEqual({ event: 'echo', data: 'after' });
    });

    it('cuts a client that completes TLS and then trickles its request head, at openTimeoutMs', async () => {
      await start([OwnPortGateway], { env, openTimeoutMs: OPEN_TIMEOUT_MS });
      const trickler = await rawConnect(OWN_PORT, '127.0.0.1', { tls: { ca: certs.ca.cert, servername: 'localhost' } });
      await trickler.write('GET /own HTTP/1.1\r\nHost: localhost\r\n');
      expect(await timeToClose(trickler)).toBeLessThan(3000);
      expect(trickler.received().includes('HTTP/1.1 101')).toBe(false);
    });

    it('refuses TLS renegotiation before and after the upgrade: that connection ends (1006), the others go on', async () => {
      await start([OwnPortGateway], { env });
      const good = await connectPeer(`wss://localhost:${OWN_PORT}/own`, { ca: certs.ca.cert });
      const before = await rawConnect(OWN_PORT, '127.0.0.1', { tls: tls12 });
      expect(await renegotiations(before)).toBe(0);
      await before.readUntilClose(WAIT_MS);

      const after = await rawConnect(OWN_PORT, '127.0.0.1', { tls: tls12 });
      await after.write(UPGRADE('/own'));
      await after.readUntil((bytes) => bytes.includes('\r\n\r\n'), WAIT_MS, 'the 101');
      expect(after.received().toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);
      expect(await renegotiations(after)).toBe(0);
      await after.readUntilClose(WAIT_MS);
      await waitUntil(() => disconnects.length > 0, WAIT_MS, 'handleDisconnect');
      expect(disconnects).toEqual([CloseCode.ABNORMAL_CLOSURE]);

      good.send({ event: 'echo', data: 'still here' });
      expect(await good.next()).toEqual({ event: 'echo', data: 'still here' });
    });
  });

  describe('a gateway on the app\'s https server', () => {
    it('has its TLS handshake cut at openTimeoutMs when the app took WebSocketsModule.httpsOptions()', async () => {
      const tlsEnv = { ...env, WEBSOCKETS_OPEN_TIMEOUT_MS: String(OPEN_TIMEOUT_MS) };
      const port = await start([AppServerGateway], { env: tlsEnv }, { httpsOptions: WebSocketsModule.httpsOptions(undefined, tlsEnv) });
      const silent = await rawConnect(port);
      const elapsed = await timeToClose(silent);
      expect(elapsed).toBeGreaterThanOrEqual(OPEN_TIMEOUT_MS - 50);
      expect(elapsed).toBeLessThan(3000);
      const peer = await connectPeer(`wss://localhost:${port}/app`, { ca: certs.ca.cert });
      peer.send({ event: 'echo', data: 'after' });
      expect(await peer.next()).toEqual({ event: 'echo', data: 'after' });
    });

    it('refuses TLS renegotiation after the upgrade: that connection ends (1006), the others go on', async () => {
      const port = await start([AppServerGateway], { env }, { httpsOptions: WebSocketsModule.httpsOptions(undefined, env) });
      const good = await connectPeer(`wss://localhost:${port}/app`, { ca: certs.ca.cert });
      const after = await rawConnect(port, '127.0.0.1', { tls: tls12 });
      await after.write(UPGRADE('/app'));
      await after.readUntil((bytes) => bytes.includes('\r\n\r\n'), WAIT_MS, 'the 101');
      expect(after.received().toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);
      expect(await renegotiations(after)).toBe(0);
      await after.readUntilClose(WAIT_MS);
      good.send({ event: 'echo', data: 'still here' });
      expect(await good.next()).toEqual({ event: 'echo', data: 'still here' });
    });
  });
});
