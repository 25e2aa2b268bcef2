/**
 * Hostile messages at the Nest layer, over real sockets: compressed, deeply nested JSON (a 600 KB `join` nested
 * 300 000 levels deep deflates to well under 1 KB) is refused before JSON.parse with an exception frame carrying the
 * request's `id`, while a well-behaved client on the same server keeps getting its echoes; every failure inside the
 * message pipeline (a custom parser or a handler overflowing the stack) is answered with an exception frame, never
 * with silence.
 */
import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import type { Type } from '@nestjs/common';
import { MessageBody, SubscribeMessage, WebSocketGateway, WsException } from '@nestjs/websockets';
import { deflateRawSync } from 'node:zlib';
import { ConfigError } from '../../lib/errors.js';
import { CloseCode } from '../../lib/protocol/close-codes.js';
import { exceedsJsonDepth, readTopLevelId, type ParsedMessage, type WebSocketsGatewayOptions, type WebSocketsModuleOptions } from '../../lib/nest/index.js';
import { AppModule } from '../../sample/app.module.js';
import { closePeers, connectPeer, type Peer } from './ws-peer.js';
import { closeNestApps, startNestApp } from '../support/nest-app.js';

const DEPTH = 300_000;

/** `{"event":"join","data":{"room":[[[...]]]},"id":<id>}`, nested `depth` levels inside `room`. */
function deepJoin(id: number | string, depth = DEPTH): string {
  return `{"event":"join","data":{"room":${'['.repeat(depth)}${']'.repeat(depth)}},"id":${JSON.stringify(id)}}`;
}

/** `[[...]]`: `depth` nested arrays. */
function nested(depth: number): string {
  return `${'['.repeat(depth)}${']'.repeat(depth)}`;
}

/** The exception frame of a message nested deeper than `limit`. */
function tooDeep(limit: number, id?: number | string): unknown {
  return {
    event: 'exception',
    data: {
      status: 'error',
      code: 'WS_ERR_MESSAGE_TOO_DEEP',
      message: `JSON nested deeper than the limit of ${limit} levels (option maxJsonDepth, env WEBSOCKETS_MAX_JSON_DEPTH)`,
    },
    ...(id === undefined ? {} : { id }),
  };
}

/** Depth of nested arrays, found recursively, as a naive validator would: overflows the stack on deep input. */
function arrayDepth(value: unknown): number {
  return Array.isArray(value) ? 1 + Math.max(0, ...value.map(arrayDepth)) : 0;
}

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/ws' })
class EchoGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown): unknown {
    return data;
  }
}

@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/roomy', maxJsonDepth: 8, invalidMessages: 'close' })
class RoomyGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown): unknown {
    return data;
  }
}

/** No depth bound worth the name: what reaches the handler is as deep as the client made it. */
@WebSocketGateway<WebSocketsGatewayOptions>({ path: '/unbounded', maxJsonDepth: 1_000_000 })
class UnboundedGateway {
  @SubscribeMessage('refuse')
  refuse(): never {
    // Nest's filter puts the message's data in the frame's `cause`: serializing it overflows the stack.
    throw new WsException('refused');
  }
}

/** A custom parser that recurses once per level of the input. */
@WebSocketGateway<WebSocketsGatewayOptions>({
  path: '/custom',
  messageParser: (data): ParsedMessage => {
    const message = JSON.parse(String(data)) as ParsedMessage;
    arrayDepth(message.data);
    return message;
  },
})
class CustomParserGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown): unknown {
    return data;
  }
}


async function start(gateways: Type[], options: WebSocketsModuleOptions = {}): Promise<string> {
  return (await startNestApp({ providers: gateways, options })).url();
}

async function startSample(): Promise<string> {
  delete process.env.SAMPLE_TOKEN;
  return (await startNestApp({ imports: [AppModule] })).url('/ws');
}

afterEach(async () => {
  await closePeers();
  await closeNestApps();
});

/** Sends numbered echoes from `peer` until `done` resolves; returns how many came back, each in order. */
async function echoWhile(peer: Peer, done: Promise<unknown>): Promise<number> {
  let finished = false;
  const finish = (): void => void (finished = true);
  done.then(finish, finish);
  let n = 0;
  while (!finished) {
    peer.send({ event: 'echo', data: n, id: `e${n}` });
    expect(await peer.next()).toEqual({ event: 'echo', data: n, id: `e${n}` });
    n++;
  }
  return n;
}

