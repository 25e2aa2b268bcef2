/**
 * The sample's gateway at /ws: `echo` answers with what it got; `echo-after` does too, after `ms` milliseconds (an
 * async handler: replies to several such requests come back in the order they finish, not the order they were
 * asked); `join` puts the client in a room; `chat` sends `{ room, text }` to every member of the room. Messages are
 * JSON `{ "event": ..., "data": ..., "id"?: ... }`.
 *
 * Across instances (WEBSOCKETS_REDIS_URL): `who` answers with the room's members on every instance, from presence
 * (`{"event":"who","data":{"room":R,"members":[{"id":...},...]}}`); a client that joins with `"presence": true`
 * gets `{"event":"presence","data":{"room":R,"joined":ID}}` (and `"left":ID`) as members come and go.
 */
import { UseFilters, UsePipes, ValidationPipe } from '@nestjs/common';
import {
  ConnectedSocket,
  MessageBody,
  SubscribeMessage,
  WebSocketGateway,
  WebSocketServer,
  type OnGatewayInit,
  type WsResponse,
} from '@nestjs/websockets';
import { IsBoolean, IsDefined, IsInt, IsOptional, IsString, Max, MaxLength, Min, MinLength } from 'class-validator';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WebSocket } from '../lib/node/websocket.js';
import { WebSocketsExceptionFilter, type WebSocketsGatewayOptions, type WebSocketsGatewayServer } from '../lib/nest/index.js';
import { SampleTokenGuard } from './sample-token.guard.js';

/** Longest room name and chat message, in characters. */
const MAX_ROOM = 64;
const MAX_TEXT = 2000;

export class RoomDto {
  @IsString()
  @MinLength(1)
  @MaxLength(MAX_ROOM)
  room!: string;
}

export class JoinDto extends RoomDto {
  /** Get `presence` events of this room's members. */
  @IsOptional()
  @IsBoolean()
  presence?: boolean;
}

/** Longest wait of `echo-after`, in ms. */
const MAX_DELAY_MS = 10_000;

export class EchoAfterDto {
  @IsInt()
  @Min(0)
  @Max(MAX_DELAY_MS)
  ms!: number;

  @IsDefined()
  data!: unknown;
}

export class ChatDto extends RoomDto {
  @IsString()
  @MaxLength(MAX_TEXT)
  text!: string;
}

@UseFilters(new WebSocketsExceptionFilter())
@UsePipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true }))
@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/ws', handshakeGuards: [SampleTokenGuard] })
export class ChatGateway implements OnGatewayInit {
  @WebSocketServer()
  server!: WebSocketsGatewayServer;

  /** The members that asked for presence events, by room. */
  readonly #presence = new WeakMap<WebSocket, Set<string>>();

  afterInit(server: WebSocketsGatewayServer): void {
    server.trackPresence({ events: (member, room) => this.#presence.get(member)?.has(room) === true });
  }

  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown): WsResponse<unknown> {
    return { event: 'echo', data };
  }

  @SubscribeMessage('echo-after')
  async echoAfter(@MessageBody() body: EchoAfterDto): Promise<WsResponse<unknown>> {
    await sleep(body.ms);
    return { event: 'echo', data: body.data };
  }

  @SubscribeMessage('join')
  join(@ConnectedSocket() client: WebSocket, @MessageBody() body: JoinDto): WsResponse<{ room: string }> {
    if (body.presence === true) {
      const rooms = this.#presence.get(client) ?? new Set();
      rooms.add(body.room);
      this.#presence.set(client, rooms);
    }
    this.server.join(client, body.room);
    return { event: 'joined', data: { room: body.room } };
  }

  @SubscribeMessage('who')
  who(@MessageBody() body: RoomDto): WsResponse<{ room: string; members: Array<{ id: string }> }> {
    return { event: 'who', data: { room: body.room, members: this.server.presence(body.room).map(({ id }) => ({ id })) } };
  }

  @SubscribeMessage('chat')
  async chat(@MessageBody() body: ChatDto): Promise<void> {
    await this.server.to(body.room).emit('chat', { room: body.room, text: body.text });
  }
}
