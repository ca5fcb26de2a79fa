/**
 * The agent's backend interface. Nothing here names a dockerode type: the
 * Docker runtime and the local (child-process) runtime both implement it,
 * one factory (./create-runtime.ts) picks one, and one shared test suite runs
 * against each.
 */
import type { Readable } from 'node:stream';
import type { ResourceFigures } from '../../shared/api/containers';
import type { DockerStatus, RuntimeMode } from '../../shared/protocol/tunnel';

export interface SessionLimits {
  /** CPUs (0.5 = half a core). */
  cpu: number;
  memoryBytes: number;
  pids: number;
}

export interface SessionSpec {
  sessionId: string;
  userId: string;
  image: string;
  /** KEY=value entries. */
  env: string[];
  /** Ports the app may serve inside the container. */
  ports: number[];
  limits: SessionLimits;
  /** `internet` (the egress policy applies) or `none` (loopback only); absent: the runtime's default. */
  network?: 'internet' | 'none';
}

export type SessionState = 'running' | 'stopped' | 'missing';

export interface SessionInfo {
  sessionId: string;
  userId: string;
  /** Container id (Docker) or a local handle id. */
  containerId?: string;
  state: SessionState;
  /** Where the session's servers can be reached from the agent (container IP, or 127.0.0.1 locally). */
  address?: string;
  workspace: string;
}

/** Live figures of a session's container, as the API shows them. */
export type ResourceStats = ResourceFigures;

export interface ExecSpec {
  /** argv; a shell line is ['sh', '-c', line]. */
  command: string[];
  /** Inside the workspace (default /workspace or the workspace folder). */
  cwd?: string;
  env?: Record<string, string>;
  tty?: boolean;
  cols?: number;
  rows?: number;
  /**
   * Who the process is to the agent. A runtime whose processes outlive the
   * agent (the session daemon) keeps it and hands it back from `adopt`.
   */
  tag?: ProcessTag;
}

export interface ProcessTag {
  processId: string;
  streamBase: number;
  command: string[];
  /** Epoch ms when the agent kills it for its timeout. */
  deadline?: number;
}

/** A process found running (or finished, not yet fully delivered) after an agent restart. */
export interface AdoptedProcess {
  handle: ProcessHandle;
  tag: ProcessTag;
  startedAt: number;
  /** Where each stream resumes: the offset the edge last acknowledged. */
  offsets: Partial<Record<'stdout' | 'stderr' | 'pty', number>>;
  /** Starts the flow of output; call once the handle's streams are read. */
  resume(): Promise<void>;
}

export type ExitReason = 'exit' | 'killed' | 'oom' | 'timeout' | 'lost';

export interface ExitInfo {
  exitCode: number | null;
  signal?: string;
  reason: ExitReason;
}

export interface ProcessHandle {
  /**
   * Output without a TTY: stdout and stderr apart; with a TTY: one `pty` stream in `stdout`.
   * Both are backpressured: read both, or the process blocks once a buffer fills.
   */
  readonly stdout: Readable;
  readonly stderr: Readable | null;
  readonly tty: boolean;
  /**
   * True when the process keeps running, with the output the edge has not
   * acknowledged, after this agent process ends (the session daemon holds
   * it): an agent that stops leaves it for the next one to adopt. Absent:
   * the process ends with the agent.
   */
  readonly outlivesAgent?: boolean;
  write(data: Uint8Array | string): void;
  closeStdin(): void;
  resize(cols: number, rows: number): Promise<void>;
  /**
   * Signals everything the command started: its process group and session and
   * their descendants. On a TTY, SIGTERM is preceded by SIGHUP, since an
   * interactive shell ignores SIGTERM. Resolves once the signal is delivered.
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  readonly exited: Promise<ExitInfo>;
  /**
   * The edge holds every byte of `stream` below `offset` (absent: the runtime
   * keeps nothing the edge could need again).
   */
  ack?(stream: 'stdout' | 'stderr' | 'pty', offset: number): void;
}

/**
 * A session's container ended without the runtime being asked to end it:
 * its main process exited by itself (`exited`), was ended by a signal
 * (`killed`, e.g. `kill -KILL -1` inside it) or by the kernel for memory
 * (`oom`); `removed` when the container itself is gone.
 */
export interface ContainerEnded {
  sessionId: string;
  containerId: string;
  reason: 'exited' | 'oom' | 'killed';
  exitCode: number | null;
  removed: boolean;
}

export type EgressState = 'enforced' | 'unenforced';
export type Isolation = 'container' | 'gvisor' | 'none';

export interface Runtime {
  readonly mode: RuntimeMode;
  /** What separates a session from the host (absent: `container` for docker, `none` for local). */
  readonly isolation?: Isolation;
  /** Whether the egress policy holds for this runtime's sessions (absent: unenforced). */
  egress?(): EgressState;
  /** Engine status for hello and /health; never throws. */
  probe(): Promise<DockerStatus>;
  /** Sessions this runtime holds, found by label (Docker) or by its own records (local). */
  list(): Promise<SessionInfo[]>;
  create(spec: SessionSpec): Promise<SessionInfo>;
  start(sessionId: string): Promise<SessionInfo>;
  stop(sessionId: string): Promise<SessionInfo>;
  /** Removes the container (and, unless keepWorkspace, the workspace folder). Idempotent. */
  remove(sessionId: string, opts?: { keepWorkspace?: boolean }): Promise<void>;
  exec(sessionId: string, spec: ExecSpec): Promise<ProcessHandle>;
  stats(sessionId: string): Promise<ResourceStats | null>;
  /**
   * Calls `listener` as soon as a session's container stops or is removed,
   * whoever caused it (absent: the runtime cannot tell; list() still shows it).
   * Returns the unsubscribe function.
   */
  watchContainers?(listener: (e: ContainerEnded) => void): () => void;
  /** Processes of a running session that outlived the previous agent process (absent: none ever do). */
  adopt?(sessionId: string): Promise<AdoptedProcess[]>;
  /**
   * The session's /proc/net/tcp and tcp6 text, read without an exec; null
   * when this session has no cheaper way than an exec (absent: likewise).
   */
  procNetTcp?(sessionId: string): Promise<string | null>;
  close(): Promise<void>;
}
