/**
 * Preloaded into every benchmark target (`node --expose-gc --import ./dist/bench/gc-hook.js ...`): SIGUSR2 runs a
 * full garbage collection, so that memory is read after garbage is gone, the same way for every target.
 */
const collect = (globalThis as { gc?: () => void }).gc;
process.on('SIGUSR2', () => {
  collect?.();
  collect?.();
});
