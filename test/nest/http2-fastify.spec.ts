/**
 * A Nest app on `@nestjs/platform-fastify` with `http2: true` (and `allowHTTP1`): its port-less gateway takes
 * WebSockets over HTTP/2 as extended CONNECT streams (RFC 8441) and over HTTP/1.1 upgrades on the app's one TLS
 * port, next to the app's own routes over both protocols. And a gateway on a TLS port of its own with the module's
 * `http2`: both protocols on its listener, any app platform; `http2` on a port-less gateway is refused.
 */
import 'reflect-metadata';
import { afterEach, expect, it } from '@jest/globals';
import { Controller, Get, type INestApplication } from '@nestjs/common';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import WsLibrary from 'ws';
import { connect } from '../../lib/node/client.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import { WebSocketsAdapter, WebSocketsModule, type WebSocketsGatewayOptions, type WebSocketsHandshakeRequest } from '../../lib/nest/index.js';
import { makeTestCertificates } from '../support/certs.js';
import { freePort, withTimeout } from '../support/net.js';
import { describeWithPeer } from '../support/peers.js';

const WAIT_MS = 5000;
const versions: string[] = [];
const OWN_PORT = await freePort();

@WebSocketGateway<WebSocketsGatewayOptions>(OWN_PORT, { path: '/own' })
class OwnPortGateway {
  handleConnection(client: WebSocket): void {
    versions.push(`${client.request?.httpVersion ?? '?'} ${client.request?.method ?? '?'}`);
  }

  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown): unknown {
    return { event: 'echo', data };
  }
}

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/h2', http2: true })
class PortlessHttp2Gateway {}

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/ws' })
class EchoGateway {
  handleConnection(client: WebSocket, request: WebSocketsHandshakeRequest): void {
    versions.push(`${client.request?.httpVersion ?? '?'} ${request.method}`);
  }

  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown): unknown {
    return { event: 'echo', data };
  }
}

@Controller()
class PageController {
  @Get('/')
  page(): string {
    return 'a page';
  }
}

let app: INestApplication | undefined;
const clients: Array<{ terminate(): void }> = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.terminate();
  await app?.close();
  app = undefined;
  versions.length = 0;
});

function nextMessage(ws: WebSocket | WsLibrary): Promise<string> {
  return withTimeout(new Promise((resolve) => ws.once('message', (data: Buffer | string) => resolve(data.toString()))), WAIT_MS, 'a reply');
}

describeWithPeer('openssl', 'Nest on platform-fastify with http2', () => {
  it('serves a port-less gateway over HTTP/2 and HTTP/1.1 on the app\'s port, beside its routes', async () => {
    const certs = await makeTestCertificates();
    const moduleRef = await Test.createTestingModule({
      imports: [WebSocketsModule.forRoot({ pingIntervalMs: null })],
      controllers: [PageController],
      providers: [EchoGateway],
    }).compile();
    app = moduleRef.createNestApplication(
      new FastifyAdapter({ http2: true, https: { allowHTTP1: true, key: certs.server.key, cert: certs.server.cert } }),
      { logger: false },
    );
    app.useWebSocketAdapter(new WebSocketsAdapter(app));
    await app.listen(0, '127.0.0.1');
    const port = ((app.getHttpServer() as http2.Http2SecureServer).address() as AddressInfo).port;
    const ca = certs.ca.cert;

    const overH2 = await connect(`wss://localhost:${port}/ws`, { ca, http2: true, env: {}, pingIntervalMs: null });
    clients.push(overH2);
    void overH2.send(JSON.stringify({ event: 'echo', data: 'over h2' }));
    expect(JSON.parse(await nextMessage(overH2))).toEqual({ event: 'echo', data: 'over h2' });

    const overH1 = new WsLibrary(`wss://localhost:${port}/ws`, { ca });
    clients.push(overH1);
    await withTimeout(new Promise((resolve, reject) => overH1.once('open', resolve).once('error', reject)), WAIT_MS, 'ws open');
    overH1.send(JSON.stringify({ event: 'echo', data: 'over h1' }));
    expect(JSON.parse(await nextMessage(overH1))).toEqual({ event: 'echo', data: 'over h1' });
    expect(versions).toEqual(['2 CONNECT', '1.1 GET']);

    // The app's route, over HTTP/2.
    const session = http2.connect(`https://localhost:${port}`, { ca });
    session.on('error', () => undefined);
    try {
      const stream = session.request({ ':path': '/' });
      stream.setEncoding('utf8');
      let body = '';
      for await (const chunk of stream) body += chunk;
      expect(body).toBe('a page');
    } finally {
      session.destroy();
    }
  });

  it('serves a gateway on its own TLS port over HTTP/2 and HTTP/1.1 with the module\'s http2, and answers plain HTTP/2 requests 426', async () => {
    const certs = await makeTestCertificates();
    const moduleRef = await Test.createTestingModule({
      imports: [WebSocketsModule.forRoot({ pingIntervalMs: null, host: '127.0.0.1', http2: true, tls: { key: certs.server.key, cert: certs.server.cert }, env: {} })],
      providers: [OwnPortGateway],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    app.useWebSocketAdapter(new WebSocketsAdapter(app));
    await app.listen(0, '127.0.0.1');
    const ca = certs.ca.cert;

    const overH2 = await connect(`wss://localhost:${OWN_PORT}/own`, { ca, http2: true, env: {}, pingIntervalMs: null });
    clients.push(overH2);
    void overH2.send(JSON.stringify({ event: 'echo', data: 'over h2' }));
    expect(JSON.parse(await nextMessage(overH2))).toEqual({ event: 'echo', data: 'over h2' });
    const overH1 = new WsLibrary(`wss://localhost:${OWN_PORT}/own`, { ca });
    clients.push(overH1);
    await withTimeout(new Promise((resolve, reject) => overH1.once('open', resolve).once('error', reject)), WAIT_MS, 'ws open');
    overH1.send(JSON.stringify({ event: 'echo', data: 'over h1' }));
    expect(JSON.parse(await nextMessage(overH1))).toEqual({ event: 'echo', data: 'over h1' });
    expect(versions).toEqual(['2 CONNECT', '1.1 GET']);

    const session = http2.connect(`https://localhost:${OWN_PORT}`, { ca });
    session.on('error', () => undefined);
    try {
      const stream = session.request({ ':path': '/' });
      const headers = await withTimeout(new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('response', (received) => resolve(received))), WAIT_MS, 'a response');
      expect(headers[':status']).toBe(426);
      stream.resume();
    } finally {
      session.destroy();
    }
    // app.close() ends the listener with its HTTP/2 sessions (Node's close() alone would wait for them).
    await withTimeout(app.close(), WAIT_MS, 'app.close()');
    app = undefined;
  });

  it('refuses http2 on a gateway without a port (the app\'s server decides)', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [WebSocketsModule.forRoot({ env: {} })], providers: [PortlessHttp2Gateway] }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    app.useWebSocketAdapter(new WebSocketsAdapter(app));
    await expect(app.init()).rejects.toThrow(/^Gateway PortlessHttp2Gateway has the http2 option but no port/);
  });
});
