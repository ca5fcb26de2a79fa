/**
 * The client WebSocket (`GET /ws?token=<jwt>&sessionId=<id>[&output=binary]`):
 * JSON text frames `{type, id?, payload}` both ways. With `output=binary`,
 * process output comes as binary frames instead of `command_output` (see
 * ../../edge/session/output-fanout.ts): each stream is announced once by
 * `output_stream {processId, stream, streamId}`, then its bytes follow in
 * frames of the 16-byte-header codec (./binary.ts: kind Output, that
 * streamId, the byte offset, the raw bytes). Acks stay JSON.
 *
 *   server → client on connect: `ready {session}`
 *   server → client on every status change: `container_status {status, session, reason?}`
 *   server → client before an idle stop: `idle_warning {stopAt, inMs}`
 *   client → server: a request `{type, id, payload}`; the reply echoes `id`.
 *   anything invalid or unknown → `{type: "error", id, payload: {code, message}}`,
 *   and the socket stays open.
 */
import { z } from 'zod';

/** How a client wants process output: `text` (command_output JSON, the default) or `binary`. */
export const OutputFormat = z.enum(['text', 'binary']);
export type OutputFormat = z.infer<typeof OutputFormat>;

export const ClientFrameId = z.union([z.string().min(1).max(128), z.number().int()]);

export const ClientFrame = z.object({
  type: z.string().min(1).max(64),
  id: ClientFrameId.optional(),
  payload: z.unknown().optional(),
});
export type ClientFrame = z.infer<typeof ClientFrame>;

export interface ServerFrame {
  type: string;
  id?: string | number;
  payload: unknown;
}

/* ---- Commands, terminals and processes (payloads of client frames) ---- */

const EnvMap = z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/), z.string().max(32_768));
const Cols = z.number().int().min(1).max(1000);
const ProcessRef = z.string().regex(/^prc_[0-9a-f]{8,64}$/);
export const OutputStream = z.enum(['stdout', 'stderr', 'pty']);

export const ContainerCommandPayload = z.object({
  command: z.string().min(1).max(65_536),
  cwd: z.string().max(4096).optional(),
  env: EnvMap.optional(),
  timeoutMs: z.number().int().positive().max(86_400_000).optional(),
});
export const ExecCommandPayload = z.object({
  command: z.string().min(1).max(4096),
  args: z.array(z.string().max(32_768)).max(1024).default([]),
  cwd: z.string().max(4096).optional(),
  env: EnvMap.optional(),
  tty: z.boolean().default(false),
  cols: Cols.optional(),
  rows: Cols.optional(),
  timeoutMs: z.number().int().positive().max(86_400_000).optional(),
});
export const OpenTerminalPayload = z.object({
  cols: Cols.default(80),
  rows: Cols.default(24),
  shell: z.string().regex(/^[\w./-]{1,256}$/).optional(),
  cwd: z.string().max(4096).optional(),
  env: EnvMap.optional(),
});
export const StdinPayload = z.object({ processId: ProcessRef, data: z.string().max(1024 * 1024), encoding: z.enum(['utf8', 'base64']).default('utf8') });
export const ResizePayload = z.object({ processId: ProcessRef, cols: Cols, rows: Cols });
export const KillPayload = z.object({
  processId: ProcessRef,
  signal: z.enum(['SIGTERM', 'SIGKILL', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2']).optional(),
});
export const ResumePayload = z.object({
  processId: ProcessRef,
  fromOffset: z.number().int().nonnegative().default(0),
  /** The stream `fromOffset` counts in; default: `pty` for a terminal, else `stdout`. */
  stream: OutputStream.optional(),
  /** Per-stream offsets, for a process with stdout and stderr apart. */
  offsets: z.object({ stdout: z.number().int().nonnegative(), stderr: z.number().int().nonnegative(), pty: z.number().int().nonnegative() }).partial().optional(),
});
export const AckPayload = z.object({ processId: ProcessRef, stream: OutputStream, offset: z.number().int().nonnegative() });
/** `start_preview {port}`: the port previews open by default; the reply comes once something listens on it. */
export const StartPreviewPayload = z.object({ port: z.number().int().min(1).max(65535) });
export const HistoryPayload = z.object({ limit: z.number().int().min(1).max(1000).default(100) }).default({ limit: 100 });
