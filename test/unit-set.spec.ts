/**
 * `npm run test:unit` runs the suite minus the files that start processes, drive browsers, pack the package or run
 * long loads (jest.unit.config.js picks them by what they contain; this comment avoids the word that marks those
 * files, which it once matched, leaving this file out). This checks the split: both sets are real, the files known
 * to start processes are out, and plain in-process tests are in.
 */
import { describe, expect, it } from '@jest/globals';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

interface UnitConfig {
  readonly slowSpecs: readonly string[];
  readonly default: { readonly testPathIgnorePatterns: readonly string[] };
}

const ROOT = path.resolve(import.meta.dirname, '..');

describe('npm run test:unit', () => {
  it('leaves out what starts processes or browsers, keeps what runs in this process', async () => {
    const cwd = process.cwd();
    process.chdir(ROOT);
    const config = (await import(pathToFileURL(path.join(ROOT, 'jest.unit.config.js')).href)) as UnitConfig;
    process.chdir(cwd);
    const slow = new Set(config.slowSpecs.map((file) => file.split(path.sep).join('/')));
    for (const file of ['test/package/pack.spec.ts', 'test/node/browser.spec.ts', 'test/node/python.spec.ts', 'test/redis/redis-scale-out.spec.ts', 'test/sample/echo-server.spec.ts']) {
      expect(slow).toContain(file);
    }
    for (const file of ['test/protocol/frame-parser.spec.ts', 'test/config.spec.ts', 'test/layering.spec.ts', 'test/node/server.spec.ts', 'test/unit-set.spec.ts']) {
      expect(slow).not.toContain(file);
    }
    const all = readdirSync(path.join(ROOT, 'test'), { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.spec.ts'));
    expect(slow.size).toBeGreaterThan(0);
    expect(slow.size).toBeLessThan(all.length / 2);
    expect(config.default.testPathIgnorePatterns).toHaveLength(slow.size + 1);
  });
});
