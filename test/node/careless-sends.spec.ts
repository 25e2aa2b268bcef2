/**
 * Sends that nobody awaits must not end the process (issue 13): a server in a process of its own, written the way
 * `ws` users write theirs, attacked by clients that go away; it must still serve a well-behaved client, with nothing
 * on its stderr (no unhandled rejection, no warning per send).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import WsLibrary from 'ws';
import { ROOT, compileForChild, type CompiledTree } from '../support/compile.js';
import { rawConnect, withTimeout } from '../support/net.js';
import { WAIT_MS, upgradeRequest } from '../hostile/peer.js';

let compiled: CompiledTree;
let child: ChildProcessWithoutNullStreams | undefined;
let stderr = '';

beforeAll(async () => {
  compiled = await compileForChild('careless-', ['test/node/fixtures/careless-server.ts'], { timeoutMs: 90_000 });
}, 95_000);

afterAll(() => compiled?.remove());

afterEach(async () => {
  if (child !== undefined && child.exitCode === null) {
    child.stdin.end();
    await withTimeout(once(child, 'exit'), WAIT_MS, 'the server to exit').catch(() => child?.kill('SIGKILL'));
  }
  child = undefined;
});

async function startServer(): Promise<number> {
  stderr = '';
  child = spawn(process.execPath, [compiled.entry('test/node/fixtures/careless-server.ts')], { cwd: ROOT });
  child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
  const [line] = (await withTimeout(once(createInterface({ input: child.stdout }), 'line'), 10_000, 'the server to listen')) as [string];
  return (JSON.parse(line) as { port: number }).port;
}

async function expectServing(port: number): Promise<void> {
  const client = new WsLibrary(`ws://127.0.0.1:${port}/echo`);
  await withTimeout(once(client, 'open'), WAIT_MS, 'a well-behaved client to connect');
  const echo = once(client, 'message');
  client.send('still here');
  const [data] = (await withTimeout(echo, WAIT_MS, 'the echo')) as [Buffer];
  expect(data.toString()).toBe('still here');
  client.close();
  await once(client, 'close');
  expect(child?.exitCode).toBeNull();
  expect(stderr).toBe('');
}

describe('unawaited sends to clients that go away', () => {
  it("send() in a 'close' handler after the client terminated does not end the process", async () => {
    const port = await startServer();
    for (let i = 0; i < 5; i++) {
      const client = new WsLibrary(`ws://127.0.0.1:${port}/late`);
      await withTimeout(once(client, 'open'), WAIT_MS, 'the client to connect');
      client.terminate();
      await once(client, 'close');
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    await expectServing(port);
  });

  it('100 x 64 KiB every 5 ms, unawaited, to a client that never reads and resets after 300 ms does not end the process', async () => {
    const port = await startServer();
    const raw = await rawConnect(port);
    await raw.write(upgradeRequest('/spam'));
    await raw.readUntil((bytes) => bytes.includes('\r\n\r\n'), WAIT_MS, 'the 101');
    raw.socket.pause();
    await new Promise((resolve) => setTimeout(resolve, 300));
    raw.socket.resetAndDestroy();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await expectServing(port);
  });
});
