/**
 * WebSocketsClient in Node against this package's server over real sockets, where the server's side has to be
 * controlled (what it sends, how it closes, how it refuses): the queue and its order after the `'open'` listeners,
 * `maxQueuedBytes`, messages that are not the protocol, replies that settle nothing, close codes that end the client
 * or make it reconnect (1012 at once, `Retry-After` honoured, `maxAttempts`, the reset after a connection that
 * lasted), `auth` and `query` on every attempt, `close()`, and another WHATWG WebSocket (the ws package).
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import WsLibrary from 'ws';
import {
  ClientClosedError,
  ClientConfigError,
  ConnectionLostError,
  InvalidServerMessageError,
  QueueFullError,
  WebSocketsClient,
  type ClientEvents,
  type WebSocketsClientOptions,
} from '../../lib/client/node.js';
import { WebSocketsClient as BrowserClient } from '../../lib/client/websockets-client.js';
import type { WebSocketConstructor } from '../../lib/client/websocket-like.js';
import type { HandshakeInfo } from '../../lib/node/server.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import { CloseCode } from '../../lib/protocol/close-codes.js';
import { withTimeout } from '../support/net.js';
import { Harness, next, WAIT_MS } from '../node/harness.js';

const harness = new Harness();
const clients: Array<WebSocketsClient> = [];
afterEach(async () => {
  const closing = Promise.all(clients.splice(0).map((client) => client.close()));
  await harness.cleanup();
  await closing;
});

/** A client, closed after the test, with `connect()`'s keepalive off and an empty environment. */
function client(url: string, options: WebSocketsClientOptions = {}): WebSocketsClient {
  const created = new WebSocketsClient(url, options);
  clients.push(created);
  return created;
}

/** Every lifecycle event of `target`, in order, as `[name, value]`. */
function record(target: WebSocketsClient): Array<[keyof ClientEvents, unknown]> {
  const seen: Array<[keyof ClientEvents, unknown]> = [];
  for (const name of ['open', 'close', 'reconnecting', 'error', 'exception'] as const) target.on(name, (value: unknown) => seen.push([name, value]));
  return seen;
}

/** The next `event` of `target` (that `accept` takes), within `ms`. */
function nextEvent<K extends keyof ClientEvents>(target: WebSocketsClient, event: K, accept: (value: ClientEvents[K]) => boolean = () => true, ms = WAIT_MS): Promise<ClientEvents[K]> {
  let off: () => void = () => undefined;
  const seen = new Promise<ClientEvents[K]>((resolve) => {
    off = target.on(event, (value: ClientEvents[K]) => {
      if (accept(value)) resolve(value);
    });
  });
  return withTimeout(seen, ms, `client event ${event}`).finally(() => off());
}

/** A server whose connections record what they receive and answer `{ event, data, id }` with the same. */
function echoing(server: import('../../lib/node/server.js').WebSocketServer, received: string[] = []): string[] {
  server.on('connection', (ws: WebSocket) => {
    ws.on('message', (data: string | Buffer) => {
      received.push(String(data));
      void ws.send(String(data)).catch(() => undefined);
    });
  });
  return received;
}

