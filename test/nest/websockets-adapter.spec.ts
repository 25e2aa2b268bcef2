/**
 * WebSocketsAdapter end to end: a real Nest app (@nestjs/testing) on 127.0.0.1 port 0, gateways decorated as usual,
 * and the `ws` package as the client. Path routing, the handshake request in handleConnection, handshake guards,
 * replies with ids, exception frames, ValidationPipe, rooms, invalid messages and graceful shutdown.
 */
import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import {
  Injectable,
  UnauthorizedException,
  UseFilters,
  UsePipes,
  ValidationPipe,
  type CanActivate,
  type ExecutionContext,
  type INestApplication,
  type LoggerService,
  type Type,
} from '@nestjs/common';
import {
  Ack,
  ConnectedSocket,
  MessageBody,
  SubscribeMessage,
  WebSocketGateway,
  WebSocketServer,
  WsException,
  type WsResponse,
} from '@nestjs/websockets';
import { IsInt, IsString, Min } from 'class-validator';
import { range, type Observable } from 'rxjs';
import { CloseCode } from '../../lib/protocol/close-codes.js';
import type { WebSocket } from '../../lib/node/websocket.js';
import { type WebSocketsCloseInfo } from '../../lib/nest/websockets.adapter.js';
import type { WebSocketsGatewayServer } from '../../lib/nest/gateway-server.js';
import type { GatewayWebSocket } from '../../lib/nest/gateway-websocket.js';
import type { WebSocketsHandshakeRequest } from '../../lib/nest/handshake-request.js';
import { WebSocketsService } from '../../lib/nest/websockets.service.js';
import { WebSocketsExceptionFilter } from '../../lib/nest/websockets-exception.filter.js';
import type { WebSocketsGatewayOptions, WebSocketsModuleOptions } from '../../lib/nest/websockets-options.interface.js';
import { closePeers, connectPeer, refusal, WAIT_MS } from './ws-peer.js';
import { withTimeout } from '../support/net.js';
import { closeNestApps, startNestApp } from '../support/nest-app.js';

class ChatDto {
  @IsString()
  room!: string;

  @IsString()
  text!: string;
}

class CountDto {
  @IsInt()
  @Min(1)
  count!: number;
}

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/ws' })
class ChatGateway {
  @WebSocketServer()
  server!: WebSocketsGatewayServer;

  readonly connections: WebSocketsHandshakeRequest[] = [];
  readonly disconnects: WebSocketsCloseInfo[] = [];

  handleConnection(_client: WebSocket, request: WebSocketsHandshakeRequest): void {
    this.connections.push(request);
  }

  handleDisconnect(_client: WebSocket, close: WebSocketsCloseInfo): void {
    this.disconnects.push(close);
  }

  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown): unknown {
    return data;
  }

  /** socket.io's habit first (client.emit: local only, a warning), then the way that sends. */
  @SubscribeMessage('notify')
  notify(@ConnectedSocket() client: GatewayWebSocket, @MessageBody() data: unknown): void {
    client.emit('notice', data);
    client.emit('notice', data);
    void client.sendEvent('notice', data);
  }

  @SubscribeMessage('response')
  response(@MessageBody() data: unknown): WsResponse<unknown> {
    return { event: 'answer', data };
  }

  @SubscribeMessage('later')
  async later(@MessageBody() data: unknown): Promise<unknown> {
    await new Promise((resolve) => setImmediate(resolve));
    return data;
  }

  @SubscribeMessage('count')
  count(@MessageBody() n: number): Observable<number> {
    return range(1, n);
  }

  @SubscribeMessage('nothing')
  nothing(): undefined {
    return undefined;
  }

  @SubscribeMessage('fail')
  fail(): never {
    throw new WsException('not allowed');
  }

  @SubscribeMessage('boom')
  boom(): never {
    throw new Error('internal detail');
  }

  @SubscribeMessage('ack')
  ack(@MessageBody() n: number, @Ack() ack: (data: unknown) => void): void {
    setImmediate(() => ack(n * 2));
  }

  @UseFilters(new WebSocketsExceptionFilter())
  @UsePipes(new ValidationPipe())
  @SubscribeMessage('validated')
  validated(@MessageBody() dto: CountDto): number {
    return dto.count;
  }

  @UsePipes(new ValidationPipe({ exceptionFactory: (errors) => new WsException(errors.map((e) => e.property)) }))
  @SubscribeMessage('chat')
  chat(@MessageBody() body: ChatDto): void {
    void this.server.to(body.room).emit('chat', { room: body.room, text: body.text });
  }

  @SubscribeMessage('join')
  join(@ConnectedSocket() client: WebSocket, @MessageBody() room: string): string {
    this.server.join(client, room);
    return room;
  }

  @SubscribeMessage('leave')
  leave(@ConnectedSocket() client: WebSocket, @MessageBody() room: string): string {
    this.server.leave(client, room);
    return room;
  }

  @SubscribeMessage('shout')
  shout(@MessageBody() text: string): void {
    void this.server.emit('shout', text);
  }
}

