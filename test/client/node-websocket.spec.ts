/**
 * NodeWebSocket, the WHATWG-style WebSocket of the client SDK in Node, against this package's server: events as a
 * browser gives them (on* handlers and addEventListener), text and binary, close codes; what a browser cannot give
 * (the error, an HTTP 4xx refusal as 4000 + status, Retry-After); close() during CONNECTING, and the checks a
 * browser makes on close() and on the URL.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { NodeWebSocket, type NodeWebSocketEvent } from '../../lib/client/node-websocket.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import { withTimeout } from '../support/net.js';
import { Harness, next, WAIT_MS } from '../node/harness.js';

const harness = new Harness();
const sockets: NodeWebSocket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) if (socket.readyState < NodeWebSocket.CLOSING) socket.close();
  await harness.cleanup();
});

function open(url: string, protocols?: string | string[], options = {}): NodeWebSocket {
  const socket = new NodeWebSocket(url, protocols, { pingIntervalMs: null, env: {}, ...options });
  sockets.push(socket);
  return socket;
}

/** The next event of `type`, through addEventListener. */
function nextOf(socket: NodeWebSocket, type: string): Promise<NodeWebSocketEvent> {
  return withTimeout(new Promise((resolve) => socket.addEventListener(type, (event) => resolve(event as NodeWebSocketEvent), { once: true })), WAIT_MS, `event ${type}`);
}

describe('NodeWebSocket', () => {
  it('opens, sends and receives text and binary, and closes with a code the server sees', async () => {
    const { server, url } = await harness.listen({ subprotocols: ['chat'] });
    server.on('connection', (ws: WebSocket) => {
      ws.on('message', (data: string | Buffer, isBinary: boolean) => void ws.send(data, { binary: isBinary }));
    });
    const serverClose = next<[WebSocket]>(server, 'connection').then(([ws]) => next<[number, string]>(ws, 'close'));
    const socket = open(`${url}/`, ['chat', 'other']);
    const types: string[] = [];
    socket.onopen = (event) => types.push(event.type);
    expect(socket.readyState).toBe(NodeWebSocket.CONNECTING);
    expect(() => socket.send('too early')).toThrow('send() before the connection is open');
    await nextOf(socket, 'open');
    expect([socket.readyState, socket.protocol, socket.url, types]).toEqual([NodeWebSocket.OPEN, 'chat', `${url}/`, ['open']]);
    socket.send('héllo');
    expect((await nextOf(socket, 'message')).data).toBe('héllo');
    socket.send(new Uint8Array([0, 1, 255]));
    const binary = (await nextOf(socket, 'message')).data;
    expect(binary).toBeInstanceOf(ArrayBuffer);
    expect([...new Uint8Array(binary as ArrayBuffer)]).toEqual([0, 1, 255]);
    const closed = nextOf(socket, 'close');
    socket.close(4001, 'bye');
    expect(socket.readyState).toBe(NodeWebSocket.CLOSING);
    expect(await closed).toMatchObject({ type: 'close', code: 4001, reason: 'bye', wasClean: true });
    expect(await serverClose).toEqual([4001, 'bye']);
    expect(socket.readyState).toBe(NodeWebSocket.CLOSED);
    // After the close a send is dropped, as in a browser.
    expect(() => socket.send('late')).not.toThrow();
  });

  it('reports an HTTP 4xx refusal as 4000 + status with the body as reason, and a 503 with its Retry-After', async () => {
    const { url } = await harness.listen({
      handshake: (info) =>
        info.path === '/busy'
          ? { reject: { status: 503, body: 'busy', headers: { 'Retry-After': '7' } } }
          : { reject: { status: 403, body: 'not you' } },
    });
    const forbidden = open(`${url}/private`);
    const [error, closed] = [nextOf(forbidden, 'error'), nextOf(forbidden, 'close')];
    expect((await error).error).toMatchObject({ name: 'InvalidStatusError', status: 403 });
    expect(await closed).toMatchObject({ code: 4403, reason: 'not you', wasClean: false });
    const busy = open(`${url}/busy`);
    expect(await nextOf(busy, 'close')).toMatchObject({ code: 1006, reason: '', retryAfterMs: 7000 });
  });

  it('reports a connection that cannot be made with its error and 1006', async () => {
    const { server, port } = await harness.listen();
    await server.close();
    const socket = open(`ws://127.0.0.1:${port}/`);
    const seen: string[] = [];
    socket.onerror = (event) => seen.push(`error ${String((event.error as { code?: string }).code)}`);
    socket.onclose = (event) => seen.push(`close ${event.code}`);
    await nextOf(socket, 'close');
    expect(seen).toEqual(['error ECONNREFUSED', 'close 1006']);
  });

  it('fails the connection at once when closed during CONNECTING, and cuts a handshake that succeeds later', async () => {
    let release: () => void = () => undefined;
    let reached: () => void = () => undefined;
    const inHook = new Promise<void>((resolve) => (reached = resolve));
    const { server, url } = await harness.listen({
      handshake: () =>
        new Promise<void>((resolve) => {
          release = resolve;
          reached();
        }),
    });
    const socket = open(`${url}/`);
    await withTimeout(inHook, WAIT_MS, 'the handshake hook');
    const opened: unknown[] = [];
    socket.onopen = (event) => opened.push(event);
    const connected = next<[WebSocket]>(server, 'connection');
    socket.close();
    expect(await nextOf(socket, 'close')).toMatchObject({ code: 1006, wasClean: false });
    release();
    const [ws] = await connected;
    expect((await next<[number, string]>(ws, 'close'))[0]).toBe(1006);
    expect(opened).toEqual([]);
  });

  it('checks close() and the URL as a browser does, and with() passes connect() options', async () => {
    const { url } = await harness.listen({ handshake: (info) => ({ reject: { status: 401, body: String(info.headers.get('x-app')) } }) });
    expect(() => new NodeWebSocket('not a url')).toThrow(SyntaxError);
    expect(() => new NodeWebSocket(`${url}/`, ['chat', 'chat'])).toThrow('invalid WebSocket URL or subprotocols: subprotocol chat is offered twice');
    expect(() => new NodeWebSocket(`${url}/`, 'a b')).toThrow(SyntaxError);
    const socket = open(`${url}/`);
    const thrown = (fn: () => void): unknown => {
      try {
        fn();
      } catch (error) {
        return error;
      }
      return undefined;
    };
    expect(thrown(() => socket.close(1001))).toMatchObject({ name: 'InvalidAccessError', message: 'close code 1001 is neither 1000 nor in 3000-4999' });
    expect(thrown(() => socket.close(1000, 'x'.repeat(124)))).toMatchObject({ name: 'SyntaxError', message: 'close reason over 123 bytes' });
    const Configured = NodeWebSocket.with({ headers: { 'X-App': 'from with()' }, env: {} });
    const configured = new Configured(`${url}/`) as NodeWebSocket;
    sockets.push(configured);
    expect(await nextOf(configured, 'close')).toMatchObject({ code: 4401, reason: 'from with()' });
  });
});
