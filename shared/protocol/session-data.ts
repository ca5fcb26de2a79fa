/**
 * The per-session data socket: agent ⇄ Session DO, one per active session,
 * dialled by the agent at `/agent/sessions/<sessionId>` with its join token
 * (the edge checks the session is placed on that agent). It carries the hot
 * path: process output, stdin, file bodies, preview traffic. Framing is the
 * tunnel's (./tunnel.ts req/res/event/error JSON frames, ./binary.ts frames).
 *
 * Processes (streams are byte sequences with offsets; see ARCHITECTURE.md):
 *   DO → agent  req   proc.spawn  {processId, streamBase, command[], cwd?, env?, tty, cols?, rows?, timeoutMs?}
 *                                 → {processId}; output then flows as binary Output frames whose
 *                                 streamId is streamBase + StreamIndex (0 stdout, 1 stderr, 2 pty).
 *   DO → agent  binary Input      streamId = streamBase, offset = stdin byte offset (keystrokes).
 *   DO → agent  req   proc.resize {processId, cols, rows} → {}
 *   DO → agent  req   proc.kill   {processId, signal?}    → {} (the whole process group)
 *   DO → agent  event ack         {streamId, offset}: every byte below `offset` is safe at the edge;
 *                                 the agent may forget it and send up to WINDOW bytes past it.
 *   agent → DO  event proc.exit   {processId, exitCode, signal?, reason, endOffsets}
 *   agent → DO  event proc.state  {processes: [...]} after every (re)connect of the data socket, so
 *                                 the DO learns what still runs and where each stream stands; the
 *                                 agent then resends every stream from the last offset the DO acked.
 */
import { z } from 'zod';

/** Bytes a stream may have in flight past the last ack before the agent pauses its producer. */
export const STREAM_WINDOW_BYTES = 4 * 1024 * 1024;
/** Each process keeps at least this much of each stream's most recent output (the issue asks ≥ 1 MiB). */
export const AGENT_RING_BYTES = 2 * 1024 * 1024;

export const StreamIndex = { stdout: 0, stderr: 1, pty: 2 } as const;
export type StreamName = keyof typeof StreamIndex;
export const STREAMS_PER_PROCESS = 4;

export const ProcessId = z.string().regex(/^prc_[0-9a-f]{8,64}$/);

export const ProcSpawnParams = z.object({
  processId: ProcessId,
  streamBase: z.number().int().nonnegative().max(0xffffffff - STREAMS_PER_PROCESS),
  command: z.array(z.string().max(32_768)).min(1).max(1024),
  cwd: z.string().max(4096).optional(),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/), z.string().max(32_768)).optional(),
  tty: z.boolean(),
  cols: z.number().int().min(1).max(1000).optional(),
  rows: z.number().int().min(1).max(1000).optional(),
  timeoutMs: z.number().int().positive().max(86_400_000).optional(),
});
export type ProcSpawnParams = z.infer<typeof ProcSpawnParams>;

export const ProcResizeParams = z.object({ processId: ProcessId, cols: z.number().int().min(1).max(1000), rows: z.number().int().min(1).max(1000) });
export const ProcKillParams = z.object({
  processId: ProcessId,
  signal: z.enum(['SIGTERM', 'SIGKILL', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2']).optional(),
});

export const AckEvent = z.object({ streamId: z.number().int().nonnegative(), offset: z.number().int().nonnegative() });

export const ExitReasonSchema = z.enum(['exit', 'killed', 'oom', 'timeout', 'lost']);
export const ProcExitEvent = z.object({
  processId: ProcessId,
  exitCode: z.number().int().nullable(),
  signal: z.string().max(32).optional(),
  reason: ExitReasonSchema,
  endOffsets: z.object({ stdout: z.number().int().nonnegative(), stderr: z.number().int().nonnegative(), pty: z.number().int().nonnegative() }),
});
export type ProcExitEvent = z.infer<typeof ProcExitEvent>;

export const ProcStateEvent = z.object({
  processes: z
    .array(
      z.object({
        processId: ProcessId,
        streamBase: z.number().int().nonnegative(),
        running: z.boolean(),
        endOffsets: z.object({ stdout: z.number().int().nonnegative(), stderr: z.number().int().nonnegative(), pty: z.number().int().nonnegative() }),
      }),
    )
    .max(10_000),
});
export type ProcStateEvent = z.infer<typeof ProcStateEvent>;
