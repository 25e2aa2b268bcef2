/**
 * @nestjs/throttler guarding message handlers, with the real package, in a real Node process (the package is
 * CommonJS and requires the ESM-only @nestjs/common 12: Node >= 20.19 loads that, Jest's module system does not).
 * The same process checks SIGTERM: clients get 1001 and the process exits by itself.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { CloseCode } from '../../lib/protocol/close-codes.js';
import { closePeers, connectPeer } from './ws-peer.js';
import { ROOT, compileForChild, type CompiledTree } from '../support/compile.js';
import { withTimeout } from '../support/net.js';

const BUILD_TIMEOUT_MS = 60_000;
const FIXTURE = 'test/nest/fixtures/throttled-app.ts';
let compiled: CompiledTree | undefined;
let child: ChildProcess | undefined;
let port: number;

beforeAll(async () => {
  compiled = await compileForChild('nest-throttler-', [FIXTURE], { timeoutMs: BUILD_TIMEOUT_MS });
  child = spawn(process.execPath, [compiled.entry(FIXTURE)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
  });
  const [line] = (await withTimeout(once(child.stdout!, 'data'), 20_000, 'the throttled app to start')) as [Buffer];
  port = (JSON.parse(line.toString()) as { port: number }).port;
}, BUILD_TIMEOUT_MS + 25_000);

afterAll(async () => {
  await closePeers();
  if (child !== undefined && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
  compiled?.remove();
});

describe('@nestjs/throttler and SIGTERM, in a real process', () => {
  it('limits a handler per client address and answers with an exception frame carrying the id', async () => {
    const peer = await connectPeer(`ws://127.0.0.1:${port}/ws`);
    for (const id of [1, 2]) {
      peer.send({ event: 'echo', data: id, id });
      expect(await peer.next()).toEqual({ event: 'echo', data: id, id });
    }
    peer.send({ event: 'echo', data: 3, id: 3 });
    expect(await peer.next()).toEqual({
      event: 'exception',
      data: { status: 'error', message: 'Too Many Requests', cause: { pattern: 'echo', data: 3 } },
      id: 3,
    });
    // The tracker is the address: a second connection from 127.0.0.1 shares the budget.
    const other = await connectPeer(`ws://127.0.0.1:${port}/ws`);
    other.send({ event: 'echo', data: 4, id: 4 });
    expect(await other.next()).toMatchObject({ event: 'exception', id: 4 });
  });

  it('closes its clients with 1001 on SIGTERM and exits', async () => {
    const peer = await connectPeer(`ws://127.0.0.1:${port}/ws`);
    const exited = once(child!, 'exit');
    child!.kill('SIGTERM');
    expect((await peer.closed).code).toBe(CloseCode.GOING_AWAY);
    const [code, signal] = (await withTimeout(exited, 15_000, 'the process to exit')) as [number | null, string | null];
    expect(code === 0 || signal === 'SIGTERM').toBe(true);
  });
});
