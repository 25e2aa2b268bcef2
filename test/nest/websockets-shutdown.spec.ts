/**
 * No handle stays open after `app.close()`: a Nest app with a gateway on the app's server and one on its own port,
 * keepalive pings on, clients that answer the close, one that never does and an idle connection on the own port, run in
 * its own Node process (test/nest/fixtures/closing-app.ts). After `app.close()` resolves the process must exit by
 * itself, with code 0: a timer, socket or listener left behind would keep it alive (as it would keep Jest from
 * exiting).
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { CloseCode } from '../../lib/protocol/close-codes.js';
import { ROOT, compileForChild, type CompiledTree } from '../support/compile.js';
import { freePort, withTimeout } from '../support/net.js';

const BUILD_TIMEOUT_MS = 60_000;
/** How long the process may take to exit once app.close() has resolved (nothing is left to wait for). */
const EXIT_MS = 3000;
const FIXTURE = 'test/nest/fixtures/closing-app.ts';
let compiled: CompiledTree | undefined;
let child: ChildProcess | undefined;

afterAll(() => {
  if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  compiled?.remove();
});

describe('app.close()', () => {
  it('leaves no open handle: the process exits by itself, with code 0, right after it', async () => {
    compiled = await compileForChild('nest-closing-', [FIXTURE], { timeoutMs: BUILD_TIMEOUT_MS });
    child = spawn(process.execPath, [compiled.entry(FIXTURE)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, OWN_PORT: String(await freePort()), NODE_NO_WARNINGS: '1' },
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
    const [line] = (await withTimeout(once(child.stdout!, 'data'), 20_000, 'app.close() in the child')) as [Buffer];
    const closedAt = Date.now();
    const report = JSON.parse(line.toString()) as { closed: boolean; closeMs: number; codes: number[]; silentDestroyed: boolean };
    expect(report).toMatchObject({ closed: true, codes: [CloseCode.GOING_AWAY, CloseCode.GOING_AWAY] });
    // The mute client held app.close() for about closeTimeoutMs (300 ms), not for the default 10 s.
    expect(report.closeMs).toBeLessThan(5000);
    const [code, signal] = await withTimeout(exited, EXIT_MS, `the process to exit by itself (stderr: ${stderr})`);
    expect({ code, signal, stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    expect(Date.now() - closedAt).toBeLessThan(EXIT_MS);
  }, BUILD_TIMEOUT_MS + 30_000);
});
