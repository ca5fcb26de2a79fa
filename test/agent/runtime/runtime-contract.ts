/**
 * The behaviour every Runtime promises, as one suite that each runtime's test
 * file runs with its own harness (Docker: real containers; local: child
 * processes). Runtime-specific checks live beside it in those files.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../../shared/errors';
import { newId } from '../../../shared/ids';
import type { ExitInfo, ProcessHandle, Runtime, SessionSpec } from '../../../agent/runtime/runtime';

export interface ContractHarness {
  runtime: Runtime;
  image: string;
  /** Command lines of the processes running in a session (in its container, or on the host). */
  processes(sessionId: string): Promise<string[]>;
  /** Where a command starts by default, as the command itself sees it. */
  defaultCwd(workspace: string): string;
  cleanup(): Promise<void>;
}

export interface Output {
  stdout: string;
  stderr: string;
  exit: ExitInfo;
}

export function sessionSpec(image: string, extra: Partial<SessionSpec> = {}): SessionSpec {
  return {
    sessionId: newId('ses'),
    userId: newId('usr'),
    image,
    env: ['GREETING=hello'],
    ports: [3000],
    limits: { cpu: 0.5, memoryBytes: 128 * 1024 * 1024, pids: 128 },
    ...extra,
  };
}

function text(stream: NodeJS.ReadableStream | null): Promise<string> {
  if (!stream) return Promise.resolve('');
  return new Promise((resolve, reject) => {
    let s = '';
    stream.on('data', (c: Buffer) => (s += c.toString()));
    stream.on('end', () => resolve(s));
    stream.on('error', reject);
  });
}

export async function collect(handle: ProcessHandle): Promise<Output> {
  const [stdout, stderr, exit] = await Promise.all([text(handle.stdout), text(handle.stderr), handle.exited]);
  return { stdout, stderr, exit };
}

export async function run(runtime: Runtime, sessionId: string, command: string[], input?: string): Promise<Output> {
  const handle = await runtime.exec(sessionId, { command });
  if (input !== undefined) handle.write(input);
  handle.closeStdin();
  return collect(handle);
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function rejection(p: Promise<unknown>): Promise<AppError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  return err as AppError;
}

export interface ContractOptions {
  /** Whether this runtime can give a TTY here (known when the tests are collected). */
  tty: boolean;
}