/** A second gateway on the same path: its handlers are bound too. */
@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/ws' })
class StatsGateway {
  @SubscribeMessage('stats')
  stats(@ConnectedSocket() client: WebSocket): { remote: string | undefined } {
    return { remote: client.remoteAddress };
  }
}

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/other', invalidMessages: 'close' })
class StrictGateway {
  @SubscribeMessage('ping')
  ping(): string {
    return 'pong';
  }
}

@Injectable()
class TokenService {
  readonly token = 'let-me-in';
}

/** A handshake guard with dependency injection. */
@Injectable()
class TokenGuard implements CanActivate {
  constructor(private readonly tokens: TokenService) {}
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<WebSocketsHandshakeRequest>();
    if (request.query.token === undefined) return false;
    if (request.query.token !== this.tokens.token) throw new UnauthorizedException('bad token');
    request.user = { name: 'alice' };
    return true;
  }
}

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/private', handshakeGuards: [TokenGuard] })
class PrivateGateway {
  @SubscribeMessage('whoami')
  whoami(@ConnectedSocket() client: WebSocket): unknown {
    return (client.data as WebSocketsHandshakeRequest).user;
  }
}

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/fragile' })
class FragileGateway {
  handleConnection(_client: WebSocket, request: WebSocketsHandshakeRequest): void {
    if (request.query.mode === 'throw') throw new Error('handleConnection failed on purpose');
    if (request.query.mode === 'reject') void Promise.reject(new Error('not awaited'));
  }
  async handleDisconnect(): Promise<void> {
    throw new Error('handleDisconnect failed on purpose');
  }
  @SubscribeMessage('hello')
  hello(): string {
    return 'hi';
  }
}

let app: INestApplication | undefined;

async function start(gateways: Type[], options: WebSocketsModuleOptions = {}, logger: LoggerService | false = false): Promise<{ url: string; app: INestApplication }> {
  const started = await startNestApp({ providers: [...gateways, TokenService], options, logger });
  app = started.app;
  return { url: started.url(), app };
}

afterEach(async () => {
  await closePeers();
  await closeNestApps();
  app = undefined;
});

