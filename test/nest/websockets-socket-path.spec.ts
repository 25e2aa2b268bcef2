/**
 * Gateways on a Unix domain socket (`@WebSocketGateway({ socketPath })`): served next to the app's own server, two
 * paths sharing one socket, the file's permissions, `WebSocketsService.servers()` saying
 * where each listens, the socket closed with the app, and the option errors.
 */
import 'reflect-metadata';
import { afterAll, afterEach, describe, expect, it } from '@jest/globals';
import { ConnectedSocket, MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { existsSync, lstatSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../lib/errors.js';
import type { WebSocketsGatewayOptions } from '../../lib/nest/index.js';
import { WebSocketsService } from '../../lib/nest/index.js';
import { connect } from '../../lib/node/client.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import { closeNestApps, startNestApp } from '../support/nest-app.js';
import { WAIT_MS, withTimeout } from '../support/net.js';
import { closePeers, connectPeer } from './ws-peer.js';

const DIR = mkdtempSync(path.join(tmpdir(), 'nestjs-websockets-gateway-'));
const SOCKET = path.join(DIR, 'ws.sock');

@WebSocketGateway<WebSocketsGatewayOptions>({ socketPath: SOCKET, socketPermissions: 0o600, path: '/chat' })
class ChatOnSocket {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown, @ConnectedSocket() client: WebSocket): unknown {
    return { data, path: client.request?.path };
  }
}

@WebSocketGateway<WebSocketsGatewayOptions>({ socketPath: SOCKET, socketPermissions: 0o600, path: '/admin' })
class AdminOnSocket {
  @SubscribeMessage('who')
  who(): string {
    return 'admin';
  }
}

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/app' })
class OnAppServer {
  @SubscribeMessage('who')
  who(): string {
    return 'app';
  }
}

@WebSocketGateway<WebSocketsGatewayOptions>(8099, { socketPath: path.join(DIR, 'both.sock') })
class PortAndSocket {}

@WebSocketGateway<WebSocketsGatewayOptions>({ socketPermissions: 0o600 })
class PermissionsWithoutSocket {}

const opened: WebSocket[] = [];

async function request(url: string, message: unknown): Promise<unknown> {
  const ws = await connect(url, { env: {}, openTimeoutMs: WAIT_MS });
  opened.push(ws);
  const reply = new Promise<unknown>((resolve) => ws.once('message', (data: Buffer) => resolve(JSON.parse(data.toString()))));
  await ws.send(JSON.stringify(message));
  return withTimeout(reply, WAIT_MS, `a reply from ${url}`);
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((ws) => ws.close()));
  await closePeers();
  await closeNestApps();
});

afterAll(() => rmSync(DIR, { recursive: true, force: true }));

describe('a gateway on a Unix socket', () => {
  it('serves its paths on the socket file, with the permissions asked, next to the app server, and servers() says where', async () => {
    const { app, url } = await startNestApp({ providers: [ChatOnSocket, AdminOnSocket, OnAppServer] });
    expect(lstatSync(SOCKET).isSocket()).toBe(true);
    expect(statSync(SOCKET).mode & 0o777).toBe(0o600);

    expect(await request(`ws+unix:${SOCKET}:/chat`, { event: 'echo', data: 'hi' })).toEqual({ event: 'echo', data: { data: 'hi', path: '/chat' } });
    expect(await request(`ws+unix:${SOCKET}:/admin`, { event: 'who' })).toEqual({ event: 'who', data: 'admin' });
    const onApp = await connectPeer(url('/app'));
    onApp.send({ event: 'who' });
    expect(await onApp.next()).toEqual({ event: 'who', data: 'app' });

    const servers = app.get(WebSocketsService).servers();
    const where = servers.map(({ path: served, socketPath, sharesAppServer }) => ({ served, socketPath, sharesAppServer }));
    expect(where.sort((a, b) => String(a.served).localeCompare(String(b.served)))).toEqual([
      { served: '/admin', socketPath: SOCKET, sharesAppServer: false },
      { served: '/app', socketPath: null, sharesAppServer: true },
      { served: '/chat', socketPath: SOCKET, sharesAppServer: false },
    ]);
  });

  it('removes the socket file on app.close() (a stale one left by a dead process is replaced: see test/node/unix-socket.spec.ts)', async () => {
    const { app } = await startNestApp({ providers: [ChatOnSocket] });
    expect(await request(`ws+unix:${SOCKET}:/chat`, { event: 'echo', data: 1 })).toEqual({ event: 'echo', data: { data: 1, path: '/chat' } });
    await Promise.all(opened.splice(0).map((ws) => ws.close()));
    await app.close();
    expect(existsSync(SOCKET)).toBe(false);
  });

  it('refuses a gateway with both a port and a socketPath, and socketPermissions without a socketPath', async () => {
    for (const [gateway, message] of [
      [PortAndSocket, /^Gateway PortAndSocket has both a port \(8099\) and a socketPath; a gateway listens on one of them/],
      [PermissionsWithoutSocket, /^Gateway PermissionsWithoutSocket has socketPermissions but no socketPath/],
    ] as const) {
      const failure = await startNestApp({ providers: [gateway] }).then(
        () => undefined,
        (error: unknown) => error as Error,
      );
      expect(failure).toBeInstanceOf(ConfigError);
      expect(failure?.message).toMatch(message);
      await closeNestApps();
    }
  });
});
