/**
 * One app instance of the fan-out benchmark (bench/fanout.ts starts one or two of them, each in its own process):
 * a Nest app whose gateway at /ws has `join` (the client enters a room and gets `{"event":"joined"}`) and `fanout`
 * (`{ room, text }` goes to every member of the room, on every instance). WEBSOCKETS_REDIS_URL shares the rooms;
 * BENCH_PRESENCE=1 tracks presence (without events).
 * Prints `{"ready":true,"port":N,"pid":N}` once listening; SIGTERM closes it.
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  ConnectedSocket,
  MessageBody,
  SubscribeMessage,
  WebSocketGateway,
  WebSocketServer,
  type OnGatewayInit,
  type WsResponse,
} from '@nestjs/websockets';
import type { AddressInfo } from 'node:net';
import type { WebSocket } from '../lib/node/websocket.js';
import { WebSocketsAdapter, WebSocketsModule, type WebSocketsGatewayOptions, type WebSocketsGatewayServer } from '../lib/nest/index.js';

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/ws' })
class FanoutGateway implements OnGatewayInit {
  @WebSocketServer()
  server!: WebSocketsGatewayServer;

  afterInit(server: WebSocketsGatewayServer): void {
    if (process.env.BENCH_PRESENCE === '1') server.trackPresence();
  }

  @SubscribeMessage('join')
  join(@ConnectedSocket() client: WebSocket, @MessageBody() room: string): WsResponse<string> {
    this.server.join(client, room);
    return { event: 'joined', data: room };
  }

  @SubscribeMessage('fanout')
  async fanout(@MessageBody() body: { room: string; text: string }): Promise<void> {
    await this.server.to(body.room).send(body.text);
  }
}

// Compression off: the benchmark measures fan-out, not zlib (its clients do not offer it anyway).
@Module({ imports: [WebSocketsModule.forRoot({ compression: false })], providers: [FanoutGateway] })
class FanoutModule {}

const app = await NestFactory.create(FanoutModule, { logger: ['error', 'warn'] });
app.useWebSocketAdapter(new WebSocketsAdapter(app));
app.enableShutdownHooks();
await app.listen(0, '127.0.0.1');
process.stdout.write(`${JSON.stringify({ ready: true, port: (app.getHttpServer().address() as AddressInfo).port, pid: process.pid })}\n`);
