/**
 * WebSockets over Unix domain sockets, both directions: our server on a socket path (permissions, a stale file
 * replaced, a live one refused, the file removed on close) with the `ws` library's client and ours, and our client
 * (`ws+unix:` URLs and the `socketPath` option) against the `ws` library's server; wss over a Unix socket; redirects
 * over a socket; and the errors a wrong URL or a missing socket give.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, lstatSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WebSocketServer as WsServer } from 'ws';
import { ConfigError, RedirectError } from '../../lib/errors.js';
import { connect } from '../../lib/node/client.js';
import { isTransientError } from '../../lib/node/reconnect.js';
import { WebSocketServer, type HandshakeInfo } from '../../lib/node/server.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import { makeTestCertificates } from '../support/certs.js';
import { describeWithPeer } from '../support/peers.js';
import { withTimeout } from '../support/net.js';
import { Harness, next, QUIET, WAIT_MS } from './harness.js';

const harness = new Harness();
const dirs: string[] = [];
const servers: WebSocketServer[] = [];
const others: Array<() => Promise<void>> = [];
afterEach(async () => {
  await harness.cleanup();
  await Promise.all(servers.splice(0).map((server) => server.close()));
  for (const close of others.splice(0)) await close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A fresh socket path in its own temp dir (removed after the test). */
function socketPath(name = 'ws.sock'): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'nestjs-websockets-unix-'));
  dirs.push(dir);
  return path.join(dir, name);
}

/** Our server on `socketPath`, echoing `<path> <message>` so that the client sees which request path arrived. */
async function unixServer(file: string, options: Partial<ConstructorParameters<typeof WebSocketServer>[0]> = {}): Promise<WebSocketServer> {
  const server = new WebSocketServer({ ...QUIET, socketPath: file, ...options });
  servers.push(server);
  server.on('connection', (ws: WebSocket, info: HandshakeInfo) =>
    ws.on('message', (data) => void ws.send(`${info.path}${String(info.query) === '' ? '' : `?${String(info.query)}`} ${info.headers.get('host')} ${String(data)}`)),
  );
  expect(await server.listen()).toBe(file);
  return server;
}

async function ask(ws: WebSocket, message: string): Promise<string> {
  const reply = next<[string]>(ws, 'message');
  await ws.send(message);
  return (await reply)[0];
}

