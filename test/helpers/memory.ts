/** Resident memory of processes, sampled from /proc (Linux), for tests that must show bounded buffering. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

export function rssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

/** Pids of workerd processes serving the given loopback port. */
export function workerdPids(port: number): number[] {
  const out = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.includes('workerd') && l.includes(`127.0.0.1:${port}`))
    .map((l) => Number(l.trim().split(/\s+/)[0]))
    .filter((n) => n > 0);
}

/** Samples the peak RSS of some processes until stopped. */
export function samplePeak(pids: () => number[], everyMs = 100): { stop(): number } {
  let peak = 0;
  const tick = () => {
    let total = 0;
    for (const pid of pids()) {
      try {
        total += rssBytes(pid);
      } catch {
        // exited
      }
    }
    peak = Math.max(peak, total);
  };
  tick();
  const t = setInterval(tick, everyMs);
  return {
    stop() {
      clearInterval(t);
      tick();
      return peak;
    },
  };
}
