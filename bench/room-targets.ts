/**
 * The Nest chat apps of the room workloads (`fanout`, `slow-consumer`), one per adapter, imported by bench/targets.ts
 * only when one of them is started. Each is the same app shape: one gateway at /ws with `join` (the client enters the
 * room named by the message's data and gets `joined` back) and `chat` (`{ room, text }` goes to every member of the
 * room as the event `chat` with `{ room, text }`), built the way each adapter's users write it:
 *
 * - `nest-ours-rooms`: this package's module and adapter, `server.join(client, room)` and
 *   `server.to(room).emit(...)` (the frame is built once for the room);
 * - `nest-ws-rooms`: `@nestjs/platform-ws`, which has no rooms: a `Map` of `Set`s kept by the gateway (members leave
 *   it in `handleDisconnect`) and a loop of `client.send()` over the room's open members, the message serialized once;
 * - `nest-socketio`: `@nestjs/platform-socket.io`, `client.join(room)` and `server.to(room).emit(...)`.
 *
 * Every app runs with its adapter's defaults; the load client offers no compression to any of them.
 */
import 'reflect-metadata';
import { Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ConnectedSocket, MessageBody, SubscribeMessage, WebSocketGateway, WebSocketServer, type OnGatewayDisconnect, type WsResponse } from '@nestjs/websockets';
import type { Server as IoServer, Socket as IoSocket } from 'socket.io';
import type { WebSocket as WsClient } from 'ws';
import type { WebSocket } from '../lib/node/websocket.js';
import type { WebSocketsGatewayServer } from '../lib/nest/gateway-server.js';
import { WebSocketsAdapter } from '../lib/nest/websockets.adapter.js';
import { WebSocketsModule } from '../lib/nest/websockets.module.js';

/** What a `chat` message carries, and what every member gets. */
interface Chat {
  readonly room: string;
  readonly text: string;
}

/** The room targets and the adapter each one runs on. */
export type RoomTarget = 'nest-ours-rooms' | 'nest-ws-rooms' | 'nest-socketio';

@WebSocketGateway({ path: '/ws' })
class OursChatGateway {
  @WebSocketServer()
  server!: WebSocketsGatewayServer;

  @SubscribeMessage('join')
  join(@ConnectedSocket() client: WebSocket, @MessageBody() room: string): WsResponse<string> {
    this.server.join(client, room);
    return { event: 'joined', data: room };
  }

  @SubscribeMessage('chat')
  async chat(@MessageBody() body: Chat): Promise<void> {
    await this.server.to(body.room).emit('chat', { room: body.room, text: body.text });
  }
}

@WebSocketGateway({ path: '/ws' })
class PlatformWsChatGateway implements OnGatewayDisconnect {
  /** The rooms platform-ws users keep themselves: room name -> members. */
  readonly #rooms = new Map<string, Set<WsClient>>();

  @SubscribeMessage('join')
  join(@ConnectedSocket() client: WsClient, @MessageBody() room: string): WsResponse<string> {
    let members = this.#rooms.get(room);
    if (members === undefined) {
      members = new Set();
      this.#rooms.set(room, members);
    }
    members.add(client);
    return { event: 'joined', data: room };
  }

  @SubscribeMessage('chat')
  chat(@MessageBody() body: Chat): void {
    const members = this.#rooms.get(body.room);
    if (members === undefined) return;
    const message = JSON.stringify({ event: 'chat', data: { room: body.room, text: body.text } });
    for (const client of members) if (client.readyState === client.OPEN) client.send(message);
  }

  handleDisconnect(client: WsClient): void {
    for (const [room, members] of this.#rooms) {
      members.delete(client);
      if (members.size === 0) this.#rooms.delete(room);
    }
  }
}

@WebSocketGateway({ path: '/ws' })
class SocketIoChatGateway {
  @WebSocketServer()
  server!: IoServer;

  @SubscribeMessage('join')
  async join(@ConnectedSocket() client: IoSocket, @MessageBody() room: string): Promise<WsResponse<string>> {
    await client.join(room);
    return { event: 'joined', data: room };
  }

  @SubscribeMessage('chat')
  chat(@MessageBody() body: Chat): void {
    this.server.to(body.room).emit('chat', { room: body.room, text: body.text });
  }
}

@Module({ imports: [WebSocketsModule.forRoot({})], providers: [OursChatGateway] })
class OursRoomsModule {}

@Module({ providers: [PlatformWsChatGateway] })
class PlatformWsRoomsModule {}

@Module({ providers: [SocketIoChatGateway] })
class SocketIoRoomsModule {}

/** Creates and starts the chat app of `target` on host:0; each adapter's package is loaded only for its own app. */
export async function listenRooms(target: RoomTarget, host: string): Promise<INestApplication> {
  let app: INestApplication;
  switch (target) {
    case 'nest-ours-rooms':
      app = await NestFactory.create(OursRoomsModule, { logger: ['error'] });
      app.useWebSocketAdapter(new WebSocketsAdapter(app));
      break;
    case 'nest-ws-rooms': {
      const { WsAdapter } = await import('@nestjs/platform-ws');
      app = await NestFactory.create(PlatformWsRoomsModule, { logger: ['error'] });
      app.useWebSocketAdapter(new WsAdapter(app));
      break;
    }
    case 'nest-socketio': {
      const { IoAdapter } = await import('@nestjs/platform-socket.io');
      app = await NestFactory.create(SocketIoRoomsModule, { logger: ['error'] });
      app.useWebSocketAdapter(new IoAdapter(app));
      break;
    }
    default: {
      const unexpected: never = target;
      throw new Error(`unknown room target ${String(unexpected)}`);
    }
  }
  await app.listen(0, host);
  return app;
}
