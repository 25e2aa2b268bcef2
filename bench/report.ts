/** The benchmark's Markdown table and SVG chart, both built from a run's JSON (no chart library). */
import { formatNumber, pairedRatios, summarize, type Summary } from './stats.js';
import { GOALS, TARGETS, type Goal } from './workloads.js';

/** One target measured in one round. */
export interface Sample {
  readonly round: number;
  readonly target: string;
  /** The workload's figure (NaN when the round failed). */
  readonly value: number;
  readonly serverCpuPercent: number;
  readonly clientCpuPercent: number;
  readonly detail: Record<string, unknown>;
  readonly error?: string;
}

export interface WorkloadResult {
  readonly name: string;
  readonly title: string;
  readonly unit: string;
  readonly higherIsBetter: boolean;
  readonly targets: string[];
  readonly pairs: Array<[string, string]>;
  readonly samples: Sample[];
  /** Heading of the column of outcomes (how connections ended), for workloads whose client reports them. */
  readonly outcomes?: string;
}

export interface RunResult {
  readonly started: string;
  finished?: string;
  readonly quick: boolean;
  readonly rounds: number;
  readonly machine: { cpu: string; memory: string; os: string; node: string; fdLimit: string };
  readonly workloads: WorkloadResult[];
}

/** A goal's outcome in one run. */
export interface GoalOutcome {
  readonly goal: Goal;
  readonly summary: Summary;
  readonly met: boolean;
  readonly note: string;
}

function values(workload: WorkloadResult, target: string): number[] {
  const byRound: number[] = [];
  for (const sample of workload.samples) if (sample.target === target) byRound[sample.round] = sample.value;
  return byRound.map((value) => value ?? Number.NaN);
}

/** A target's figure per second of server CPU, by round (NaN where the CPU was not measured). */
function perCpu(workload: WorkloadResult, target: string): number[] {
  const byRound: number[] = [];
  for (const sample of workload.samples) {
    if (sample.target === target) byRound[sample.round] = sample.serverCpuPercent > 0 ? sample.value / (sample.serverCpuPercent / 100) : Number.NaN;
  }
  return byRound.map((value) => value ?? Number.NaN);
}

function range(summary: Summary, digits = 2): string {
  if (summary.n === 0) return 'n/a';
  return `${summary.median.toFixed(digits)} (${summary.min.toFixed(digits)}-${summary.max.toFixed(digits)})`;
}

function figure(summary: Summary): string {
  if (summary.n === 0) return 'n/a';
  return `${formatNumber(summary.median)} (${formatNumber(summary.min)}-${formatNumber(summary.max)})`;
}

/** How the connections ended over all rounds, e.g. `50x close 1009` (a failed round counts as `round failed`). */
function outcomes(workload: WorkloadResult, target: string): string {
  const counts = new Map<string, number>();
  for (const sample of workload.samples) {
    if (sample.target !== target) continue;
    if (sample.error !== undefined) counts.set('round failed', (counts.get('round failed') ?? 0) + 1);
    for (const outcome of (sample.detail.outcomes as string[] | undefined) ?? []) counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
  }
  return [...counts].map(([outcome, n]) => `${n}x ${outcome}`).join(', ');
}

export function evaluateGoals(run: RunResult): GoalOutcome[] {
  const results: GoalOutcome[] = [];
  for (const goal of GOALS) {
    const workload = run.workloads.find((w) => w.name === goal.workload);
    if (workload === undefined) continue;
    const a = values(workload, goal.a);
    const summary = summarize(goal.b === undefined ? a : pairedRatios(a, values(workload, goal.b)));
    let met = summary.n > 0 && (goal.op === '>=' ? summary.median >= goal.bound : summary.median <= goal.bound);
    let note = '';
    if (goal.closeCode !== undefined) {
      // A round that failed (a healthy member incomplete, a target that died) did not show the close code either.
      const all = workload.samples
        .filter((s) => s.target === goal.a)
        .flatMap((s) => (s.error !== undefined ? ['round failed'] : ((s.detail.outcomes as string[] | undefined) ?? [])));
      const closed = all.filter((outcome) => outcome === `close ${goal.closeCode}`).length;
      note = `${closed}/${all.length} closed with ${goal.closeCode}`;
      if (closed !== all.length || all.length === 0) met = false;
    }
    results.push({ goal, summary, met, note });
  }
  return results;
}