describe('deeply nested JSON', () => {
  it('a compressed 300 000-deep join gets a fast exception frame with its id; a client on the same server keeps its echoes', async () => {
    const url = await startSample();
    const attacker = await connectPeer(url, { perMessageDeflate: { threshold: 0 } });
    const neighbour = await connectPeer(url);
    const message = deepJoin(41);
    // What the attack costs on the wire: the whole message deflates to well under 1 KB.
    expect(message.length).toBeGreaterThan(2 * DEPTH);
    expect(deflateRawSync(message).length).toBeLessThan(1024);
    const replies: unknown[] = [];
    const attack = (async () => {
      for (let i = 0; i < 5; i++) {
        attacker.ws.send(deepJoin(41 + i));
        replies.push(await attacker.next());
      }
    })();
    const echoes = await echoWhile(neighbour, attack);
    await attack;
    expect(echoes).toBeGreaterThan(0);
    for (const [i, reply] of replies.entries()) {
      expect(reply).toEqual({
        event: 'exception',
        data: {
          status: 'error',
          code: 'WS_ERR_MESSAGE_TOO_DEEP',
          message: 'JSON nested deeper than the limit of 64 levels (option maxJsonDepth, env WEBSOCKETS_MAX_JSON_DEPTH)',
        },
        id: 41 + i,
      });
    }
    // The attacker's connection stays usable.
    attacker.send({ event: 'echo', data: 'after', id: 'a' });
    expect(await attacker.next()).toEqual({ event: 'echo', data: 'after', id: 'a' });
  });
});

describe('the depth limit (maxJsonDepth)', () => {
  it('accepts exactly 64 levels (the message is level 1) and refuses 65, with the id wherever it is', async () => {
    const url = await start([EchoGateway]);
    const peer = await connectPeer(`${url}/ws`);
    peer.ws.send(`{"event":"echo","data":${nested(63)},"id":1}`);
    expect(await peer.next()).toEqual({ event: 'echo', data: JSON.parse(nested(63)), id: 1 });
    peer.ws.send(`{"event":"echo","data":${nested(64)},"id":2}`);
    expect(await peer.next()).toEqual(tooDeep(64, 2));
    // The id first, as a string, in a binary frame; then no id at all.
    peer.ws.send(Buffer.from(`{"id":"x","event":"echo","data":${nested(64)}}`));
    expect(await peer.next()).toEqual(tooDeep(64, 'x'));
    peer.ws.send(`{"event":"echo","data":{"id":3,"deep":${nested(64)}}}`);
    expect(await peer.next()).toEqual(tooDeep(64));
    // Brackets in strings do not count, and closing ones cannot hide real depth either.
    const brackets = `"${'['.repeat(200)}${'}'.repeat(200)}\\\\"`;
    peer.ws.send(`{"event":"echo","data":[${brackets},${nested(62)}],"id":4}`);
    expect(await peer.next()).toEqual({ event: 'echo', data: [JSON.parse(brackets), JSON.parse(nested(62))], id: 4 });
    peer.ws.send(`{"event":"echo","data":["${']'.repeat(200)}",${nested(63)}],"id":5}`);
    expect(await peer.next()).toEqual(tooDeep(64, 5));
  });

  it('takes WEBSOCKETS_MAX_JSON_DEPTH, and a gateway option over it (with its invalidMessages policy)', async () => {
    const url = await start([EchoGateway, RoomyGateway], { env: { WEBSOCKETS_MAX_JSON_DEPTH: '4' } });
    const peer = await connectPeer(`${url}/ws`);
    peer.ws.send(`{"event":"echo","data":${nested(3)},"id":1}`);
    expect(await peer.next()).toEqual({ event: 'echo', data: [[[]]], id: 1 });
    peer.ws.send(`{"event":"echo","data":${nested(4)},"id":2}`);
    expect(await peer.next()).toEqual(tooDeep(4, 2));
    const roomy = await connectPeer(`${url}/roomy`);
    roomy.ws.send(`{"event":"echo","data":${nested(7)},"id":1}`);
    expect(await roomy.next()).toEqual({ event: 'echo', data: JSON.parse(nested(7)), id: 1 });
    roomy.ws.send(`{"event":"echo","data":${nested(8)},"id":2}`);
    expect(await roomy.closed).toEqual({ code: CloseCode.POLICY_VIOLATION, reason: 'invalid message' });
  });

  it('refuses an invalid value at start-up, naming the variable or the option', async () => {
    await expect(start([EchoGateway], { env: { WEBSOCKETS_MAX_JSON_DEPTH: '0' } })).rejects.toThrow(
      new ConfigError('WEBSOCKETS_MAX_JSON_DEPTH must be a positive integer (levels of nesting); got "0" (option maxJsonDepth, env WEBSOCKETS_MAX_JSON_DEPTH)', 'maxJsonDepth', '0'),
    );
    await expect(start([EchoGateway], { maxJsonDepth: 1.5 })).rejects.toThrow(/^option maxJsonDepth must be a positive integer/);
  });
});

