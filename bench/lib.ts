/**
 * Shared pieces of the benchmarks: options, timing, the real stack (the same
 * TestStack the end-to-end tests start: workerd edge, agent process,
 * dockerd), the tests' session socket opened without frame history and the
 * echo shell. Statistics and the output format are in ./report.ts, CPU
 * accounting per process group in ./cpu.ts, the set-up and teardown of a run
 * in ./setup.ts.
 *
 * Every benchmark measures its direct baseline in the same run and reports a
 * ratio against it; targets are reported, never asserted.
 */
import { execFile } from 'node:child_process';
import os from 'node:os';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { api, registerUser, TestSocket, type Frame, type TestUser } from '../test/helpers/client';
export type { Frame, TestSocket } from '../test/helpers/client';
import { ensureTestImage, TEST_IMAGES } from '../test/helpers/images';
import { TestStack, type TestAgent } from '../test/helpers/stack';
import { edgeRunnerFromEnv } from '../scripts/lib/stack';
import { fmtMs } from './report';

export const BENCH_IMAGE = TEST_IMAGES.busybox;

/* ---------------------------------------------------------------- args */

export interface BenchArgs {
  /** `--name value` and `--name=value` pairs; a bare `--flag` is "true". */
  readonly values: ReadonlyMap<string, string>;
}

export function parseArgs(argv: readonly string[]): BenchArgs {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument "${a}" (options look like --n 10)`);
    const eq = a.indexOf('=');
    if (eq > 0) values.set(a.slice(2, eq), a.slice(eq + 1));
    else if (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--')) values.set(a.slice(2), argv[++i]!);
    else values.set(a.slice(2), 'true');
  }
  return { values };
}

export function intArg(args: BenchArgs, name: string, fallback: number, min: number, max: number): number {
  const raw = args.values.get(name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be a whole number from ${min} to ${max}, not "${raw}"`);
  return n;
}

export function flagArg(args: BenchArgs, name: string): boolean {
  return /^(1|true|yes)$/i.test(args.values.get(name) ?? '');
}

/* ---------------------------------------------------------------- time */

export const now = (): bigint => process.hrtime.bigint();
export const msBetween = (from: bigint, to: bigint): number => Number(to - from) / 1e6;
export const msSince = (from: bigint): number => msBetween(from, now());
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A benchmark's time budget. Loops call `check()` between measurements; it
 * throws once the budget is spent or the user pressed Ctrl-C, and the
 * benchmark's `finally` then cleans up. Each single operation carries its
 * own timeout, so the run ends within the budget plus one operation.
 */
export class Deadline {
  private readonly end: number;
  constructor(readonly budgetMs: number) {
    this.end = Date.now() + budgetMs;
  }
  remainingMs(): number {
    return this.end - Date.now();
  }
  check(what: string): void {
    if (interrupted.signal.aborted) throw new Error(`interrupted during ${what}`);
    if (Date.now() > this.end) throw new Error(`the time budget (${Math.round(this.budgetMs / 1000)} s, --timeout) ran out during ${what}`);
  }
}

/** Aborted by the first SIGINT/SIGTERM (run.ts); the benchmarks stop at their next check and clean up. */
export const interrupted = new AbortController();

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Says so when the machine is busy before a run: other work skews every figure. */
export function warnIfBusy(): void {
  const [load1] = os.loadavg();
  const cpus = os.cpus().length;
  if (load1 !== undefined && load1 > cpus * 0.5) log(`warning: load average ${load1.toFixed(2)} on ${cpus} CPUs before the run; figures will be noisy`);
}

export function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

/* ---------------------------------------------------------------- docker */

const run = promisify(execFile);

/** Runs the docker CLI; resolves with trimmed stdout. */
export async function dockerCli(args: readonly string[], timeoutMs = 60_000): Promise<string> {
  try {
    const { stdout } = await run('docker', [...args], { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 });
    return stdout.trim();
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`docker ${args.slice(0, 2).join(' ')} failed: ${(e.stderr || e.message).trim()}`);
  }
}

/* ---------------------------------------------------------------- stack */

export interface BenchStack {
  stack: TestStack;
  agent: TestAgent;
  user: TestUser;
  docker: Docker;
}

export interface StackOptions {
  edgeVars?: Record<string, string>;
  agentEnv?: Record<string, string>;
  debug?: boolean;
}

/**
 * Starts the edge (EDGE_RUNNER: Miniflare or wrangler dev, both → workerd) and one Docker agent on loopback,
 * and registers a user. The caller must `stopStack()` it in a finally block;
 * a failure half-way stops whatever had started before rethrowing.
 */
