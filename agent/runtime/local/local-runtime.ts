/**
 * Runtime without isolation: a session is a workspace folder and a record in
 * `<workspaceBase>/.local-sessions.json`; its commands are children of the
 * agent, each in its own process group, with the workspace as working folder.
 * Limits are not enforced here (the memory limit is only reported), and the
 * agent's own environment is not passed on beyond a short allow-list, so its
 * secrets (AGENT_TOKEN) never reach user commands. Commands die with the agent.
 */
import fs from 'node:fs';
import path from 'node:path';
import { AppError, ErrorCode } from '../../../shared/errors';
import type { DockerStatus } from '../../../shared/protocol/tunnel';
import type { Logger } from '../../logger';
import type { ExecSpec, ProcessHandle, ResourceStats, Runtime, SessionInfo, SessionSpec } from '../runtime';
import { checkId, findWorkspaceOwner, prepareWorkspace, removeWorkspace, workspacePath } from '../workspace';
import { LocalProcess } from './local-process';
import { CLK_TCK, PAGE_SIZE, processTree, readProcesses } from './proc';
import { SessionStore, type LocalSessionRecord } from './session-store';

export interface LocalRuntimeOptions {
  logger: Logger;
  workspaceBase: string;
  dockerStatus?: DockerStatus;
  now?: () => number;
  /** util-linux `script` for TTYs; found on PATH when not given, null turns TTYs off. */
  scriptPath?: string | null;
  /** Host variables passed to commands (default: PASS_ENV). */
  passEnv?: readonly string[];
  /** How long stop() lets commands end after SIGTERM before SIGKILL (ms). */
  stopGraceMs?: number;
}

export const PASS_ENV = [
  'PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR',
  'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy',
  'NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE',
] as const;

export class LocalRuntime implements Runtime {
  readonly mode = 'local' as const;
  readonly isolation = 'none' as const;

  /** Local processes share the host's network: nothing restricts them. */
  egress(): 'unenforced' {
    return 'unenforced';
  }
  private readonly store: SessionStore;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly scriptPath: string | null;
  private readonly processes = new Map<string, Set<LocalProcess>>();
  private readonly cpuSamples = new Map<string, { ticks: number; at: number }>();

  constructor(private readonly opts: LocalRuntimeOptions) {
    this.log = opts.logger.child({ runtime: 'local' });
    this.store = new SessionStore(opts.workspaceBase, this.log);
    this.now = opts.now ?? Date.now;
    this.scriptPath = opts.scriptPath === undefined ? findOnPath('script') : opts.scriptPath;
  }

  async probe(): Promise<DockerStatus> {
    return this.opts.dockerStatus ?? { available: false, error: 'local mode' };
  }

  async list(): Promise<SessionInfo[]> {
    return (await this.store.all()).map((r) => this.toInfo(r));
  }

  async create(spec: SessionSpec): Promise<SessionInfo> {
    checkId('sessionId', spec.sessionId);
    checkId('userId', spec.userId);
    if (await this.store.get(spec.sessionId)) throw new AppError(ErrorCode.Conflict, `session ${spec.sessionId} already exists`);
    const ws = await prepareWorkspace(this.opts.workspaceBase, spec.userId, spec.sessionId, undefined, this.log);
    const at = this.now();
    const record: LocalSessionRecord = {
      sessionId: spec.sessionId,
      userId: spec.userId,
      image: spec.image,
      env: spec.env,
      ports: spec.ports,
      memoryBytes: spec.limits.memoryBytes,
      state: 'running',
      createdAt: at,
      startedAt: at,
    };
    try {
      await this.store.put(record);
    } catch (err) {
      if (ws.created) await removeWorkspace(this.opts.workspaceBase, spec.userId, spec.sessionId).catch(() => undefined);
      throw err;
    }
    this.log.info('local session created', { sessionId: spec.sessionId, workspace: ws.path });
    return this.toInfo(record);
  }

  async start(sessionId: string): Promise<SessionInfo> {
    const record = await this.record(sessionId);
    if (record.state !== 'running') {
      await prepareWorkspace(this.opts.workspaceBase, record.userId, sessionId, undefined, this.log);
      Object.assign(record, { state: 'running', startedAt: this.now() });
      await this.store.put(record);
    }
    return this.toInfo(record);
  }

  async stop(sessionId: string): Promise<SessionInfo> {
    const record = await this.record(sessionId);
    await this.endProcesses(sessionId, this.opts.stopGraceMs ?? 2000);
    record.state = 'stopped';
    await this.store.put(record);
    this.cpuSamples.delete(sessionId);
    return this.toInfo(record);
  }

  async remove(sessionId: string, opts: { keepWorkspace?: boolean } = {}): Promise<void> {
    checkId('sessionId', sessionId);
    await this.endProcesses(sessionId, 0);
    const record = await this.store.get(sessionId);
    await this.store.delete(sessionId);
    this.cpuSamples.delete(sessionId);
    const userId = record?.userId ?? (await findWorkspaceOwner(this.opts.workspaceBase, sessionId));
    if (!opts.keepWorkspace && userId) await removeWorkspace(this.opts.workspaceBase, userId, sessionId);
    this.log.info('local session removed', { sessionId, keepWorkspace: opts.keepWorkspace === true });
  }

