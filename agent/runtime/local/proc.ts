/**
 * Reading and signalling host process trees through /proc (Linux). Used by
 * the local runtime to kill everything a command started and to sum what a
 * session's processes use. Elsewhere the tree is just the process group.
 */
import fs from 'node:fs';

export interface ProcEntry {
  pid: number;
  /** R, S, D, Z (zombie: dead, waiting to be reaped), T, ... */
  state: string;
  ppid: number;
  pgid: number;
  sid: number;
  /** utime + stime, in clock ticks. */
  cpuTicks: number;
  rssPages: number;
}

/** Clock ticks per second and page size on every Linux Node runs on. */
export const CLK_TCK = 100;
export const PAGE_SIZE = 4096;

/** Live processes (zombies left out: they are dead and hold nothing). */
export function readProcesses(): ProcEntry[] {
  let names: string[];
  try {
    names = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  const out: ProcEntry[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const entry = parseStat(fs.readFileSync(`/proc/${name}/stat`, 'utf8'));
      if (entry && entry.state !== 'Z') out.push(entry);
    } catch {
      // gone since readdir
    }
  }
  return out;
}

export function parseStat(text: string): ProcEntry | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const pid = Number(text.slice(0, text.indexOf(' ')));
  // After "pid (comm) ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ... rss(22)
  const f = text.slice(close + 2).split(' ');
  const num = (i: number) => Number(f[i] ?? 0);
  return { pid, state: f[0] ?? '?', ppid: num(1), pgid: num(2), sid: num(3), cpuTicks: num(11) + num(12), rssPages: num(21) };
}

/**
 * The root and everything under it: descendants by parent, plus members of
 * any process group or session one of them leads (children re-parented to
 * init when their parent died stay in the group).
 */
export function processTree(root: number, procs: ProcEntry[] = readProcesses()): ProcEntry[] {
  const inTree = new Set<number>([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of procs) {
      if (inTree.has(p.pid)) continue;
      if (inTree.has(p.ppid) || inTree.has(p.pgid) || inTree.has(p.sid)) {
        inTree.add(p.pid);
        grew = true;
      }
    }
  }
  return procs.filter((p) => inTree.has(p.pid));
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone, or not ours
  }
}

/**
 * Signals a command and everything it started: freeze the tree, look again
 * (catching anything forked meanwhile), send the signals in order, then
 * continue, so a stopped process handles them. The root leads its own
 * process group.
 */
export function killTree(root: number, sigs: NodeJS.Signals[]): void {
  const first = processTree(root).map((p) => p.pid);
  if (first.length === 0) {
    for (const sig of sigs) signal(-root, sig);
    return;
  }
  for (const pid of first) signal(pid, 'SIGSTOP');
  const all = new Set([...first, ...processTree(root).map((p) => p.pid)]);
  for (const pid of all) signal(pid, 'SIGSTOP');
  for (const sig of sigs) {
    signal(-root, sig);
    for (const pid of all) signal(pid, sig);
  }
  for (const pid of all) signal(pid, 'SIGCONT');
}