export function runtimeContract(name: string, opts: ContractOptions, setup: () => Promise<ContractHarness>): void {
  describe(`${name} (runtime contract)`, () => {
    let h: ContractHarness;
    // Unique sleep lengths: other suites' processes are visible on the same host.
    const base = 10_000 + Math.floor(Math.random() * 80_000);

    beforeAll(async () => {
      h = await setup();
    });
    afterAll(async () => {
      await h?.cleanup();
    });

    describe('lifecycle', () => {
      it('creates a running session whose workspace folder exists and which list() reports', async () => {
        const spec = sessionSpec(h.image);
        const info = await h.runtime.create(spec);
        expect(info).toMatchObject({ sessionId: spec.sessionId, userId: spec.userId, state: 'running' });
        expect(info.address).toBeTruthy();
        expect(fs.statSync(info.workspace).isDirectory()).toBe(true);
        const listed = (await h.runtime.list()).find((s) => s.sessionId === spec.sessionId);
        expect(listed).toMatchObject({ state: 'running', userId: spec.userId, workspace: info.workspace });
        await h.runtime.remove(spec.sessionId);
      });

      it('stops (refusing commands, ending running ones as lost) and starts again with the workspace intact', async () => {
        const spec = sessionSpec(h.image);
        const info = await h.runtime.create(spec);
        await run(h.runtime, spec.sessionId, ['sh', '-c', 'echo kept > kept.txt']);
        const running = await h.runtime.exec(spec.sessionId, { command: ['sleep', String(base + 9)] });
        const out = collect(running);
        expect((await h.runtime.stop(spec.sessionId)).state).toBe('stopped');
        expect((await out).exit.reason).toBe('lost');
        expect((await h.runtime.list()).find((s) => s.sessionId === spec.sessionId)?.state).toBe('stopped');
        expect((await rejection(h.runtime.exec(spec.sessionId, { command: ['true'] }))).code).toBe('conflict');
        expect(await h.runtime.stats(spec.sessionId)).toBeNull();
        expect((await h.runtime.start(spec.sessionId)).state).toBe('running');
        expect(fs.readFileSync(path.join(info.workspace, 'kept.txt'), 'utf8')).toBe('kept\n');
        expect((await run(h.runtime, spec.sessionId, ['cat', 'kept.txt'])).stdout).toBe('kept\n');
        await h.runtime.remove(spec.sessionId);
      });

      it('removes the session and its workspace, and a second remove is harmless', async () => {
        const spec = sessionSpec(h.image);
        const info = await h.runtime.create(spec);
        await h.runtime.remove(spec.sessionId);
        expect(fs.existsSync(info.workspace)).toBe(false);
        expect((await h.runtime.list()).some((s) => s.sessionId === spec.sessionId)).toBe(false);
        await h.runtime.remove(spec.sessionId);
        expect((await rejection(h.runtime.start(spec.sessionId))).code).toBe('not_found');
      });

      it('keeps the workspace on remove when asked', async () => {
        const spec = sessionSpec(h.image);
        const info = await h.runtime.create(spec);
        await h.runtime.remove(spec.sessionId, { keepWorkspace: true });
        expect(fs.existsSync(info.workspace)).toBe(true);
        fs.rmSync(path.dirname(info.workspace), { recursive: true, force: true });
      });

      it('refuses a second session with the same id and unsafe ids', async () => {
        const spec = sessionSpec(h.image);
        await h.runtime.create(spec);
        expect((await rejection(h.runtime.create(spec))).code).toBe('conflict');
        expect((await rejection(h.runtime.create({ ...spec, sessionId: '../x' }))).code).toBe('validation_failed');
        await h.runtime.remove(spec.sessionId);
      });

      it('answers not_found for a session it does not hold', async () => {
        expect((await rejection(h.runtime.exec(newId('ses'), { command: ['true'] }))).code).toBe('not_found');
        expect((await rejection(h.runtime.stop(newId('ses')))).code).toBe('not_found');
        expect(await h.runtime.stats(newId('ses'))).toBeNull();
      });
    });

    describe('exec', () => {
      let spec: SessionSpec;
      let workspace: string;
      beforeAll(async () => {
        spec = sessionSpec(h.image);
        workspace = (await h.runtime.create(spec)).workspace;
      });
      afterAll(async () => {
        await h.runtime.remove(spec.sessionId);
      });

      it('runs a command and reports exit code 0', async () => {
        expect(await run(h.runtime, spec.sessionId, ['echo', 'hello world'])).toEqual({
          stdout: 'hello world\n',
          stderr: '',
          exit: { exitCode: 0, reason: 'exit' },
        });
      });

      it('reports non-zero exit codes', async () => {
        const out = await run(h.runtime, spec.sessionId, ['sh', '-c', 'exit 3']);
        expect(out.exit).toEqual({ exitCode: 3, reason: 'exit' });
      });

      it('keeps stdout and stderr apart without a TTY', async () => {
        const out = await run(h.runtime, spec.sessionId, ['sh', '-c', 'echo out; echo err >&2; echo out2']);
        expect(out.stdout).toBe('out\nout2\n');
        expect(out.stderr).toBe('err\n');
      });

      it('feeds stdin and closes it', async () => {
        const out = await run(h.runtime, spec.sessionId, ['sh', '-c', 'cat; echo eof'], 'line one\nline two\n');
        expect(out.stdout).toBe('line one\nline two\neof\n');
      });

      it('starts in the workspace, which is the host folder', async () => {
        expect((await run(h.runtime, spec.sessionId, ['pwd'])).stdout.trim()).toBe(h.defaultCwd(workspace));
        await run(h.runtime, spec.sessionId, ['sh', '-c', 'mkdir -p sub && echo made > sub/made.txt']);
        expect(fs.readFileSync(path.join(workspace, 'sub', 'made.txt'), 'utf8')).toBe('made\n');
        for (const cwd of ['sub', '/workspace/sub']) {
          const handle = await h.runtime.exec(spec.sessionId, { command: ['cat', 'made.txt'], cwd });
          handle.closeStdin();
          expect((await collect(handle)).stdout).toBe('made\n');
        }
      });

      it('passes the session env and the command env', async () => {
        const handle = await h.runtime.exec(spec.sessionId, { command: ['sh', '-c', 'echo "$GREETING $NAME"'], env: { NAME: 'world' } });
        handle.closeStdin();
        expect((await collect(handle)).stdout).toBe('hello world\n');
      });

      it('kills the whole process group: sh -c "sleep & sleep" leaves no sleep behind', async () => {
        const a = `sleep ${base + 1}`;
        const b = `sleep ${base + 2}`;
        const handle = await h.runtime.exec(spec.sessionId, { command: ['sh', '-c', `${a} & ${b}`] });
        const out = collect(handle);
        await waitFor('both sleeps', async () => {
          const ps = await h.processes(spec.sessionId);
          return ps.some((l) => l.includes(a)) && ps.some((l) => l.includes(b));
        });
        await handle.kill();
        const { exit } = await out;
        expect(exit).toMatchObject({ reason: 'killed', signal: 'SIGTERM' });
        await waitFor('no sleep left', async () => !(await h.processes(spec.sessionId)).some((l) => l.includes(String(base + 1)) || l.includes(String(base + 2))), 3000);
      });

      it('kills with SIGKILL what ignores SIGTERM, children included', async () => {
        const c = `sleep ${base + 3}`;
        const handle = await h.runtime.exec(spec.sessionId, { command: ['sh', '-c', `trap "" TERM; ${c} & wait`] });
        const out = collect(handle);
        await waitFor('the sleep', async () => (await h.processes(spec.sessionId)).some((l) => l.includes(c)));
        await handle.kill('SIGKILL');
        expect((await out).exit).toMatchObject({ reason: 'killed', signal: 'SIGKILL' });
        await waitFor('no sleep left', async () => !(await h.processes(spec.sessionId)).some((l) => l.includes(c)), 3000);
      });

      it('answers a missing program with a non-zero exit naming it', async () => {
        const out = await run(h.runtime, spec.sessionId, ['no-such-program-xyz']);
        expect([126, 127]).toContain(out.exit.exitCode);
        expect(out.stdout + out.stderr).toContain('no-such-program-xyz');
      });

      it('gives sane resource figures', async () => {
        const handle = await h.runtime.exec(spec.sessionId, { command: ['sleep', String(base + 4)] });
        const out = collect(handle);
        await waitFor('the sleep', async () => (await h.processes(spec.sessionId)).some((l) => l.includes(String(base + 4))));
        const stats = await h.runtime.stats(spec.sessionId);
        expect(stats).not.toBeNull();
        const s = stats!;
        for (const v of Object.values(s)) expect(Number.isFinite(v) && v >= 0).toBe(true);
        expect(s.memoryLimit).toBeGreaterThan(0);
        expect(s.memoryLimit).toBeLessThanOrEqual(spec.limits.memoryBytes);
        expect(s.pids).toBeGreaterThanOrEqual(1);
        expect(s.cpuPercent).toBeLessThanOrEqual(100 * 64);
        await handle.kill('SIGKILL');
        await out;
      });

      it.skipIf(!opts.tty)('gives a TTY whose size follows resize', async () => {
        const handle = await h.runtime.exec(spec.sessionId, { command: ['sh'], tty: true, cols: 80, rows: 24 });
        expect(handle.tty).toBe(true);
        expect(handle.stderr).toBeNull();
        let screen = '';
        handle.stdout.on('data', (c: Buffer) => (screen += c.toString()));
        handle.write('stty size\n');
        await waitFor('24 80', async () => screen.includes('24 80'));
        await handle.resize(100, 40);
        handle.write('stty size\n');
        await waitFor('40 100', async () => screen.includes('40 100'));
        handle.write('exit 5\n');
        expect(await handle.exited).toEqual({ exitCode: 5, reason: 'exit' });
      });

      it.skipIf(!opts.tty)('kills an interactive shell (which ignores SIGTERM) with its background and foreground jobs', async () => {
        const bg = `sleep ${base + 5}`;
        const fg = `sleep ${base + 6}`;
        const handle = await h.runtime.exec(spec.sessionId, { command: ['sh', '-i'], tty: true, cols: 80, rows: 24 });
        handle.stdout.resume();
        handle.write(`${bg} &\n${fg}\n`);
        await waitFor('both jobs', async () => {
          const ps = await h.processes(spec.sessionId);
          return ps.some((l) => l.includes(bg)) && ps.some((l) => l.includes(fg));
        });
        await handle.kill();
        expect(await handle.exited).toMatchObject({ reason: 'killed', signal: 'SIGTERM' });
        await waitFor('no job left', async () => !(await h.processes(spec.sessionId)).some((l) => l.includes(bg) || l.includes(fg)), 3000);
      });
    });
  });
}
