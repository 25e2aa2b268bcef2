/**
 * The cluster with instances in their own processes (the fixture `cluster-instance.ts`, compiled), on one real
 * redis-server: an instance killed (SIGKILL) while a `fetchClients()` waits for it (the timeout error names it),
 * presence after the kill (its members leave within the documented bound: `clusterExpiryMs` plus one heartbeat),
 * and `fetchClients()` over 10 000 real connections spread over two instances within the default timeout. Also the
 * memory one presence entry takes in an instance's copy.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { ClusterMessage } from '../../lib/broadcast/cluster-messages.js';
import { Presence } from '../../lib/broadcast/presence.js';
import { RedisBroadcastBus } from '../../lib/broadcast/redis/redis-bus.js';
import { ClusterTimeoutError } from '../../lib/errors.js';
import { closePeers, connectPeer, type Peer } from '../nest/ws-peer.js';
import { compileForChild, type CompiledTree } from '../support/compile.js';
import { withTimeout } from '../support/net.js';
import { describeWithPeer } from '../support/peers.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { startInstance, type ClusterInstance } from './fixtures/cluster-instance.js';

const BUILD_TIMEOUT_MS = 90_000;
const silent = { log: () => undefined, warn: () => undefined, error: () => undefined };

let redis: RedisServer;
let compiled: CompiledTree;
const children = new Set<ChildProcess>();
const instances = new Set<ClusterInstance>();

interface Child {
  readonly process: ChildProcess;
  readonly port: number;
  readonly instance: string;
  readonly clients: number;
}

/** Starts the fixture in its own process; resolves with its ready line. */
async function child(env: Record<string, string>, startMs = 20_000): Promise<Child> {
  const process_ = spawn(process.execPath, [compiled.entry('test/redis/fixtures/cluster-instance.ts')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_NO_WARNINGS: '1', CLUSTER_REDIS_URL: redis.url, ...env },
  });
  children.add(process_);
  let output = '';
  process_.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const ready = new Promise<Child>((resolve, reject) => {
    let rest = '';
    process_.stdout!.on('data', (chunk: Buffer) => {
      rest += chunk.toString();
      const lines = rest.split('\n');
      rest = lines.pop()!;
      for (const line of lines) {
        const parsed = JSON.parse(line) as { ready: boolean; port: number; instance: string; clients: number; error?: string };
        if (parsed.ready) resolve({ process: process_, port: parsed.port, instance: parsed.instance, clients: parsed.clients });
        else reject(new Error(`the instance failed: ${parsed.error ?? ''}`));
      }
    });
    process_.once('exit', (code) => reject(new Error(`the instance exited with ${String(code)}: ${output}`)));
  });
  return withTimeout(ready, startMs, 'a child instance to start');
}

async function stopChild(process_: ChildProcess): Promise<void> {
  children.delete(process_);
  if (process_.exitCode !== null || process_.signalCode !== null) return;
  const exited = once(process_, 'exit');
  process_.kill('SIGKILL');
  await exited;
}

async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function peer(port: number, rooms: readonly string[]): Promise<Peer & { id: string }> {
  const query = rooms.map((room) => `room=${encodeURIComponent(room)}`).join('&');
  const connected = await connectPeer(`ws://127.0.0.1:${port}/?${query}`);
  const hello = (await connected.next()) as { data: { id: string } };
  return Object.assign(connected, { id: hello.data.id });
}

