/**
 * WebSocketsClient (the Node build) against the real sample app over real sockets, with typed events: requests and
 * their replies (echo, join), many in flight settling out of order, exception frames (a ValidationPipe failure, an
 * unknown event), a timeout, the order of emitted messages, and SAMPLE_TOKEN: the token as `auth`, and a refusal,
 * over HTTP or in-band, that ends the client with HandshakeRefusedError and no reconnection.
 */
import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import {
  HandshakeRefusedError,
  NodeWebSocket,
  RequestTimeoutError,
  ServerExceptionError,
  WebSocketsClient,
  type ClientEvents,
  type WebSocketsClientOptions,
} from '../../lib/client/node.js';
import { AppModule } from '../../sample/app.module.js';
import { WAIT_MS, withTimeout } from '../support/net.js';
import { closeNestApps, startNestApp } from '../support/nest-app.js';

/** What the sample's gateway sends. */
interface SampleServerEvents {
  chat: { room: string; text: string };
  echo: unknown;
  joined: { room: string };
}

/** What it takes: data, or `(data) => reply` for requests. */
interface SampleClientEvents {
  echo: (data: unknown) => unknown;
  'echo-after': (body: { ms: number; data: string }) => string;
  join: (body: { room: string }) => { room: string };
  chat: { room: string; text: string };
  nope: undefined;
}

type SampleClient = WebSocketsClient<SampleServerEvents, SampleClientEvents>;

const TOKEN = 'sample-secret';
const saved = process.env.SAMPLE_TOKEN;
const clients: WebSocketsClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await closeNestApps();
  if (saved === undefined) delete process.env.SAMPLE_TOKEN;
  else process.env.SAMPLE_TOKEN = saved;
});

/** Starts the sample app in this process; resolves with the URL of its gateway. */
async function startSample(token?: string): Promise<string> {
  if (token === undefined) delete process.env.SAMPLE_TOKEN;
  else process.env.SAMPLE_TOKEN = token;
  return (await startNestApp({ imports: [AppModule] })).url('/ws');
}

function client(url: string, options: WebSocketsClientOptions = {}): SampleClient {
  const created = new WebSocketsClient<SampleServerEvents, SampleClientEvents>(url, options);
  clients.push(created);
  return created;
}

function nextEvent<K extends keyof ClientEvents>(target: SampleClient, event: K): Promise<ClientEvents[K]> {
  let off: () => void = () => undefined;
  return withTimeout(new Promise<ClientEvents[K]>((resolve) => (off = target.on(event, resolve))), WAIT_MS, `client event ${event}`).finally(() => off());
}

