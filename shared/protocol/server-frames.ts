/**
 * The payloads of the session WebSocket's server → client frames
 * (`{type, id?, payload}`, ./client.ts), one zod schema per frame type. The
 * edge builds its frames against these (z.input of each schema) and the SDK
 * (client/) validates what it receives with the same schemas, so the two
 * cannot drift apart silently.
 *
 *   on connect                 ready {session}
 *   session state              container_status {status, session?, reason?} · idle_warning {stopAt, inMs}
 *                              quota_warning {diskUsed, quota}
 *   processes                  process_started {processId, tty?} · output_stream {processId, stream, streamId}
 *                              command_output {processId, stream, data, offset, length}
 *                              command_exit {processId, exitCode, signal?, reason}
 *                              gap {processId, stream, fromOffset, toOffset} · flow_paused {processId, stream, offset}
 *                              processes {processes} · history {commands}
 *   files                      watching {path, version} · file_changed {version, event, path}
 *   previews                   port {port, state, url} · server-ready {port, url} · preview_ready {port, url, pathUrl}
 *                              preview_message {type, …PreviewMessage} (./preview-script.ts)
 *   failures                   error {code, message, details?}
 */
import { z } from 'zod';
import { SessionStatus, type ResourceFigures, type SessionView } from '../api/containers';
import { FileChanged } from '../api/files';
import { OutputStream } from './client';
import { ExitReasonSchema, ProcessId } from './session-data';

export { FileChanged };

const Offset = z.number().int().nonnegative();
const PortNumber = z.number().int().min(1).max(65535);

/** A running session's figures (shared/api/containers.ts ResourceFigures), as the agent's `session.stats` returns them (./agent-methods.ts). */
export const ResourceFiguresSchema = z.object({
  cpuPercent: z.number(),
  memoryUsed: z.number(),
  memoryLimit: z.number(),
  networkRx: z.number(),
  networkTx: z.number(),
  pids: z.number(),
  uptimeSeconds: z.number(),
  diskUsed: z.number().optional(),
}) satisfies z.ZodType<ResourceFigures>;

/** A session as the API shows it (shared/api/containers.ts SessionView). */
export const SessionViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  image: z.string(),
  status: SessionStatus,
  ports: z.array(z.number().int()),
  agentId: z.string(),
  createdAt: z.string(),
  lastActiveAt: z.string(),
  limits: z.object({ cpu: z.number(), memory: z.number() }),
  previewPort: z.number().int().nullable(),
  publicPorts: z.array(z.number().int()),
  error: z.string().optional(),
  resources: ResourceFiguresSchema.nullable().optional(),
}) satisfies z.ZodType<SessionView>;

export const ReadyPayload = z.object({ session: SessionViewSchema });
export const ContainerStatusPayload = z.object({ status: SessionStatus, session: SessionViewSchema.optional(), reason: z.string().optional() });
export const IdleWarningPayload = z.object({ stopAt: z.string(), inMs: z.number() });

export const ProcessStartedPayload = z.object({ processId: ProcessId, tty: z.boolean().optional() });
export const OutputStreamPayload = z.object({ processId: ProcessId, stream: OutputStream, streamId: z.number().int().nonnegative() });
export const CommandOutputPayload = z.object({ processId: ProcessId, stream: OutputStream, data: z.string(), offset: Offset, length: Offset });
export const CommandExitPayload = z.object({ processId: ProcessId, exitCode: z.number().int().nullable(), signal: z.string().optional(), reason: ExitReasonSchema });
export const GapPayload = z.object({ processId: ProcessId, stream: OutputStream, fromOffset: Offset, toOffset: Offset });
export const FlowPausedPayload = z.object({ processId: ProcessId, stream: OutputStream, offset: Offset });
export const ProcessInfoSchema = z.object({
  processId: ProcessId,
  command: z.string(),
  tty: z.boolean(),
  startedAt: z.string(),
  endedAt: z.string().nullable(),
  running: z.boolean(),
  exitCode: z.number().int().nullable(),
  reason: z.string().nullable(),
});
export const ProcessesPayload = z.object({ processes: z.array(ProcessInfoSchema) });
export const HistoryListPayload = z.object({ commands: z.array(ProcessInfoSchema) });

export const WatchingPayload = z.object({ path: z.string(), version: Offset });

export const PortPayload = z.object({ port: PortNumber, state: z.enum(['open', 'close']), url: z.string() });
export const ServerReadyPayload = z.object({ port: PortNumber, url: z.string() });
export const PreviewReadyPayload = z.object({ port: PortNumber, url: z.string(), pathUrl: z.string().optional() });

export const ErrorFramePayload = z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() });

export type ProcessInfo = z.infer<typeof ProcessInfoSchema>;
export type CommandExitInfo = z.infer<typeof CommandExitPayload>;
export type GapInfo = z.infer<typeof GapPayload>;
export type PortInfo = z.infer<typeof PortPayload>;