export async function startStack(opts: StackOptions = {}): Promise<BenchStack> {
  const docker = new Docker();
  try {
    await withTimeout(docker.ping(), 5_000, 'docker ping');
  } catch (err) {
    throw new Error(`the Docker engine does not answer (${err instanceof Error ? err.message : String(err)}); start dockerd first`);
  }
  await ensureTestImage('busybox', docker);
  warnIfBusy();
  const stack = new TestStack({
    edgeVars: { RATE_LIMIT_MAX: '1000000', AUTH_RATE_LIMIT_MAX: '1000000', DEFAULT_IMAGE: BENCH_IMAGE, ...opts.edgeVars },
    ...(opts.debug ? { debug: true } : {}),
  });
  try {
    const started = now();
    await stack.startEdge();
    // The busybox and node test images (preview, daemon) and node:* (scale --image node).
    const agent = await stack.startAgent({ name: 'bench-agent', env: { ALLOWED_IMAGES: `${BENCH_IMAGE},${TEST_IMAGES.node},node:*`, ...opts.agentEnv } });
    await stack.health((h) => h.agents.some((a) => a.id === agent.id && a.connected), 30_000);
    const user = await registerUser(stack, 'bench');
    log(`stack up in ${fmtMs(msSince(started))} ms (edge under ${edgeRunnerFromEnv()} at ${stack.baseUrl}, agent ${agent.id})`);
    return { stack, agent, user, docker };
  } catch (err) {
    await stack.stop().catch(() => undefined);
    throw err;
  }
}

export async function stopStack(b: BenchStack | undefined): Promise<void> {
  if (!b) return;
  await withTimeout(b.stack.stop(), 30_000, 'stopping the stack').catch((err: unknown) => log(`stopping the stack: ${String(err)}`));
}

export interface SessionView {
  id: string;
  status: string;
  agentId: string;
  containerId?: string;
}

export async function createSession(b: BenchStack, body: Record<string, unknown> = {}): Promise<SessionView> {
  const res = await api<{ session: SessionView }>(b.stack, 'POST', '/api/containers', { token: b.user.token, body: { image: BENCH_IMAGE, ...body } });
  if (res.status !== 201 || res.body.session?.status !== 'running') throw new Error(`creating a session failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.session;
}

export async function deleteSession(b: BenchStack, sessionId: string): Promise<void> {
  const res = await api(b.stack, 'DELETE', `/api/containers/${sessionId}`, { token: b.user.token });
  if (res.status !== 200 && res.status !== 404) throw new Error(`deleting session ${sessionId} failed: ${res.status} ${JSON.stringify(res.body)}`);
}

/** The Docker id of a session's container, found by its label. */
export async function sessionContainer(b: BenchStack, sessionId: string): Promise<string> {
  const [c] = await b.docker.listContainers({ all: true, filters: { label: [`dev.mominai.session=${sessionId}`] } });
  if (!c) throw new Error(`session ${sessionId} has no container`);
  return c.Id;
}

/* ---------------------------------------------------------------- socket */

/**
 * A session socket for a benchmark: the tests' client (../test/helpers/client.ts)
 * keeping no frame history and acknowledging nothing by itself (each benchmark
 * acks as its client would), opened once the session's `ready` frame came.
 */
export function openSocket(b: BenchStack, sessionId: string, { timeoutMs = 15_000, output = 'text' }: { timeoutMs?: number; output?: 'text' | 'binary' } = {}): Promise<TestSocket> {
  return TestSocket.open(b.stack, b.user.token, sessionId, { output, history: false, autoAck: false, waitReady: true, timeoutMs });
}

/* ---------------------------------------------------------------- echo */

/** Run in a PTY, its echo comes from a process in the container (`cat`), as a shell's line editor's would, not from the kernel. */
export const ECHO_SCRIPT = 'stty raw -echo; echo READY; exec cat';

export function isOutput(f: Frame, processId: string): boolean {
  return f.type === 'command_output' && f.payload.processId === processId;
}

/** A small output frame's text, from either output mode. */
export function outputText(f: Frame): string {
  return f.payload.bytes ? Buffer.from(f.payload.bytes as Uint8Array).toString('latin1') : String(f.payload.data);
}

/** Starts ECHO_SCRIPT in a PTY through the session socket; resolves with its process id once it printed READY. */
export async function startEchoShell(sock: TestSocket): Promise<string> {
  const started = await sock.requestOk('exec_command', { command: 'sh', args: ['-c', ECHO_SCRIPT], tty: true, cols: 80, rows: 24 }, 60_000);
  const processId = String(started.payload.processId);
  await sock.waitFor((f) => isOutput(f, processId) && outputText(f).includes('READY'), 15_000, 'the echo shell');
  return processId;
}

/** One keystroke through the stack: `ch` to the echo shell's stdin; resolves with the milliseconds until an output frame holding it arrived. */
export async function echoRoundTrip(sock: TestSocket, processId: string, ch: string, timeoutMs: number): Promise<number> {
  const echoed = sock.waitForTimed((f) => isOutput(f, processId) && outputText(f).includes(ch), timeoutMs, `the echo of "${ch}"`);
  echoed.catch(() => undefined); // awaited below
  const t0 = now();
  sock.send('stdin', { processId, data: ch }, null);
  const { at } = await echoed;
  return msBetween(t0, at);
}

// Re-exported so that `./lib` still offers every helper.
export * from './cpu';
export * from './report';
