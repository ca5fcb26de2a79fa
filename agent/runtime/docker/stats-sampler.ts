/**
 * Resource figures per container from the engine's streaming stats API: one
 * stream per running container, opened the first time someone asks, kept
 * open, and its latest sample cached. A request costs a map lookup; only the
 * very first waits for the first sample (the engine sends one a second).
 * Streams close when the container stops or goes away, or on close().
 */
import type Docker from 'dockerode';
import type { Logger } from '../../logger';
import type { ResourceStats } from '../runtime';

interface Sample {
  cpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number; online_cpus?: number };
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number };
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }>;
  pids_stats?: { current?: number };
}

interface Entry {
  stream?: NodeJS.ReadableStream & { destroy?: () => void };
  latest?: Omit<ResourceStats, 'uptimeSeconds'>;
  startedAtMs: number;
  first: Promise<void>;
  closed: boolean;
}

export interface StatsSamplerOptions {
  docker: Docker;
  logger: Logger;
  now?: () => number;
  /** Longest the first request for a container waits for a sample (ms). */
  firstSampleTimeoutMs?: number;
}

export class StatsSampler {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;

  constructor(private readonly opts: StatsSamplerOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Latest figures, or null when the container is not running. */
  async get(containerId: string): Promise<ResourceStats | null> {
    let entry = this.entries.get(containerId);
    if (!entry || entry.closed) {
      const opened = await this.open(containerId);
      if (!opened) return null;
      entry = opened;
    }
    if (!entry.latest) {
      const timeout = this.opts.firstSampleTimeoutMs ?? 2500;
      await Promise.race([entry.first, new Promise((r) => setTimeout(r, timeout).unref())]);
    }
    if (!entry.latest) return null;
    return { ...entry.latest, uptimeSeconds: Math.max(0, Math.round((this.now() - entry.startedAtMs) / 1000)) };
  }

  /** Stops following a container (it stopped, or was removed). */
  forget(containerId: string): void {
    const entry = this.entries.get(containerId);
    if (!entry) return;
    entry.closed = true;
    entry.stream?.destroy?.();
    this.entries.delete(containerId);
  }

  close(): void {
    for (const id of [...this.entries.keys()]) this.forget(id);
  }

  private async open(containerId: string): Promise<Entry | undefined> {
    const container = this.opts.docker.getContainer(containerId);
    let info;
    try {
      info = await container.inspect();
    } catch {
      return undefined;
    }
    if (!info.State.Running) return undefined;
    let resolveFirst!: () => void;
    const entry: Entry = {
      startedAtMs: Date.parse(info.State.StartedAt) || this.now(),
      first: new Promise<void>((r) => (resolveFirst = r)),
      closed: false,
    };
    this.entries.set(containerId, entry);
    try {
      const stream = (await container.stats({ stream: true })) as unknown as NodeJS.ReadableStream & { destroy?: () => void };
      entry.stream = stream;
      if (entry.closed) stream.destroy?.();
      let pending = '';
      stream.on('data', (chunk: Buffer | string) => {
        pending += chunk.toString();
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          const figures = parseSample(line);
          if (figures) {
            entry.latest = figures;
            resolveFirst();
          }
        }
      });
      const done = () => {
        if (this.entries.get(containerId) === entry) this.entries.delete(containerId);
        entry.closed = true;
        resolveFirst();
      };
      stream.on('end', done);
      stream.on('close', done);
      stream.on('error', done);
    } catch (err) {
      this.opts.logger.debug('stats stream failed', { containerId: containerId.slice(0, 12), error: err });
      this.entries.delete(containerId);
      return undefined;
    }
    return entry;
  }
}

/** One engine sample as our figures. CPU % is as `docker stats` shows it: 100 = one full core. */
export function parseSample(line: string): Omit<ResourceStats, 'uptimeSeconds'> | undefined {
  let s: Sample;
  try {
    s = JSON.parse(line) as Sample;
  } catch {
    return undefined;
  }
  const cpu = s.cpu_stats;
  const pre = s.precpu_stats;
  let cpuPercent = 0;
  const cpuDelta = (cpu?.cpu_usage?.total_usage ?? 0) - (pre?.cpu_usage?.total_usage ?? 0);
  const systemDelta = (cpu?.system_cpu_usage ?? 0) - (pre?.system_cpu_usage ?? 0);
  if (pre?.system_cpu_usage && cpuDelta > 0 && systemDelta > 0) {
    cpuPercent = (cpuDelta / systemDelta) * (cpu?.online_cpus || 1) * 100;
  }
  const mem = s.memory_stats ?? {};
  // What `docker stats` reports: usage without reclaimable page cache (cgroup v1 and v2 names).
  const inactive = mem.stats?.total_inactive_file ?? mem.stats?.inactive_file ?? 0;
  const memoryUsed = Math.max(0, (mem.usage ?? 0) - inactive);
  let networkRx = 0;
  let networkTx = 0;
  for (const n of Object.values(s.networks ?? {})) {
    networkRx += n.rx_bytes ?? 0;
    networkTx += n.tx_bytes ?? 0;
  }
  return {
    cpuPercent: Math.round(cpuPercent * 100) / 100,
    memoryUsed,
    memoryLimit: mem.limit ?? 0,
    networkRx,
    networkTx,
    pids: s.pids_stats?.current ?? 0,
  };
}
