/**
 * The agent image's health check reads a small JSON file the agent rewrites
 * every few seconds (AGENT_HEALTH_FILE): when it was written and whether the
 * control socket to the edge is up. No port is needed for it, so an agent
 * keeps listening on nothing by default.
 */
import fs from 'node:fs';
import { z } from 'zod';

const HealthFile = z.object({ time: z.number(), connected: z.boolean() });
export type Health = z.infer<typeof HealthFile>;

/** Writes atomically (temp file + rename), so a reader never sees half a file. */
export function writeHealthFile(file: string, health: Health): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(health));
  fs.renameSync(tmp, file);
}

export function readHealthFile(file: string): Health | undefined {
  try {
    const parsed = HealthFile.safeParse(JSON.parse(fs.readFileSync(file, 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Rewrites the file every `intervalMs` until the returned function is called. */
export function keepHealthFile(file: string, connected: () => boolean, intervalMs = 5_000, now = () => Date.now()): () => void {
  const write = () => {
    try {
      writeHealthFile(file, { time: now(), connected: connected() });
    } catch {
      // A full or read-only disk shows as an unhealthy agent, which is what it is.
    }
  };
  write();
  const timer = setInterval(write, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
