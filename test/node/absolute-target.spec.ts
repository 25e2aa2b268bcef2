/**
 * The absolute form of the request target (`GET http://host/ws HTTP/1.1`, RFC 9112 §3.2.2), with one rule on a
 * server on its own port and on one attached to an http server: it is accepted and routed on its path when its
 * authority is the `Host` header's (case-insensitive, default port or not); another authority, a userinfo part or a
 * scheme other than http(s)/ws(s) gets 400. Raw sockets write the exact request line.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import type { WebSocketServer } from '../../lib/node/server.js';
import { endOfHttpHead, rawConnect } from '../support/net.js';
import { Harness, WAIT_MS } from './harness.js';

const harness = new Harness();
afterEach(() => harness.cleanup());

const UPGRADE_HEADERS = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';

/** The status line and body of the answer to `GET <target>` with `Host: <host>`. */
async function answer(port: number, target: string, host: string): Promise<{ status: number; body: string }> {
  const raw = await rawConnect(port);
  await raw.write(`GET ${target} HTTP/1.1\r\nHost: ${host}\r\n${UPGRADE_HEADERS}\r\n`);
  const head = await raw.readUntil(endOfHttpHead, WAIT_MS, `the answer to ${target}`);
  const status = Number(head.toString('latin1').split(' ')[1]);
  const body = status === 101 ? '' : (await raw.readUntilClose(WAIT_MS)).toString('utf8').split('\r\n\r\n')[1] ?? '';
  raw.destroy();
  return { status, body };
}

/** A server that owns `/ws`, on its own port or attached to an http server; `paths` records what it accepted. */
async function serverOwningWs(mode: 'own port' | 'attached'): Promise<{ port: number; paths: string[] }> {
  let server: WebSocketServer;
  let port: number;
  if (mode === 'own port') {
    ({ server, port } = await harness.listen({ path: '/ws' }));
  } else {
    const http = await harness.httpServer();
    server = harness.attach({ server: http.server, path: '/ws' });
    port = http.port;
  }
  const paths: string[] = [];
  server.on('connection', (ws) => paths.push(`${ws.request?.path} ${ws.request?.query.toString()}`));
  return { port, paths };
}

describe.each(['own port', 'attached'] as const)('the absolute form (server: %s)', (mode) => {
  it('is accepted and routed on its path when its authority is the Host', async () => {
    const { port, paths } = await serverOwningWs(mode);
    expect((await answer(port, `http://127.0.0.1:${port}/ws?room=a`, `127.0.0.1:${port}`)).status).toBe(101);
    expect((await answer(port, 'ws://LocalHost/ws/', 'localhost:80')).status).toBe(101);
    expect((await answer(port, 'https://localhost:443/ws', 'localhost')).status).toBe(101);
    expect((await answer(port, `wss://[::1]:${port}/ws`, `[::1]:${port}`)).status).toBe(101);
    expect(paths).toEqual(['/ws room=a', '/ws/ ', '/ws ', '/ws ']);
  });

  it('gets 400 for another authority than the Host, a userinfo part or another scheme; 404 for another path', async () => {
    const { port, paths } = await serverOwningWs(mode);
    const foreign = await answer(port, 'http://evil.example/ws', `127.0.0.1:${port}`);
    expect(foreign).toEqual({
      status: 400,
      body:
        `Failed to open a WebSocket connection: the authority of the request target "evil.example" is not the Host ` +
        `header "127.0.0.1:${port}" (RFC 9112 §3.2.2).\n`,
    });
    expect((await answer(port, 'http://localhost:81/ws', 'localhost')).status).toBe(400);
    expect((await answer(port, 'https://localhost/ws', 'localhost:80')).status).toBe(400);
    const userinfo = await answer(port, 'http://user:pw@localhost/ws', 'localhost');
    expect(userinfo.status).toBe(400);
    expect(userinfo.body).toContain('userinfo');
    expect((await answer(port, 'ftp://localhost/ws', 'localhost')).status).toBe(400);
    expect((await answer(port, 'http://localhost/other', 'localhost')).status).toBe(404);
    expect(paths).toEqual([]);
  });
});