describe('messages', () => {
  it('answers plain values, promises, WsResponse and Observables as { event, data }, with the id when there is one', async () => {
    const { url } = await start([ChatGateway]);
    const peer = await connectPeer(`${url}/ws`);
    peer.send({ event: 'echo', data: { x: 1 } });
    expect(await peer.next()).toEqual({ event: 'echo', data: { x: 1 } });
    peer.send({ event: 'echo', data: 'hello', id: 7 });
    expect(await peer.next()).toEqual({ event: 'echo', data: 'hello', id: 7 });
    peer.send({ event: 'response', data: [1, 2], id: 'a' });
    expect(await peer.next()).toEqual({ event: 'answer', data: [1, 2], id: 'a' });
    peer.send({ event: 'later', data: null, id: 8 });
    expect(await peer.next()).toEqual({ event: 'later', data: null, id: 8 });
    peer.send({ event: 'count', data: 3, id: 9 });
    for (const n of [1, 2, 3]) expect(await peer.next()).toEqual({ event: 'count', data: n, id: 9 });
    peer.send({ event: 'ack', data: 21, id: 10 });
    expect(await peer.next()).toEqual({ event: 'ack', data: 42, id: 10 });
    // Nothing for undefined: the next reply is the echo.
    peer.send({ event: 'nothing', id: 11 });
    peer.send({ event: 'echo', data: 'after', id: 12 });
    expect(await peer.next()).toEqual({ event: 'echo', data: 'after', id: 12 });
    expect(peer.pending()).toBe(0);
  });

  it('sends exception frames for WsException, unexpected errors, invalid JSON and unknown events, with the id', async () => {
    const { url } = await start([ChatGateway]);
    const peer = await connectPeer(`${url}/ws`);
    peer.send({ event: 'fail', data: 1, id: 1 });
    expect(await peer.next()).toEqual({
      event: 'exception',
      data: { status: 'error', message: 'not allowed', cause: { pattern: 'fail', data: 1 } },
      id: 1,
    });
    peer.send({ event: 'boom', id: 2 });
    expect(await peer.next()).toEqual({
      event: 'exception',
      data: { status: 'error', message: 'Internal server error', cause: { pattern: 'boom' } },
      id: 2,
    });
    peer.ws.send('{not json');
    expect(await peer.next()).toEqual({ event: 'exception', data: { status: 'error', code: 'WS_ERR_INVALID_MESSAGE', message: 'invalid JSON' } });
    peer.send({ event: 'nope', id: 3 });
    expect(await peer.next()).toEqual({ event: 'exception', data: { status: 'error', message: 'unknown event "nope"' }, id: 3 });
    peer.send({ data: 1, id: 4 });
    expect(await peer.next()).toEqual({ event: 'exception', data: { status: 'error', code: 'WS_ERR_INVALID_MESSAGE', message: 'a message needs an "event" string' }, id: 4 });
    peer.send([1, 2]);
    expect(await peer.next()).toEqual({
      event: 'exception',
      data: { status: 'error', code: 'WS_ERR_INVALID_MESSAGE', message: 'a message must be a JSON object { "event": string, "data"?: any, "id"?: string | number }' },
    });
    // The connection is still usable.
    peer.send({ event: 'echo', data: 'still here' });
    expect(await peer.next()).toEqual({ event: 'echo', data: 'still here' });
  });

  it('reports ValidationPipe failures as exception frames (WebSocketsExceptionFilter, or a WsException factory)', async () => {
    const { url } = await start([ChatGateway]);
    const peer = await connectPeer(`${url}/ws`);
    peer.send({ event: 'validated', data: { count: 0 }, id: 5 });
    expect(await peer.next()).toEqual({
      event: 'exception',
      data: { status: 'error', statusCode: 400, message: ['count must not be less than 1'], error: 'Bad Request' },
      id: 5,
    });
    peer.send({ event: 'validated', data: { count: 2 }, id: 6 });
    expect(await peer.next()).toEqual({ event: 'validated', data: 2, id: 6 });
    peer.send({ event: 'chat', data: { room: 1 } });
    expect(await peer.next()).toEqual({ event: 'exception', data: ['room', 'text'] });
  });

  it('dispatches to every gateway on a shared path', async () => {
    const { url } = await start([ChatGateway, StatsGateway]);
    const peer = await connectPeer(`${url}/ws`);
    peer.send({ event: 'stats', id: 1 });
    expect(await peer.next()).toEqual({ event: 'stats', data: { remote: '127.0.0.1' }, id: 1 });
    peer.send({ event: 'echo', data: 2, id: 2 });
    expect(await peer.next()).toEqual({ event: 'echo', data: 2, id: 2 });
  });

  it("closes with 1008 on an invalid message when the gateway's policy is 'close'", async () => {
    const { url } = await start([StrictGateway]);
    const peer = await connectPeer(`${url}/other`);
    peer.send({ event: 'ping' });
    expect(await peer.next()).toEqual({ event: 'ping', data: 'pong' });
    peer.send({ event: 'unknown' });
    expect(await peer.closed).toEqual({ code: CloseCode.POLICY_VIOLATION, reason: 'invalid message' });
  });
});