export function renderMarkdown(run: RunResult): string {
  const lines: string[] = [];
  lines.push(`Run of ${run.started.slice(0, 16).replace('T', ' ')} UTC${run.quick ? ' (--quick)' : ''}: ${run.rounds} rounds, each target started fresh per round, order rotated.`);
  lines.push(`Machine: ${run.machine.cpu}, ${run.machine.memory}, ${run.machine.os}, Node ${run.machine.node}, fd limit ${run.machine.fdLimit}.`);
  lines.push('Figures are medians (min-max over rounds); ratios are taken within each round, then their median. CPU is % of one core over the measured window (server from /proc, client from process.cpuUsage).');
  lines.push('');
  const goals = evaluateGoals(run);
  if (goals.length > 0) {
    lines.push('| goal | target | measured | met |');
    lines.push('|---|---|---|---|');
    for (const { goal, summary, met, note } of goals) {
      const unit = goal.b === undefined ? '' : 'x';
      // A goal whose targets were left out of the run (--targets) is not judged.
      if (summary.n === 0) lines.push(`| ${goal.label} | ${goal.op} ${goal.bound}${unit} | not measured in this run | - |`);
      else lines.push(`| ${goal.label} | ${goal.op} ${goal.bound}${unit} | ${range(summary)}${unit}${note === '' ? '' : `; ${note}`} | ${met ? 'yes' : '**no**'} |`);
    }
    lines.push('');
  }
  for (const workload of run.workloads) {
    lines.push(`**${workload.title}** (${workload.unit}, ${workload.higherIsBetter ? 'higher' : 'lower'} is better)`);
    lines.push('');
    // Results written before the column had a heading in the workload: only the bomb had one.
    const outcomeColumn = workload.outcomes ?? (workload.name === 'bomb' ? 'how the connections ended' : undefined);
    const withOutcomes = outcomeColumn !== undefined;
    lines.push(`| target | ${workload.unit} | server CPU | client CPU${withOutcomes ? ` | ${outcomeColumn}` : ''} |`);
    lines.push(`|---|---|---|---${withOutcomes ? '|---' : ''}|`);
    for (const target of workload.targets) {
      const samples = workload.samples.filter((s) => s.target === target);
      const cpu = summarize(samples.map((s) => s.serverCpuPercent));
      const clientCpu = summarize(samples.map((s) => s.clientCpuPercent));
      const failures = samples.filter((s) => s.error !== undefined);
      const failed = failures.length > 0 ? ` (${failures.length} failed: ${failures[0]!.error})` : '';
      lines.push(
        `| ${TARGETS[target]?.label ?? target} | ${figure(summarize(values(workload, target)))}${failed} | ` +
          `${cpu.n === 0 ? '-' : `${cpu.median.toFixed(0)}%`} | ${clientCpu.n === 0 ? '-' : `${clientCpu.median.toFixed(0)}%`}` +
          `${withOutcomes ? ` | ${outcomes(workload, target)}` : ''} |`,
      );
    }
    for (const [a, b] of workload.pairs) {
      const ratio = summarize(pairedRatios(values(workload, a), values(workload, b)));
      // A pair with a target left out (--targets) has no ratio: no row rather than "n/a".
      if (ratio.n > 0) lines.push(`| *ratio ${a} / ${b}* | ${range(ratio)}x | | ${withOutcomes ? '| ' : ''}|`);
    }
    // Rates per second of server CPU: on a machine shared with other jobs a target may get much less than a core,
    // and the throughput ratio then measures the scheduler as much as the servers; this one does not.
    if (workload.higherIsBetter) {
      for (const [a, b] of workload.pairs) {
        const ratio = summarize(pairedRatios(perCpu(workload, a), perCpu(workload, b)));
        if (ratio.n > 0) lines.push(`| *ratio ${a} / ${b} per second of server CPU* | ${range(ratio)}x | | ${withOutcomes ? '| ' : ''}|`);
      }
    }
    lines.push('');
  }
  return `${lines.join('\n')}\n`;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * One row per goal: the bar is the measured median as a multiple of the goal, oriented so that 1.0 (the dashed line)
 * is "just met" and longer is better; the whisker spans the rounds' min and max.
 */
export function renderSvg(run: RunResult): string {
  const goals = evaluateGoals(run);
  const labelWidth = 330;
  const plotWidth = 420;
  const valueWidth = 210;
  const rowHeight = 30;
  const top = 48;
  const width = labelWidth + plotWidth + valueWidth;
  const height = top + rowHeight * Math.max(1, goals.length) + 40;
  const maxScale = 3;
  const x = (score: number): number => labelWidth + (Math.min(Math.max(score, 0), maxScale) / maxScale) * plotWidth;
  // A lower-is-better figure at or below zero (a peak growth that did not happen) is as good as the scale shows.
  const score = (goal: Goal, value: number): number => (goal.op === '>=' ? value / goal.bound : value <= 0 ? maxScale : goal.bound / value);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="10" y="20" font-size="14" font-weight="bold">nestjs-websockets: benchmark goals, measured ${escapeXml(run.started.slice(0, 10))}${run.quick ? ' (--quick)' : ''}</text>`);
  parts.push(`<text x="10" y="37" fill="#555">${escapeXml(`${run.machine.cpu}, Node ${run.machine.node}; bar = measured / goal (lower-is-better goals inverted), whisker = min-max over ${run.rounds} rounds`)}</text>`);
  for (let tick = 0; tick <= maxScale; tick++) {
    const tx = x(tick);
    parts.push(`<line x1="${tx}" y1="${top - 4}" x2="${tx}" y2="${height - 30}" stroke="${tick === 1 ? '#333' : '#ddd'}" ${tick === 1 ? 'stroke-dasharray="4 3"' : ''}/>`);
    parts.push(`<text x="${tx}" y="${height - 14}" text-anchor="middle" fill="#555">${tick === 1 ? 'goal' : `${tick}x`}</text>`);
  }
  goals.forEach(({ goal, summary, met, note }, i) => {
    const y = top + i * rowHeight;
    parts.push(`<text x="10" y="${y + 19}">${escapeXml(goal.label)}</text>`);
    if (summary.n > 0) {
      const s = score(goal, summary.median);
      parts.push(`<rect x="${labelWidth}" y="${y + 7}" width="${x(s) - labelWidth}" height="16" fill="${met ? '#3a9d5d' : '#e08a2c'}"/>`);
      const low = score(goal, goal.op === '>=' ? summary.min : summary.max);
      const high = score(goal, goal.op === '>=' ? summary.max : summary.min);
      parts.push(`<line x1="${x(low)}" y1="${y + 15}" x2="${x(high)}" y2="${y + 15}" stroke="#222"/>`);
      parts.push(`<line x1="${x(low)}" y1="${y + 10}" x2="${x(low)}" y2="${y + 20}" stroke="#222"/>`);
      parts.push(`<line x1="${x(high)}" y1="${y + 10}" x2="${x(high)}" y2="${y + 20}" stroke="#222"/>`);
    }
    const unit = goal.b === undefined ? '' : 'x';
    const measured = summary.n === 0 ? 'n/a' : `${summary.median.toFixed(2)}${unit}`;
    const text = `${measured} (goal ${goal.op} ${goal.bound}${unit})${note === '' ? '' : ` ${note.split(' ')[0]}`}`;
    parts.push(`<text x="${labelWidth + plotWidth + 8}" y="${y + 19}" fill="${met ? '#1d6b3a' : '#a35400'}">${escapeXml(text)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
