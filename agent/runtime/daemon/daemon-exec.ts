/**
 * Runtime operations through a session daemon: a new process, and the
 * processes a restarted agent finds again.
 */
import { AppError, ErrorCode } from '../../../shared/errors';
import type { AdoptedProcess, ExecSpec, ProcessHandle } from '../runtime';
import { DaemonProcessHandle } from './daemon-process';
import type { DaemonClient } from './daemon-client';

export async function daemonExec(client: DaemonClient, spec: ExecSpec): Promise<ProcessHandle> {
  if (spec.command.length === 0) throw new AppError(ErrorCode.ValidationFailed, 'command must not be empty');
  const tty = spec.tty === true;
  const { ref } = await client.request('spawn', {
    argv: spec.command,
    // Relative to the workspace, which the daemon resolves (it starts there).
    cwd: spec.cwd ?? '.',
    env: spec.env ?? {},
    tty,
    ...(tty && spec.cols && spec.rows ? { cols: spec.cols, rows: spec.rows } : {}),
    ...(spec.tag ? { tag: spec.tag } : {}),
  });
  return new DaemonProcessHandle(client, ref, tty);
}

/**
 * Every process the daemon holds that an agent tagged: running ones, and
 * finished ones whose output the edge has not fully acknowledged. Each
 * resumes at the offsets the edge last acknowledged once `resume` is called.
 */
export async function daemonAdopt(client: DaemonClient): Promise<AdoptedProcess[]> {
  const { processes } = await client.request('list', {});
  const out: AdoptedProcess[] = [];
  for (const p of processes) {
    if (!p.tag) continue;
    const offsets: AdoptedProcess['offsets'] = {};
    for (const [name, s] of Object.entries(p.streams) as Array<[keyof AdoptedProcess['offsets'], { acked: number } | undefined]>) {
      if (s) offsets[name] = s.acked;
    }
    const handle = new DaemonProcessHandle(client, p.ref, p.tty, offsets);
    out.push({
      handle,
      tag: p.tag,
      startedAt: p.startedAt,
      offsets,
      resume: async () => {
        await client.request('attach', { ref: p.ref, from: offsets });
      },
    });
  }
  return out;
}
