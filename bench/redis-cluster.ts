/**
 * A three-master Redis Cluster for `npm run bench:fanout`: three `redis-server --cluster-enabled yes` on 127.0.0.1
 * at free ports (no persistence, each in its own temporary directory), joined by `redis-cli --cluster create` with no
 * replicas. Resolves once every node reports `cluster_state:ok`; `stop()` ends them and removes the directories.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const READY_MS = 30_000;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)('redis-cli', ['-p', String(port), ...args], { timeout: 10_000 });
  return stdout;
}

export interface BenchRedisCluster {
  /** `redis+cluster://127.0.0.1:<port>?node=...` */
  readonly url: string;
  stop(): Promise<void>;
}

export async function startRedisCluster(): Promise<BenchRedisCluster> {
  const nodes: Array<{ port: number; process: ChildProcess; dir: string }> = [];
  const stop = async (): Promise<void> => {
    await Promise.all(
      nodes.map(async (node) => {
        if (node.process.exitCode === null && node.process.signalCode === null) {
          const exited = once(node.process, 'exit');
          node.process.kill('SIGTERM');
          await exited;
        }
        rmSync(node.dir, { recursive: true, force: true });
      }),
    );
  };
  try {
    for (let i = 0; i < 3; i++) {
      const [port, busPort] = [await freePort(), await freePort()];
      const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-redis-cluster-'));
      const child = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--cluster-enabled', 'yes', '--cluster-port', String(busPort)],
        { stdio: 'ignore' },
      );
      nodes.push({ port, process: child, dir });
      const deadline = Date.now() + READY_MS;
      while ((await cli(port, 'PING').catch(() => '')).trim() !== 'PONG') {
        if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not start`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    await promisify(execFile)('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], {
      timeout: READY_MS,
    });
    const deadline = Date.now() + READY_MS;
    for (;;) {
      const infos = await Promise.all(nodes.map((n) => cli(n.port, 'CLUSTER', 'INFO').catch(() => '')));
      if (infos.every((info) => info.includes('cluster_state:ok'))) break;
      if (Date.now() > deadline) throw new Error('the Redis Cluster did not become ok');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const [first, ...rest] = nodes;
  return { url: `redis+cluster://127.0.0.1:${first!.port}?${rest.map((n) => `node=127.0.0.1:${n.port}`).join('&')}`, stop };
}
