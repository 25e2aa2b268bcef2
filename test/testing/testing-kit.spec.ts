/**
 * The testing kit (`nestjs-websockets/testing`) used as an app's tests would use it: the sample app started from a
 * TestingModule in one line, its gateway driven by `TestClient` (request, next, expectClose), gateways on ports of
 * their own moved to ephemeral ports, and an app that imports WebSocketsModule served without useWebSocketAdapter().
 */
import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { HandshakeRefusedError, ServerExceptionError } from '../../lib/client/errors.js';
import { CloseCode } from '../../lib/protocol/close-codes.js';
import { WebSocketsService } from '../../lib/nest/index.js';
import { TestClient, startTestingApp, type TestingApp } from '../../lib/testing/index.js';
import { AppModule } from '../../sample/app.module.js';
import { ADMIN_PORT, EVENTS_PORT, OwnPortAppModule, OwnPortAppWithoutModule } from './fixtures/own-port-app.js';

const TOKEN = 'kit-secret';
const saved = process.env.SAMPLE_TOKEN;
let testing: TestingApp | undefined;
let plain: INestApplication | undefined;

afterEach(async () => {
  await testing?.close();
  testing = undefined;
  await plain?.close();
  plain = undefined;
  if (saved === undefined) delete process.env.SAMPLE_TOKEN;
  else process.env.SAMPLE_TOKEN = saved;
});

async function startSample(token?: string): Promise<TestingApp> {
  if (token === undefined) delete process.env.SAMPLE_TOKEN;
  else process.env.SAMPLE_TOKEN = token;
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
  testing = await startTestingApp(moduleRef, { appOptions: { logger: false } });
  return testing;
}

describe('the testing kit on the sample app', () => {
  it('answers request() with the reply, and next() with the messages that answer no request, in order', async () => {
    const sample = await startSample();
    const client = await sample.connect('/ws');
    expect(await client.request('echo', { n: 1 })).toEqual({ n: 1 });
    // join and chat reply with events of their own: next() finds them, even when they came before it was called.
    client.emit('join', { room: 'r1' });
    client.emit('chat', { room: 'r1', text: 'hello' });
    expect(await client.next('joined')).toEqual({ room: 'r1' });
    expect(await client.next('chat')).toEqual({ room: 'r1', text: 'hello' });
  });

  it('reaches every member of a room, and no one else', async () => {
    const sample = await startSample();
    const [alice, bob, eve] = await Promise.all([sample.connect('/ws'), sample.connect('/ws'), sample.connect('/ws')]);
    await alice.request('join', { room: 'r1' });
    await bob.request('join', { room: 'r1' });
    alice.emit('chat', { room: 'r1', text: 'hi' });
    expect(await bob.next('chat')).toEqual({ room: 'r1', text: 'hi' });
    expect(await alice.next('chat')).toEqual({ room: 'r1', text: 'hi' });
    await expect(eve.next('chat', { timeoutMs: 200 })).rejects.toThrow('no "chat" message within 200 ms (received: nothing)');
  });

  it('rejects request() with the validation error of the exception frame', async () => {
    const sample = await startSample();
    const client = await sample.connect('/ws');
    const failure = await client.request('join', { room: '' }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ServerExceptionError);
    expect((failure as ServerExceptionError).data).toMatchObject({ statusCode: 400, message: ['room must be longer than or equal to 1 characters'] });
  });

  it('rejects connect() with the HTTP status of a refused handshake, and connects with the token as auth', async () => {
    const sample = await startSample(TOKEN);
    const refused = await sample.connect('/ws').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(HandshakeRefusedError);
    expect((refused as HandshakeRefusedError).status).toBe(401);
    const client = await sample.connect('/ws', { auth: TOKEN });
    expect(await client.request('echo', 'in')).toBe('in');
  });

  it('expectClose() resolves with the close code of a shutdown, and says which code came instead of the one expected', async () => {
    const sample = await startSample();
    const [first, second] = await Promise.all([sample.connect('/ws'), sample.connect('/ws')]);
    await sample.app.close();
    expect(await first.expectClose(CloseCode.GOING_AWAY)).toEqual({ code: CloseCode.GOING_AWAY, reason: 'server shutting down' });
    await expect(second.expectClose(CloseCode.NORMAL_CLOSURE)).rejects.toThrow('expected close code 1000, got 1001 (server shutting down)');
    testing = undefined;
  });

  it('next() fails at once when the connection closes while it waits', async () => {
    const sample = await startSample();
    const client = await sample.connect('/ws');
    const failed = expect(client.next('never')).rejects.toThrow('no "never" message before the connection closed with 1001 (received: nothing)');
    await sample.app.close();
    testing = undefined;
    await failed;
  });
});