describeWithPeer('redis', 'instances in their own processes on one redis-server', () => {
  beforeAll(async () => {
    [redis, compiled] = await Promise.all([
      startRedis(),
      compileForChild('nestjs-websockets-cluster-', ['test/redis/fixtures/cluster-instance.ts'], { timeoutMs: BUILD_TIMEOUT_MS }),
    ]);
  }, BUILD_TIMEOUT_MS + 10_000);

  afterEach(async () => {
    await closePeers();
    await Promise.all([...children].map(stopChild));
    await Promise.all([...instances].map((instance) => instance.close()));
    instances.clear();
  });

  afterAll(async () => {
    compiled?.remove();
    await redis?.close();
  });

  it('an instance killed during fetchClients(): ClusterTimeoutError names it; its presence entries expire within expiry + one heartbeat', async () => {
    const timing = { heartbeatMs: 200, expiryMs: 2000, timeoutMs: 1000 };
    const here = await startInstance({ bus: new RedisBroadcastBus({ url: redis.url, logger: silent }), ownsBus: true, ...timing });
    instances.add(here);
    here.server.trackPresence({ events: true });
    const other = await child({ CLUSTER_HEARTBEAT_MS: '200', CLUSTER_EXPIRY_MS: '2000', CLUSTER_TIMEOUT_MS: '1000', CLUSTER_PRESENCE: '1' });
    await until(() => here.server.instances().includes(other.instance), 'this instance to know the child');

    const mine = await peer(here.port, ['lobby']);
    expect(await mine.next()).toEqual({ event: 'presence', data: { room: 'lobby', joined: mine.id } });
    const theirs = await peer(other.port, ['lobby']);
    expect(await mine.next()).toEqual({ event: 'presence', data: { room: 'lobby', joined: theirs.id } });
    expect(here.server.presence('lobby').map((m) => m.instance).sort()).toEqual([here.server.instanceId, other.instance].sort());
    expect((await here.server.fetchClients()).map((c) => c.id).sort()).toEqual([mine.id, theirs.id].sort());

    // Stopped, the child cannot answer; killed while the call waits for it.
    other.process.kill('SIGSTOP');
    const started = Date.now();
    const fetching = here.server.fetchClients().then(
      () => undefined,
      (error: unknown) => error,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    const killedAt = Date.now();
    await stopChild(other.process);
    const error = (await fetching) as ClusterTimeoutError;
    expect(error).toBeInstanceOf(ClusterTimeoutError);
    expect(error.code).toBe('WS_ERR_CLUSTER_TIMEOUT');
    expect(error.operation).toBe('fetchClients');
    expect(error.missing).toEqual([other.instance]);
    expect(error.message).toBe(
      `cluster-wide fetchClients got no answer within 1000 ms from 1 instance(s): ${other.instance} ` +
        '(the { timeoutMs } option of the call; default: option clusterTimeoutMs, env WEBSOCKETS_CLUSTER_TIMEOUT_MS)',
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);

    // Presence after the kill: the child's member leaves every copy, with an event, within expiry + one heartbeat.
    expect(await withTimeout(mine.next(), 5000, 'the left event')).toEqual({ event: 'presence', data: { room: 'lobby', left: theirs.id } });
    const gone = Date.now() - killedAt;
    expect(gone).toBeLessThanOrEqual(timing.expiryMs + timing.heartbeatMs + 500);
    expect(here.server.presence('lobby').map((m) => m.id)).toEqual([mine.id]);
    // Forgotten: the next call does not wait for it.
    expect(here.server.instances()).toEqual([here.server.instanceId]);
    expect((await here.server.fetchClients()).map((c) => c.id)).toEqual([mine.id]);
  }, 30_000);

  it('fetchClients() over 10 000 real connections on two instances answers within the default timeout', async () => {
    const [first, second] = await Promise.all([child({ CLIENTS: '5000' }, 60_000), child({ CLIENTS: '5000' }, 60_000)]);
    expect(first.clients + second.clients).toBe(10_000);
    const here = await startInstance({ bus: new RedisBroadcastBus({ url: redis.url, logger: silent }), ownsBus: true });
    instances.add(here);
    await until(() => here.server.instances().length === 3, 'this instance to know both children');

    const started = performance.now();
    const clients = await here.server.fetchClients();
    const elapsed = performance.now() - started;
    expect(clients).toHaveLength(10_000);
    expect(new Set(clients.map((c) => c.id)).size).toBe(10_000);
    expect(clients.every((c) => c.rooms.length === 1 && c.rooms[0] === 'crowd')).toBe(true);
    expect(new Set(clients.map((c) => c.instance))).toEqual(new Set([first.instance, second.instance]));
    expect(await here.server.to('crowd').count()).toBe(10_000);
    process.stderr.write(`fetchClients() of 10 000 clients on 2 instances over Redis: ${elapsed.toFixed(0)} ms\n`);
    expect(elapsed).toBeLessThan(5000);
  }, 150_000);
});

describe('presence memory', () => {
  it('measures the bytes one entry of another instance takes in a copy', () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const me = 'a'.repeat(32);
    const other = 'b'.repeat(32);
    const presence = new Presence({
      instanceId: me,
      logger: silent,
      publish: () => undefined,
      deliver: () => undefined,
      memberships: () => [],
      dataOf: () => null,
    });
    presence.track();
    const entries = 20_000;
    // Ids like client.id (22 characters of base64url), in 100 rooms, with small data like { name }; each message
    // is garbage once applied, so what stays is what the copy keeps.
    const message = (i: number): ClusterMessage => ({
      v: 1,
      t: 'pj',
      from: other,
      seq: i + 1,
      room: `room-${i % 100}`,
      id: `client-${String(i).padStart(15, '0')}`,
      data: { name: `user ${i}` },
    });
    presence.receive(message(0));
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 1; i <= entries; i++) presence.receive(message(i));
    gc();
    const after = process.memoryUsage().heapUsed;
    expect(presence.size).toBe(entries + 1);
    const perEntry = (after - before) / entries;
    process.stderr.write(`presence: ${perEntry.toFixed(0)} bytes per entry (id of 22 characters, data { name })\n`);
    // An entry is a Map slot, its id string and its data object; a leak (a copy per message) would be several KiB.
    expect(perEntry).toBeGreaterThan(0);
    expect(perEntry).toBeLessThan(512);
  });
});
