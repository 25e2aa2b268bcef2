/**
 * A real browser as the peer: headless Chromium (playwright-core, /usr/bin/chromium) opens ws:// and wss:// to our
 * server, sends and receives text and binary, and closes with a code and reason that the server sees.
 */
import { afterEach, beforeAll, expect, it } from '@jest/globals';
import type { WebSocket } from '../../lib/node/websocket.js';
import { useChromium } from '../support/browser.js';
import { makeTestCertificates } from '../support/certs.js';
import { describeWithPeers } from '../support/peers.js';
import { Harness, next } from './harness.js';

const harness = new Harness();
afterEach(() => harness.cleanup());

/** Runs in the page: connect, send text and binary, collect the echoes, close with 4001. */
async function browserSession(url: string): Promise<{ protocol: string; extensions: string; text: string; binary: number[]; code: number }> {
  const socket = new globalThis.WebSocket(url, ['chat']);
  socket.binaryType = 'arraybuffer';
  const replies: Array<string | ArrayBuffer> = [];
  await new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve();
    socket.onerror = () => reject(new Error('websocket error'));
  });
  const done = new Promise<void>((resolve) => {
    socket.onmessage = (event: { data: unknown }) => {
      replies.push(event.data as string | ArrayBuffer);
      if (replies.length === 2) resolve();
    };
  });
  socket.send('hello from chromium');
  socket.send(new Uint8Array([0, 1, 2, 250, 255]).buffer);
  await done;
  const closed = new Promise<number>((resolve) => {
    socket.onclose = (event: { code: number }) => resolve(event.code);
  });
  socket.close(4001, 'browser done');
  return {
    protocol: socket.protocol,
    extensions: socket.extensions,
    text: replies[0] as string,
    binary: [...new Uint8Array(replies[1] as ArrayBuffer)],
    code: await closed,
  };
}

describeWithPeers(['chromium', 'openssl'], 'Chromium', () => {
  let spki: string[] = [];
  // Registered before useChromium's launch, so that the browser starts trusting the test server's key.
  beforeAll(async () => {
    spki = [(await makeTestCertificates()).server.spkiSha256];
  }, 30_000);
  const browser = useChromium({
    get trustSpki(): string[] {
      return spki;
    },
  });

  it.each(['ws', 'wss'])('talks to our server over %s and closes with a code the server sees', async (scheme) => {
    const certs = await makeTestCertificates();
    const { server, port } = await harness.listen({
      subprotocols: ['chat'],
      ...(scheme === 'wss' ? { tls: { key: certs.server.key, cert: certs.server.cert } } : {}),
    });
    server.on('connection', (ws: WebSocket) => {
      ws.on('message', (data: string | Buffer, isBinary: boolean) => void ws.send(data, { binary: isBinary }));
    });
    const serverClose = next<[WebSocket]>(server, 'connection').then(([ws]) => next<[number, string]>(ws, 'close', 15_000));
    const context = await browser().newContext({ ignoreHTTPSErrors: false });
    try {
      const page = await context.newPage();
      const result = await page.evaluate(browserSession, `${scheme}://localhost:${port}/chat`);
      expect(result).toEqual({
        protocol: 'chat',
        extensions: expect.stringMatching(/^permessage-deflate/),
        text: 'hello from chromium',
        binary: [0, 1, 2, 250, 255],
        code: 4001,
      });
      expect(await serverClose).toEqual([4001, 'browser done']);
    } finally {
      await context.close();
    }
  }, 30_000);
});
