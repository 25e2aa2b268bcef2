/**
 * `new WebSocketsAdapter(app)` without `WebSocketsModule` uses the environment and the defaults (issue 5). Run in
 * its own process with `NestFactory.create` and Nest's defaults: there, looking up a provider that the app does
 * not have exits the process (abortOnError), which a testing module would not show.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ROOT, compileForChild, type CompiledTree } from '../support/compile.js';

const FIXTURE = 'test/nest/fixtures/standalone-app.ts';
let compiled: CompiledTree | undefined;

afterAll(() => compiled?.remove());

describe('WebSocketsAdapter without WebSocketsModule', () => {
  it('serves a gateway and runs a guard that is not a provider, under NestFactory.create defaults', async () => {
    compiled = await compileForChild('nest-standalone-', [FIXTURE]);
    const { stdout } = await promisify(execFile)(process.execPath, [compiled.entry(FIXTURE)], {
      cwd: ROOT,
      timeout: 20_000,
      env: { ...process.env, NODE_NO_WARNINGS: '1' },
    });
    expect(JSON.parse(stdout.trim())).toEqual({ echoed: { event: 'echo', data: 'hi', id: 7 }, refusedWith: 403 });
  }, 90_000);
});
