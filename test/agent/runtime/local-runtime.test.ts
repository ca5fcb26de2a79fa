import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../../agent/logger';
import { LocalRuntime, resolveCwd } from '../../../agent/runtime/local/local-runtime';
import { processTree, readProcesses } from '../../../agent/runtime/local/proc';
import { collect, run, runtimeContract, sessionSpec } from './runtime-contract';

const hasScript = spawnSync('script', ['--version']).status === 0;

function hostProcesses(): string[] {
  const lines: string[] = [];
  for (const p of readProcesses()) {
    try {
      lines.push(fs.readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0').join(' ').trim());
    } catch {
      // gone
    }
  }
  return lines;
}

function tempBase(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'mominai-local-'));
}

runtimeContract('LocalRuntime', { tty: hasScript }, async () => {
  const base = tempBase();
  const runtime = new LocalRuntime({ logger: memoryLogger('warn'), workspaceBase: base });
  return {
    runtime,
    image: 'local',
    processes: async () => hostProcesses(),
    defaultCwd: (workspace) => workspace,
    cleanup: async () => {
      for (const s of await runtime.list()) await runtime.remove(s.sessionId);
      await runtime.close();
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
});

describe('LocalRuntime', () => {
  const made: Array<{ runtime: LocalRuntime; base: string }> = [];
  function make(opts: Partial<ConstructorParameters<typeof LocalRuntime>[0]> = {}): LocalRuntime {
    const base = tempBase();
    const runtime = new LocalRuntime({ logger: memoryLogger('warn'), workspaceBase: base, ...opts });
    made.push({ runtime, base });
    return runtime;
  }
  afterEach(async () => {
    for (const { runtime, base } of made.splice(0)) {
      await runtime.close();
      fs.rmSync(base, { recursive: true, force: true });
    }
  });

  it('remembers its sessions across a restart through .local-sessions.json', async () => {
    const first = make();
    const spec = sessionSpec('local');
    await first.create(spec);
    await first.stop(spec.sessionId);
    const base = made[0]!.base;
    expect(fs.existsSync(path.join(base, '.local-sessions.json'))).toBe(true);
    const second = new LocalRuntime({ logger: memoryLogger('warn'), workspaceBase: base });
    expect(await second.list()).toEqual([expect.objectContaining({ sessionId: spec.sessionId, state: 'stopped', address: '127.0.0.1' })]);
    await second.remove(spec.sessionId);
    expect(await first.list()).toHaveLength(1); // the first instance's memory is its own
  });

  it('answers tty_unavailable when the host has no `script`', async () => {
    const runtime = make({ scriptPath: null });
    const spec = sessionSpec('local');
    await runtime.create(spec);
    await expect(runtime.exec(spec.sessionId, { command: ['sh'], tty: true })).rejects.toMatchObject({ code: 'tty_unavailable' });
  });

  it('does not pass the agent’s own secrets to commands', async () => {
    const runtime = make();
    const spec = sessionSpec('local');
    await runtime.create(spec);
    process.env.AGENT_TOKEN = 'secret-token';
    try {
      expect((await run(runtime, spec.sessionId, ['sh', '-c', 'echo "[$AGENT_TOKEN]"'])).stdout).toBe('[]\n');
    } finally {
      delete process.env.AGENT_TOKEN;
    }
  });

  it('answers a missing program like a shell: exit 127 and a message', async () => {
    const runtime = make();
    const spec = sessionSpec('local');
    await runtime.create(spec);
    const handle = await runtime.exec(spec.sessionId, { command: ['no-such-program-xyz'] });
    const out = await collect(handle);
    expect(out.exit).toEqual({ exitCode: 127, reason: 'exit' });
    expect(out.stderr).toContain('command not found');
  });

  it('ends commands as lost when the session is removed', async () => {
    const runtime = make();
    const spec = sessionSpec('local');
    await runtime.create(spec);
    const handle = await runtime.exec(spec.sessionId, { command: ['sh', '-c', 'sleep 30 & sleep 31'] });
    const pid = (handle as unknown as { pid: number }).pid;
    const out = collect(handle);
    await runtime.remove(spec.sessionId);
    expect((await out).exit.reason).toBe('lost');
    expect(processTree(pid)).toEqual([]);
  });

  it('maps /workspace paths onto the folder and refuses paths that leave it', () => {
    expect(resolveCwd('/w/u/s', undefined)).toBe('/w/u/s');
    expect(resolveCwd('/w/u/s', '/workspace')).toBe('/w/u/s');
    expect(resolveCwd('/w/u/s', '/workspace/app/src')).toBe('/w/u/s/app/src');
    expect(resolveCwd('/w/u/s', 'app')).toBe('/w/u/s/app');
    expect(() => resolveCwd('/w/u/s', '../other')).toThrow(/inside the workspace/);
    expect(() => resolveCwd('/w/u/s', '/etc')).toThrow(/inside the workspace/);
  });
});
