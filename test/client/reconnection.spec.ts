/**
 * Reconnection against the sample as a real process, stopped (SIGTERM: its clients get 1001) and started again on
 * the same port: the client reconnects by itself within its backoff, its `'reconnecting'` events say when, what it
 * emitted while the server was down arrives in order after it joined its room again, and a request made meanwhile
 * resolves after the reconnection. A client closed meanwhile, and one refused by the sample's guard, stay closed.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { WebSocketsClient, type ClientEvents, type ReconnectingEvent } from '../../lib/client/node.js';
import { freePort, WAIT_MS as ONE_WAIT, withTimeout } from '../support/net.js';
import { SAMPLE_BUILD_TIMEOUT_MS, SampleApp } from '../support/sample-process.js';

const TOKEN = 'sample-secret';
const WAIT_MS = 2 * ONE_WAIT;
const BACKOFF = { initialDelayMs: 100, maxDelayMs: 1000 };

let sample: SampleApp | undefined;
beforeAll(async () => {
  sample = await SampleApp.build();
}, SAMPLE_BUILD_TIMEOUT_MS + 10_000);
afterAll(async () => {
  await sample?.dispose();
}, 30_000);

function nextEvent<K extends keyof ClientEvents>(client: WebSocketsClient, event: K, ms = WAIT_MS): Promise<ClientEvents[K]> {
  let off: () => void = () => undefined;
  return withTimeout(new Promise<ClientEvents[K]>((resolve) => (off = client.on(event, resolve))), ms, `client event ${event}`).finally(() => off());
}

describe('reconnection to the sample app', () => {
  it('comes back by itself after a restart on the same port; the queue arrives in order; requests made meanwhile resolve', async () => {
    const port = await freePort();
    const url = `ws://127.0.0.1:${port}/ws`;
    let server = await sample!.start(port, { SAMPLE_TOKEN: TOKEN });
    const chat = new WebSocketsClient<{ chat: { room: string; text: string } }>(url, { auth: TOKEN, reconnect: BACKOFF });
    const quitter = new WebSocketsClient(url, { auth: TOKEN, reconnect: BACKOFF });
    try {
      // Join the room on every connection, before what was queued is sent.
      const joins: Array<Promise<unknown>> = [];
      chat.on('open', () => joins.push(chat.request('join', { room: 'r' })));
      const opens: number[] = [];
      chat.on('open', () => opens.push(Date.now()));
      const reconnecting: Array<ReconnectingEvent & { at: number }> = [];
      chat.on('reconnecting', (event) => reconnecting.push({ ...event, at: Date.now() }));
      const received: string[] = [];
      chat.on('chat', ({ text }) => received.push(text));
      await Promise.all([nextEvent(chat, 'open'), nextEvent(quitter, 'open')]);
      await joins[0];

      const lost = nextEvent(chat, 'close');
      const quitterLost = nextEvent(quitter, 'reconnecting');
      await sample!.stop(server);
      expect(await lost).toEqual({ code: 1001, reason: 'server shutting down', willReconnect: true });
      await quitterLost;
      await quitter.close();

      // While the server is down: queued, in order.
      const texts = Array.from({ length: 20 }, (_, i) => `offline ${i}`);
      for (const text of texts) chat.emit('chat', { room: 'r', text });
      const asked = chat.request('echo', 'asked while down', { timeoutMs: 30_000 });
      expect(chat.state).toBe('reconnecting');
      expect(chat.queuedBytes).toBeGreaterThan(20 * '{"event":"chat","data":{"room":"r","text":"offline 0"}}'.length);

      server = await sample!.start(port, { SAMPLE_TOKEN: TOKEN });
      expect(await withTimeout(asked, WAIT_MS, 'the request made while down')).toBe('asked while down');
      await withTimeout(
        new Promise<void>((resolve) => {
          const check = (): void => {
            if (received.length >= texts.length) resolve();
            else setTimeout(check, 20);
          };
          check();
        }),
        WAIT_MS,
        'the queued chat messages',
      );
      expect(received).toEqual(texts);
      expect(opens).toHaveLength(2);
      expect(chat.state).toBe('open');

      // Each attempt was announced with its number and a delay within its bound; the last one said when.
      expect(reconnecting.map((event) => event.attempt)).toEqual(reconnecting.map((_, i) => i + 1));
      for (const { attempt, delayMs } of reconnecting) {
        expect(delayMs).toBeGreaterThanOrEqual(0);
        expect(delayMs).toBeLessThanOrEqual(Math.min(BACKOFF.maxDelayMs, BACKOFF.initialDelayMs * 2 ** (attempt - 1)));
      }
      const last = reconnecting.at(-1)!;
      expect(opens[1]! - last.at).toBeGreaterThanOrEqual(last.delayMs - 5);

      // The client closed while the server was down did not come back.
      expect(quitter.state).toBe('closed');
    } finally {
      await Promise.all([chat.close(), quitter.close()]);
      await sample!.stop(server);
    }
  }, 90_000);

  it('does not reconnect after a 401 from the SAMPLE_TOKEN guard', async () => {
    const port = await freePort();
    const server = await sample!.start(port, { SAMPLE_TOKEN: TOKEN });
    const refused = new WebSocketsClient(`ws://127.0.0.1:${port}/ws`, { auth: 'wrong', reconnect: BACKOFF });
    try {
      const reconnecting: unknown[] = [];
      refused.on('reconnecting', (event) => reconnecting.push(event));
      const errors: Error[] = [];
      refused.on('error', (error) => errors.push(error));
      expect(await nextEvent(refused, 'close')).toMatchObject({ code: 4401, reason: 'missing or wrong token', willReconnect: false });
      // In Node the WebSocket's own error comes first (the HTTP status a browser cannot see), then the refusal.
      expect(errors.map((error) => error.name)).toEqual(['InvalidStatusError', 'HandshakeRefusedError']);
      expect(errors[1]).toMatchObject({ status: 401, message: 'missing or wrong token' });
      // A reconnection would come within the first delay (at most 100 ms here).
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect([refused.state, reconnecting]).toEqual(['closed', []]);
    } finally {
      await refused.close();
      await sample!.stop(server);
    }
  }, 60_000);
});
