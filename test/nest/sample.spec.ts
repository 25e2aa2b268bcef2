/**
 * The sample app end to end with the ws package as the client: its AppModule (forRootAsync with @nestjs/config), the
 * echo and chat gateway at /ws, SAMPLE_TOKEN at the handshake (401 before the upgrade, from the query or a bearer
 * token), and the page at / with its script. The page itself, in Chromium, is in test/client/browser.spec.ts.
 */
import 'reflect-metadata';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { CloseCode } from '../../lib/protocol/close-codes.js';
import { AppModule } from '../../sample/app.module.js';
import { closePeers, connectPeer, refusal } from './ws-peer.js';
import { closeNestApps, startNestApp } from '../support/nest-app.js';

const TOKEN = 'sample-secret';
const saved = { SAMPLE_TOKEN: process.env.SAMPLE_TOKEN };
let app: INestApplication | undefined;

async function startSample(token: string | undefined): Promise<number> {
  if (token === undefined) delete process.env.SAMPLE_TOKEN;
  else process.env.SAMPLE_TOKEN = token;
  const started = await startNestApp({ imports: [AppModule] });
  app = started.app;
  return started.port;
}

beforeEach(() => {
  delete process.env.SAMPLE_TOKEN;
});

afterEach(async () => {
  await closePeers();
  await closeNestApps();
  app = undefined;
  if (saved.SAMPLE_TOKEN === undefined) delete process.env.SAMPLE_TOKEN;
  else process.env.SAMPLE_TOKEN = saved.SAMPLE_TOKEN;
});

describe('sample app', () => {
  it('echoes {"event":"echo","data":X} as {"event":"echo","data":X}', async () => {
    const port = await startSample(undefined);
    const peer = await connectPeer(`ws://127.0.0.1:${port}/ws`);
    for (const data of ['text', 42, { nested: [1, null, true] }, null]) {
      peer.ws.send(JSON.stringify({ event: 'echo', data }));
      expect(await peer.next()).toEqual({ event: 'echo', data });
    }
  });

  it('sends a chat message to every member of the room and to no one else', async () => {
    const port = await startSample(undefined);
    const [alice, bob, eve] = await Promise.all([1, 2, 3].map(() => connectPeer(`ws://127.0.0.1:${port}/ws`)));
    alice!.send({ event: 'join', data: { room: 'r1' } });
    bob!.send({ event: 'join', data: { room: 'r1' } });
    eve!.send({ event: 'join', data: { room: 'r2' } });
    for (const [peer, room] of [[alice!, 'r1'], [bob!, 'r1'], [eve!, 'r2']] as const) {
      expect(await peer.next()).toEqual({ event: 'joined', data: { room } });
    }
    alice!.send({ event: 'chat', data: { room: 'r1', text: 'hello' } });
    for (const peer of [alice!, bob!]) expect(await peer.next()).toEqual({ event: 'chat', data: { room: 'r1', text: 'hello' } });
    eve!.send({ event: 'echo', data: 'probe' });
    expect(await eve!.next()).toEqual({ event: 'echo', data: 'probe' });
  });

  it('validates chat messages', async () => {
    const port = await startSample(undefined);
    const peer = await connectPeer(`ws://127.0.0.1:${port}/ws`);
    peer.send({ event: 'join', data: { room: '' }, id: 1 });
    expect(await peer.next()).toEqual({
      event: 'exception',
      data: { status: 'error', statusCode: 400, message: ['room must be longer than or equal to 1 characters'], error: 'Bad Request' },
      id: 1,
    });
  });

  it('refuses a connection without the right token with 401 before the upgrade when SAMPLE_TOKEN is set', async () => {
    const port = await startSample(TOKEN);
    expect(await refusal(`ws://127.0.0.1:${port}/ws`)).toEqual({ status: 401, body: 'missing or wrong token' });
    expect(await refusal(`ws://127.0.0.1:${port}/ws?token=wrong`)).toEqual({ status: 401, body: 'missing or wrong token' });
    const peer = await connectPeer(`ws://127.0.0.1:${port}/ws?token=${TOKEN}`);
    peer.send({ event: 'echo', data: 'in' });
    expect(await peer.next()).toEqual({ event: 'echo', data: 'in' });
  });

  it('accepts the token as Authorization: Bearer, as the client SDK sends it', async () => {
    const port = await startSample(TOKEN);
    const peer = await connectPeer(`ws://127.0.0.1:${port}/ws`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    peer.send({ event: 'echo', data: 'bearer' });
    expect(await peer.next()).toEqual({ event: 'echo', data: 'bearer' });
    expect(await refusal(`ws://127.0.0.1:${port}/ws`, { headers: { Authorization: 'Bearer wrong' } })).toEqual({ status: 401, body: 'missing or wrong token' });
  });

  it('serves the chat page at / and its module script, and closes clients with 1001 when the app stops', async () => {
    const port = await startSample(undefined);
    const response = await fetch(`http://127.0.0.1:${port}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    // Scripts from this origin only: the page has no inline script.
    expect(response.headers.get('content-security-policy')).toContain("script-src 'self';");
    expect(await response.text()).toContain('<script type="module" src="/chat.js"></script>');
    const script = await fetch(`http://127.0.0.1:${port}/chat.js`);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await script.text()).toContain("import { WebSocketsClient } from './sdk/client/index.js';");
    // Only the SDK's own modules are served, and only once built (run from sources here: none).
    expect((await fetch(`http://127.0.0.1:${port}/sdk/client/index.js`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/sdk/node/client.js`)).status).toBe(404);
    const peer = await connectPeer(`ws://127.0.0.1:${port}/ws`);
    await app!.close();
    app = undefined;
    expect((await peer.closed).code).toBe(CloseCode.GOING_AWAY);
  });
});
