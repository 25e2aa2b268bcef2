/**
 * Compiles TypeScript entry files (and what they import) to ESM JavaScript in a fresh directory, for tests that
 * must run code in its own Node process: a Nest app created by `NestFactory.create` with its defaults, CommonJS-only
 * peers that jest's ESM mode cannot load, or scripts that need `--expose-gc`. Type checking is the job of
 * `npm run typecheck`, so it is skipped here (`--noCheck`) to keep the build fast.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

/** The repository root (jest runs from it). */
export const ROOT = process.cwd();

/** A directory of compiled files that mirrors the repository's layout. */
export interface CompiledTree {
  readonly dir: string;
  /** The compiled `.js` of a source path relative to the repository root (`test/x/app.ts` -> `<dir>/test/x/app.js`). */
  entry(source: string): string;
  /** Removes the directory. */
  remove(): void;
}

/**
 * Compiles `sources` (paths relative to the repository root) into a new directory.
 * @param prefix name prefix of the directory
 * @param options.parent where the directory goes: by default `node_modules/.cache`, where imports of the repository's
 *   packages resolve; elsewhere the caller links `node_modules` itself
 */
export async function compileForChild(
  prefix: string,
  sources: readonly string[],
  options: { parent?: string; timeoutMs?: number } = {},
): Promise<CompiledTree> {
  const parent = options.parent ?? path.join(ROOT, 'node_modules', '.cache');
  mkdirSync(parent, { recursive: true });
  const dir = mkdtempSync(path.join(parent, prefix));
  // Below node_modules Node does not look further up for "type": "module".
  writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }\n');
  await promisify(execFile)(
    process.execPath,
    [
      path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
      '--outDir', dir, '--rootDir', ROOT, '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022',
      '--experimentalDecorators', '--emitDecoratorMetadata', '--skipLibCheck', '--esModuleInterop', '--types', 'node',
      '--noCheck', '--ignoreConfig',
      ...sources.map((source) => path.join(ROOT, source)),
    ],
    { cwd: ROOT, timeout: options.timeoutMs ?? 60_000 },
  );
  return {
    dir,
    entry: (source) => path.join(dir, source.replace(/\.ts$/, '.js')),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
