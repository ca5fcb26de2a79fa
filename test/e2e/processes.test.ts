/**
 * Commands, terminals and processes through the real stack (workerd edge,
 * agent, dockerd): live output with offsets, exits, PTYs, kills, history,
 * and output that survives client and tunnel drops.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasDocker } from '../helpers/docker';
import { api, assembleOutput, TestSocket, type TestUser } from '../helpers/client';
import { endOneSession, startOneSession } from '../helpers/one-session';
import { TestStack } from '../helpers/stack';

describe.skipIf(!hasDocker)('processes (real stack, Docker)', () => {
  const stack = new TestStack({ edgeVars: { RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000', DEFAULT_IMAGE: 'mominai/busybox:test' } });
  const agentId = `agt_${'beef'.repeat(4)}${Date.now().toString(16)}`;
  let user: TestUser;
  let sessionId: string;

  const open = async () => {
    const sock = await TestSocket.open(stack, user.token, sessionId);
    await sock.waitFor((f) => f.type === 'ready');
    return sock;
  };
  const exitOf = (sock: TestSocket, processId: string, timeoutMs = 60_000) =>
    sock.waitFor((f) => f.type === 'command_exit' && f.payload.processId === processId, timeoutMs);
  const start = async (sock: TestSocket, type: string, payload: unknown) => {
    const reply = await sock.request(type, payload);
    expect(reply.type, JSON.stringify(reply)).toBe('process_started');
    return String(reply.payload.processId);
  };

  beforeAll(async () => {
    ({ user, sessionId } = await startOneSession(stack, { image: 'busybox', agentId, agentName: 'proc-agent', userPrefix: 'procs' }));
  });
  afterAll(() => endOneSession(stack, { user, sessionId }));

  it('runs a shell command and streams its output, then its exit code', async () => {
    const sock = await open();
    const pid = await start(sock, 'container_command', { command: 'echo hello; echo world' });
    const exit = await exitOf(sock, pid);
    expect(exit.payload).toMatchObject({ exitCode: 0, reason: 'exit' });
    const out = assembleOutput(sock.frames, pid);
    expect(out.problems).toEqual([]);
    expect(out.stdout).toBe('hello\nworld\n');
    sock.close();
  });

  it('keeps stdout and stderr apart and reports non-zero exit codes', async () => {
    const sock = await open();
    const pid = await start(sock, 'container_command', { command: 'echo out; echo err >&2; exit 7' });
    expect((await exitOf(sock, pid)).payload.exitCode).toBe(7);
    const out = assembleOutput(sock.frames, pid);
    expect(out.stdout).toBe('out\n');
    expect(out.stderr).toBe('err\n');
    const execPid = await start(sock, 'exec_command', { command: 'ls', args: ['/no/such/dir'] });
    expect((await exitOf(sock, execPid)).payload.exitCode).not.toBe(0);
    expect(assembleOutput(sock.frames, execPid).stderr).toMatch(/no\/such\/dir/);
    sock.close();
  });

  it('gives an interactive PTY whose size follows resize', async () => {
    const sock = await open();
    const pid = await start(sock, 'open_terminal', { cols: 91, rows: 27 });
    sock.send('stdin', { processId: pid, data: 'stty size\n' });
    await sock.waitFor(() => assembleOutput(sock.frames, pid).pty.includes('27 91'), 30_000);
    expect((await sock.request('resize', { processId: pid, cols: 120, rows: 40 })).type).toBe('resized');
    sock.send('stdin', { processId: pid, data: 'stty size\n' });
    await sock.waitFor(() => assembleOutput(sock.frames, pid).pty.includes('40 120'), 30_000);
    sock.send('stdin', { processId: pid, data: 'exit\n' });
    expect((await exitOf(sock, pid)).payload.exitCode).toBe(0);
    expect(assembleOutput(sock.frames, pid).problems).toEqual([]);
    sock.close();
  });

  it('kills a whole process group, children included', async () => {
    const sock = await open();
    const pid = await start(sock, 'container_command', { command: 'sleep 1000 & sleep 1000' });
    const check = async () => {
      const p = await start(sock, 'container_command', { command: "ps -o args | grep -c '^sleep 1000' || true" });
      await exitOf(sock, p);
      return Number(assembleOutput(sock.frames, p).stdout.trim());
    };
    const deadline = Date.now() + 20_000;
    while ((await check()) < 2 && Date.now() < deadline);
    expect(await check()).toBe(2);
    expect((await sock.request('kill', { processId: pid })).type).toBe('killed');
    const exit = await exitOf(sock, pid);
    expect(exit.payload).toEqual({ processId: pid, exitCode: exit.payload.exitCode, signal: 'SIGTERM', reason: 'killed' });
    expect(await check()).toBe(0);
    sock.close();
  });

  it('lists running processes and keeps a history of commands with times and exit codes', async () => {
    const sock = await open();
    const pid = await start(sock, 'container_command', { command: 'exit 3' });
    await exitOf(sock, pid);
    const history = await sock.request('history', {});
    const entry = (history.payload.commands as Array<Record<string, unknown>>).find((c) => c.processId === pid);
    expect(entry).toMatchObject({ command: 'exit 3', exitCode: 3, running: false });
    expect(Date.parse(String(entry!.endedAt))).toBeGreaterThanOrEqual(Date.parse(String(entry!.startedAt)));
    const running = await start(sock, 'container_command', { command: 'sleep 30' });
    const list = await sock.request('list_processes');
    expect((list.payload.processes as Array<{ processId: string }>).some((p) => p.processId === running)).toBe(true);
    await sock.request('kill', { processId: running, signal: 'SIGKILL' });
    await exitOf(sock, running);
    sock.close();
  });

  it('returns the newest commands first, as many as history {limit} asks for', async () => {
    const sock = await open();
    const pids: string[] = [];
    for (const n of [1, 2, 3]) {
      const pid = await start(sock, 'container_command', { command: `exit ${n}` });
      await exitOf(sock, pid);
      pids.push(pid);
    }
    const history = await sock.request('history', { limit: 2 });
    expect(history.type).toBe('history');
    expect((history.payload.commands as Array<{ processId: string; command: string; exitCode: number }>).map((c) => [c.processId, c.command, c.exitCode])).toEqual([
      [pids[2], 'exit 3', 3],
      [pids[1], 'exit 2', 2],
    ]);
    expect((await sock.request('history', { limit: 0 })).payload.code).toBe('validation_failed');
    sock.close();
  });

  it('answers invalid process frames with errors and keeps the socket open', async () => {
    const sock = await open();
    expect((await sock.request('container_command', {})).payload.code).toBe('validation_failed');
    expect((await sock.request('kill', { processId: 'prc_0000000000000000' })).payload.code).toBe('not_found');
    expect((await sock.request('stdin', { processId: 'nope', data: 'x' })).payload.code).toBe('validation_failed');
    expect((await sock.request('resize', { processId: 'prc_0000000000000000', cols: 0, rows: 5 })).payload.code).toBe('validation_failed');
    expect((await sock.request('ping')).type).toBe('pong');
    sock.close();
  });

  it('runs short commands over REST with their output and exit code', async () => {
    const ok = await api<Record<string, unknown>>(stack, 'POST', `/api/containers/${sessionId}/exec`, {
      token: user.token,
      body: { command: 'echo rest-out; echo rest-err >&2; exit 4' },
    });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ exitCode: 4, stdout: 'rest-out\n', stderr: 'rest-err\n', truncated: false, reason: 'exit' });
    expect(Number(ok.body.durationMs)).toBeGreaterThanOrEqual(0);
    const argv = await api<Record<string, unknown>>(stack, 'POST', `/api/containers/${sessionId}/exec`, {
      token: user.token,
      body: { command: 'echo', args: ['a b', '$HOME'] },
    });
    expect(argv.body.stdout).toBe('a b $HOME\n');
    const slow = await api<Record<string, unknown>>(stack, 'POST', `/api/containers/${sessionId}/exec`, {
      token: user.token,
      body: { command: 'sleep 30', timeoutMs: 500 },
    });
    expect(slow.body.reason).toBe('timeout');
    const bad = await api<{ error: { code: string } }>(stack, 'POST', `/api/containers/${sessionId}/exec`, { token: user.token, body: { args: [] } });
    expect(bad.status).toBe(400);
  });

  const countingCommand = (n: number) => `i=1; while [ $i -le ${n} ]; do echo "line $i"; i=$((i+1)); sleep 0.004; done`;
  const expectAllLines = (text: string, n: number) => {
    const lines = text.trimEnd().split('\n');
    expect(lines.length).toBe(n);
    lines.forEach((l, i) => expect(l).toBe(`line ${i + 1}`));
  };

  it('sends raw bytes as binary frames to a client that asks for binary output, and resumes them exactly', async () => {
    const sock = await TestSocket.open(stack, user.token, sessionId, { output: 'binary' });
    await sock.waitFor((f) => f.type === 'ready');
    // Every byte value, NUL included, 3 MB of them (frames up to 1 MiB), plus stderr.
    const pid = await start(sock, 'container_command', {
      command: 'head -c 3000000 /dev/urandom > r.bin && cat r.bin && printf "\\000\\377" >&2',
    });
    const exit = await exitOf(sock, pid);
    expect(exit.payload).toMatchObject({ exitCode: 0 });
    expect(sock.unannounced).toEqual([]);
    expect(sock.frames.filter((f) => f.type === 'command_output' && f.payload.processId === pid && !f.payload.binary)).toEqual([]);
    const announced = sock.frames.filter((f) => f.type === 'output_stream' && f.payload.processId === pid).map((f) => f.payload.stream).sort();
    expect(announced).toEqual(['stderr', 'stdout']);
    const out = assembleOutput(sock.frames, pid);
    expect(out.problems).toEqual([]);
    const expected = fs.readFileSync(path.join(stack.stateDir, 'workspaces', user.id, sessionId, 'r.bin'));
    expect(expected.byteLength).toBe(3_000_000);
    expect(Buffer.from(out.stdout, 'latin1').equals(expected)).toBe(true);
    expect([...Buffer.from(out.stderr, 'latin1')]).toEqual([0, 255]);
    sock.close();

    // A new binary client resumes from the middle and gets exactly the rest.
    const again = await TestSocket.open(stack, user.token, sessionId, { output: 'binary' });
    await again.waitFor((f) => f.type === 'ready');
    const from = 1_234_567;
    expect((await again.request('resume', { processId: pid, fromOffset: from })).type).toBe('resumed');
    const tail = await again.waitFor((f) => f.type === 'command_exit' && f.payload.processId === pid);
    expect(tail.payload).toMatchObject({ exitCode: 0 });
    const rest = assembleOutput(again.frames, pid, { stdout: from, stderr: 0 });
    expect(rest.problems).toEqual([]);
    expect(Buffer.from(rest.stdout, 'latin1').equals(expected.subarray(from))).toBe(true);
    again.close();
  });

  it('refuses an unknown output format with 400', async () => {
    await expect(TestSocket.open(stack, user.token, sessionId, { output: 'yaml' as 'binary' })).rejects.toMatchObject({ status: 400 });
  });

  it('gives a client that reconnects exactly the output it missed, once and in order', async () => {
    const first = await open();
    const pid = await start(first, 'container_command', { command: countingCommand(1500) });
    await first.waitFor((f) => f.type === 'command_output' && f.payload.processId === pid && String(f.payload.data).includes('line 100\n'));
    first.close();
    const seen = assembleOutput(first.frames, pid);
    expect(seen.problems).toEqual([]);
    const resumeFrom = Buffer.byteLength(seen.stdout);

    await new Promise((r) => setTimeout(r, 500)); // the command keeps printing while no client listens
    const second = await open();
    expect((await second.request('resume', { processId: pid, fromOffset: resumeFrom })).type).toBe('resumed');
    await exitOf(second, pid);
    // The second socket's frames continue exactly where the first left off: no gap, no repeat.
    const tail = assembleOutput(second.frames, pid, { stdout: resumeFrom });
    expect(tail.problems).toEqual([]);
    expectAllLines(seen.stdout + tail.stdout, 1500);
    second.close();
  });

  it('keeps output no client has read across an edge restart while the command runs', async () => {
    // Nobody listens: what the edge acknowledges to the agent must be in its storage.
    const starter = await open();
    // It also marks its progress in a file, so the test can see how far it got.
    const command = `i=1; while [ $i -le 1500 ]; do echo "line $i"; [ $i -eq 300 ] && touch reached-300; i=$((i+1)); sleep 0.004; done`;
    const pid = await start(starter, 'container_command', { command });
    starter.close();
    const marker = path.join(stack.stateDir, 'workspaces', user.id, sessionId, 'reached-300');
    const deadline = Date.now() + 60_000;
    while (!fs.existsSync(marker) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(fs.existsSync(marker)).toBe(true);
    await stack.stopEdge();
    await stack.startEdge();
    await stack.health((h) => h.agents.some((a) => a.id === agentId && a.connected), 30_000);
    const again = await open();
    expect((await again.request('resume', { processId: pid, fromOffset: 0 })).type).toBe('resumed');
    await exitOf(again, pid, 90_000);
    const all = assembleOutput(again.frames, pid);
    expect(all.problems).toEqual([]);
    expectAllLines(all.stdout, 1500);
    again.close();
  });

  it('loses nothing when the agent\'s tunnel is cut and redialled while the command runs', async () => {
    const sock = await open();
    const pid = await start(sock, 'container_command', { command: countingCommand(1500) });
    await sock.waitFor((f) => f.type === 'command_output' && f.payload.processId === pid && String(f.payload.data).includes('line 50\n'));
    // Cut every socket of the agent's (control and data) by restarting the edge; the agent redials on its own.
    await stack.stopEdge();
    await stack.startEdge();
    await stack.health((h) => h.agents.some((a) => a.id === agentId && a.connected), 30_000);
    const again = await open();
    const seen = assembleOutput(sock.frames, pid);
    expect(seen.problems).toEqual([]);
    const resumeFrom = Buffer.byteLength(seen.stdout);
    await again.request('resume', { processId: pid, fromOffset: resumeFrom });
    await exitOf(again, pid, 90_000);
    const tail = assembleOutput(again.frames, pid, { stdout: resumeFrom });
    expect(tail.problems).toEqual([]);
    expectAllLines(seen.stdout + tail.stdout, 1500);
    again.close();
  });
});
