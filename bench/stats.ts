/** Order statistics for the benchmark: medians with their range. */

/** The median of a list with its range; NaN values (a failed round) are left out. */
export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, n: 0 };
  const middle = Math.floor(n / 2);
  const median = n % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { median, min: sorted[0]!, max: sorted[n - 1]!, n };
}

/** Per-round ratios `a[r] / b[r]`: each ratio comes from one round, where both ran on the same machine state. */
export function pairedRatios(a: readonly number[], b: readonly number[]): number[] {
  const ratios: number[] = [];
  for (let r = 0; r < Math.min(a.length, b.length); r++) ratios.push(a[r]! / b[r]!);
  return ratios;
}

/** A figure with three significant digits and a k/M suffix. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  const abs = Math.abs(value);
  if (abs >= 1e6) return `${(value / 1e6).toPrecision(3)}M`;
  if (abs >= 1e4) return `${(value / 1e3).toPrecision(3)}k`;
  if (abs >= 100) return value.toFixed(0);
  return value.toPrecision(3);
}
