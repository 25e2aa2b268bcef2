/**
 * Gateways on their own port (several paths on one listener, 426 for plain HTTP, 404 for an unknown path), TLS on
 * an own port and on the app's server from the WEBSOCKETS_TLS_* files, start-up errors for a namespace and one
 * warning for socket.io-only options, and forceCloseConnections.
 */
import 'reflect-metadata';
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { INestApplication, NestApplicationOptions, Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { ConnectedSocket, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { CloseCode } from '../../lib/protocol/close-codes.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import { ConfigError } from '../../lib/errors.js';
import { WebSocketsAdapter, WebSocketsModule, WebSocketsService, type WebSocketsGatewayOptions, type WebSocketsModuleOptions } from '../../lib/nest/index.js';
import { closePeers, connectPeer, refusal, WAIT_MS } from './ws-peer.js';
import { destroyRawConnections, freePort, rawConnect, withTimeout } from '../support/net.js';
import { describeWithPeer } from '../support/peers.js';
import { makeTestCertificates, type TestCertificates } from '../support/certs.js';
import { CapturingLogger, closeNestApps, startNestApp, trackNestApp } from '../support/nest-app.js';

const OWN_PORT = await freePort();

@WebSocketGateway<WebSocketsGatewayOptions>(OWN_PORT, { path: '/a' })
class GatewayA {
  @SubscribeMessage('where')
  where(@ConnectedSocket() client: WebSocket): string {
    return `a ${client.request?.path} ${(client.data as { secure: boolean }).secure ? 'secure' : 'plain'}`;
  }
}

@WebSocketGateway<WebSocketsGatewayOptions>(OWN_PORT, { path: '/b' })
class GatewayB {
  @SubscribeMessage('where')
  where(): string {
    return 'b';
  }
}

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/app' })
class AppServerGateway {
  @SubscribeMessage('where')
  where(): string {
    return 'app';
  }
}

@WebSocketGateway({ path: '/io', namespace: 'chat' })
class NamespacedGateway {}

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/tls', tls: { key: 'not read', cert: 'not read' } })
class TlsWithoutPortGateway {}

@WebSocketGateway({ path: '/io1', cors: { origin: '*' }, transports: ['websocket'] })
class SocketIoGateway1 {}

@WebSocketGateway({ path: '/io2', cors: true })
class SocketIoGateway2 {}


let app: INestApplication | undefined;

async function start(
  gateways: Type[],
  options: WebSocketsModuleOptions = {},
  appOptions: NestApplicationOptions = {},
): Promise<{ port: number; app: INestApplication }> {
  const started = await startNestApp({ providers: gateways, options, appOptions });
  app = started.app;
  return { port: started.port, app };
}

afterEach(async () => {
  destroyRawConnections();
  await closePeers();
  await closeNestApps();
  app = undefined;
});

describe('gateways on their own port', () => {
  it('serves several paths on one listener, next to the app server, and lists both ports', async () => {
    const { port, app } = await start([GatewayA, GatewayB, AppServerGateway], { host: '127.0.0.1' });
    const a = await connectPeer(`ws://127.0.0.1:${OWN_PORT}/a`);
    a.send({ event: 'where' });
    expect(await a.next()).toEqual({ event: 'where', data: 'a /a plain' });
    const b = await connectPeer(`ws://127.0.0.1:${OWN_PORT}/b/?q=1`);
    b.send({ event: 'where' });
    expect(await b.next()).toEqual({ event: 'where', data: 'b' });
    const onApp = await connectPeer(`ws://127.0.0.1:${port}/app`);
    onApp.send({ event: 'where' });
    expect(await onApp.next()).toEqual({ event: 'where', data: 'app' });
    expect((await refusal(`ws://127.0.0.1:${OWN_PORT}/c`)).status).toBe(404);
    expect((await refusal(`ws://127.0.0.1:${port}/a`)).status).toBe(404);
    const servers = app.get(WebSocketsService).servers();
    expect(servers.map(({ port: p, path, connections }) => `${p}${path} ${connections}`).sort()).toEqual(
      [`${OWN_PORT}/a 1`, `${OWN_PORT}/b 1`, `${port}/app 1`].sort(),
    );
    expect(servers.find((server) => server.path === '/a')?.server.address()?.port).toBe(OWN_PORT);
  });

  it('logs a request for a path no gateway owns as such, with the client address, not as a gateway\'s refusal', async () => {
    const logger = new CapturingLogger();
    // A routine event: logged (at verbose) only with verboseLogs (see test/nest/websockets-logs.spec.ts).
    const { port } = await start([AppServerGateway], { verboseLogs: true }, { logger });
    expect((await refusal(`ws://127.0.0.1:${port}/nowhere?x=1`)).status).toBe(404);
    const lines = logger.entries.filter((line) => line.message.includes('404')).map((line) => `${line.level}: ${line.message}`);
    // Regression: it said "Gateway AppServerGateway: handshake refused with 404 (...) from a client".
    expect(lines).toEqual(['verbose: no gateway at /nowhere: refused with 404 (from 127.0.0.1)']);
  });

  it('answers a plain HTTP request on a WebSocket-only port with 426, Upgrade: websocket and the Server header', async () => {
    await start([GatewayA], { host: '127.0.0.1', serverHeader: 'chat/2' });
    const response = await fetch(`http://127.0.0.1:${OWN_PORT}/a`);
    expect(response.status).toBe(426);
    expect(response.headers.get('upgrade')).toBe('websocket');
    // Every refusal carries it (regression: the 426 had none).
    expect(response.headers.get('server')).toBe('chat/2');
    expect(await response.text()).toBe('This port serves WebSocket connections only.\n');
  });

  it('cuts a client that trickles its request head (or sends nothing) at openTimeoutMs, not Node\'s 60 s', async () => {
    await start([GatewayA], { host: '127.0.0.1', openTimeoutMs: 300 });
    const trickler = await rawConnect(OWN_PORT);
    const silent = await rawConnect(OWN_PORT);
    await trickler.write('GET /a HTTP/1.1\r\nHost: localhost\r\n');
    const started = performance.now();
    await Promise.all([trickler.readUntilClose(WAIT_MS), silent.readUntilClose(WAIT_MS)]);
    expect(performance.now() - started).toBeLessThan(3000);
    expect(trickler.received().includes('HTTP/1.1 101')).toBe(false);
    const peer = await connectPeer(`ws://127.0.0.1:${OWN_PORT}/a`);
    peer.send({ event: 'where' });
    expect(await peer.next()).toEqual({ event: 'where', data: 'a /a plain' });
  });

  it('closes its listener on app.close(): the port is free again and clients got 1001', async () => {
    await start([GatewayA], { host: '127.0.0.1' });
    const peer = await connectPeer(`ws://127.0.0.1:${OWN_PORT}/a`);
    await app!.close();
    app = undefined;
    expect((await peer.closed).code).toBe(CloseCode.GOING_AWAY);
    await expect(fetch(`http://127.0.0.1:${OWN_PORT}/a`)).rejects.toThrow();
  });

  it('with forceCloseConnections, sends 1001 and does not wait for the clients', async () => {
    await start([AppServerGateway], { closeTimeoutMs: 60_000 }, { forceCloseConnections: true });
    const port = (app!.getHttpServer().address() as AddressInfo).port;
    // A client that never answers the close frame: without forcing, close() would wait closeTimeoutMs.
    const peer = await connectPeer(`ws://127.0.0.1:${port}/app`);
    peer.ws.pause();
    const started = performance.now();
    await app!.close();
    app = undefined;
    expect(performance.now() - started).toBeLessThan(5000);
    peer.ws.resume();
    expect([CloseCode.GOING_AWAY, CloseCode.ABNORMAL_CLOSURE]).toContain((await peer.closed).code);
  });
});

describe('start-up', () => {
  it('fails with a clear error for a namespace', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [WebSocketsModule.forRoot({ env: {} })], providers: [NamespacedGateway] }).compile();
    app = trackNestApp(moduleRef.createNestApplication({ logger: false }));
    app.useWebSocketAdapter(new WebSocketsAdapter(app));
    const error = await app.init().then(
      () => undefined,
      (failure: unknown) => failure as Error,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect(error?.message).toBe(
      'Gateway NamespacedGateway has a namespace ("/chat"), which only socket.io supports; remove the namespace option ' +
        "and give each gateway its own path instead (@WebSocketGateway({ path: '/chat' }))",
    );
  });

  it('refuses a gateway with tls and no port (it would serve plain ws on the app server), saying where TLS goes', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [WebSocketsModule.forRoot({ env: {} })], providers: [TlsWithoutPortGateway] }).compile();
    app = trackNestApp(moduleRef.createNestApplication({ logger: false }));
    app.useWebSocketAdapter(new WebSocketsAdapter(app));
    const error = await app.init().then(
      () => undefined,
      (failure: unknown) => failure as Error,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect(error?.message).toBe(
      "Gateway TlsWithoutPortGateway has tls options but no port: it shares the app's server, whose TLS is the app's; " +
        'configure TLS on the app (NestFactory.create(AppModule, { httpsOptions: WebSocketsModule.httpsOptions() })) or give the gateway a port',
    );
  });

  it('warns once per socket.io-only option, through Nest\'s Logger', async () => {
    const logger = new CapturingLogger();
    await start([SocketIoGateway1, SocketIoGateway2], {}, { logger });
    const warnings = logger.entries.filter((line) => line.level === 'warn').map((line) => line.message);
    expect(warnings.sort()).toEqual(
      [
        'Gateway SocketIoGateway1: option transports is for socket.io and is ignored by WebSocketsAdapter',
        expect.stringMatching(/^Gateway SocketIoGateway\d: option cors is for socket.io and is ignored by WebSocketsAdapter; the equivalent here is allowedOrigins$/),
      ],
    );
  });

  it('logs an error that names the port, the cause and the fix when an own port is taken', async () => {
    const blocker = net.createServer();
    blocker.listen(OWN_PORT, '127.0.0.1');
    await once(blocker, 'listening');
    try {
      const logger = new CapturingLogger();
      await start([GatewayA], { host: '127.0.0.1' }, { logger });
      const error = await withTimeout(
        (async () => {
          for (;;) {
            const line = logger.entries.find((entry) => entry.level === 'error');
            if (line !== undefined) return line.message;
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
        })(),
        WAIT_MS,
        'the listen error',
      );
      expect(error).toBe(
        `Gateway GatewayA: cannot listen on 127.0.0.1:${OWN_PORT}: listen EADDRINUSE: address already in use 127.0.0.1:${OWN_PORT}; ` +
          'stop what holds the port, or give the gateway another one (@WebSocketGateway(port, ...)) or the module another host ' +
          '(option host, env WEBSOCKETS_HOST)',
      );
    } finally {
      blocker.close();
      await once(blocker, 'close');
    }
  });
});