describe('requests against the sample', () => {
  it('resolve with the data of the reply that carries their id, whatever its event', async () => {
    const c = client(await startSample());
    expect(await c.request('echo', { nested: [1, 2] })).toEqual({ nested: [1, 2] });
    // join answers with the event "joined": the request still gets its data.
    const joined: { room: string } = await c.request('join', { room: 'lobby' });
    expect(joined).toEqual({ room: 'lobby' });
    expect(await Promise.all(['a', 'b', 'c'].map((text) => c.request('echo', text)))).toEqual(['a', 'b', 'c']);
  });

  it('settle out of order when the server answers out of order, each with its own reply', async () => {
    const c = client(await startSample());
    const order: string[] = [];
    const asked = [0, 1, 2, 3, 4, 5, 6, 7].map((i) =>
      c.request('echo-after', { ms: (8 - i) * 40, data: `r${i}` }).then((reply) => {
        order.push(reply);
        return reply;
      }),
    );
    const quick = c.request('echo', 'quick').then((reply) => {
      order.push(String(reply));
      return reply;
    });
    expect(await Promise.all(asked)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7']);
    await quick;
    expect(order).toEqual(['quick', 'r7', 'r6', 'r5', 'r4', 'r3', 'r2', 'r1', 'r0']);
  });

  it('reject with ServerExceptionError for a ValidationPipe failure and for an unknown event', async () => {
    const c = client(await startSample());
    const invalid = (await c.request('join', { room: '' }).catch((error: unknown) => error)) as ServerExceptionError;
    expect(invalid).toBeInstanceOf(ServerExceptionError);
    expect({ ...invalid, message: invalid.message }).toMatchObject({
      code: 'WS_ERR_SERVER_EXCEPTION',
      event: 'join',
      status: 'error',
      statusCode: 400,
      message: 'room must be longer than or equal to 1 characters',
      messages: ['room must be longer than or equal to 1 characters'],
      data: { status: 'error', statusCode: 400, error: 'Bad Request', message: ['room must be longer than or equal to 1 characters'] },
    });
    const unknown = (await c.request('nope').catch((error: unknown) => error)) as ServerExceptionError;
    expect([unknown.name, unknown.message, unknown.statusCode, unknown.event]).toEqual(['ServerExceptionError', 'unknown event "nope"', undefined, 'nope']);
    // The connection is fine afterwards.
    expect(await c.request('echo', 'still here')).toBe('still here');
  });

  it('reject with RequestTimeoutError when no reply comes (chat answers nothing)', async () => {
    const c = client(await startSample(), { requestTimeoutMs: 150 });
    await c.request('join', { room: 'quiet' });
    const started = Date.now();
    const timedOut = (await c.request('chat', { room: 'quiet', text: 'hello?' }).catch((error: unknown) => error)) as RequestTimeoutError;
    expect(timedOut).toBeInstanceOf(RequestTimeoutError);
    expect([timedOut.event, timedOut.timeoutMs]).toEqual(['chat', 150]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    const own = (await c.request('chat', { room: 'quiet', text: 'again' }, { timeoutMs: 30 }).catch((error: unknown) => error)) as RequestTimeoutError;
    expect(own.message).toBe('no reply to "chat" within 30 ms (option requestTimeoutMs, or request(..., { timeoutMs }))');
  });
});

describe('events from the sample', () => {
  it("deliver a room's chat in the order it was emitted, and an emit's exception frame to 'exception'", async () => {
    const url = await startSample();
    const [alice, bob] = [client(url), client(url)];
    await Promise.all([alice.request('join', { room: 'r' }), bob.request('join', { room: 'r' })]);
    const received: string[] = [];
    const all = new Promise<void>((resolve) =>
      bob.on('chat', ({ room, text }) => {
        expect(room).toBe('r');
        received.push(text);
        if (received.length === 200) resolve();
      }),
    );
    const sent = Array.from({ length: 200 }, (_, i) => `m${i}`);
    for (const text of sent) alice.emit('chat', { room: 'r', text });
    await withTimeout(all, WAIT_MS, '200 chat messages');
    expect(received).toEqual(sent);

    const exception = nextEvent(alice, 'exception');
    alice.emit('join', { room: '' });
    expect(await exception).toEqual({ status: 'error', statusCode: 400, error: 'Bad Request', message: ['room must be longer than or equal to 1 characters'] });
  });
});

describe('SAMPLE_TOKEN', () => {
  it('lets a client with the token as auth in (the guard reads Authorization: Bearer)', async () => {
    const c = client(await startSample(TOKEN), { auth: TOKEN });
    expect(await c.request('echo', 'authorized')).toBe('authorized');
    expect(c.state).toBe('open');
  });

  it.each([
    ['over HTTP (a Node client sends no Origin)', undefined],
    ['in-band (a client with an Origin, as a browser)', NodeWebSocket.with({ origin: 'http://127.0.0.1' })],
  ])('refuses a wrong token %s: HandshakeRefusedError(401), closed for good, and what waited fails with it', async (_how, WebSocket) => {
    const c = client(await startSample(TOKEN), { auth: 'wrong', ...(WebSocket === undefined ? {} : { WebSocket }) });
    const reconnecting: unknown[] = [];
    c.on('reconnecting', (event) => reconnecting.push(event));
    const waiting = c.request('echo', 'never').catch((error: unknown) => error);
    const closed = await nextEvent(c, 'close');
    expect(closed).toEqual({ code: 4401, reason: 'missing or wrong token', willReconnect: false, error: expect.any(HandshakeRefusedError) });
    const refused = (await waiting) as HandshakeRefusedError;
    expect([refused.name, refused.code, refused.status, refused.message]).toEqual(['HandshakeRefusedError', 'WS_ERR_HANDSHAKE_REFUSED', 401, 'missing or wrong token']);
    expect(c.state).toBe('closed');
    expect(reconnecting).toEqual([]);
  });
});

describe('typed events', () => {
  it('type the data of emit() and request() and what request() resolves with', () => {
    const check = (c: SampleClient): void => {
      // @ts-expect-error: join takes { room }
      void c.request('join', { rooms: 'x' });
      // @ts-expect-error: no such client event
      c.emit('leave', {});
      // @ts-expect-error: chat is { room, text }
      c.emit('chat', 'text');
      // @ts-expect-error: a server event that does not exist
      c.on('typing', () => undefined);
      c.on('chat', (message) => message.text.toUpperCase());
      void c.request('echo-after', { ms: 1, data: 'x' }).then((reply: string) => reply.length);
    };
    expect(typeof check).toBe('function');
  });
});
