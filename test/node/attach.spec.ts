/**
 * Attach mode: several WebSocketServers on one http server, each owning its path through one upgrade router;
 * 404 (with the Server header) for a path nobody owns, other upgrade listeners left alone.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from '../../lib/node/websocket.js';
import { rawConnect } from '../support/net.js';
import { Harness, next, nextWsMessage, WAIT_MS } from './harness.js';

const harness = new Harness();
afterEach(() => harness.cleanup());

const UPGRADE = 'Host: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

describe('attached to an http server', () => {
  it('routes each path to the server that owns it, answers 404 for the rest, and leaves plain HTTP alone', async () => {
    const { server: http, port } = await harness.httpServer((_req, res) => res.end('plain http'));
    for (const path of ['/chat', '/feed']) {
      const wss = harness.attach({ server: http, path, serverHeader: 'attach-test' });
      wss.on('connection', (ws: WebSocket) => ws.on('message', (data: string | Buffer) => void ws.send(`${path}:${String(data)}`)));
    }
    expect(http.listenerCount('upgrade')).toBe(1);

    const chat = await harness.wsClient(`ws://127.0.0.1:${port}/chat?room=1`);
    chat.send('hi');
    expect((await nextWsMessage(chat))[0].toString()).toBe('/chat:hi');
    const feed = await harness.wsClient(`ws://127.0.0.1:${port}/feed/`);
    feed.send('hi');
    expect((await nextWsMessage(feed))[0].toString()).toBe('/feed:hi');

    const raw = await rawConnect(port);
    await raw.write(`GET /nobody HTTP/1.1\r\n${UPGRADE}`);
    const refusal = (await raw.readUntilClose(WAIT_MS)).toString('latin1');
    expect(refusal.startsWith('HTTP/1.1 404 Not Found\r\n')).toBe(true);
    expect(refusal).toContain('\r\nServer: attach-test\r\n');

    const response = await fetch(`http://127.0.0.1:${port}/chat`);
    expect(await response.text()).toBe('plain http');
  });

  it('leaves upgrades it does not own to another upgrade listener', async () => {
    const { server: http, port } = await harness.httpServer();
    harness.attach({ server: http, path: '/ws' });
    const others: string[] = [];
    http.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
      if (req.url === '/ws') return;
      others.push(req.url ?? '');
      socket.end('HTTP/1.1 418 I\'m a teapot\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
    const raw = await rawConnect(port);
    await raw.write(`GET /graphql HTTP/1.1\r\n${UPGRADE}`);
    expect((await raw.readUntilClose(WAIT_MS)).toString('latin1').startsWith('HTTP/1.1 418')).toBe(true);
    expect(others).toEqual(['/graphql']);
    const ok = await harness.wsClient(`ws://127.0.0.1:${port}/ws`);
    expect(ok.readyState).toBe(1);
  });

  it('refuses over the handshake limits on what Node parsed (414 with the Server header)', async () => {
    const { server: http, port } = await harness.httpServer();
    harness.attach({ server: http, maxLineLength: 200, serverHeader: 'attach-test' });
    const raw = await rawConnect(port);
    await raw.write(`GET /${'x'.repeat(300)} HTTP/1.1\r\n${UPGRADE}`);
    const refusal = (await raw.readUntilClose(WAIT_MS)).toString('latin1');
    expect(refusal.startsWith('HTTP/1.1 414 ')).toBe(true);
    expect(refusal).toContain('\r\nServer: attach-test\r\n');
  });

  it("answers a closed server's path with 503 until the HTTP server closes, then removes the router", async () => {
    const { server: http, port } = await harness.httpServer((_req, res) => res.writeHead(404).end('not found'));
    const a = harness.attach({ server: http, path: '/a' });
    const b = harness.attach({ server: http, path: '/b' });
    const client = await harness.wsClient(`ws://127.0.0.1:${port}/a`);
    const closed = next<[number]>(client, 'close');
    await a.close();
    expect((await closed)[0]).toBe(1001);
    await b.close();
    // Not a fall-through to the HTTP app's 404: a client told to go away (1001) reads 503 as "try again later".
    expect(http.listenerCount('upgrade')).toBe(1);
    for (const path of ['/a', '/b']) {
      const raw = await rawConnect(port);
      await raw.write(`GET ${path} HTTP/1.1\r\n${UPGRADE}`);
      expect((await raw.readUntilClose(WAIT_MS)).toString('latin1')).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/);
    }
    // A new server on the path wins over the closed one.
    const again = harness.attach({ server: http, path: '/a' });
    const fresh = await harness.wsClient(`ws://127.0.0.1:${port}/a`);
    expect(fresh.readyState).toBe(1);
    fresh.terminate();
    await again.close();
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
    expect(http.listenerCount('upgrade')).toBe(0);
  });
});