describeWithPeer('openssl', 'TLS', () => {
  let certs: TestCertificates;
  beforeAll(async () => {
    certs = await makeTestCertificates();
  });

  it('serves wss on an own port with the certificate and key from WEBSOCKETS_TLS_CERT / _KEY', async () => {
    const env = { WEBSOCKETS_TLS_CERT: certs.server.certFile, WEBSOCKETS_TLS_KEY: certs.server.keyFile };
    const { app } = await start([GatewayA], { env, host: '127.0.0.1' });
    const peer = await connectPeer(`wss://localhost:${OWN_PORT}/a`, { ca: certs.ca.cert });
    peer.send({ event: 'where' });
    expect(await peer.next()).toEqual({ event: 'where', data: 'a /a secure' });
    expect(app.get(WebSocketsService).servers()[0]?.secure).toBe(true);
    // A client that does not trust the CA is refused by TLS.
    await expect(connectPeer(`wss://localhost:${OWN_PORT}/a`)).rejects.toThrow(/self-signed|unable to verify|certificate/i);
  });

  it('serves wss on the app server created with WebSocketsModule.httpsOptions()', async () => {
    const env = { WEBSOCKETS_TLS_CERT: certs.server.certFile, WEBSOCKETS_TLS_KEY: certs.server.keyFile };
    const httpsOptions = WebSocketsModule.httpsOptions(undefined, env);
    const { port, app } = await start([AppServerGateway], { env }, { httpsOptions });
    const peer = await connectPeer(`wss://localhost:${port}/app`, { ca: certs.ca.cert });
    peer.send({ event: 'where' });
    expect(await peer.next()).toEqual({ event: 'where', data: 'app' });
    expect(app.get(WebSocketsService).servers()[0]?.secure).toBe(true);
  });
});
