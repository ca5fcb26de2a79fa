/**
 * A client that stops reading while a command prints 200 MiB: the edge and
 * the agent must keep their memory bounded, and the client can resume (and
 * is told of the gap) afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasDocker } from '../helpers/docker';
import { assembleOutput, registerUser, TestSocket, type TestUser } from '../helpers/client';
import { rssBytes, samplePeak, workerdPids } from '../helpers/memory';
import { createSession, startEdgeWithAgent } from '../helpers/sessions';
import { TestStack, type TestAgent } from '../helpers/stack';
import { poll } from '../helpers/wait';

const MiB = 1024 * 1024;
const TOTAL = 200 * MiB;

describe.skipIf(!hasDocker)('flow control (real stack, Docker)', () => {
  const stack = new TestStack({ edgeVars: { RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000', DEFAULT_IMAGE: 'mominai/busybox:test' } });
  let agent: TestAgent;
  let user: TestUser;
  let sessionId: string;

  beforeAll(async () => {
    agent = await startEdgeWithAgent(stack, { agentName: 'flow-agent', image: 'busybox' });
    user = await registerUser(stack, 'flow');
    sessionId = await createSession(stack, user);
  });
  afterAll(async () => {
    if (process.env.SHOW_EDGE_LOGS) process.stderr.write(`${stack.edgeLogs.slice(-60).join('\n')}\n`);
    await stack.stop();
  });

  it('keeps edge and agent memory bounded while a stalled client misses 200 MiB, then resumes with a gap', async () => {
    const sock = await TestSocket.open(stack, user.token, sessionId);
    await sock.waitFor((f) => f.type === 'ready');
    sock.autoAck = false; // this client reads, but never acknowledges: as far as the edge knows, it has stopped reading
    const agentPid = agent.proc.child.pid!;
    const edgePids = workerdPids(stack.edge!.child.pid!);
    expect(edgePids.length).toBeGreaterThan(0);
    const baseline = { agent: rssBytes(agentPid), edge: edgePids.reduce((n, p) => n + rssBytes(p), 0) };
    const agentPeak = samplePeak(() => [agentPid]);
    const edgePeak = samplePeak(() => edgePids);

    const started = await sock.request('container_command', { command: `head -c ${TOTAL} /dev/zero | tr '\\0' 'x'; echo; echo done` });
    const pid = String(started.payload.processId);
    const paused = await sock.waitFor((f) => f.type === 'flow_paused' && f.payload.processId === pid, 60_000);
    expect(Number(paused.payload.offset)).toBeLessThanOrEqual(4 * MiB);
    // The command runs to its end on the agent while this client stalls (history says so) ...
    await poll(
      async () => {
        const h = await sock.request('history', { limit: 5 }, 120_000);
        const entry = (h.payload.commands as Array<{ processId: string; running: boolean }>).find((c) => c.processId === pid);
        return entry && !entry.running ? entry : undefined;
      },
      'the command to finish',
      240_000,
    );
    // ... but this client's exit waits behind its stalled window.
    expect(sock.frames.some((f) => f.type === 'command_exit' && f.payload.processId === pid)).toBe(false);
    expect(sock.frames.filter((f) => f.type === 'gap').length).toBe(0);
    const stats = { agent: agentPeak.stop() - baseline.agent, edge: edgePeak.stop() - baseline.edge };
    process.stderr.write(`[flow-control] peak RSS growth while 200 MiB flowed: agent ${(stats.agent / MiB).toFixed(1)} MiB, edge ${(stats.edge / MiB).toFixed(1)} MiB\n`);
    // Holding the output would take ≥ 200 MiB. Measured on every workerd of the edge, with journals in
    // storage behind a 512 KiB tail: 50–52 MiB (freed buffers the isolate has not collected yet).
    expect(stats.agent).toBeLessThan(100 * MiB);
    expect(stats.edge).toBeLessThan(150 * MiB);

    // The client now acknowledges what it got: it receives a gap marker, then the journal's tail and the exit.
    sock.autoAck = true;
    sock.ackNow();
    const gap = await sock.waitFor((f) => f.type === 'gap' && f.payload.processId === pid, 120_000);
    expect(Number(gap.payload.toOffset)).toBeGreaterThan(Number(gap.payload.fromOffset));
    await sock.waitFor((f) => f.type === 'command_exit' && f.payload.processId === pid, 120_000);
    expect(sock.frames.filter((f) => f.type === 'gap').length).toBe(1);
    const tail = sock.frames
      .filter((f) => f.type === 'command_output' && f.payload.processId === pid)
      .map((f) => String(f.payload.data))
      .join('');
    expect(tail.endsWith('x\ndone\n')).toBe(true);
    sock.close();
  }, 400_000);

  it('delivers every byte of a 24 MiB output to a client that keeps acknowledging, with no gap', async () => {
    const sock = await TestSocket.open(stack, user.token, sessionId);
    await sock.waitFor((f) => f.type === 'ready');
    const size = 24 * MiB;
    const started = await sock.request('container_command', { command: `head -c ${size} /dev/zero | tr '\\0' 'y'` });
    const pid = String(started.payload.processId);
    await sock.waitFor((f) => f.type === 'command_exit' && f.payload.processId === pid, 240_000);
    const out = assembleOutput(sock.frames, pid);
    expect(out.problems).toEqual([]);
    expect(out.stdout.length).toBe(size);
    expect(sock.frames.some((f) => f.type === 'gap')).toBe(false);
    sock.close();
  }, 300_000);
});
