/**
 * A real browser over HTTP/2 (RFC 8441): headless Chromium loads a page from an `http2.createSecureServer` that our
 * `WebSocketServer` is attached to, and opens WebSockets from it. The server sees every one of them as an extended
 * CONNECT stream on the session that served the page (one TLS connection for the page and its WebSockets), and
 * messages flow both ways.
 */
import { afterEach, beforeAll, expect, it } from '@jest/globals';
import { once } from 'node:events';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { HandshakeInfo } from '../../lib/node/server.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import { useChromium } from '../support/browser.js';
import { makeTestCertificates } from '../support/certs.js';
import { waitUntil } from '../support/net.js';
import { describeWithPeers } from '../support/peers.js';
import { Harness } from './harness.js';

const harness = new Harness();
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  await harness.cleanup();
  for (const close of closers.splice(0)) await close();
});

/** Runs in the page: opens `count` WebSockets, sends text and binary on each, collects the echoes, closes them. */
async function pageSession(args: { url: string; count: number }): Promise<Array<{ protocol: string; replies: string[]; code: number }>> {
  const open = async (i: number): Promise<{ protocol: string; replies: string[]; code: number }> => {
    const socket = new globalThis.WebSocket(args.url, ['chat']);
    socket.binaryType = 'arraybuffer';
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error('websocket error'));
    });
    const replies: string[] = [];
    const done = new Promise<void>((resolve) => {
      socket.onmessage = (event: { data: unknown }) => {
        const data = event.data;
        replies.push(typeof data === 'string' ? data : `bytes:${[...new Uint8Array(data as ArrayBuffer)].join(',')}`);
        if (replies.length === 3) resolve();
      };
    });
    socket.send(`hello ${i}`);
    socket.send(new Uint8Array([i, 255]).buffer);
    await done;
    const closed = new Promise<number>((resolve) => {
      socket.onclose = (event: { code: number }) => resolve(event.code);
    });
    socket.close(4000 + i, 'page done');
    return { protocol: socket.protocol, replies, code: await closed };
  };
  return Promise.all(Array.from({ length: args.count }, (_, i) => open(i)));
}

describeWithPeers(['chromium', 'openssl'], 'Chromium over HTTP/2', () => {
  let spki: string[] = [];
  beforeAll(async () => {
    spki = [(await makeTestCertificates()).server.spkiSha256];
  }, 30_000);
  const browser = useChromium({
    get trustSpki(): string[] {
      return spki;
    },
  });

  it('opens its WebSockets as extended CONNECT streams on the session of the page, and messages flow both ways', async () => {
    const certs = await makeTestCertificates();
    const pageSessions: http2.ServerHttp2Session[] = [];
    const sessions = new Set<http2.ServerHttp2Session>();
    const h2 = http2.createSecureServer({ key: certs.server.key, cert: certs.server.cert, allowHTTP1: true }, (req, res) => {
      if (req.url === '/') {
        if (req.stream !== undefined) pageSessions.push(req.stream.session as http2.ServerHttp2Session);
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end('<!doctype html><title>http2</title><p>over HTTP/2</p>');
        return;
      }
      res.writeHead(404);
      res.end();
    });
    h2.on('session', (session: http2.ServerHttp2Session) => sessions.add(session));
    const websocketStreams: Array<{ session: http2.ServerHttp2Session | undefined; protocol: unknown }> = [];
    h2.on('stream', (stream, headers) => {
      if (headers[':method'] === 'CONNECT') websocketStreams.push({ session: stream.session as http2.ServerHttp2Session, protocol: headers[':protocol'] });
    });
    h2.listen(0, '127.0.0.1');
    await once(h2, 'listening');
    closers.push(async () => {
      for (const session of sessions) session.destroy();
      await new Promise((resolve) => h2.close(resolve));
    });
    const port = (h2.address() as AddressInfo).port;
    const server = harness.attach({ server: h2, path: '/ws', subprotocols: ['chat'] });
    const infos: HandshakeInfo[] = [];
    const serverCloses: number[] = [];
    server.on('connection', (ws: WebSocket, info: HandshakeInfo) => {
      infos.push(info);
      ws.on('message', (data: string | Buffer, isBinary: boolean) => {
        void ws.send(data, { binary: isBinary });
        if (!isBinary) void ws.send(`server says hi to ${String(data)}`);
      });
      ws.on('close', (code: number) => serverCloses.push(code));
    });

    const context = await browser().newContext();
    try {
      const page = await context.newPage();
      const response = await page.goto(`https://localhost:${port}/`);
      expect(response?.status()).toBe(200);
      const results = await page.evaluate(pageSession, { url: `wss://localhost:${port}/ws`, count: 3 });
      expect(results).toEqual(
        [0, 1, 2].map((i) => ({
          protocol: 'chat',
          replies: expect.arrayContaining([`hello ${i}`, `server says hi to hello ${i}`, `bytes:${i},255`]),
          code: 4000 + i,
        })),
      );
      await waitUntil(() => serverCloses.length === 3, 2000, 'the server sees the three closes');
      expect(serverCloses.sort()).toEqual([4000, 4001, 4002]);
    } finally {
      await context.close();
    }
    // The page came over HTTP/2, and every WebSocket of it was an extended CONNECT on that same session.
    expect(pageSessions).toHaveLength(1);
    expect(websocketStreams).toHaveLength(3);
    expect(websocketStreams.every((stream) => stream.session === pageSessions[0] && stream.protocol === 'websocket')).toBe(true);
    expect(infos.map((info) => [info.httpVersion, info.method, info.secure, info.headers.get('origin')])).toEqual(
      Array(3).fill(['2', 'CONNECT', true, `https://localhost:${port}`]),
    );
  }, 40_000);
});
