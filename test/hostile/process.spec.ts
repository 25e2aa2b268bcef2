/**
 * The checks that need a process of their own (`node --expose-gc`, a heap and file descriptors that belong to the
 * server alone rather than to jest): 2000 connect/disconnect cycles after which heap, file descriptors and active
 * handles and timers are back to their baseline (soak/cycles.ts), and the 20-second soak (soak/soak.ts; the long
 * one is `npm run soak -- --minutes M`). Both are compiled once with tsc (no type check: `npm run typecheck` does
 * that) into node_modules/.cache.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT, compileForChild, type CompiledTree } from '../support/compile.js';

const BUILD_TIMEOUT_MS = 90_000;
const run = promisify(execFile);
let compiled: CompiledTree;

beforeAll(async () => {
  compiled = await compileForChild('hostile-', ['soak/cycles.ts', 'soak/soak.ts'], { timeoutMs: BUILD_TIMEOUT_MS });
}, BUILD_TIMEOUT_MS + 5000);

afterAll(() => {
  compiled?.remove();
});

/** Runs a compiled soak script with --expose-gc; resolves with stdout whatever the exit code (the output says why). */
async function node(script: string, args: string[], timeoutMs: number): Promise<{ stdout: string; code: number }> {
  try {
    const { stdout } = await run(process.execPath, ['--expose-gc', compiled.entry(`soak/${script.replace(/\.js$/, '.ts')}`), ...args], {
      cwd: ROOT,
      timeout: timeoutMs,
      env: { ...process.env, NODE_NO_WARNINGS: '1' },
      maxBuffer: 16 * 1024 * 1024,
    });
    return { stdout, code: 0 };
  } catch (error) {
    const failure = error as { stdout?: string; stderr?: string; code?: number };
    return { stdout: `${failure.stdout ?? ''}${failure.stderr ?? ''}`, code: failure.code ?? 1 };
  }
}

describe('in a child process', () => {
  it('2000 connect/disconnect cycles (clean, terminated, reset mid-handshake, reset mid-frame) leave heap, fds, handles and timers at baseline', async () => {
    const { stdout, code } = await node('cycles.js', ['--cycles', '2000'], 60_000);
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      ok: boolean;
      problems: string[];
      before: { heapUsed: number; fds: number; resources: Record<string, number> };
      after: { heapUsed: number; fds: number; resources: Record<string, number> };
    };
    expect(result.problems).toEqual([]);
    expect(code).toBe(0);
    expect(result.after.fds).toBeLessThanOrEqual(result.before.fds);
    expect(result.after.resources).toEqual(result.before.resources);
    expect(result.after.heapUsed - result.before.heapUsed).toBeLessThan(2 * 1024 * 1024);
  }, 70_000);

  it('the 20-second soak: every well-behaved message once and in order, every attack answered as documented, heap flat', async () => {
    const reportPath = path.join(compiled.dir, 'soak-report.json');
    const { stdout, code } = await node('soak.js', ['--seconds', '20', '--clients', '10', '--report', reportPath], 90_000);
    const report = JSON.parse(readFileSync(reportPath, 'utf8')) as {
      ok: boolean;
      problems: string[];
      messages: { sent: number; received: number };
      attacks: Record<string, { runs: number; unexpected: number }>;
      memory: { growthMiB: number; samples: unknown[] };
    };
    expect({ problems: report.problems, code }).toEqual({ problems: [], code: 0 });
    expect(report.messages.received).toBe(report.messages.sent);
    expect(report.messages.sent).toBeGreaterThan(1000);
    expect(Object.keys(report.attacks).length).toBe(11);
    for (const entry of Object.values(report.attacks)) expect(entry.unexpected).toBe(0);
    expect(report.memory.samples.length).toBeGreaterThanOrEqual(15);
    expect(stdout).toContain('OK');
  }, 100_000);
});
