/**
 * `npm run test:unit`: the fast loop. The whole suite (`npm test`, what CI runs) minus the test files that start
 * other processes (sample apps, redis-server, Python, proxies, openssl), drive a browser, pack the package, or run
 * soak and benchmark loops. Files are picked by what they contain, so a new test lands in the right set without
 * anyone keeping a list; `test/support.spec.ts` checks that both sets are non-empty and that the marks still match.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import base from './jest.config.js';

/** What marks a test file as not a unit test: a child process, a real peer, a browser, packing, a soak or a bench. */
export const SLOW_MARKS = [/node:child_process/, /describeWithPeer\(/, /playwright-core/, /\bsoak\b/i, /\.\.\/bench\//];

function specFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'fixtures' ? [] : specFiles(full);
    return entry.name.endsWith('.spec.ts') ? [full] : [];
  });
}

/** Whether `file`, or a test helper it imports (transitively, inside test/), carries a mark. */
function isSlow(file, seen = new Set()) {
  if (seen.has(file)) return false;
  seen.add(file);
  const source = readFileSync(file, 'utf8');
  if (SLOW_MARKS.some((mark) => mark.test(source))) return true;
  for (const [, specifier] of source.matchAll(/from '(\.{1,2}\/[^']+)\.js'/g)) {
    const imported = path.join(path.dirname(file), `${specifier}.ts`);
    if (imported.startsWith('test' + path.sep) && existsSync(imported) && isSlow(imported, seen)) return true;
  }
  return false;
}

export const slowSpecs = specFiles('test').filter((file) => isSlow(file));

export default {
  ...base,
  collectCoverage: false,
  coverageThreshold: undefined,
  testPathIgnorePatterns: ['/node_modules/', ...slowSpecs.map((file) => `<rootDir>/${file.split(path.sep).join('/')}$`)],
};
