/**
 * What a benchmark prints: the statistics of its series (nearest-rank
 * percentiles, rounding) and the output format: a table, a summary block and
 * one machine-readable `BENCH {...}` line, the line `npm run bench -- compare`
 * (./compare.ts) reads back.
 */
import os from 'node:os';
import { edgeRunnerFromEnv } from '../scripts/lib/stack';

/* ---------------------------------------------------------------- stats */

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile (p in 0..100) of unsorted values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarize(values: readonly number[]): Summary {
  return {
    n: values.length,
    min: values.length ? Math.min(...values) : Number.NaN,
    p50: percentile(values, 50),
    p90: percentile(values, 90),
    p99: percentile(values, 99),
    max: values.length ? Math.max(...values) : Number.NaN,
    mean: values.length ? values.reduce((a, b) => a + b, 0) / values.length : Number.NaN,
  };
}

/** Rounds for the JSON line: 3 significant decimals are plenty for milliseconds and ratios. */
export function round(x: number, digits = 3): number {
  return Number.isFinite(x) ? Number(x.toFixed(digits)) : x;
}

export function roundSummary(s: Summary): Summary {
  return { n: s.n, min: round(s.min), p50: round(s.p50), p90: round(s.p90), p99: round(s.p99), max: round(s.max), mean: round(s.mean) };
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  return ms < 10 ? ms.toFixed(2) : ms < 1000 ? ms.toFixed(1) : ms.toFixed(0);
}

/* ---------------------------------------------------------------- output */

export function printTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(headers));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

export interface TargetCheck {
  name: string;
  /** The measured figure, formatted, and the target, e.g. "≤ 1.3". */
  measured: string;
  target: string;
  met: boolean;
}

/** The final block a reader looks at, then the one line a script parses. */
export function printSummary(bench: string, lines: readonly string[], targets: readonly TargetCheck[], json: Record<string, unknown>): void {
  console.log('');
  console.log(`== ${bench}: summary ==`);
  for (const l of lines) console.log(l);
  for (const t of targets) console.log(`${t.met ? 'MET   ' : 'MISSED'}  ${t.name}: ${t.measured} (target ${t.target})`);
  console.log(
    `BENCH ${JSON.stringify({
      bench,
      time: new Date().toISOString(),
      host: hostFacts(),
      edge: edgeRunnerFromEnv(),
      ...json,
      targets: targets.map((t) => ({ name: t.name, measured: t.measured, target: t.target, met: t.met })),
    })}`,
  );
}

export function hostFacts(): { cpus: number; cpuModel: string; loadavg: number[]; node: string; platform: string } {
  const cpus = os.cpus();
  return { cpus: cpus.length, cpuModel: cpus[0]?.model ?? 'unknown', loadavg: os.loadavg().map((l) => round(l, 2)), node: process.version, platform: process.platform };
}
