/** Resident memory of processes, sampled from /proc (Linux), for tests that must show bounded buffering. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

export function rssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

/**
 * Pids of every workerd the edge runs: all of them are in the process group
 * its runner leads (wrangler dev runs two, its proxy and the Worker's;
 * Miniflare one). Counting only the one listening on the port would measure
 * wrangler's proxy, not the Worker.
 */
export function workerdPids(edgeGroup: number): number[] {
  const out = execFileSync('ps', ['-eo', 'pid,pgid,comm'], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([pid, pgid, comm]) => Number(pid) > 0 && Number(pgid) === edgeGroup && comm === 'workerd')
    .map(([pid]) => Number(pid));
}

/** Samples the peak RSS of some processes until stopped. */
export function samplePeak(pids: () => number[], everyMs = 100): { stop(): number } {
  let peak = 0;
  const tick = () => {
    let total = 0;
    let list: number[];
    try {
      list = pids();
    } catch {
      return; // the processes' owner is gone (a failed test's stack was stopped before stop() ran)
    }
    for (const pid of list) {
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
  t.unref();
  return {
    stop() {
      clearInterval(t);
      tick();
      return peak;
    },
  };
}