describe('connections', () => {
  it('routes by path (/ws and /ws/, any query), answers 404 for a path no gateway owns', async () => {
    const { url } = await start([ChatGateway, StrictGateway]);
    for (const path of ['/ws', '/ws/', '/ws?x=1', '/other']) {
      const peer = await connectPeer(`${url}${path}`);
      peer.ws.close();
      await peer.closed;
    }
    const refused = await refusal(`${url}/nowhere`);
    expect(refused.status).toBe(404);
  });

  it('gives handleConnection the handshake request and handleDisconnect { code, reason }', async () => {
    const { url, app } = await start([ChatGateway]);
    const gateway = app.get(ChatGateway);
    const peer = await connectPeer(`${url}/ws?name=bob&tag=a&tag=b`, { headers: { 'X-Custom': 'yes' } });
    peer.send({ event: 'echo', data: 1 });
    await peer.next();
    const request = gateway.connections[0]!;
    expect(request.path).toBe('/ws');
    expect(request.url).toBe('/ws?name=bob&tag=a&tag=b');
    expect(request.query).toEqual({ name: 'bob', tag: ['a', 'b'] });
    expect(request.headers['x-custom']).toBe('yes');
    expect(request.remoteAddress).toBe('127.0.0.1');
    expect(request.secure).toBe(false);
    peer.ws.close(4000, 'bye');
    await peer.closed;
    await withTimeout(
      (async () => {
        while (gateway.disconnects.length === 0) await new Promise((resolve) => setImmediate(resolve));
      })(),
      WAIT_MS,
      'handleDisconnect',
    );
    expect(gateway.disconnects).toEqual([{ code: 4000, reason: 'bye' }]);
  });

  it("client.sendEvent() sends { event, data }; client.emit() (socket.io's habit) sends nothing and warns once per name", async () => {
    const warnings: string[] = [];
    const logger: LoggerService = { log: () => undefined, error: () => undefined, warn: (message: unknown) => void warnings.push(String(message)) };
    const { url } = await start([ChatGateway], {}, logger);
    const peer = await connectPeer(`${url}/ws`);
    peer.send({ event: 'notify', data: { text: 'hi' } });
    // One frame only: the emit() calls sent nothing.
    expect(await peer.next()).toEqual({ event: 'notice', data: { text: 'hi' } });
    peer.send({ event: 'echo', data: 'after' });
    expect(await peer.next()).toEqual({ event: 'echo', data: 'after' });
    expect(warnings.filter((line) => line.includes('client.emit("notice"'))).toEqual([
      'client.emit("notice", ...) only fires listeners on the server and sends nothing to the client (this is not socket.io); ' +
        'to send the event, use client.sendEvent("notice", data)',
    ]);
  });

  it('gives handleDisconnect the code the server sent when it closed the connection (1009 for a message over the limit, not 1006)', async () => {
    const { url, app } = await start([ChatGateway], { maxMessageSize: 1000, compression: false });
    const gateway = app.get(ChatGateway);
    const peer = await connectPeer(`${url}/ws`);
    peer.send({ event: 'echo', data: 'x'.repeat(1200) });
    expect((await peer.closed).code).toBe(1009);
    await withTimeout(
      (async () => {
        while (gateway.disconnects.length === 0) await new Promise((resolve) => setImmediate(resolve));
      })(),
      WAIT_MS,
      'handleDisconnect',
    );
    expect(gateway.disconnects).toEqual([
      { code: 1009, reason: 'message of 1226 bytes; the limit is 1000 (option maxMessageSize, env WEBSOCKETS_MAX_MESSAGE_SIZE)' },
    ]);
  });

  it('runs handshake guards with dependency injection: 403 for false, the HttpException status and message, else 101', async () => {
    const { url } = await start([PrivateGateway]);
    expect(await refusal(`${url}/private`)).toEqual({ status: 403, body: 'Forbidden' });
    expect(await refusal(`${url}/private?token=wrong`)).toEqual({ status: 401, body: 'bad token' });
    const peer = await connectPeer(`${url}/private?token=let-me-in`);
    peer.send({ event: 'whoami', id: 1 });
    expect(await peer.next()).toEqual({ event: 'whoami', data: { name: 'alice' }, id: 1 });
  });

  it('keeps the process up when handleConnection or handleDisconnect throws: that connection gets 1011', async () => {
    const { url } = await start([FragileGateway]);
    const thrown = await connectPeer(`${url}/fragile?mode=throw`);
    expect((await thrown.closed).code).toBe(CloseCode.INTERNAL_ERROR);
    const fine = await connectPeer(`${url}/fragile`);
    fine.send({ event: 'hello' });
    expect(await fine.next()).toEqual({ event: 'hello', data: 'hi' });
    fine.ws.close();
    await fine.closed;
    const again = await connectPeer(`${url}/fragile`);
    again.send({ event: 'hello' });
    expect(await again.next()).toEqual({ event: 'hello', data: 'hi' });
  });

  it('sends 1001 to every client on app.close() and lists live servers in WebSocketsService', async () => {
    const { url, app } = await start([ChatGateway, StrictGateway]);
    const service = app.get(WebSocketsService);
    const peers = await Promise.all([connectPeer(`${url}/ws`), connectPeer(`${url}/ws`), connectPeer(`${url}/other`)]);
    const servers = service.servers().map(({ port, sharesAppServer, path, connections, secure }) => ({ port, sharesAppServer, path, connections, secure }));
    // Gateways on the app's server report the app's port (regression: they said 0).
    const appPort = Number(new URL(url).port);
    expect(servers.sort((a, b) => String(a.path).localeCompare(String(b.path)))).toEqual([
      { port: appPort, sharesAppServer: true, path: '/other', connections: 1, secure: false },
      { port: appPort, sharesAppServer: true, path: '/ws', connections: 2, secure: false },
    ]);
    expect(service.connections).toBe(3);
    await app.close();
    for (const peer of peers) expect((await peer.closed).code).toBe(CloseCode.GOING_AWAY);
    expect(service.servers()).toEqual([]);
  });
});

