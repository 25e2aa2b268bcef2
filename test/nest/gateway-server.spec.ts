/**
 * The gateway server's rooms and broadcast under hostile use, over real sockets: a client cannot join more than
 * `maxRoomsPerClient` rooms (an exception frame that names the limit, with the request's `id`), and broadcasts
 * dropped for clients that went away are summed up in the log instead of costing a debug line each.
 */
import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import { UseFilters, type INestApplication, type LoggerService, type Type } from '@nestjs/common';
import { ConnectedSocket, MessageBody, SubscribeMessage, WebSocketGateway, WebSocketServer } from '@nestjs/websockets';
import { once } from 'node:events';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { ConfigError, RoomLimitError } from '../../lib/errors.js';
import { WebSocket } from '../../lib/node/websocket.js';
import { WebSocketsExceptionFilter, type WebSocketsGatewayOptions, type WebSocketsGatewayServer, type WebSocketsModuleOptions } from '../../lib/nest/index.js';
import { closePeers, connectPeer, WAIT_MS, type Peer } from './ws-peer.js';
import { withTimeout } from '../support/net.js';
import { CapturingLogger, closeNestApps, startNestApp } from '../support/nest-app.js';

const LIMIT_MESSAGE = (limit: number): string =>
  `cannot join more than the limit of ${limit} rooms per client (option maxRoomsPerClient, env WEBSOCKETS_MAX_ROOMS_PER_CLIENT)`;

/** The exception frame of a join over the limit. */
function roomLimit(limit: number, id?: number): unknown {
  return { event: 'exception', data: { status: 'error', code: 'WS_ERR_ROOM_LIMIT', message: LIMIT_MESSAGE(limit) }, ...(id === undefined ? {} : { id }) };
}

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/rooms' })
class RoomsGateway {
  @WebSocketServer()
  server!: WebSocketsGatewayServer;
  readonly clients: WebSocket[] = [];

  handleConnection(client: WebSocket): void {
    this.clients.push(client);
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
}

/** With the package's exception filter, the limit is named even for a message without an id. */
@UseFilters(new WebSocketsExceptionFilter())
@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/small', maxRoomsPerClient: 2 })
class SmallRoomsGateway {
  @WebSocketServer()
  server!: WebSocketsGatewayServer;

