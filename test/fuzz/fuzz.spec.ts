/**
 * The short fuzz run of `npm test`: every target of targets.ts for a fixed number of inputs from a fixed seed (set
 * FUZZ_SEED to explore another), so that the run is deterministic. The long run is `npm run fuzz -- --seconds N`.
 * A failure names the seed and path that replay it.
 */
import { describe, expect, it } from '@jest/globals';
import { FUZZ_TARGETS } from './targets.js';

const SEED = process.env.FUZZ_SEED === undefined ? 6455 : Number(process.env.FUZZ_SEED);
/** About a second per target on a loaded 2-core machine. */
const RUNS: Record<string, number> = { frames: 5000, deflate: 80, request: 5000, response: 5000 };

describe('fuzz (short run)', () => {
  it.each(FUZZ_TARGETS.map((t) => [t.name, t] as const))('%s: only documented outcomes, memory bounded', (name, target) => {
    const report = target.check({ seed: SEED, numRuns: RUNS[name] ?? 1000 });
    if (report.failed) {
      throw new Error(`fuzz target ${name} failed (replay: ${report.replay})\ninput: ${report.counterexample}\n${report.error}`);
    }
    expect(report.runs).toBe(RUNS[name]);
  });
});