describe('rooms and broadcast', () => {
  it('sends to the members of a room only, and to everyone with emit()', async () => {
    const { url } = await start([ChatGateway]);
    const [alice, bob, carol] = await Promise.all([connectPeer(`${url}/ws`), connectPeer(`${url}/ws`), connectPeer(`${url}/ws`)]);
    for (const peer of [alice!, bob!]) {
      peer.send({ event: 'join', data: 'lobby', id: 'j' });
      expect(await peer.next()).toEqual({ event: 'join', data: 'lobby', id: 'j' });
    }
    carol!.send({ event: 'join', data: 'other', id: 'j' });
    await carol!.next();
    carol!.send({ event: 'chat', data: { room: 'lobby', text: 'hi all' } });
    for (const peer of [alice!, bob!]) expect(await peer.next()).toEqual({ event: 'chat', data: { room: 'lobby', text: 'hi all' } });
    bob!.send({ event: 'leave', data: 'lobby', id: 'l' });
    expect(await bob!.next()).toEqual({ event: 'leave', data: 'lobby', id: 'l' });
    alice!.send({ event: 'chat', data: { room: 'lobby', text: 'just me' } });
    expect(await alice!.next()).toEqual({ event: 'chat', data: { room: 'lobby', text: 'just me' } });
    bob!.send({ event: 'shout', data: 'everyone' });
    for (const peer of [alice!, bob!, carol!]) expect(await peer.next()).toEqual({ event: 'shout', data: 'everyone' });
    expect([alice!.pending(), bob!.pending(), carol!.pending()]).toEqual([0, 0, 0]);
  });
});
