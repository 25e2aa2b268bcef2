/**
 * `new WebSocketsAdapter(app)` without `WebSocketsModule` uses the environment and the defaults (issue 5). Run in
 * its own process with `NestFactory.create` and Nest's defaults: there, looking up a provider that the app does
 * not have exits the process (abortOnError), which a testing module would not show.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const ROOT = process.cwd();
let outDir: string | undefined;

afterAll(() => {
  if (outDir !== undefined) rmSync(outDir, { recursive: true, force: true });
});

describe('WebSocketsAdapter without WebSocketsModule', () => {
  it('serves a gateway and runs a guard that is not a provider, under NestFactory.create defaults', async () => {
    const cache = path.join(ROOT, 'node_modules', '.cache');
    mkdirSync(cache, { recursive: true });
    outDir = mkdtempSync(path.join(cache, 'nest-standalone-'));
    // Below node_modules Node does not look further up for "type": "module".
    writeFileSync(path.join(outDir, 'package.json'), '{ "type": "module" }\n');
    const run = promisify(execFile);
    await run(
      process.execPath,
      [
        path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
        '--outDir', outDir, '--rootDir', ROOT, '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022',
        '--experimentalDecorators', '--emitDecoratorMetadata', '--skipLibCheck', '--esModuleInterop', '--types', 'node',
        '--noCheck', '--ignoreConfig', path.join(ROOT, 'test', 'nest', 'fixtures', 'standalone-app.ts'),
      ],
      { cwd: ROOT, timeout: 60_000 },
    );
    const { stdout } = await run(process.execPath, [path.join(outDir, 'test', 'nest', 'fixtures', 'standalone-app.js')], {
      cwd: ROOT,
      timeout: 20_000,
      env: { ...process.env, NODE_NO_WARNINGS: '1' },
    });
    expect(JSON.parse(stdout.trim())).toEqual({ echoed: { event: 'echo', data: 'hi', id: 7 }, refusedWith: 403 });
  }, 90_000);
});
