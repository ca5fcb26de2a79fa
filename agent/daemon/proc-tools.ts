/**
 * What the session daemon reads from /proc and /sys inside its container:
 * the processes a command started (to signal them all), the terminal of a
 * PTY command (to resize it), the memory cgroup's OOM-kill count (to tell an
 * OOM kill from another SIGKILL), and the listening TCP sockets.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';

export const EXEC_MARKER = 'MOMINAI_EXEC';

interface Stat {
  pid: number;
  ppid: number;
  pgrp: number;
  sid: number;
}

function readStat(pid: number): Stat | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    // "pid (comm) state ppid pgrp session ..." — comm may hold spaces and parentheses.
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { pid, ppid: Number(rest[1]), pgrp: Number(rest[2]), sid: Number(rest[3]) };
  } catch {
    return undefined;
  }
}

function pids(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

function marked(pid: number, marker: string): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(marker);
  } catch {
    return false;
  }
}

/**
 * Everything `root` started: its descendants, every process carrying its
 * marker in the environment (children that were re-parented), and every
 * process whose group or session one of those leads (an interactive shell's
 * jobs). Never the daemon itself or PID 1.
 */
export function processTree(root: number, markerValue: string): number[] {
  const self = process.pid;
  const marker = `${EXEC_MARKER}=${markerValue}`;
  const table = pids()
    .filter((p) => p !== self && p !== 1)
    .map(readStat)
    .filter((s): s is Stat => s !== undefined);
  const set = new Set<number>();
  for (const s of table) if (s.pid === root || marked(s.pid, marker)) set.add(s.pid);
  for (let grew = true; grew; ) {
    grew = false;
    for (const s of table) {
      if (set.has(s.pid)) continue;
      if (set.has(s.ppid) || set.has(s.pgrp) || set.has(s.sid)) {
        set.add(s.pid);
        grew = true;
      }
    }
  }
  return [...set];
}

function signalAll(list: number[], signal: NodeJS.Signals): void {
  for (const pid of list) {
    try {
      process.kill(pid, signal);
    } catch {
      // gone already
    }
  }
}

/**
 * Freezes the tree (SIGSTOP), looks again so nothing forked in between
 * escapes, sends the signals in order, then SIGCONT so stopped processes
 * handle them. Returns how many processes were signalled.
 */
export function killTree(root: number, markerValue: string, signals: NodeJS.Signals[]): number {
  const first = processTree(root, markerValue);
  if (first.length === 0) return 0;
  signalAll(first, 'SIGSTOP');
  const all = [...new Set([...first, ...processTree(root, markerValue)])];
  signalAll(all, 'SIGSTOP');
  for (const sig of signals) signalAll(all, sig);
  signalAll(all, 'SIGCONT');
  return all.length;
}

/** The /dev/pts/N a PTY command's processes hold as stdin (under `script`, the PTY's slave side). */
export function ptySlave(root: number, markerValue: string): string | undefined {
  for (const pid of processTree(root, markerValue)) {
    try {
      const target = fs.readlinkSync(`/proc/${pid}/fd/0`);
      if (/^\/dev\/pts\/\d+$/.test(target)) return target;
    } catch {
      // not ours to read, or gone
    }
  }
  return undefined;
}

/** Sets a terminal's size; the kernel sends SIGWINCH to its foreground group. */
export function resizePty(slave: string, cols: number, rows: number): Promise<void> {
  return new Promise((resolve) => {
    const p = spawn('stty', ['-F', slave, 'cols', String(cols), 'rows', String(rows)], { stdio: 'ignore' });
    p.once('error', () => resolve());
    p.once('exit', () => resolve());
  });
}

/** OOM kills the container's memory cgroup has seen (v2 memory.events or v1 memory.oom_control); 0 when unreadable. */
export function oomKills(): number {
  for (const file of ['/sys/fs/cgroup/memory.events', '/sys/fs/cgroup/memory/memory.oom_control']) {
    try {
      const m = /^oom_kill (\d+)$/m.exec(fs.readFileSync(file, 'latin1'));
      if (m) return Number(m[1]);
    } catch {
      // the other cgroup version
    }
  }
  return 0;
}

/** The container's TCP socket tables, as text (parsed by the agent). */
export function procNetTcp(): string {
  let text = '';
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    try {
      text += fs.readFileSync(file, 'latin1');
    } catch {
      // a kernel without IPv6 has no tcp6
    }
  }
  return text;
}

/** The first program of `names` found on PATH, or undefined. */
export function onPath(name: string, pathVar = process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'): string | undefined {
  for (const dir of pathVar.split(':')) {
    const file = `${dir}/${name}`;
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // next
    }
  }
  return undefined;
}

/** One argv as a POSIX shell word list. */
export function shellQuote(argv: string[]): string {
  return argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
}
