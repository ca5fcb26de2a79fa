/**
 * Processes outlive their agent (real stack: workerd edge, agent processes,
 * dockerd, the node image, so sessions run the session daemon): the agent is
 * killed with SIGKILL (a crash, an OOM kill) or stopped with SIGTERM (an
 * upgrade) while a command prints, another agent process starts with the
 * same identity, and the clients, still connected to the edge, get every
 * byte exactly once, keep their shell with its variables and history, and
 * see the command end with its own exit code.
 */
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasDocker } from '../helpers/docker';
import { assembleOutput, TestSocket, type TestUser } from '../helpers/client';
import { endOneSession, startOneSession } from '../helpers/one-session';
import { TestStack, type TestAgent } from '../helpers/stack';

describe.skipIf(!hasDocker)('agent restart with the session daemon (real stack, Docker)', () => {
  const stack = new TestStack({ edgeVars: { RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000', DEFAULT_IMAGE: 'mominai/node:test' } });
  const agentId = `agt_${'d1e5'.repeat(4)}${Date.now().toString(16)}`;
  const agentEnv = { SESSION_DAEMON: 'auto' };
  let agent: TestAgent;
  let user: TestUser;
  let sessionId: string;

  const open = async () => {
    const sock = await TestSocket.open(stack, user.token, sessionId);
    await sock.waitFor((f) => f.type === 'ready');
    return sock;
  };
  const start = async (sock: TestSocket, type: string, payload: unknown) => {
    const reply = await sock.request(type, payload);
    expect(reply.type, JSON.stringify(reply)).toBe('process_started');
    return String(reply.payload.processId);
  };
  const exitOf = (sock: TestSocket, processId: string, timeoutMs = 60_000) =>
    sock.waitFor((f) => f.type === 'command_exit' && f.payload.processId === processId, timeoutMs);
  /** Waits for output of `pid` past what the client held, and prints how long after the new agent's start it came. */
  const outputResumes = async (sock: TestSocket, pid: string, startedAt: number, after: string) => {
    const before = assembleOutput(sock.frames, pid).stdout.length;
    await sock.waitFor(() => assembleOutput(sock.frames, pid).stdout.length > before, 60_000);
    process.stdout.write(`agent-restart: after ${after}, agent start to output flowing again: ${Date.now() - startedAt} ms\n`);
  };
  /** The command's stdout as lines, each `line <n>` in order from 1 (no gap, no repeat); returns how many. */
  const numberedLines = (sock: TestSocket, pid: string) => {
    const out = assembleOutput(sock.frames, pid);
    expect(out.problems).toEqual([]);
    const lines = out.stdout.trimEnd().split('\n');
    lines.forEach((l, i) => expect(l).toBe(`line ${i + 1}`));
    return lines.length;
  };
  /**
   * Ends the agent and starts a new agent process with the same id; resolves once it is connected.
   * SIGKILL goes to the agent's whole process group, as a crash would; SIGTERM to the agent's node
   * process alone (under `node --import tsx` the agent is that process), as an upgrade does.
   */
  const stopAndRestartAgent = async (signal: 'SIGKILL' | 'SIGTERM', sock: TestSocket) => {
    const stopped = agent;
    process.kill(signal === 'SIGKILL' ? -stopped.proc.child.pid! : stopped.proc.child.pid!, signal);
    const exit = await stopped.proc.exited;
    // The client acknowledges what it holds, as the SDK does: a Session DO that hibernates while
    // the agent is away resends each client's streams from its last stored acknowledgement.
    sock.ackNow();
    const startedAt = Date.now();
    agent = await stack.startAgent({ id: agentId, name: 'restart-agent', env: agentEnv });
    await stack.health((h) => h.agents.some((a) => a.id === agentId && a.connected), 60_000);
    return { startedAt, exit, stopped };
  };

  beforeAll(async () => {
    ({ agent, user, sessionId } = await startOneSession(stack, { image: 'node', agentId, agentName: 'restart-agent', agentEnv, userPrefix: 'restart' }));
  });
  afterAll(() => endOneSession(stack, { user, sessionId }));

  it('SIGKILL mid-output, restart: the client gets every line exactly once, and the terminal keeps its shell and history', async () => {
    const sock = await open();
    const pid = await start(sock, 'container_command', { command: 'i=1; while [ $i -le 2000 ]; do echo "line $i"; i=$((i+1)); sleep 0.003; done' });
    const term = await start(sock, 'open_terminal', { cols: 100, rows: 30 });
    sock.send('stdin', { processId: term, data: 'export KEPT=value-$((6*7)); echo "set $KEPT"\n' });
    await sock.waitFor(() => assembleOutput(sock.frames, term).pty.includes('set value-42'), 60_000);
    await sock.waitFor((f) => f.type === 'command_output' && f.payload.processId === pid && String(f.payload.data).includes('line 100\n'), 60_000);

    const { startedAt } = await stopAndRestartAgent('SIGKILL', sock);
    await outputResumes(sock, pid, startedAt, 'SIGKILL');
    expect((await exitOf(sock, pid, 120_000)).payload).toMatchObject({ exitCode: 0, reason: 'exit' });
    expect(numberedLines(sock, pid)).toBe(2000);

    // The same shell: its variable, and the command in its history.
    // (The bracket keeps the grep from counting its own line, which history holds too.)
    sock.send('stdin', { processId: term, data: 'echo "still $KEPT"; history | grep -c "export KEP[T]="\n' });
    await sock.waitFor(() => /still value-42\r\n1\r\n/.test(assembleOutput(sock.frames, term).pty), 60_000).catch((err: unknown) => {
      throw new Error(`${String(err).slice(0, 200)}; the terminal showed: ${JSON.stringify(assembleOutput(sock.frames, term).pty.slice(-400))}`);
    });
    expect(assembleOutput(sock.frames, term).problems).toEqual([]);
    sock.send('stdin', { processId: term, data: 'exit\n' });
    expect((await exitOf(sock, term)).payload).toMatchObject({ exitCode: 0, reason: 'exit' });
    sock.close();
  }, 300_000);

  it('SIGTERM mid-output (an upgrade): the agent exits 0 and leaves the command running; after the restart the client gets every line exactly once and its exit code', async () => {
    const sock = await open();
    // Prints until told to stop, so it is certainly still running when the new agent takes over.
    const pid = await start(sock, 'container_command', {
      command: 'i=1; while [ ! -e stop-printing ] && [ $i -le 100000 ]; do echo "line $i"; i=$((i+1)); sleep 0.003; done; exit 3',
    });
    await sock.waitFor((f) => f.type === 'command_output' && f.payload.processId === pid && String(f.payload.data).includes('line 100\n'), 60_000);

    const { startedAt, exit, stopped } = await stopAndRestartAgent('SIGTERM', sock);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(await stopped.waitForLog((l) => l.msg === 'left the session' && l.sessionId === sessionId, 10_000)).toMatchObject({ leftRunning: 1, ended: 0 });
    const [container] = await new Docker().listContainers({ all: true, filters: { label: [`dev.mominai.session=${sessionId}`] } });
    expect(container?.State).toBe('running');

    await outputResumes(sock, pid, startedAt, 'SIGTERM');
    const touch = await start(sock, 'container_command', { command: 'touch stop-printing' });
    expect((await exitOf(sock, touch)).payload).toMatchObject({ exitCode: 0, reason: 'exit' });
    expect((await exitOf(sock, pid, 120_000)).payload).toMatchObject({ exitCode: 3, reason: 'exit' });
    expect(numberedLines(sock, pid)).toBeGreaterThan(100);
    sock.close();
  }, 300_000);
});
