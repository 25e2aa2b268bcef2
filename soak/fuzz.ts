/**
 * `npm run fuzz -- [--seconds N] [--seed S] [--target frames|deflate|request|response] [--path P]`
 *
 * Runs every fuzz target of test/fuzz/targets.ts for N seconds each (60 by default) from a seed (random unless
 * given, always printed), and prints one JSON line per target. A failure prints the shrunk input and the command
 * that replays it, and the exit code is 1. `--path` (with `--seed` and `--target`) replays one input.
 */
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import { FUZZ_TARGETS } from '../test/fuzz/targets.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    seed: { type: 'string' },
    target: { type: 'string', multiple: true },
    path: { type: 'string' },
  },
});

const seconds = Number(values.seconds);
if (!Number.isFinite(seconds) || seconds <= 0) throw new Error(`--seconds must be a positive number; got ${values.seconds}`);
const seed = values.seed === undefined ? randomInt(2 ** 31 - 1) : Number(values.seed);
if (!Number.isSafeInteger(seed)) throw new Error(`--seed must be an integer; got ${values.seed}`);
const names = values.target ?? FUZZ_TARGETS.map((t) => t.name);
const unknown = names.filter((name) => !FUZZ_TARGETS.some((t) => t.name === name));
if (unknown.length > 0) throw new Error(`unknown target ${unknown.join(', ')}; the targets are ${FUZZ_TARGETS.map((t) => t.name).join(', ')}`);

console.log(JSON.stringify({ fuzz: { seed, secondsPerTarget: seconds, targets: names, replay: `npm run fuzz -- --seed ${seed} --seconds ${seconds}` } }));
let failed = false;
for (const target of FUZZ_TARGETS.filter((t) => names.includes(t.name))) {
  const started = Date.now();
  const report = target.check({ seed, timeLimitMs: seconds * 1000, ...(values.path === undefined ? {} : { path: values.path }) });
  console.log(JSON.stringify({ ...report, doc: target.doc, ms: Date.now() - started }));
  failed ||= report.failed;
}
process.exitCode = failed ? 1 : 0;
