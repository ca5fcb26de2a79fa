/**
 * CPU accounting for the benchmarks: CPU seconds per process group from
 * /proc over a measured window, and the per-request and per-MB figures the
 * reports derive from them.
 */
import fs from 'node:fs';
import { edgeRunnerFromEnv } from '../scripts/lib/stack';
import type { BenchStack } from './lib';

/* ---------------------------------------------------------------- cpu */

const CLK_TCK = 100;

interface ProcStat {
  pid: number;
  comm: string;
  pgrp: number;
  cpuTicks: number;
}

function readProcStats(): ProcStat[] {
  const out: ProcStat[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    let text: string;
    try {
      text = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // comm may contain spaces and parentheses: fields after the last ')' are fixed.
    const close = text.lastIndexOf(')');
    const comm = text.slice(text.indexOf('(') + 1, close);
    const f = text.slice(close + 2).split(' ');
    // f[0] is field 3 (state); pgrp is field 5, utime 14, stime 15.
    out.push({ pid: Number(e), comm, pgrp: Number(f[2]), cpuTicks: Number(f[11]) + Number(f[12]) });
  }
  return out;
}

export type CpuGroups = Record<string, (p: ProcStat) => boolean>;

/** The usual groups: the edge's and the agent's process groups, this process, and the Docker engine's processes. */
export function stackCpuGroups(b: BenchStack): CpuGroups {
  const edgePgrp = b.stack.edge?.child.pid ?? -1;
  const agentPgrp = b.agent.proc.child.pid ?? -1;
  return {
    [`edge (${edgeRunnerFromEnv()}+workerd)`]: (p) => p.pgrp === edgePgrp,
    agent: (p) => p.pgrp === agentPgrp,
    'bench client': (p) => p.pid === process.pid,
    'docker (dockerd, containerd, shims)': (p) => /^(dockerd|containerd|containerd-shim.*|docker-proxy|runc)$/.test(p.comm),
  };
}

/**
 * The usual groups plus the edge split by process: under `wrangler dev`
 * the edge is two workerd instances (wrangler's proxy and the Worker itself)
 * and wrangler's Node process, which receives inspector traffic from the
 * proxy; the split shows how much of the edge's CPU is that dev harness.
 */
export function edgeSplitCpuGroups(b: BenchStack, extra: CpuGroups = {}): CpuGroups {
  const edge = b.stack.edge?.child.pid ?? -1;
  return {
    ...stackCpuGroups(b),
    'of the edge, workerd': (p) => p.pgrp === edge && p.comm === 'workerd',
    'of the edge, wrangler (node)': (p) => p.pgrp === edge && p.comm !== 'workerd',
    ...extra,
  };
}

/**
 * CPU seconds each group used between `start()` and `stop()`. Processes that
 * exit in between (the container's own) are not counted; the groups above
 * are long-lived.
 */
export class CpuMeter {
  private before = new Map<number, number>();
  constructor(private readonly groups: CpuGroups) {}

  start(): void {
    this.before = new Map(readProcStats().map((p) => [p.pid, p.cpuTicks]));
  }

  stop(): Record<string, number> {
    const result: Record<string, number> = Object.fromEntries(Object.keys(this.groups).map((k) => [k, 0]));
    for (const p of readProcStats()) {
      const delta = p.cpuTicks - (this.before.get(p.pid) ?? 0);
      for (const [name, match] of Object.entries(this.groups)) if (match(p)) result[name]! += delta / CLK_TCK;
    }
    return result;
  }
}

export function cpuLine(cpu: Record<string, number>, wallS: number): string {
  return Object.entries(cpu)
    .map(([k, s]) => `${k} ${s.toFixed(2)} s (${Math.round((100 * s) / wallS)}%)`)
    .join(', ');
}

/**
 * CPU milliseconds per unit (a request, a MB) by process group, each process
 * once: the "of the edge" rows split the edge's own figure and are left out.
 */
export function cpuPer(cpuSeconds: Record<string, number>, units: number, scale: number): { total: number; each: Record<string, number> } {
  const each: Record<string, number> = {};
  let total = 0;
  for (const [k, v] of Object.entries(cpuSeconds)) {
    if (k.startsWith('of the edge')) continue;
    each[k] = units > 0 ? (v * scale) / units : 0;
    total += each[k]!;
  }
  return { total, each };
}

export function perLine(each: Record<string, number>): string {
  return Object.entries(each)
    .filter(([, v]) => v >= 0.005)
    .map(([k, v]) => `${k.split(' (')[0]} ${v.toFixed(2)}`)
    .join(', ');
}

export function addInto(into: Record<string, number>, add: Record<string, number>): void {
  for (const [k, v] of Object.entries(add)) into[k] = (into[k] ?? 0) + v;
}

export function mapValues(r: Record<string, number>, f: (v: number) => number): Record<string, number> {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, f(v)]));
}
