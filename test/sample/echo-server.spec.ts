/**
 * `npm run echo` as a user runs it: npm builds the project and starts sample/echo-server.ts, which prints one ready
 * line `{"ready":true,"port":N,"pid":N}`, echoes text as text and binary as binary, and on SIGTERM closes its
 * clients with 1001 and exits 0 (and so does npm).
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { CloseCode } from '../../lib/protocol/close-codes.js';
import { closePeers, connectPeer } from '../nest/ws-peer.js';
import { withTimeout } from '../support/net.js';

/** npm run echo compiles the whole project first (lib, sample, bench). */
const READY_TIMEOUT_MS = 90_000;
let npm: ChildProcess | undefined;

afterAll(async () => {
  await closePeers();
  if (npm !== undefined && npm.exitCode === null && npm.signalCode === null) {
    npm.kill('SIGKILL');
    await once(npm, 'exit');
  }
});

/** Resolves with the first stdout line that is the ready line (npm or tsc may print before it). */
function readyLine(child: ChildProcess, output: { text: string }): Promise<{ ready: boolean; port: number; pid: number }> {
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output.text += chunk.toString();
      const line = output.text.split('\n').find((candidate) => candidate.startsWith('{"ready"'));
      if (line !== undefined) resolve(JSON.parse(line) as { ready: boolean; port: number; pid: number });
    });
    child.once('exit', (code) => reject(new Error(`npm run echo exited with ${code}: ${output.text}`)));
  });
}

describe('npm run echo', () => {
  it('prints its ready line, echoes text and binary, and closes with 1001 then exits 0 on SIGTERM', async () => {
    const output = { text: '' };
    npm = spawn('npm', ['run', '--silent', 'echo'], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PORT: '0' },
    });
    npm.stderr!.on('data', (chunk: Buffer) => (output.text += chunk.toString()));
    const exited = once(npm, 'exit') as Promise<[number | null, string | null]>;
    const ready = await withTimeout(readyLine(npm, output), READY_TIMEOUT_MS, 'the echo server to be ready');
    expect(ready.ready).toBe(true);
    expect(ready.port).toBeGreaterThan(0);
    expect(ready.pid).not.toBe(npm.pid);

    const peer = await connectPeer(`ws://127.0.0.1:${ready.port}/`);
    peer.ws.send('héllo, echo');
    expect(await peer.nextRaw()).toEqual({ data: Buffer.from('héllo, echo'), isBinary: false });
    const bytes = Buffer.from([0, 1, 2, 0xfe, 0xff]);
    peer.ws.send(bytes);
    expect(await peer.nextRaw()).toEqual({ data: bytes, isBinary: true });

    // The server's own process (npm runs it under a shell), as a process manager would signal it.
    process.kill(ready.pid, 'SIGTERM');
    expect((await peer.closed).code).toBe(CloseCode.GOING_AWAY);
    const [code, signal] = await withTimeout(exited, 10_000, 'npm run echo to exit');
    expect({ code, signal }).toEqual({ code: 0, signal: null });
  }, READY_TIMEOUT_MS + 20_000);
});
