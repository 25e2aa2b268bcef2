/**
 * Backpressure: a handler that streams megabytes to a client that does not read keeps at most about one message
 * beyond the write high-water mark buffered on the server, and everything arrives in order once the client reads.
 */
import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { ConnectedSocket, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { map, range, type Observable } from 'rxjs';
import type { WebSocket } from '../../lib/node/websocket.js';
import { type WebSocketsGatewayOptions } from '../../lib/nest/index.js';
import { closePeers, connectPeer, WAIT_MS } from './ws-peer.js';
import { withTimeout } from '../support/net.js';
import { closeNestApps, startNestApp } from '../support/nest-app.js';

const WRITE_HIGH_WATER_MARK = 32_768;
const CHUNK = 65_536;
const CHUNKS = 200;

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/ws' })
class FloodGateway {
  readonly clients: WebSocket[] = [];

  handleConnection(client: WebSocket): void {
    this.clients.push(client);
  }

  @SubscribeMessage('flood')
  flood(@ConnectedSocket() _client: WebSocket): Observable<{ i: number; pad: string }> {
    return range(1, CHUNKS).pipe(map((i) => ({ i, pad: 'x'.repeat(CHUNK) })));
  }
}

let app: INestApplication | undefined;

async function start(): Promise<string> {
  const started = await startNestApp({ providers: [FloodGateway], options: { writeHighWaterMark: WRITE_HIGH_WATER_MARK, compression: false } });
  app = started.app;
  return started.url('/ws');
}

afterEach(async () => {
  await closePeers();
  await closeNestApps();
  app = undefined;
});

describe('backpressure', () => {
  it('streams an Observable to a client that does not read with a bounded buffer, then delivers all in order', async () => {
    const url = await start();
    const peer = await connectPeer(url, { maxPayload: 2 * CHUNK });
    const gateway = app!.get(FloodGateway);
    peer.ws.pause();
    peer.send({ event: 'flood', id: 'f' });
    const server = gateway.clients[0]!;
    // Sample the server's buffer while the client does not read.
    let maxBuffered = 0;
    for (let sample = 0; sample < 30; sample++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      maxBuffered = Math.max(maxBuffered, server.bufferedAmount);
    }
    expect(maxBuffered).toBeGreaterThan(0);
    expect(maxBuffered).toBeLessThanOrEqual(WRITE_HIGH_WATER_MARK + 2 * (CHUNK + 100));
    peer.ws.resume();
    await withTimeout(
      (async () => {
        for (let i = 1; i <= CHUNKS; i++) {
          const message = (await peer.next()) as { event: string; data: { i: number; pad: string }; id: string };
          expect(message.event).toBe('flood');
          expect(message.id).toBe('f');
          expect(message.data.i).toBe(i);
        }
      })(),
      WAIT_MS * 4,
      'all the chunks',
    );
  }, 30_000);
});
