/**
 * The sample's gateway at /ws: `echo` answers with what it got; `echo-after` does too, after `ms` milliseconds (an
 * async handler: replies to several such requests come back in the order they finish, not the order they were
 * asked); `join` puts the client in a room; `chat` sends `{ room, text }` to every member of the room. Messages are
 * JSON `{ "event": ..., "data": ..., "id"?: ... }`.
 */
import { UseFilters, UsePipes, ValidationPipe } from '@nestjs/common';
import { ConnectedSocket, MessageBody, SubscribeMessage, WebSocketGateway, WebSocketServer, type WsResponse } from '@nestjs/websockets';
import { IsDefined, IsInt, IsString, Max, MaxLength, Min, MinLength } from 'class-validator';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WebSocket } from '../lib/node/websocket.js';
import { WebSocketsExceptionFilter, type WebSocketsGatewayOptions, type WebSocketsGatewayServer } from '../lib/nest/index.js';
import { SampleTokenGuard } from './sample-token.guard.js';

/** Longest room name and chat message, in characters. */
const MAX_ROOM = 64;
const MAX_TEXT = 2000;

export class JoinDto {
  @IsString()
  @MinLength(1)
  @MaxLength(MAX_ROOM)
  room!: string;
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

export class ChatDto extends JoinDto {
  @IsString()
  @MaxLength(MAX_TEXT)
  text!: string;
}

@UseFilters(new WebSocketsExceptionFilter())
@UsePipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true }))
@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/ws', handshakeGuards: [SampleTokenGuard] })
export class ChatGateway {
  @WebSocketServer()
  server!: WebSocketsGatewayServer;

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
    this.server.join(client, body.room);
    return { event: 'joined', data: { room: body.room } };
  }

  @SubscribeMessage('chat')
  async chat(@MessageBody() body: ChatDto): Promise<void> {
    await this.server.to(body.room).emit('chat', { room: body.room, text: body.text });
  }
}
