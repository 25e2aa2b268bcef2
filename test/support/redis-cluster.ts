/**
 * A real three-master Redis Cluster for the tests: three `redis-server --cluster-enabled yes` (see `startRedis`),
 * joined by `redis-cli --cluster create` with no replicas, ready once every node reports `cluster_state:ok`. Sharded
 * pub/sub needs Redis 7 (`redisVersion()` tells). Use inside `describeWithPeer('redis', ...)`.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort } from './net.js';
import { startRedis, type RedisServer } from './redis.js';

/** Bound on forming the cluster (slot assignment and gossip until every node agrees). */
const CLUSTER_READY_MS = 30_000;

export interface RedisCluster {
  readonly nodes: readonly RedisServer[];
  /** `redis+cluster://127.0.0.1:<first port>?node=127.0.0.1:<second>&node=...` */
  readonly url: string;
  /** Resolves once every node reports `cluster_state:ok`. */
  waitUntilOk(): Promise<void>;
  close(): Promise<void>;
}

/** The major version of the installed redis-server (`redis-server --version`). */
export async function redisVersion(): Promise<number> {
  const { stdout } = await promisify(execFile)('redis-server', ['--version'], { timeout: 10_000 });
  return Number(/v=(\d+)\./.exec(stdout)?.[1] ?? 0);
}

export async function startRedisCluster(): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      // The cluster bus port is given explicitly: the default (port + 10000) may be above 65535 for a free port.
      const busPort = await freePort();
      nodes.push(await startRedis(['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000', '--cluster-port', String(busPort)]));
    }
    await promisify(execFile)(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((node) => `127.0.0.1:${node.port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { timeout: CLUSTER_READY_MS },
    );
  } catch (error) {
    await Promise.all(nodes.map((node) => node.close()));
    throw error;
  }
  const waitUntilOk = async (): Promise<void> => {
    const deadline = Date.now() + CLUSTER_READY_MS;
    for (;;) {
      const states = await Promise.all(nodes.map((node) => node.command('CLUSTER', 'INFO').then(String, () => '')));
      if (states.every((info) => info.includes('cluster_state:ok'))) return;
      if (Date.now() > deadline) throw new Error(`the Redis Cluster was not ok within ${CLUSTER_READY_MS} ms:\n${states.join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  await waitUntilOk();
  const [first, ...rest] = nodes;
  return {
    nodes,
    url: `redis+cluster://127.0.0.1:${first!.port}?${rest.map((node) => `node=127.0.0.1:${node.port}`).join('&')}`,
    waitUntilOk,
    close: async () => {
      await Promise.all(nodes.map((node) => node.close()));
    },
  };
}
