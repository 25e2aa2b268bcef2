/**
 * The sample on Fastify (`@nestjs/platform-fastify`), tested as on Express, through the testing kit: HTTP routing
 * and 404 next to the gateway, the handshake guard, a TLS app server (https and wss on one port), shutdown (1001 to
 * every client) with an HTTP keep-alive connection open, which must not hold `app.close()` back.
 */
import 'reflect-metadata';
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Test } from '@nestjs/testing';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import http from 'node:http';
import https from 'node:https';
import { HandshakeRefusedError } from '../../lib/client/errors.js';
import { NodeWebSocket } from '../../lib/client/node-websocket.js';
import { CloseCode } from '../../lib/protocol/close-codes.js';
import { startTestingApp, type TestingApp } from '../../lib/testing/index.js';
import { AppModule } from '../../sample/app.module.js';
import { httpAdapterFor, samplePlatform } from '../../sample/platform.js';
import { makeTestCertificates, type TestCertificates } from '../support/certs.js';
import { withTimeout } from '../support/net.js';
import { describeWithPeer } from '../support/peers.js';

const TOKEN = 'fastify-secret';
const saved = process.env.SAMPLE_TOKEN;
let testing: TestingApp | undefined;

afterEach(async () => {
  await testing?.close();
  testing = undefined;
  if (saved === undefined) delete process.env.SAMPLE_TOKEN;
  else process.env.SAMPLE_TOKEN = saved;
});

async function startOnFastify(options: { token?: string; adapter?: FastifyAdapter } = {}): Promise<TestingApp> {
  if (options.token === undefined) delete process.env.SAMPLE_TOKEN;
  else process.env.SAMPLE_TOKEN = options.token;
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
  testing = await startTestingApp(moduleRef, { httpAdapter: options.adapter ?? new FastifyAdapter(), appOptions: { logger: false } });
  return testing;
}

describe('SAMPLE_PLATFORM', () => {
  it('is express by default, fastify when it says so, and an error naming the choices otherwise', () => {
    expect(samplePlatform({})).toBe('express');
    expect(samplePlatform({ SAMPLE_PLATFORM: 'fastify' })).toBe('fastify');
    expect(httpAdapterFor('fastify', undefined)).toBeInstanceOf(FastifyAdapter);
    expect(httpAdapterFor('express', undefined)).toBeUndefined();
    expect(() => samplePlatform({ SAMPLE_PLATFORM: 'koa' })).toThrow('SAMPLE_PLATFORM must be "express" or "fastify"; got "koa"');
  });
});

describe('the sample on Fastify', () => {
  it('serves the page and 404 over HTTP, and the gateway at /ws on the same port; other WebSocket paths get 404', async () => {
    const app = await startOnFastify();
    const page = await fetch(`http://127.0.0.1:${app.port}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await page.text()).toContain('<script type="module" src="/chat.js"></script>');
    expect((await fetch(`http://127.0.0.1:${app.port}/nope`)).status).toBe(404);
    const client = await app.connect('/ws');
    expect(await client.request('echo', { on: 'fastify' })).toEqual({ on: 'fastify' });
    client.emit('join', { room: 'r' });
    expect(await client.next('joined')).toEqual({ room: 'r' });
    const refused = await app.connect('/elsewhere').catch((error: unknown) => error);
    expect((refused as HandshakeRefusedError).status).toBe(404);
  });

  it('runs the handshake guard: 401 without the token, connected with it', async () => {
    const app = await startOnFastify({ token: TOKEN });
    const refused = await app.connect('/ws').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(HandshakeRefusedError);
    expect((refused as HandshakeRefusedError).status).toBe(401);
    const client = await app.connect('/ws', { auth: TOKEN });
    expect(await client.request('echo', 1)).toBe(1);
  });

  it('closes every client with 1001 at shutdown, and an idle HTTP keep-alive connection does not hold it back', async () => {
    const app = await startOnFastify();
    const [first, second] = await Promise.all([app.connect('/ws'), app.connect('/ws')]);
    // An HTTP/1.1 keep-alive connection, left idle after its response.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const status = await new Promise<number>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: app.port, path: '/', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      }).on('error', reject);
    });
    expect(status).toBe(200);
    const idle = Object.values(agent.freeSockets).flat();
    expect(idle).toHaveLength(1);
    const idleClosed = new Promise<void>((resolve) => idle[0]!.once('close', () => resolve()));
    await withTimeout(app.app.close(), 5000, 'app.close() with a keep-alive connection open');
    testing = undefined;
    expect(await first.expectClose(CloseCode.GOING_AWAY)).toEqual({ code: CloseCode.GOING_AWAY, reason: 'server shutting down' });
    await second.expectClose(CloseCode.GOING_AWAY);
    await withTimeout(idleClosed, 5000, 'the keep-alive connection to close');
    agent.destroy();
  });
});

describeWithPeer('openssl', 'the sample on Fastify over TLS', () => {
  let certs: TestCertificates;

  beforeAll(async () => {
    certs = await makeTestCertificates();
  });

  it('serves https and wss on one port with FastifyAdapter({ https })', async () => {
    const app = await startOnFastify({ adapter: new FastifyAdapter({ https: { key: certs.server.key, cert: certs.server.cert } }) });
    const status = await new Promise<number>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: app.port, path: '/', ca: certs.ca.cert }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    });
    expect(status).toBe(200);
    expect(app.url('/ws')).toBe(`wss://127.0.0.1:${app.port}/ws`);
    const client = await app.connect('/ws', { WebSocket: NodeWebSocket.with({ ca: certs.ca.cert }) });
    expect(await client.request('echo', 'secure')).toBe('secure');
  });
});
