/**
 * Notices when the process runs out of file descriptors, which Node does not report.
 *
 * At the limit, `accept()` fails with EMFILE (the process's limit, `ulimit -n`) or ENFILE (the system's). libuv then
 * closes a descriptor it keeps in reserve, accepts the waiting connections and closes them at once, and opens the
 * reserve again (its "EMFILE trick"): the listener stays usable, the clients see ECONNRESET, and Node emits nothing,
 * not even an `'error'` on the listener (one reaches it only when the reserve could not be opened again). A server
 * therefore cannot see the clients it loses; what it can see is that no descriptor is free. While a server is open,
 * one process-wide probe opens and closes the null device every second: a probe that fails with EMFILE or ENFILE
 * starts a burst, which lasts until a probe succeeds, and each server hears of each burst once.
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import { devNull } from 'node:os';

/** Why no descriptor is free: the process's limit, or the system's. */
export type FdExhaustion = 'EMFILE' | 'ENFILE';

/** Told when a burst starts: why, and the process's limit when it is known (Linux), else `null`. */
export type FdExhaustionListener = (cause: FdExhaustion, limit: number | null) => void;

/** How often the probe runs while a server is open. */
const PROBE_INTERVAL_MS = 1000;
/** Where Linux shows the process's limits (`Max open files  <soft>  <hard>  files`). */
const PROC_LIMITS = '/proc/self/limits';

const listeners = new Set<FdExhaustionListener>();
let timer: NodeJS.Timeout | undefined;
let inBurst = false;
let limit: number | null = null;

/** The soft limit on open files, read while descriptors are free (at a burst there is none to read it with). */
function readLimit(): number | null {
  try {
    const match = /^Max open files\s+(\d+)/m.exec(readFileSync(PROC_LIMITS, 'latin1'));
    return match === null ? null : Number(match[1]);
  } catch {
    return null; // not Linux, or no /proc: the message goes without the number
  }
}

function exhaustionOf(error: unknown): FdExhaustion | null {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'EMFILE' || code === 'ENFILE' ? code : null;
}

function startBurst(cause: FdExhaustion): void {
  inBurst = true;
  for (const listener of [...listeners]) listener(cause, limit);
}

function probe(): void {
  let fd: number;
  try {
    fd = openSync(devNull, 'r');
  } catch (error) {
    const cause = exhaustionOf(error);
    if (cause !== null && !inBurst) startBurst(cause);
    return;
  }
  closeSync(fd);
  if (inBurst) {
    inBurst = false;
    limit = readLimit();
  }
}

/**
 * Calls `listener` at the start of each burst of file-descriptor exhaustion while it is registered; the probe runs
 * while at least one listener is.
 * @returns a function that unregisters it
 */
export function watchFdLimit(listener: FdExhaustionListener): () => void {
  if (listeners.size === 0) {
    limit = readLimit();
    timer = setInterval(probe, PROBE_INTERVAL_MS);
    timer.unref();
  }
  listeners.add(listener);
  return () => {
    if (!listeners.delete(listener) || listeners.size > 0) return;
    clearInterval(timer);
    timer = undefined;
    inBurst = false;
  };
}

/**
 * For a listener's `'error'`: an accept that failed with EMFILE or ENFILE starts a burst (when none is going on).
 * @returns whether the error was one of those (the caller then reports nothing more)
 */
export function noticeFdExhaustion(error: unknown): boolean {
  const cause = exhaustionOf(error);
  if (cause === null) return false;
  if (!inBurst) startBurst(cause);
  return true;
}