describe('gateways on ports of their own', () => {
  it('listen on ports the system picks; the kit finds each by the port its decorator names', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [OwnPortAppModule] }).compile();
    testing = await startTestingApp(moduleRef, { appOptions: { logger: false } });
    const servers = testing
      .servers()
      .map(({ declaredPort, port, path }) => ({ declaredPort, path, moved: port !== declaredPort, port }))
      .sort((a, b) => a.declaredPort - b.declaredPort);
    expect(servers.map(({ declaredPort, path, moved }) => ({ declaredPort, path, moved }))).toEqual([
      { declaredPort: 0, path: '/app', moved: true },
      { declaredPort: EVENTS_PORT, path: '/events', moved: true },
      { declaredPort: ADMIN_PORT, path: '/admin', moved: true },
    ]);
    expect(testing.portOf(0)).toBe(testing.port);
    expect(new Set([testing.portOf(EVENTS_PORT), testing.portOf(ADMIN_PORT), testing.port]).size).toBe(3);
    // WebSocketsService reports the same ports.
    const service = testing.app.get(WebSocketsService);
    expect(service.servers().map((server) => server.port).sort()).toEqual(servers.map((server) => server.port).sort());
    const events = await testing.connect('/events', { port: EVENTS_PORT });
    const admin = await testing.connect('/admin', { port: ADMIN_PORT });
    const app = await testing.connect('/app');
    expect([await events.request('where'), await admin.request('where'), await app.request('where')]).toEqual(['events', 'admin', 'app']);
    expect(() => testing!.url('/x', 9999)).toThrow(`no gateway declared on port 9999 (gateways with a port of their own: ${EVENTS_PORT}, ${ADMIN_PORT})`);
    admin.emit('kick', 4001);
    expect(await admin.expectClose(4001)).toEqual({ code: 4001, reason: 'kicked' });
  });

  it('take their ports from WEBSOCKETS_GATEWAY_PORTS in an app (the mapping of the module)', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [OwnPortAppModule] }).compile();
    // The kit's own default ({ '*': 0 }) is what the app's environment would say here too.
    testing = await startTestingApp(moduleRef, { appOptions: { logger: false }, adapterOptions: { env: { WEBSOCKETS_GATEWAY_PORTS: `${ADMIN_PORT}=0,*=0` } } });
    expect(testing.servers().every((server) => server.port !== server.declaredPort)).toBe(true);
    const admin = await testing.connect('/admin', { port: ADMIN_PORT });
    expect(await admin.request('where')).toBe('admin');
  });
});

describe('an app that imports WebSocketsModule', () => {
  it('serves its gateways with WebSocketsAdapter without useWebSocketAdapter(), from a TestingModule', async () => {
    process.env.WEBSOCKETS_GATEWAY_PORTS = '*=0';
    try {
      const moduleRef = await Test.createTestingModule({ imports: [OwnPortAppModule] }).compile();
      plain = moduleRef.createNestApplication({ logger: false });
      await plain.listen(0, '127.0.0.1');
    } finally {
      delete process.env.WEBSOCKETS_GATEWAY_PORTS;
    }
    const service = plain.get(WebSocketsService);
    const events = service.servers().find((server) => server.declaredPort === EVENTS_PORT);
    expect(events?.port).not.toBe(EVENTS_PORT);
    const client = await TestClient.connect(`ws://127.0.0.1:${events!.port}/events`);
    expect(await client.request('where')).toBe('events');
    await client.close();
  });

  it('changes nothing for an app without the module: Nest falls back to socket.io, as before', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [OwnPortAppWithoutModule] }).compile();
    plain = moduleRef.createNestApplication({ logger: false });
    // @nestjs/platform-socket.io is a dev dependency here, so Nest's fallback loads instead of failing.
    process.env.WEBSOCKETS_GATEWAY_PORTS = '*=0';
    await plain.init();
    const adapter = (plain as unknown as { config: { getIoAdapter(): object } }).config.getIoAdapter();
    expect(adapter.constructor.name).toBe('IoAdapter');
  });
});