describe('failures inside the message pipeline', () => {
  it('a custom parser that overflows the stack: an exception frame with the id read from the message', async () => {
    const url = await start([CustomParserGateway]);
    const peer = await connectPeer(`${url}/custom`);
    peer.ws.send(`{"event":"echo","data":${nested(DEPTH)},"id":7}`);
    expect(await peer.next()).toEqual({ event: 'exception', data: { status: 'error', message: 'Maximum call stack size exceeded' }, id: 7 });
    peer.send({ event: 'echo', data: [[1]], id: 8 });
    expect(await peer.next()).toEqual({ event: 'echo', data: [[1]], id: 8 });
  });

  it("an exception filter that overflows the stack on a handler's deep data: an exception frame with the id", async () => {
    const url = await start([UnboundedGateway]);
    const peer = await connectPeer(`${url}/unbounded`);
    peer.ws.send(`{"event":"refuse","data":${nested(DEPTH)},"id":9}`);
    expect(await peer.next()).toEqual({ event: 'exception', data: { status: 'error', message: 'Internal server error' }, id: 9 });
    peer.send({ event: 'refuse', data: 1, id: 10 });
    expect(await peer.next()).toEqual({ event: 'exception', data: { status: 'error', message: 'refused', cause: { pattern: 'refuse', data: 1 } }, id: 10 });
  });
});

describe('the scans behind the limit', () => {
  it('exceedsJsonDepth counts brackets outside strings only, escapes included, and skips text too short to be deep', () => {
    expect(exceedsJsonDepth(nested(3), 3)).toBe(false);
    expect(exceedsJsonDepth(nested(4), 3)).toBe(true);
    expect(exceedsJsonDepth(`{"a":{"b":[{}]}}`, 4)).toBe(false);
    expect(exceedsJsonDepth(`{"a":{"b":[{}]}}`, 3)).toBe(true);
    expect(exceedsJsonDepth(String.raw`["\\",[["\"[[[["]]]`, 3)).toBe(false);
    expect(exceedsJsonDepth(String.raw`["\\",[["\"[[[[",[]]]]`, 3)).toBe(true);
    // Shorter than 2 * (limit + 1): cannot be deeper than the limit when it is JSON, so not scanned.
    expect(exceedsJsonDepth('[[[[[[[', 3)).toBe(false);
    expect(exceedsJsonDepth('[[[[[[[[', 3)).toBe(true);
    // An unterminated string or a closing bracket too many: not JSON, left to JSON.parse.
    expect(exceedsJsonDepth(`["${'['.repeat(20)}`, 3)).toBe(false);
    expect(exceedsJsonDepth(`]]${'['.repeat(20)}`, 3)).toBe(false);
  });

  it('readTopLevelId reads the last top-level "id" that is a string or a finite number, and nothing nested', () => {
    expect(readTopLevelId(`{"event":"x","data":${nested(1000)},"id":42}`)).toBe(42);
    expect(readTopLevelId(String.raw` { "id" : "a\"b" , "data" : {"id": 1} } `)).toBe('a"b');
    expect(readTopLevelId(String.raw`{"\u0069d":-1.5e3,"event":"x"}`)).toBe(-1500);
    expect(readTopLevelId(`{"data":{"id":1},"event":"x"}`)).toBeUndefined();
    expect(readTopLevelId(`{"id":1,"id":{"x":2}}`)).toBe(1);
    expect(readTopLevelId(`{"id":1,"id":2}`)).toBe(2);
    expect(readTopLevelId(`{"id":1e999}`)).toBeUndefined();
    expect(readTopLevelId(`[{"id":1}]`)).toBeUndefined();
    expect(readTopLevelId(`{"id":5,"data":[[[`)).toBe(5);
    expect(readTopLevelId(`{"data":[[[,"id":5}`)).toBeUndefined();
    expect(readTopLevelId('{not json')).toBeUndefined();
    expect(readTopLevelId('')).toBeUndefined();
  });
});