  async exec(sessionId: string, spec: ExecSpec): Promise<ProcessHandle> {
    const record = await this.record(sessionId);
    if (record.state !== 'running') throw new AppError(ErrorCode.Conflict, `session ${sessionId} is not running`);
    if (spec.command.length === 0) throw new AppError(ErrorCode.ValidationFailed, 'command must not be empty');
    if (spec.tty && !this.scriptPath) {
      throw new AppError(ErrorCode.TtyUnavailable, 'this host has no `script` (util-linux), so local mode cannot open a terminal');
    }
    const workspace = workspacePath(this.opts.workspaceBase, record.userId, sessionId);
    const proc = new LocalProcess({
      spec,
      cwd: resolveCwd(workspace, spec.cwd),
      env: this.env(record, spec),
      scriptPath: this.scriptPath,
      logger: this.log,
    });
    let set = this.processes.get(sessionId);
    if (!set) this.processes.set(sessionId, (set = new Set()));
    set.add(proc);
    void proc.exited.then(() => set.delete(proc));
    return proc;
  }

  async stats(sessionId: string): Promise<ResourceStats | null> {
    const record = await this.store.get(sessionId);
    if (!record || record.state !== 'running') return null;
    const procs = readProcesses();
    let ticks = 0;
    let rss = 0;
    let pids = 0;
    for (const p of this.processes.get(sessionId) ?? []) {
      if (p.pid === undefined) continue;
      for (const e of processTree(p.pid, procs)) {
        ticks += e.cpuTicks;
        rss += e.rssPages * PAGE_SIZE;
        pids += 1;
      }
    }
    const at = this.now();
    const prev = this.cpuSamples.get(sessionId);
    this.cpuSamples.set(sessionId, { ticks, at });
    const cpuPercent = prev && at > prev.at ? Math.max(0, ((ticks - prev.ticks) / CLK_TCK / ((at - prev.at) / 1000)) * 100) : 0;
    return {
      cpuPercent: Math.round(cpuPercent * 100) / 100,
      memoryUsed: rss,
      memoryLimit: record.memoryBytes,
      networkRx: 0,
      networkTx: 0,
      pids,
      uptimeSeconds: Math.max(0, Math.round((at - record.startedAt) / 1000)),
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.processes.keys()].map((s) => this.endProcesses(s, 0)));
  }

  private async record(sessionId: string): Promise<LocalSessionRecord> {
    checkId('sessionId', sessionId);
    const record = await this.store.get(sessionId);
    if (!record) throw new AppError(ErrorCode.NotFound, `session ${sessionId} does not exist on this agent`);
    return record;
  }

  /** SIGTERM, then SIGKILL after the grace period; every process ends as `lost`. */
  private async endProcesses(sessionId: string, graceMs: number): Promise<void> {
    const procs = [...(this.processes.get(sessionId) ?? [])];
    if (procs.length === 0) return;
    for (const p of procs) {
      p.markLost();
      await p.kill(graceMs > 0 ? 'SIGTERM' : 'SIGKILL');
    }
    const all = Promise.all(procs.map((p) => p.exited));
    if (graceMs > 0) {
      const timer = new Promise((r) => setTimeout(r, graceMs));
      if ((await Promise.race([all.then(() => 'done'), timer])) !== 'done') for (const p of procs) await p.kill('SIGKILL');
    }
    await Promise.race([all, new Promise((r) => setTimeout(r, 5000))]);
    this.processes.delete(sessionId);
  }

  private env(record: LocalSessionRecord, spec: ExecSpec): Record<string, string> {
    const env: Record<string, string> = {};
    for (const name of this.opts.passEnv ?? PASS_ENV) {
      const v = process.env[name];
      if (v !== undefined) env[name] = v;
    }
    for (const kv of record.env) {
      const eq = kv.indexOf('=');
      if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    return { ...env, ...spec.env };
  }

  private toInfo(r: LocalSessionRecord): SessionInfo {
    return {
      sessionId: r.sessionId,
      userId: r.userId,
      containerId: `local-${r.sessionId}`,
      state: r.state,
      address: '127.0.0.1',
      workspace: workspacePath(this.opts.workspaceBase, r.userId, r.sessionId),
    };
  }
}

/** '/workspace/x' and 'x' name folders in the workspace; anything that leaves it is refused. */
export function resolveCwd(workspace: string, cwd: string | undefined): string {
  let rel = cwd ?? '.';
  if (rel === '/workspace' || rel.startsWith('/workspace/')) rel = rel.slice('/workspace'.length).replace(/^\//, '') || '.';
  const resolved = path.resolve(workspace, rel);
  if (resolved !== workspace && !resolved.startsWith(workspace + path.sep)) {
    throw new AppError(ErrorCode.PathOutsideWorkspace, 'cwd must be inside the workspace');
  }
  return resolved;
}

function findOnPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return null;
}
