/**
 * The Nest apps of the benchmark (`nest-ours`, `nest-ws`, `nest-socketio-echo`), imported by bench/targets.ts only when one of them is
 * started: the plain targets (`ws`, `ws-deflate`, `tcp`) must not load Nest, just as sample/echo-server.ts (`ours`)
 * does not. Loading Nest at start-up grows V8's young generation (~16 MB of new space before the first connection),
 * and the idle-memory goal charges the RSS growth after the baseline to the connections: a target that starts
 * without Nest would then pay for its heap's start-up growth and one that starts with Nest would not.
 */
import 'reflect-metadata';
import { Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WsAdapter } from '@nestjs/platform-ws';
import { MessageBody, SubscribeMessage, WebSocketGateway, type WsResponse } from '@nestjs/websockets';
import { WebSocketsAdapter } from '../lib/nest/websockets.adapter.js';
import { WebSocketsModule } from '../lib/nest/websockets.module.js';

/** The sample's echo, alone: `{ "event": "echo", "data": x }` comes back as is. */
@WebSocketGateway({ path: '/ws' })
export class EchoGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown): WsResponse<unknown> {
    return { event: 'echo', data };
  }
}

/** The app of `nest-ours`: the module with its defaults, as a user would import it. */
@Module({ imports: [WebSocketsModule.forRoot({})], providers: [EchoGateway] })
class OursModule {}

/** The app of `nest-ws` and `nest-socketio-echo`: only the gateway. */
@Module({ providers: [EchoGateway] })
class PlatformWsModule {}

/** Creates and starts the app of `nest-ours` ('ours'), `nest-ws` ('ws') or `nest-socketio-echo` ('socketio') on host:0. */
export async function listenNest(adapter: 'ours' | 'ws' | 'socketio', host: string): Promise<INestApplication> {
  const app = await NestFactory.create(adapter === 'ours' ? OursModule : PlatformWsModule, { logger: ['error'] });
  if (adapter === 'socketio') {
    // socket.io is loaded only for its own target, as Nest is only for the Nest targets.
    const { IoAdapter } = await import('@nestjs/platform-socket.io');
    app.useWebSocketAdapter(new IoAdapter(app));
  } else {
    app.useWebSocketAdapter(adapter === 'ours' ? new WebSocketsAdapter(app) : new WsAdapter(app));
  }
  await app.listen(0, host);
  return app;
}