describe('queueing', () => {
  it("sends what was queued while connecting right after the 'open' listeners, which go first", async () => {
    const { server, url } = await harness.listen();
    const received = echoing(server);
    const c = client(`${url}/`);
    c.emit('queued', 1);
    const reply = c.request('asked', 'early');
    c.emit('queued', 2);
    expect(c.queuedBytes).toBe(
      ['{"event":"queued","data":1}', '{"event":"asked","data":"early","id":1}', '{"event":"queued","data":2}'].join('').length,
    );
    c.on('open', () => c.emit('rejoin', 'room'));
    expect(await reply).toBe('early');
    expect(c.queuedBytes).toBe(0);
    expect(received.map((text) => JSON.parse(text) as unknown)).toEqual([
      { event: 'rejoin', data: 'room' },
      { event: 'queued', data: 1 },
      { event: 'asked', data: 'early', id: 1 },
      { event: 'queued', data: 2 },
    ]);
  });

  it('throws QueueFullError from emit() and rejects request() beyond maxQueuedBytes, counting UTF-8 bytes', async () => {
    const { url } = await harness.listen({ handshake: () => new Promise(() => undefined) });
    const c = client(`${url}/`, { maxQueuedBytes: 64 });
    c.emit('é', 'ü'.repeat(10));
    expect(c.queuedBytes).toBe(Buffer.byteLength('{"event":"é","data":"üüüüüüüüüü"}'));
    let thrown: unknown;
    try {
      c.emit('x', 'y'.repeat(40));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(QueueFullError);
    const first = Buffer.byteLength('{"event":"é","data":"üüüüüüüüüü"}');
    const size = first + '{"event":"x","data":""}'.length + 40;
    expect(thrown).toMatchObject({ code: 'WS_ERR_QUEUE_FULL', limit: 64, size });
    expect((thrown as Error).message).toBe(`messages waiting for the connection would take ${size} bytes; the limit is 64 (option maxQueuedBytes)`);
    await expect(c.request('x', 'y'.repeat(40))).rejects.toBeInstanceOf(QueueFullError);
    // What was refused took nothing: the queue is as it was.
    expect(c.queuedBytes).toBe(first);
  });

  it('takes a request that timed out or was aborted out of the queue, so that it is never sent', async () => {
    let release: () => void = () => undefined;
    const { server, url } = await harness.listen({ handshake: () => new Promise<void>((resolve) => (release = resolve)) });
    const received = echoing(server);
    const c = client(`${url}/`);
    const timedOut = c.request('late', 1, { timeoutMs: 50 }).catch((error: unknown) => error);
    const controller = new AbortController();
    const aborted = c.request('aborted', 2, { signal: controller.signal }).catch((error: unknown) => error);
    controller.abort(new Error('user left'));
    expect(await aborted).toEqual(new Error('user left'));
    expect(await timedOut).toMatchObject({ name: 'RequestTimeoutError', code: 'WS_ERR_REQUEST_TIMEOUT', event: 'late', timeoutMs: 50 });
    expect(c.queuedBytes).toBe(0);
    c.emit('after', 3);
    release();
    await nextEvent(c, 'open');
    expect(await c.request('probe', 4)).toBe(4);
    expect(received.map((text) => (JSON.parse(text) as { event: string }).event)).toEqual(['after', 'probe']);
  });
});

describe('what the server sends', () => {
  it('reports what is not a protocol message to error listeners, delivers unmatched ids as events, and not reserved names', async () => {
    const { server, url } = await harness.listen();
    server.on('connection', (ws: WebSocket) => {
      void ws.send('not json');
      void ws.send('[1,2]');
      void ws.send(Buffer.from([1, 2, 3]));
      void ws.send('{"event":"open","data":"spoofed"}');
      void ws.send('{"event":"tick","data":7,"id":999}');
    });
    const c = client(`${url}/`);
    const seen = record(c);
    const ticks: unknown[] = [];
    c.on('tick', (data) => ticks.push(data));
    await withTimeout(new Promise<void>((resolve) => c.on('tick', () => resolve())), WAIT_MS, 'the tick');
    const errors = seen.filter(([name]) => name === 'error').map(([, error]) => error as InvalidServerMessageError);
    expect(errors.map((error) => [error.name, error.data])).toEqual([
      ['InvalidServerMessageError', 'not json'],
      ['InvalidServerMessageError', '[1,2]'],
      ['InvalidServerMessageError', expect.any(ArrayBuffer)],
    ]);
    expect(ticks).toEqual([7]);
    // One 'open', the real one: the server's "open" was not delivered.
    expect(seen.filter(([name]) => name === 'open')).toEqual([['open', { protocol: '', reconnected: false, resumed: false }]]);
    expect(c.state).toBe('open');
  });
});

describe('closes', () => {
  it.each([
    [CloseCode.NORMAL_CLOSURE, false],
    [CloseCode.POLICY_VIOLATION, false],
    [4403, false],
    [CloseCode.GOING_AWAY, true],
    [CloseCode.INTERNAL_ERROR, true],
    [CloseCode.TRY_AGAIN_LATER, true],
    [4429, true],
  ])('after a close with %i from the server, reconnects: %s', async (code, reconnects) => {
    const { server, url } = await harness.listen();
    let connections = 0;
    server.on('connection', (ws: WebSocket) => {
      connections++;
      if (connections === 1) void ws.close(code, 'bye');
    });
    const c = client(`${url}/`, { reconnect: { initialDelayMs: 20 } });
    const seen = record(c);
    const closed = await nextEvent(c, 'close');
    expect(closed).toMatchObject({ code, reason: 'bye', willReconnect: reconnects });
    if (reconnects) {
      await nextEvent(c, 'open');
      expect(connections).toBe(2);
      expect(seen.find(([name]) => name === 'reconnecting')).toEqual(['reconnecting', { attempt: 1, delayMs: expect.any(Number), code, reason: 'bye' }]);
    } else {
      expect(c.state).toBe('closed');
      expect(seen.some(([name]) => name === 'reconnecting')).toBe(false);
      expect(() => c.emit('x', 1)).toThrow(ClientClosedError);
      if (code === 4403) expect(seen).toContainEqual(['error', expect.objectContaining({ name: 'HandshakeRefusedError', status: 403, message: 'bye' })]);
    }
  });

  it('reconnects at once after 1012 (service restart), and rejects what was sent on the lost connection', async () => {
    const { server, url } = await harness.listen();
    let first: WebSocket | undefined;
    server.on('connection', (ws: WebSocket) => {
      first ??= ws;
    });
    const c = client(`${url}/`, { reconnect: { initialDelayMs: 10_000, jitter: 0 } });
    await nextEvent(c, 'open');
    const unanswered = c.request('never', 1).catch((error: unknown) => error);
    await next(first!, 'message');
    const reconnecting = nextEvent(c, 'reconnecting');
    void first!.close(CloseCode.SERVICE_RESTART, 'deploy');
    expect(await reconnecting).toEqual({ attempt: 1, delayMs: 0, code: 1012, reason: 'deploy' });
    const lost = (await unanswered) as ConnectionLostError;
    expect(lost).toBeInstanceOf(ConnectionLostError);
    expect([lost.closeCode, lost.reason, lost.message]).toEqual([1012, 'deploy', 'connection lost (close 1012 deploy)']);
    expect(await nextEvent(c, 'open')).toEqual({ protocol: '', reconnected: true, resumed: false });
  });

  it("waits what a 503's Retry-After asks (up to maxDelayMs), then connects", async () => {
    let refusals = 1;
    const { url } = await harness.listen({
      handshake: () => (refusals-- > 0 ? { reject: { status: 503, body: 'busy', headers: { 'Retry-After': '1' } } } : undefined),
    });
    const c = client(`${url}/`, { reconnect: { initialDelayMs: 10 } });
    const reconnecting = await nextEvent(c, 'reconnecting');
    expect(reconnecting).toEqual({ attempt: 1, delayMs: 1000, code: 1006, reason: '' });
    await nextEvent(c, 'open', undefined, WAIT_MS);
  });

  it('gives up after maxAttempts attempts in a row, and fails what was queued with ConnectionLostError', async () => {
    const { port, server } = await harness.listen();
    await server.close();
    const c = client(`ws://127.0.0.1:${port}/`, { reconnect: { initialDelayMs: 5, maxAttempts: 2 } });
    const seen = record(c);
    const queued = c.request('never', 1).catch((error: unknown) => error);
    const last = await nextEvent(c, 'close', (event) => !event.willReconnect);
    expect(last).toEqual({ code: 1006, reason: '', willReconnect: false });
    expect(seen.filter(([name]) => name === 'reconnecting').map(([, event]) => (event as { attempt: number }).attempt)).toEqual([1, 2]);
    // Node tells what failed, where a browser cannot.
    expect(seen.filter(([name]) => name === 'error').map(([, error]) => (error as { code?: string }).code)).toEqual(['ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED']);
    expect(await queued).toMatchObject({ name: 'ConnectionLostError', closeCode: 1006 });
    expect(c.state).toBe('closed');
  });

  it('starts the backoff again after a connection that stayed open resetAfterMs', async () => {
    const { server, url } = await harness.listen();
    const lifetimes = [0, 0, 300, 0];
    let index = 0;
    server.on('connection', (ws: WebSocket) => {
      const lifetime = lifetimes[index++];
      if (lifetime !== undefined) setTimeout(() => void ws.close(CloseCode.INTERNAL_ERROR), lifetime);
    });
    const c = client(`${url}/`, { reconnect: { initialDelayMs: 5, resetAfterMs: 200 } });
    const attempts: number[] = [];
    c.on('reconnecting', ({ attempt }) => attempts.push(attempt));
    await nextEvent(c, 'open', () => index === 5, 10_000);
    // Quick closes count up; the connection that lasted 300 ms starts the count again.
    expect(attempts).toEqual([1, 2, 1, 2]);
  });
});

describe('credentials and query', () => {
  it('calls auth and query on every attempt; the server sees a bearer token and the query, not the token in the URL', async () => {
    const seen: HandshakeInfo[] = [];
    const { server, url } = await harness.listen({ handshake: (info) => void seen.push(info) });
    server.on('connection', (ws: WebSocket) => {
      if (seen.length === 1) void ws.close(CloseCode.INTERNAL_ERROR);
    });
    let calls = 0;
    let queries = 0;
    const c = client(`${url}/path?fixed=1`, {
      auth: async () => `token-${++calls}`,
      query: () => ({ attempt: ++queries, skipped: undefined, none: null }),
      reconnect: { initialDelayMs: 5 },
    });
    await nextEvent(c, 'open', () => seen.length === 2);
    expect(seen.map((info) => info.headers.get('authorization'))).toEqual(['Bearer token-1', 'Bearer token-2']);
    expect(seen.map((info) => info.target)).toEqual(['/path?fixed=1&attempt=1', '/path?fixed=1&attempt=2']);
    expect(seen.every((info) => !info.target.includes('token'))).toBe(true);
  });

  it('counts an auth function that throws as a failed attempt, reported to error listeners', async () => {
    const { url } = await harness.listen();
    let calls = 0;
    const c = client(`${url}/`, {
      auth: () => {
        if (++calls === 1) throw new Error('token service down');
        return 'ok';
      },
      reconnect: { initialDelayMs: 5 },
    });
    const seen = record(c);
    await nextEvent(c, 'open');
    expect(seen.slice(0, 3)).toEqual([
      ['error', new Error('token service down')],
      ['close', { code: 1006, reason: '', willReconnect: true }],
      ['reconnecting', { attempt: 1, delayMs: expect.any(Number), code: 1006, reason: '' }],
    ]);
  });

  it('checks its options', () => {
    expect(() => new WebSocketsClient('ftp://example.test/')).toThrow(new ClientConfigError('url', 'ftp://example.test/', 'a ws:, wss:, http: or https: URL'));
    expect(() => new WebSocketsClient('ws://127.0.0.1:1/', { requestTimeoutMs: 0 })).toThrow('option requestTimeoutMs must be a number of at least 1; got 0');
    expect(() => new WebSocketsClient('ws://127.0.0.1:1/', { maxQueuedBytes: -1 })).toThrow('option maxQueuedBytes must be a number of at least 0; got -1');
    expect(() => new WebSocketsClient('not a url')).toThrow(new ClientConfigError('url', 'not a url', 'a ws:, wss:, http: or https: URL'));
    // The browser build in Node 20, which has no global WebSocket, needs the option.
    expect(() => new BrowserClient('ws://127.0.0.1:1/')).toThrow('option WebSocket must be a WebSocket class (this platform has none); got undefined');
  });

  it('stops for good when the WebSocket class refuses the URL (a browser throws for ws: from an https page)', async () => {
    class Refusing {
      constructor() {
        throw new Error('SecurityError: insecure WebSocket from a secure page');
      }
    }
    const c = client('ws://127.0.0.1:1/', { WebSocket: Refusing as unknown as WebSocketConstructor });
    const seen = record(c);
    const queued = c.request('x', 1).catch((error: unknown) => error);
    const closed = await nextEvent(c, 'close');
    expect(closed).toEqual({ code: 1006, reason: '', willReconnect: false, error: new Error('SecurityError: insecure WebSocket from a secure page') });
    expect(seen[0]).toEqual(['error', new Error('SecurityError: insecure WebSocket from a secure page')]);
    expect(await queued).toEqual(new Error('SecurityError: insecure WebSocket from a secure page'));
    expect(c.state).toBe('closed');
  });

  it('stops at once for a token that no header can carry, without showing it', async () => {
    const c = client('ws://127.0.0.1:1/', { auth: 'tökén secret' });
    const closed = await nextEvent(c, 'close');
    expect(closed.error).toBeInstanceOf(ClientConfigError);
    expect(closed.error?.message).toBe('option auth must be visible ASCII characters (a bearer token); got "<the token>"');
    expect(c.state).toBe('closed');
  });

  it('calls a once() listener for the next event only', async () => {
    const { server, url } = await harness.listen();
    server.on('connection', (ws: WebSocket) => {
      void ws.send('{"event":"n","data":1}');
      void ws.send('{"event":"n","data":2}');
      void ws.send('{"event":"done"}');
    });
    const c = client(`${url}/`);
    const once: unknown[] = [];
    const all: unknown[] = [];
    c.once('n', (data) => once.push(data));
    c.on('n', (data) => all.push(data));
    await withTimeout(new Promise<void>((resolve) => c.on('done', () => resolve())), WAIT_MS, 'the done event');
    expect([once, all]).toEqual([[1], [1, 2]]);
  });
});

describe('close()', () => {
  it('rejects what waits with ClientClosedError, resolves once closed, and connect() opens the client again', async () => {
    const { server, url } = await harness.listen();
    const received = echoing(server);
    const c = client(`${url}/`);
    await nextEvent(c, 'open');
    const seen = record(c);
    const waiting = c.request('slow', 1, { timeoutMs: 60_000 }).catch((error: unknown) => error);
    await c.close(4000, 'done');
    expect(await waiting).toBeInstanceOf(ClientClosedError);
    expect(c.state).toBe('closed');
    expect(seen).toEqual([['close', { code: 4000, reason: 'done', willReconnect: false }]]);
    await expect(c.request('after', 1)).rejects.toBeInstanceOf(ClientClosedError);
    c.connect();
    expect(c.state).toBe('connecting');
    expect(await c.request('again', 2)).toBe(2);
    expect(received.map((text) => (JSON.parse(text) as { event: string }).event)).toContain('again');
  });

  it('rejects a code the WebSocket refuses, and closes with 1000 all the same', async () => {
    const { server, url } = await harness.listen();
    const serverSide = next<[WebSocket]>(server, 'connection');
    const c = client(`${url}/`);
    await nextEvent(c, 'open');
    const [ws] = await serverSide;
    const closedOnServer = next<[number]>(ws, 'close');
    await expect(c.close(1001)).rejects.toMatchObject({ name: 'InvalidAccessError' });
    expect((await closedOnServer)[0]).toBe(1000);
    expect(c.state).toBe('closed');
  });

  it('during a reconnection wait stops it for good', async () => {
    const { server, url } = await harness.listen();
    let connections = 0;
    server.on('connection', (ws: WebSocket) => {
      connections++;
      void ws.close(CloseCode.GOING_AWAY);
    });
    const c = client(`${url}/`, { reconnect: { initialDelayMs: 300, jitter: 0 } });
    await nextEvent(c, 'reconnecting');
    await c.close();
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect([c.state, connections]).toEqual(['closed', 1]);
  });
});

describe('another WHATWG WebSocket', () => {
  it('works over the ws package', async () => {
    const { server, url } = await harness.listen();
    echoing(server);
    const c = client(`${url}/`, { WebSocket: WsLibrary });
    expect(await c.request('echo', { over: 'ws' })).toEqual({ over: 'ws' });
  });
});
