/**
 * The Redis bus against a real three-master Redis Cluster (`redis-server --cluster-enabled yes`, joined by
 * `redis-cli --cluster create`), selected by a `redis+cluster://` URL: sharded pub/sub (the channels live on the
 * masters that own their slots, none in classic pub/sub), broadcasts and cluster-wide room operations across two
 * instances, and a master restarted under them.
 */
import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import { RedisBroadcastBus } from '../../lib/broadcast/redis/redis-bus.js';
import { parseRedisClusterUrl } from '../../lib/broadcast/redis/redis-cluster.js';
import { resolveWebSocketsOptions } from '../../lib/nest/websockets-options.js';
import { closePeers, connectPeer, type Peer } from '../nest/ws-peer.js';
import { withTimeout } from '../support/net.js';
import { describeWithPeer } from '../support/peers.js';
import { redisVersion, startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { startInstance, type ClusterInstance } from './fixtures/cluster-instance.js';

const silent = { log: () => undefined, warn: () => undefined, error: () => undefined };
let cluster: RedisCluster;
const instances = new Set<ClusterInstance>();

async function until(condition: () => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function client(instance: ClusterInstance, name: string, rooms: readonly string[]): Promise<Peer & { id: string }> {
  const query = [`name=${name}`, ...rooms.map((room) => `room=${encodeURIComponent(room)}`)].join('&');
  const peer = await connectPeer(`${instance.url}?${query}`);
  const hello = (await peer.next()) as { data: { id: string } };
  return Object.assign(peer, { id: hello.data.id });
}

/** The number of elements of a RESP array reply (`*N\r\n...`). */
function arrayLength(reply: Buffer): number {
  const match = /^\*(\d+)\r\n/.exec(reply.toString());
  if (match === null) throw new Error(`not an array reply: ${reply.toString()}`);
  return Number(match[1]);
}

describeWithPeer('redis', 'the Redis bus on a three-master Redis Cluster with sharded pub/sub', () => {
  beforeAll(async () => {
    expect(await redisVersion()).toBeGreaterThanOrEqual(7); // SSUBSCRIBE / SPUBLISH came with Redis 7.0
    cluster = await startRedisCluster();
  }, 60_000);

  afterEach(async () => {
    await closePeers();
    await Promise.all([...instances].map((instance) => instance.close()));
    instances.clear();
  });

  afterAll(async () => {
    await cluster?.close();
  });

  it('parses the cluster URL: seed nodes, credentials, TLS', () => {
    expect(parseRedisClusterUrl('rediss+cluster://u:p%40ss@10.0.0.1:7000?node=10.0.0.2:7001&node=[::1]:7002')).toEqual({
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      username: 'u',
      password: 'p@ss',
      tls: true,
    });
    expect(() => new RedisBroadcastBus({ url: 'redis+cluster://h:1?node=nohostport' })).toThrow('for a Redis Cluster');
    // The module (and WEBSOCKETS_REDIS_URL) take the scheme.
    expect(resolveWebSocketsOptions({ env: { WEBSOCKETS_REDIS_URL: cluster.url } }).redisUrl).toBe(cluster.url);
  });

  it('broadcasts and room operations across two instances, over sharded channels; and after a master restarts', async () => {
    const start = () => startInstance({ bus: new RedisBroadcastBus({ url: cluster.url, logger: silent }), ownsBus: true, heartbeatMs: 200, expiryMs: 5000 });
    const [a, b] = await Promise.all([start(), start()]);
    instances.add(a);
    instances.add(b);
    await until(() => a.server.instances().length === 2 && b.server.instances().length === 2, 'the instances to know each other');

    const a1 = await client(a, 'a1', ['lobby']);
    const b1 = await client(b, 'b1', ['lobby']);
    const b2 = await client(b, 'b2', ['user:2']);
    await a.server.to('lobby').emit('chat', 'from a');
    expect(await b1.next()).toEqual({ event: 'chat', data: 'from a' });
    expect(await a1.next()).toEqual({ event: 'chat', data: 'from a' });
    await b.server.emit('all', 'from b');
    for (const peer of [a1, b1, b2]) expect(await peer.next()).toEqual({ event: 'all', data: 'from b' });

    expect((await a.server.fetchClients()).map((c) => c.id).sort()).toEqual([a1.id, b1.id, b2.id].sort());
    expect(await a.server.to('user:2').join('lobby')).toBe(1);
    expect(await b.server.to('lobby').count()).toBe(3);
    b.server.onServerEvent('ping', () => 'pong');
    expect(await a.server.serverSideRequest('ping', null)).toEqual([{ instance: b.server.instanceId, data: 'pong' }]);

    // Sharded: every channel of the bus is a shard channel of exactly one master, none is a classic channel.
    const shardChannels = await Promise.all(cluster.nodes.map(async (node) => arrayLength(await node.command('PUBSUB', 'SHARDCHANNELS'))));
    const classicChannels = await Promise.all(cluster.nodes.map(async (node) => arrayLength(await node.command('PUBSUB', 'CHANNELS'))));
    // The broadcast channel, the control channel, and one reply channel per instance.
    expect(shardChannels.reduce((sum, n) => sum + n, 0)).toBe(4);
    expect(classicChannels).toEqual([0, 0, 0]);

    // Restart the master that owns the broadcast channel's slot.
    const owners = await Promise.all(
      cluster.nodes.map(async (node) => (await node.command('PUBSUB', 'SHARDNUMSUB', 'nestjs-websockets:ws:cluster-test')).toString().endsWith(':2\r\n')),
    );
    const owner = cluster.nodes[owners.indexOf(true)]!;
    expect(owner).toBeDefined();
    await owner.stop();
    await owner.start();
    await cluster.waitUntilOk();
    // The instances subscribe again once their connections are back: retry until a broadcast crosses.
    let attempt = 0;
    await until(async () => {
      const text = `after restart ${attempt++}`;
      await a.server.to('lobby').emit('chat', text);
      for (;;) {
        const heard = (await withTimeout(b1.next(), 300, 'b1').catch(() => undefined)) as { data: string } | undefined;
        if (heard === undefined) return false;
        if (heard.data === text) return true;
      }
    }, 'a broadcast to cross after the restart', 30_000);
    process.stderr.write(`redis cluster: broadcasts crossed again after ${attempt} attempt(s)\n`);
    expect(await b.server.to('lobby').count()).toBe(3);
    expect(await a.server.to('lobby').disconnect(4000, 'bye')).toBe(3);
    expect(await b2.closed).toEqual({ code: 4000, reason: 'bye' });
  }, 90_000);
});
