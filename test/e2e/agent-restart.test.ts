/**
 * Processes outlive their agent (real stack: workerd edge, agent processes,
 * dockerd, the node image, so sessions run the session daemon): the agent is
 * killed with SIGKILL while a command prints and a terminal holds a shell,
 * another agent process starts with the same identity, and the clients,
 * still connected to the edge, get every byte exactly once and keep their
 * shell with its variables and history.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasDocker } from '../helpers/docker';
import { api, assembleOutput, registerUser, TestSocket, type TestUser } from '../helpers/client';
import { ensureTestImage } from '../helpers/images';
import { TestStack, type TestAgent } from '../helpers/stack';

describe.skipIf(!hasDocker)('agent restart with the session daemon (real stack, Docker)', () => {
  const stack = new TestStack({ edgeVars: { RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000', DEFAULT_IMAGE: 'mominai/node:test' } });
  const agentId = `agt_${'d1e5'.repeat(4)}${Date.now().toString(16)}`;
  const agentEnv = { SESSION_DAEMON: 'auto' };
  let agent: TestAgent;
  let user: TestUser;
  let sessionId: string;
  const sockets: TestSocket[] = [];

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
  /** SIGKILLs the agent's whole process group and starts a new agent process with the same id; resolves once it is connected. */
  const killAndRestartAgent = async () => {
    process.kill(-agent.proc.child.pid!, 'SIGKILL');
    await agent.proc.exited;
    sockets.forEach((s) => s.ackNow());
    const startedAt = Date.now();
    agent = await stack.startAgent({ id: agentId, name: 'restart-agent', env: agentEnv });
    await stack.health((h) => h.agents.some((a) => a.id === agentId && a.connected), 60_000);
    return startedAt;
  };

  beforeAll(async () => {
    await ensureTestImage('node');
    await stack.startEdge();
    agent = await stack.startAgent({ id: agentId, name: 'restart-agent', env: agentEnv });
    await stack.health((h) => h.agents.some((a) => a.id === agentId && a.connected));
    user = await registerUser(stack, 'restart');
    const res = await api<{ session: { id: string } }>(stack, 'POST', '/api/containers', { token: user.token, body: {} });
    expect(res.status).toBe(201);
    sessionId = res.body.session.id;
  });
  afterAll(async () => {
    if (sessionId) await api(stack, 'DELETE', `/api/containers/${sessionId}`, { token: user.token }).catch(() => undefined);
    await stack.stop();
  });

  it('SIGKILL mid-output, restart: the client gets every line exactly once, and the terminal keeps its shell and history', async () => {
    const sock = await open();
    const pid = await start(sock, 'container_command', { command: 'i=1; while [ $i -le 2000 ]; do echo "line $i"; i=$((i+1)); sleep 0.003; done' });
    const term = await start(sock, 'open_terminal', { cols: 100, rows: 30 });
    sock.send('stdin', { processId: term, data: 'export KEPT=value-$((6*7)); echo "set $KEPT"\n' });
    await sock.waitFor(() => assembleOutput(sock.frames, term).pty.includes('set value-42'), 60_000);
    await sock.waitFor((f) => f.type === 'command_output' && f.payload.processId === pid && String(f.payload.data).includes('line 100\n'), 60_000);

    // The client acknowledges what it holds, as the SDK does: a Session DO that hibernates while
    // the agent is away resends each client's streams from its last stored acknowledgement.
    sockets.push(sock);
    const startedAt = await killAndRestartAgent();
    const before = assembleOutput(sock.frames, pid).stdout.length;
    await sock.waitFor(() => assembleOutput(sock.frames, pid).stdout.length > before, 60_000);
    process.stdout.write(`agent-restart: agent start to output flowing again: ${Date.now() - startedAt} ms\n`);

    const exit = await sock.waitFor((f) => f.type === 'command_exit' && f.payload.processId === pid, 120_000);
    expect(exit.payload).toMatchObject({ exitCode: 0, reason: 'exit' });
    const out = assembleOutput(sock.frames, pid);
    expect(out.problems).toEqual([]);
    const lines = out.stdout.trimEnd().split('\n');
    expect(lines.length).toBe(2000);
    lines.forEach((l, i) => expect(l).toBe(`line ${i + 1}`));

    // The same shell: its variable, and the command in its history.
    // (The bracket keeps the grep from counting its own line, which history holds too.)
    sock.send('stdin', { processId: term, data: 'echo "still $KEPT"; history | grep -c "export KEP[T]="\n' });
    await sock.waitFor(() => /still value-42\r\n1\r\n/.test(assembleOutput(sock.frames, term).pty), 60_000).catch((err: unknown) => {
      throw new Error(`${String(err).slice(0, 200)}; the terminal showed: ${JSON.stringify(assembleOutput(sock.frames, term).pty.slice(-400))}`);
    });
    expect(assembleOutput(sock.frames, term).problems).toEqual([]);
    sock.close();
  }, 300_000);
});
