/**
 * The sample app end to end: its AppModule (forRootAsync with @nestjs/config), the echo and chat gateway at /ws,
 * SAMPLE_TOKEN at the handshake (401 before the upgrade), the page at /, and two headless Chromium pages chatting
 * in a room.
 */
import 'reflect-metadata';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { CloseCode } from '../../lib/protocol/close-codes.js';
import { WebSocketsAdapter } from '../../lib/nest/index.js';
import { AppModule } from '../../sample/app.module.js';
import { closePeers, connectPeer, refusal } from './ws-peer.js';
import { describeWithPeer } from '../support/peers.js';
import { useChromium } from '../support/browser.js';

const TOKEN = 'sample-secret';
const saved = { SAMPLE_TOKEN: process.env.SAMPLE_TOKEN };
let app: INestApplication | undefined;

async function startSample(token: string | undefined): Promise<number> {
  if (token === undefined) delete process.env.SAMPLE_TOKEN;
  else process.env.SAMPLE_TOKEN = token;
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  app.useWebSocketAdapter(new WebSocketsAdapter(app));
  await app.listen(0, '127.0.0.1');
  return (app.getHttpServer().address() as AddressInfo).port;
}

beforeEach(() => {
  delete process.env.SAMPLE_TOKEN;
});

afterEach(async () => {
  await closePeers();
  await app?.close();
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

  it('serves the chat page at / and closes clients with 1001 when the app stops', async () => {
    const port = await startSample(undefined);
    const response = await fetch(`http://127.0.0.1:${port}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await response.text()).toContain("new WebSocket(url)");
    const peer = await connectPeer(`ws://127.0.0.1:${port}/ws`);
    await app!.close();
    app = undefined;
    expect((await peer.closed).code).toBe(CloseCode.GOING_AWAY);
  });
});

describeWithPeer('chromium', 'sample page in headless Chromium', () => {
  const browser = useChromium();

  it('two pages join a room; a message sent from one shows on the other', async () => {
    const port = await startSample(TOKEN);
    const context = await browser().newContext();
    try {
      const url = `http://127.0.0.1:${port}/?token=${TOKEN}`;
      const [first, second] = await Promise.all([context.newPage(), context.newPage()]);
      for (const page of [first!, second!]) {
        await page.goto(url);
        await page.locator('#status').filter({ hasText: 'connected' }).waitFor({ timeout: 5000 });
        await page.fill('#room', 'garden');
        await page.click('#join');
        await page.locator('#status').filter({ hasText: 'in room garden' }).waitFor({ timeout: 5000 });
      }
      await first!.fill('#text', 'hello from the first page');
      await first!.click('#send');
      await second!.locator('#log li').filter({ hasText: '[garden] hello from the first page' }).waitFor({ timeout: 5000 });
      // A page without the token is refused at the handshake, in-band (it sends an Origin): the page reads 4401
      // where an HTTP refusal would only have given it 1006.
      const refused = await context.newPage();
      await refused.goto(`http://127.0.0.1:${port}/`);
      await refused.locator('#status').filter({ hasText: 'closed (4401)' }).waitFor({ timeout: 5000 });
    } finally {
      await context.close();
    }
  }, 30_000);
});