  @SubscribeMessage('join')
  join(@ConnectedSocket() client: WebSocket, @MessageBody() room: string): string {
    this.server.join(client, room);
    return room;
  }
}


let app: INestApplication | undefined;

async function start(gateways: Type[], options: WebSocketsModuleOptions = {}, logger: LoggerService | false = false): Promise<string> {
  const started = await startNestApp({ providers: gateways, options, logger });
  app = started.app;
  return started.url();
}

afterEach(async () => {
  await closePeers();
  await closeNestApps();
  app = undefined;
});

/** Joins rooms `first`..`last` (named r<n>), one request each with id n, and checks each answer. */
async function joinAll(peer: Peer, first: number, last: number): Promise<void> {
  for (let n = first; n <= last; n++) peer.send({ event: 'join', data: `r${n}`, id: n });
  for (let n = first; n <= last; n++) expect(await peer.next()).toEqual({ event: 'join', data: `r${n}`, id: n });
}

describe('rooms per client (maxRoomsPerClient)', () => {
  it('joins 128 rooms, answers the 129th with an exception frame that names the limit, with its id', async () => {
    const url = await start([RoomsGateway]);
    const peer = await connectPeer(`${url}/rooms`);
    await joinAll(peer, 1, 128);
    peer.send({ event: 'join', data: 'r129', id: 129 });
    expect(await peer.next()).toEqual(roomLimit(128, 129));
    // A room the client is already in is no new room; leaving one makes room for another.
    peer.send({ event: 'join', data: 'r1', id: 130 });
    expect(await peer.next()).toEqual({ event: 'join', data: 'r1', id: 130 });
    peer.send({ event: 'leave', data: 'r1', id: 131 });
    expect(await peer.next()).toEqual({ event: 'leave', data: 'r1', id: 131 });
    peer.send({ event: 'join', data: 'r129', id: 132 });
    expect(await peer.next()).toEqual({ event: 'join', data: 'r129', id: 132 });
    // A flood of joins leaves the tables at the limit.
    for (let n = 1000; n < 1300; n++) peer.send({ event: 'join', data: `r${n}`, id: n });
    for (let n = 1000; n < 1300; n++) expect(await peer.next()).toEqual(roomLimit(128, n));
    const gateway = app!.get(RoomsGateway);
    const client = gateway.clients[0]!;
    expect(gateway.server.roomsOf(client).size).toBe(128);
    expect(gateway.server.rooms.size).toBe(128);
    // Outside a handler, join() throws the typed error.
    expect(() => gateway.server.join(client, 'outside')).toThrow(new RoomLimitError(128, 'outside'));
    try {
      gateway.server.join(client, 'outside');
    } catch (error) {
      expect(error).toBeInstanceOf(RoomLimitError);
      expect(error).toMatchObject({ code: 'WS_ERR_ROOM_LIMIT', limit: 128, room: 'outside' });
    }
    // Another client has its own count.
    const other = await connectPeer(`${url}/rooms`);
    await joinAll(other, 1, 3);
  });

  it('takes WEBSOCKETS_MAX_ROOMS_PER_CLIENT (off for no limit) and a gateway option over it', async () => {
    let url = await start([RoomsGateway], { env: { WEBSOCKETS_MAX_ROOMS_PER_CLIENT: '3' } });
    let peer = await connectPeer(`${url}/rooms`);
    await joinAll(peer, 1, 3);
    peer.send({ event: 'join', data: 'r4', id: 4 });
    expect(await peer.next()).toEqual(roomLimit(3, 4));
    await closePeers();
    await app?.close();

    url = await start([RoomsGateway, SmallRoomsGateway], { env: { WEBSOCKETS_MAX_ROOMS_PER_CLIENT: 'off' } });
    peer = await connectPeer(`${url}/rooms`);
    await joinAll(peer, 1, 300);
    expect(app!.get(RoomsGateway).server.maxRoomsPerClient).toBeNull();
    // The gateway's own limit, and WebSocketsExceptionFilter: the limit is named without an id too.
    const small = await connectPeer(`${url}/small`);
    for (const room of ['a', 'b', 'c']) small.send({ event: 'join', data: room });
    expect(await small.next()).toEqual({ event: 'join', data: 'a' });
    expect(await small.next()).toEqual({ event: 'join', data: 'b' });
    expect(await small.next()).toEqual(roomLimit(2));
    small.send({ event: 'join', data: 'd', id: 'x' });
    expect(await small.next()).toEqual({ ...(roomLimit(2) as object), id: 'x' });
  });

  it('refuses an invalid value at start-up, naming the variable or the option', async () => {
    await expect(start([RoomsGateway], { env: { WEBSOCKETS_MAX_ROOMS_PER_CLIENT: '0' } })).rejects.toThrow(
      new ConfigError(
        'WEBSOCKETS_MAX_ROOMS_PER_CLIENT must be a positive integer (rooms, or off for no limit); got "0" (option maxRoomsPerClient, env WEBSOCKETS_MAX_ROOMS_PER_CLIENT)',
        'maxRoomsPerClient',
        '0',
      ),
    );
    await expect(start([RoomsGateway], { maxRoomsPerClient: -1 })).rejects.toThrow(/^option maxRoomsPerClient must be a positive integer/);
  });
});

describe('broadcasts dropped for clients that went away', () => {
  it('a broadcast backlog to 4 clients that then drop is summed up in one debug line', async () => {
    const logger = new CapturingLogger();
    // No bound on what may wait: the backlog below is 3 MiB per client (the bound's own tests are in test/node).
    const url = await start([RoomsGateway], { compression: false, maxBufferedAmount: null }, logger);
    const gateway = app!.get(RoomsGateway);
    const peers = await Promise.all([1, 2, 3, 4].map(() => connectPeer(`${url}/rooms`, { perMessageDeflate: false })));
    for (const peer of peers) {
      peer.send({ event: 'join', data: 'busy', id: 1 });
      expect(await peer.next()).toEqual({ event: 'join', data: 'busy', id: 1 });
      peer.ws.pause();
    }
    const clients = gateway.clients;
    expect(clients).toHaveLength(4);
    // Fill each client's socket until its sends wait (over writeHighWaterMark), then queue 50 more.
    const payload = Buffer.alloc(65_536, 1);
    await withTimeout(
      (async () => {
        while (clients.some((client) => client.bufferedAmount <= 32_768)) {
          await gateway.server.to('busy').send(payload);
          await nextTurn();
        }
      })(),
      WAIT_MS * 2,
      'the clients backing up',
    );
    const QUEUED = 50;
    for (let i = 0; i < QUEUED; i++) await gateway.server.to('busy').send(payload);
    const before = logger.lines.length;
    const closed = clients.map((client) => once(client, 'close'));
    for (const peer of peers) peer.ws.terminate();
    await withTimeout(Promise.all(closed), WAIT_MS, 'the server seeing the clients go');
    const drops = (): string[] => logger.lines.slice(before).filter((line) => /not delivered|failed/.test(line));
    await withTimeout(
      (async () => {
        while (drops().length === 0) await sleep(50);
      })(),
      WAIT_MS,
      'the summary line',
    );
    // Give stragglers a chance to show: there must be none.
    await sleep(100);
    expect(drops()).toHaveLength(1);
    const [line] = drops();
    const match = /^debug: (\d+) broadcast message\(s\) on ws:0:\/rooms not delivered to 4 client\(s\) whose connection closed/.exec(line!);
    expect(match).not.toBeNull();
    expect(Number(match![1])).toBeGreaterThanOrEqual(4 * QUEUED);
  });
});
