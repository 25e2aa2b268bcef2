/**
 * The cluster as one server: two and three instances in this process, each with its own `RedisBroadcastBus` (its own
 * Redis connections) on one real redis-server, and clients of the `ws` package on each. Every cluster-wide operation
 * across instances (`fetchClients`, `count`, `join`, `leave`, `disconnect`, server-side events and requests), a target
 * that matches nobody, presence and its events, an instance that closes; and the same operations on the in-process
 * bus (one instance).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { InProcessBroadcastBus } from '../../lib/broadcast/in-process-bus.js';
import { RedisBroadcastBus } from '../../lib/broadcast/redis/redis-bus.js';
import { resolveClusterTiming } from '../../lib/config/index.js';
import { ConfigError, InvalidStateError } from '../../lib/errors.js';
import { resolveWebSocketsOptions } from '../../lib/nest/websockets-options.js';
import { closePeers, connectPeer, type Peer } from '../nest/ws-peer.js';
import { withTimeout } from '../support/net.js';
import { describeWithPeer } from '../support/peers.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { startInstance, type ClusterInstance } from './fixtures/cluster-instance.js';

const WAIT_MS = 10_000;
const silent = { log: () => undefined, warn: () => undefined, error: () => undefined };

let redis: RedisServer;
const instances = new Set<ClusterInstance>();

/** A client of `instance` named `name` in `rooms`; resolves once the server has its hello (sent just before it joins them). */
async function client(instance: ClusterInstance, name: string, rooms: readonly string[] = []): Promise<Peer & { id: string }> {
  const query = new URLSearchParams([['name', name], ...rooms.map((room): [string, string] => ['room', room])]);
  const peer = await connectPeer(`${instance.url}?${query.toString()}`);
  const hello = (await peer.next()) as { event: string; data: { id: string } };
  expect(hello.event).toBe('hello');
  return Object.assign(peer, { id: hello.data.id });
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** `count` instances on Redis that know each other. */
async function cluster(count: number, timing: { heartbeatMs?: number; expiryMs?: number; timeoutMs?: number } = {}): Promise<ClusterInstance[]> {
  const started = await Promise.all(
    Array.from({ length: count }, () =>
      startInstance({ bus: new RedisBroadcastBus({ url: redis.url, logger: silent }), ownsBus: true, heartbeatMs: 200, expiryMs: 1000, logger: silent, ...timing }),
    ),
  );
  for (const instance of started) instances.add(instance);
  for (const instance of started) await until(() => instance.server.instances().length === count, 'the instances to know each other');
  return started;
}

const sortById = <T extends { id: string }>(list: readonly T[]): T[] => [...list].sort((a, b) => a.id.localeCompare(b.id));

describeWithPeer('redis', 'cluster-wide operations across instances on one redis-server', () => {
  beforeAll(async () => {
    redis = await startRedis();
  });

  afterEach(async () => {
    await closePeers();
    await Promise.all([...instances].map((instance) => instance.close()));
    instances.clear();
    if (!redis.running) await redis.start();
  });

  afterAll(async () => {
    await redis?.close();
  });

  it('fetchClients() and count() see every client of every instance, by target; a target that matches nobody answers at once', async () => {
    const [a, b] = await cluster(2);
    const a1 = await client(a!, 'a1', ['lobby']);
    const a2 = await client(a!, 'a2', ['lobby', 'vip']);
    const b1 = await client(b!, 'b1', ['lobby']);
    const b2 = await client(b!, 'b2', []);

    const all = await a!.server.fetchClients();
    expect(sortById(all)).toEqual(
      sortById([
        { id: a1.id, instance: a!.server.instanceId, rooms: ['lobby'], data: { name: 'a1' } },
        { id: a2.id, instance: a!.server.instanceId, rooms: ['lobby', 'vip'], data: { name: 'a2' } },
        { id: b1.id, instance: b!.server.instanceId, rooms: ['lobby'], data: { name: 'b1' } },
        { id: b2.id, instance: b!.server.instanceId, rooms: [], data: { name: 'b2' } },
      ]),
    );
    expect(await b!.server.count()).toBe(4);
    expect((await b!.server.to('lobby').fetchClients()).map((c) => c.id).sort()).toEqual([a1.id, a2.id, b1.id].sort());
    expect(await a!.server.to('vip').count()).toBe(1);
    // except() excludes the local client given (here a1, on a) from the cluster-wide target.
    const exceptA1 = a!.server.to('lobby').except(a!.byName.get('a1')!);
    expect((await exceptA1.fetchClients()).map((c) => c.id).sort()).toEqual([a2.id, b1.id].sort());
    expect(await a!.server.except(a!.byName.get('a1')!, a!.byName.get('a2')!).count()).toBe(2);

    const started = Date.now();
    expect(await a!.server.to('nobody').fetchClients()).toEqual([]);
    expect(await b!.server.to('nobody').count()).toBe(0);
    // Every instance answered (with nothing): no waiting for the timeout.
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('join(room) / leave(room) move clients wherever they are; disconnect() closes them with the code and reason', async () => {
    const [a, b] = await cluster(2);
    const a1 = await client(a!, 'a1', ['user:7']);
    const b1 = await client(b!, 'b1', ['user:7']);
    const b2 = await client(b!, 'b2', ['user:8']);

    // Every connection of user 7, on both instances, joins "team".
    expect(await a!.server.to('user:7').join('team')).toBe(2);
    expect(b!.server.roomsOf(b!.byName.get('b1')!)).toEqual(new Set(['user:7', 'team']));
    await a!.server.to('team').emit('news', 'for the team');
    expect(await a1.next()).toEqual({ event: 'news', data: 'for the team' });
    expect(await b1.next()).toEqual({ event: 'news', data: 'for the team' });
    expect(await b!.server.to('team').count()).toBe(2);

    expect(await b!.server.leave('team')).toBe(3);
    expect(await a!.server.to('team').count()).toBe(0);
    expect(a!.server.roomsOf(a!.byName.get('a1')!)).toEqual(new Set(['user:7']));

    // Kick user 7 everywhere; user 8 stays.
    expect(await b!.server.to('user:7').disconnect(4001, 'kicked')).toBe(2);
    expect(await a1.closed).toEqual({ code: 4001, reason: 'kicked' });
    expect(await b1.closed).toEqual({ code: 4001, reason: 'kicked' });
    expect(await a!.server.count()).toBe(1);
    expect(b2.ws.readyState).toBe(b2.ws.OPEN);

    await expect(a!.server.disconnect(1005)).rejects.toThrow(RangeError);
    await expect(a!.server.disconnect(1000, 'x'.repeat(124))).rejects.toThrow('at most 123 bytes');
  });

  it('serverSideEmit / serverSideRequest / onServerEvent across three instances', async () => {
    const [a, b, c] = await cluster(3);
    const heard: Array<[string, unknown, string]> = [];
    for (const [name, instance] of [['b', b!], ['c', c!]] as const) {
      instance.server.onServerEvent('ping', (data, from) => {
        heard.push([name, data, from.instance]);
        return { pong: name, got: data };
      });
    }
    await a!.server.serverSideEmit('ping', { n: 1 });
    await until(() => heard.length === 2, 'both instances to hear the event');
    expect(heard.map(([name]) => name).sort()).toEqual(['b', 'c']);
    expect(heard.every(([, data, from]) => (data as { n: number }).n === 1 && from === a!.server.instanceId)).toBe(true);

    const replies = await a!.server.serverSideRequest('ping', 42);
    expect(replies.sort((x, y) => x.instance.localeCompare(y.instance))).toEqual(
      [
        { instance: b!.server.instanceId, data: { pong: 'b', got: 42 } },
        { instance: c!.server.instanceId, data: { pong: 'c', got: 42 } },
      ].sort((x, y) => x.instance.localeCompare(y.instance)),
    );

    // An async handler, a throwing one, and an instance without a handler: one reply each, none lost.
    b!.server.onServerEvent('work', async (data) => `done ${String(data)}`);
    c!.server.onServerEvent('work', () => {
      throw new Error('c cannot');
    });
    const work = await b!.server.serverSideRequest('work', 'x');
    expect(work).toEqual(expect.arrayContaining([{ instance: c!.server.instanceId, error: 'c cannot' }]));
    expect(work.find((reply) => reply.instance === a!.server.instanceId)?.error).toMatch(/^no handler for server event "work" on instance [0-9a-f]{32}$/);
    const fromA = await a!.server.serverSideRequest('work', 'y');
    expect(fromA).toEqual(expect.arrayContaining([{ instance: b!.server.instanceId, data: 'done y' }]));

    // Counts add up across the three.
    await Promise.all([client(a!, 'a1'), client(b!, 'b1'), client(c!, 'c1'), client(c!, 'c2')]);
    expect(await b!.server.count()).toBe(4);

    // An instance that closes says goodbye: the others stop waiting for it at once.
    await c!.close();
    instances.delete(c!);
    await until(() => a!.server.instances().length === 2, 'a to forget c');
    expect(await a!.server.count()).toBe(2);
  });

  it('a request stops waiting for an instance that closes meanwhile; a removed handler no longer answers', async () => {
    const [a, b, c] = await cluster(3);
    b!.server.onServerEvent('slow', () => 'b');
    let asked!: () => void;
    const cAsked = new Promise<void>((resolve) => (asked = resolve));
    c!.server.onServerEvent('slow', () => {
      asked();
      return new Promise(() => undefined); // never answers
    });
    const started = Date.now();
    const replies = a!.server.serverSideRequest('slow', null, { timeoutMs: 8000 });
    await cAsked;
    await c!.close();
    instances.delete(c!);
    expect(await replies).toEqual([{ instance: b!.server.instanceId, data: 'b' }]);
    expect(Date.now() - started).toBeLessThan(4000);

    const off = b!.server.onServerEvent('gone', () => 'here');
    expect(await a!.server.serverSideRequest('gone', null)).toEqual([{ instance: b!.server.instanceId, data: 'here' }]);
    off();
    expect((await a!.server.serverSideRequest('gone', null))[0]?.error).toMatch(/^no handler for server event "gone"/);
  });

  it('presence: members across instances with their data, joined/left events, and an instance that closes', async () => {
    const [a, b] = await cluster(2);
    for (const instance of [a!, b!]) instance.server.trackPresence({ events: true, rooms: (room) => room !== 'untracked' });
    const a1 = await client(a!, 'a1', ['lobby']);
    expect(await a1.next()).toEqual({ event: 'presence', data: { room: 'lobby', joined: a1.id } });
    const b1 = await client(b!, 'b1', ['lobby', 'untracked']);
    expect(await b1.next()).toEqual({ event: 'presence', data: { room: 'lobby', joined: b1.id } });
    expect(await a1.next()).toEqual({ event: 'presence', data: { room: 'lobby', joined: b1.id } });

    for (const instance of [a!, b!]) {
      await until(() => instance.server.presence('lobby').length === 2, 'both members in each copy');
      expect(sortById(instance.server.presence('lobby'))).toEqual(
        sortById([
          { id: a1.id, instance: a!.server.instanceId, data: { name: 'a1' } },
          { id: b1.id, instance: b!.server.instanceId, data: { name: 'b1' } },
        ]),
      );
      expect(instance.server.presence('untracked')).toEqual([]);
    }

    // Data changes travel without an event.
    b!.server.setClientData(b!.byName.get('b1')!, { name: 'b1', status: 'away' });
    await until(() => a!.server.presence('lobby').some((m) => (m.data as { status?: string }).status === 'away'), 'the new data on a');

    b!.server.leave(b!.byName.get('b1')!, 'lobby');
    expect(await a1.next()).toEqual({ event: 'presence', data: { room: 'lobby', left: b1.id } });
    await until(() => a!.server.presence('lobby').length === 1, 'b1 to leave a\'s copy');

    // A joins through a cluster-wide join count as joins too.
    await a!.server.join('lobby');
    expect(await a1.next()).toEqual({ event: 'presence', data: { room: 'lobby', joined: b1.id } });

    // b closes: it says goodbye, and a's members hear that b1 left.
    await b!.close();
    instances.delete(b!);
    expect(await a1.next()).toEqual({ event: 'presence', data: { room: 'lobby', left: b1.id } });
    expect(a!.server.presence('lobby').map((m) => m.id)).toEqual([a1.id]);
    expect(a1.pending()).toBe(0);
  });

  it('while Redis is away the instances forget each other (members leave); when it is back they rejoin', async () => {
    const [a, b] = await cluster(2);
    for (const instance of [a!, b!]) instance.server.trackPresence({ events: true });
    const a1 = await client(a!, 'a1', ['lobby']);
    expect(await a1.next()).toEqual({ event: 'presence', data: { room: 'lobby', joined: a1.id } });
    const b1 = await client(b!, 'b1', ['lobby']);
    expect(await a1.next()).toEqual({ event: 'presence', data: { room: 'lobby', joined: b1.id } });

    await redis.stop();
    // Expiry 1000 ms, heartbeat 200 ms: b's member leaves a's copy.
    expect(await withTimeout(a1.next(), 5000, 'the left event')).toEqual({ event: 'presence', data: { room: 'lobby', left: b1.id } });
    expect(a!.server.instances()).toEqual([a!.server.instanceId]);
    expect(a!.server.presence('lobby').map((m) => m.id)).toEqual([a1.id]);

    await redis.start();
    expect(await withTimeout(a1.next(), 15_000, 'the joined event')).toEqual({ event: 'presence', data: { room: 'lobby', joined: b1.id } });
    await until(() => a!.server.instances().length === 2, 'a to know b again');
    expect(sortById(a!.server.presence('lobby')).map((m) => m.id)).toEqual(sortById([{ id: a1.id }, { id: b1.id }]).map((m) => m.id));
  }, 40_000);

  it('a new instance gets the presence the others had before it started', async () => {
    const [a] = await cluster(1);
    a!.server.trackPresence();
    const a1 = await client(a!, 'a1', ['lobby']);
    const late = await startInstance({ bus: new RedisBroadcastBus({ url: redis.url, logger: silent }), ownsBus: true, heartbeatMs: 200, expiryMs: 1000 });
    instances.add(late);
    late.server.trackPresence();
    await until(() => late.server.presence('lobby').length === 1, 'the late instance to learn a1');
    expect(late.server.presence('lobby')).toEqual([{ id: a1.id, instance: a!.server.instanceId, data: { name: 'a1' } }]);
  });
});

describe('cluster-wide operations on the in-process bus (one instance)', () => {
  const bus = new InProcessBroadcastBus();
  afterEach(async () => {
    await closePeers();
    await Promise.all([...instances].map((instance) => instance.close()));
    instances.clear();
  });

  it('answers from this instance alone, without waiting', async () => {
    const one = await startInstance({ bus });
    instances.add(one);
    expect(one.server.instances()).toEqual([one.server.instanceId]);
    expect(() => one.server.presence('lobby')).toThrow(InvalidStateError);
    one.server.trackPresence({ events: true });
    const c1 = await client(one, 'c1', ['lobby']);
    expect(await c1.next()).toEqual({ event: 'presence', data: { room: 'lobby', joined: c1.id } });
    const c2 = await client(one, 'c2');
    expect(await withTimeout(one.server.count(), 100, 'count')).toBe(2);
    expect((await one.server.to('lobby').fetchClients()).map((c) => c.id)).toEqual([c1.id]);
    expect(await one.server.except(one.byName.get('c1')!).join('lobby')).toBe(1);
    expect(await c1.next()).toEqual({ event: 'presence', data: { room: 'lobby', joined: c2.id } });
    expect(one.server.presence('lobby').map((m) => m.id).sort()).toEqual([c1.id, c2.id].sort());
    expect(await one.server.serverSideRequest('anything', null)).toEqual([]);
    await one.server.serverSideEmit('anything', null);
    expect(await one.server.to('lobby').disconnect()).toBe(2);
    expect(await c1.closed).toEqual({ code: 1000, reason: '' });
    await one.close();
    instances.delete(one);
    await expect(one.server.count()).rejects.toThrow('cluster-wide count after the server closed');
  });
});

describe('cluster control messages and arguments (in-process bus)', () => {
  afterEach(async () => {
    await closePeers();
    await Promise.all([...instances].map((instance) => instance.close()));
    instances.clear();
  });

  it('drops malformed control messages with a warning, refuses bad arguments, and sends presence events to chosen members', async () => {
    const bus = new InProcessBroadcastBus();
    const warnings: string[] = [];
    const logger = { log: () => undefined, warn: (m: string) => void warnings.push(m), error: (m: string) => void warnings.push(`error: ${m}`) };
    const one = await startInstance({ bus, logger });
    instances.add(one);
    const stranger = '0'.repeat(32);
    for (const data of ['not json', '[1]', JSON.stringify({ v: 2, from: stranger, t: 'hb', seq: 0 }), JSON.stringify({ v: 1, from: 'x', t: 'hb', seq: 0 })]) {
      await bus.publish('ws:cluster-test#cluster', { room: null, data, origin: stranger });
    }
    await bus.publish('ws:cluster-test#cluster', { room: null, data: JSON.stringify({ v: 1, from: stranger, t: 'op', rid: 1, op: 'explode', target: { room: null, except: [] } }), origin: stranger });
    // One warning per 10 s; the rest go to debug.
    expect(warnings).toEqual(['dropped a malformed message on ws:cluster-test#cluster: not JSON']);
    expect(one.server.instances()).toEqual([one.server.instanceId]);

    await expect(one.server.count({ timeoutMs: 0 })).rejects.toThrow('cluster-wide count: timeoutMs must be a positive integer (ms); got 0');
    await expect(one.server.to('r').join(42 as unknown as string)).rejects.toThrow('a room name must be a string; got 42');
    expect(() => one.server.onServerEvent('', () => undefined)).toThrow(TypeError);
    expect(() => one.server.trackPresence({ events: 'yes' as unknown as boolean })).toThrow('trackPresence option events must be a boolean or a function');

    // Presence events to the members that asked only: here the clients named "asks".
    one.server.trackPresence({ events: (member) => (one.server.clientData(member) as { name?: string } | null)?.name === 'asks' });
    const asks = await client(one, 'asks', ['lobby']);
    expect(await asks.next()).toEqual({ event: 'presence', data: { room: 'lobby', joined: asks.id } });
    const quiet = await client(one, 'quiet', ['lobby']);
    expect(await asks.next()).toEqual({ event: 'presence', data: { room: 'lobby', joined: quiet.id } });
    quiet.ws.close();
    expect(await asks.next()).toEqual({ event: 'presence', data: { room: 'lobby', left: quiet.id } });
    expect(quiet.pending()).toBe(0);
  });

  it('a cluster-wide join leaves out a client at its room limit, and the others join', async () => {
    const one = await startInstance({ bus: new InProcessBroadcastBus(), maxRoomsPerClient: 1 });
    instances.add(one);
    await client(one, 'full', ['a']);
    await client(one, 'free');
    expect(await one.server.join('b')).toBe(2);
    expect(one.server.roomsOf(one.byName.get('full')!)).toEqual(new Set(['a']));
    expect(one.server.roomsOf(one.byName.get('free')!)).toEqual(new Set(['b']));
    expect(await one.server.to('b').count()).toBe(1);
  });
});

describe('cluster timing settings', () => {
  it('resolves option, then variable, then default, and refuses an expiry within one heartbeat', () => {
    expect(resolveClusterTiming({}, {})).toEqual({ timeoutMs: 5000, heartbeatMs: 5000, expiryMs: 15_000 });
    expect(resolveClusterTiming({ clusterTimeoutMs: 200 }, { WEBSOCKETS_CLUSTER_TIMEOUT_MS: '900', WEBSOCKETS_CLUSTER_HEARTBEAT_MS: '1000' })).toEqual({
      timeoutMs: 200,
      heartbeatMs: 1000,
      expiryMs: 15_000,
    });
    expect(() => resolveClusterTiming({}, { WEBSOCKETS_CLUSTER_TIMEOUT_MS: '5s' })).toThrow(
      'WEBSOCKETS_CLUSTER_TIMEOUT_MS must be a positive integer (ms); got "5s" (option clusterTimeoutMs, env WEBSOCKETS_CLUSTER_TIMEOUT_MS)',
    );
    expect(() => resolveClusterTiming({ clusterHeartbeatMs: 0 })).toThrow(ConfigError);
    expect(() => resolveClusterTiming({ clusterHeartbeatMs: 5000, clusterExpiryMs: 5000 })).toThrow(
      'clusterExpiryMs (5000 ms) must be more than clusterHeartbeatMs (5000 ms), or live instances would be taken for dead ' +
        'between two heartbeats; three heartbeats or more is advised (option clusterExpiryMs, env WEBSOCKETS_CLUSTER_EXPIRY_MS)',
    );
    // The module takes them (and passes them to every gateway server).
    expect(resolveWebSocketsOptions({ clusterTimeoutMs: 1234, env: { WEBSOCKETS_CLUSTER_EXPIRY_MS: '60000' } }).cluster).toEqual({
      timeoutMs: 1234,
      heartbeatMs: 5000,
      expiryMs: 60_000,
    });
  });
});