describe('our server on a Unix socket', () => {
  it('serves the ws library client and ours (ws+unix: URLs and the socketPath option), with the permissions asked', async () => {
    const file = socketPath();
    await unixServer(file, { socketPermissions: 0o600 });
    expect(lstatSync(file).isSocket()).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const theirs = await harness.wsClient(`ws+unix:${file}:/chat?room=1`);
    const reply = once(theirs, 'message');
    theirs.send('hello');
    expect(String((await withTimeout(reply, WAIT_MS, 'reply'))[0])).toBe('/chat?room=1 localhost hello');

    const ours = await harness.connect(`ws+unix:${file}:/chat?room=2`);
    expect(await ask(ours, 'hi')).toBe('/chat?room=2 localhost hi');
    expect(ours.remoteAddress).toBeUndefined();
    const root = await harness.connect(`ws+unix://${file}`);
    expect(await ask(root, 'x')).toBe('/ localhost x');
    // socketPath keeps the URL for Host and the path: a server behind a socket can still route by host name.
    const named = await harness.connect('ws://app.internal/ws', { socketPath: file });
    expect(await ask(named, 'y')).toBe('/ws app.internal y');
  });

  it('reads its permissions from WEBSOCKETS_SOCKET_PERMISSIONS, and refuses a bad value', async () => {
    const file = socketPath();
    await unixServer(file, { env: { WEBSOCKETS_SOCKET_PERMISSIONS: '660' } });
    expect(statSync(file).mode & 0o777).toBe(0o660);
    expect(() => new WebSocketServer({ socketPath: socketPath(), env: { WEBSOCKETS_SOCKET_PERMISSIONS: 'rw-rw----' } })).toThrow(
      'WEBSOCKETS_SOCKET_PERMISSIONS must be three octal digits (e.g. 660); got "rw-rw----" (option socketPermissions, env WEBSOCKETS_SOCKET_PERMISSIONS)',
    );
    expect(() => new WebSocketServer({ socketPath: socketPath(), socketPermissions: 0o1777, env: {} })).toThrow(ConfigError);
    expect(() => new WebSocketServer({ socketPath: socketPath(), port: 0, env: {} })).toThrow('give either port or socketPath, not both');
    expect(() => new WebSocketServer({ socketPath: '', env: {} })).toThrow('option socketPath must be a file path');
  });

  it('replaces a stale socket file, refuses a live one with EADDRINUSE, and removes its file on close', async () => {
    const file = socketPath();
    // A process that dies while listening leaves its socket file behind.
    const dead = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(file)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    await once(dead, 'exit');
    expect(lstatSync(file).isSocket()).toBe(true);
    const server = await unixServer(file);
    const second = new WebSocketServer({ ...QUIET, socketPath: file });
    const reported: Error[] = [];
    second.on('error', (error: Error) => reported.push(error));
    await expect(second.listen()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await second.close();
    // The server's 'error' listeners hear of the failure too, as for a TCP port; the stale file above caused none.
    expect(reported.map((error) => (error as NodeJS.ErrnoException).code)).toEqual(['EADDRINUSE']);
    const ws = await harness.connect(`ws+unix:${file}`);
    expect(await ask(ws, 'still')).toBe('/ localhost still');
    await server.close();
    expect(existsSync(file)).toBe(false);
  });
});

describe('our client over a Unix socket', () => {
  it('talks to the ws library server listening on a socket', async () => {
    const file = socketPath();
    const httpServer = http.createServer();
    const wss = new WsServer({ server: httpServer });
    wss.on('connection', (peer, request) => peer.on('message', (data) => peer.send(`${request.url} ${request.headers.host} ${String(data)}`)));
    httpServer.listen(file);
    await once(httpServer, 'listening');
    others.push(async () => {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    });
    const ws = await harness.connect(`ws+unix:${file}:/room/1`);
    expect(await ask(ws, 'ping')).toBe('/room/1 localhost ping');
    const closed = next<[number, string]>(ws, 'close');
    await ws.close(1000, 'done');
    expect((await closed)[0]).toBe(1000);
  });

  it('follows a redirect to another path over the same socket and refuses one to another origin', async () => {
    const file = socketPath();
    const httpServer = http.createServer();
    httpServer.on('upgrade', (request, socket) => {
      if (request.url === '/old') socket.end('HTTP/1.1 301 Moved\r\nLocation: /new\r\nContent-Length: 0\r\n\r\n');
      else if (request.url === '/away') socket.end('HTTP/1.1 302 Found\r\nLocation: ws://example.test/\r\nContent-Length: 0\r\n\r\n');
    });
    const wss = new WsServer({ noServer: true });
    httpServer.on('upgrade', (request, socket, head) => {
      if (request.url === '/new') wss.handleUpgrade(request, socket, head, (peer) => peer.send(`at ${request.url}`));
    });
    httpServer.listen(file);
    await once(httpServer, 'listening');
    others.push(async () => {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    });
    const ws = await harness.connect(`ws+unix:${file}:/old`);
    expect((await next<[string]>(ws, 'message'))[0]).toBe('at /new');
    const error = await connect(`ws+unix:${file}:/away`, { env: {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RedirectError);
    expect((error as Error).message).toBe('cannot follow a redirect to another origin (ws://example.test/) over a Unix socket');
  });

  it('fails with ENOENT (which reconnection retries) when the socket is not there, and refuses bad URLs', async () => {
    const missing = socketPath('nobody.sock');
    const error = await connect(`ws+unix:${missing}`, { env: {} }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ENOENT' });
    expect(isTransientError(error)).toBe(true);
    await expect(connect('ws+unix:', { env: {} })).rejects.toThrow('a Unix socket URL is ws+unix:/path/to.sock:/request/path; got "ws+unix:"');
    await expect(connect('ws+unix:/a.sock:relative', { env: {} })).rejects.toThrow(ConfigError);
    await expect(connect('ws+unix:/a.sock', { env: {}, socketPath: '/b.sock' })).rejects.toThrow('not both');
    // No proxy is used over a Unix socket, whatever the environment says.
    const file = socketPath();
    await unixServer(file);
    const ws = await harness.connect(`ws+unix:${file}`, { env: { WS_PROXY: 'http://127.0.0.1:1', ALL_PROXY: 'socks5://127.0.0.1:1' } });
    expect(await ask(ws, 'direct')).toBe('/ localhost direct');
  });
});

describeWithPeer('openssl', 'wss over a Unix socket', () => {
  it('runs TLS over the socket, the certificate checked for the URL host (localhost for wss+unix:)', async () => {
    const certs = await makeTestCertificates();
    const file = socketPath();
    await unixServer(file, { tls: { cert: certs.server.cert, key: certs.server.key } });
    const ws = await harness.connect(`wss+unix:${file}:/secure`, { ca: certs.ca.cert });
    expect(await ask(ws, 'tls')).toBe('/secure localhost tls');
    await expect(connect(`wss+unix:${file}`, { env: {} })).rejects.toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  });
});
