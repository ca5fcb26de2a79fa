/**
 * What the SDK reads from the server, checked with zod at the boundary. The
 * session WebSocket's server → client frames are the schemas the edge builds
 * its frames against (../../shared/protocol/server-frames.ts and
 * ../../shared/protocol/preview-script.ts), under the short names the SDK
 * uses; the REST bodies below are built from the shared pieces.
 */
import { z } from 'zod';
import { ClientFrameId } from '../../shared/protocol/client';
import { ExitReasonSchema } from '../../shared/protocol/session-data';
import { SessionViewSchema } from '../../shared/protocol/server-frames';
import type { PublicUser } from '../../shared/api/auth';

export {
  SessionViewSchema,
  FileChanged,
  ProcessStartedPayload as ProcessStarted,
  OutputStreamPayload as OutputStreamAnnounce,
  CommandOutputPayload as CommandOutput,
  CommandExitPayload as CommandExit,
  GapPayload as Gap,
  FlowPausedPayload as FlowPaused,
  WatchingPayload as Watching,
  PortPayload as PortEvent,
  PreviewReadyPayload as PreviewReady,
  ServerReadyPayload as ServerReady,
  ContainerStatusPayload as ContainerStatus,
  IdleWarningPayload as IdleWarning,
  ErrorFramePayload as ErrorPayload,
  ProcessInfoSchema as ProcessInfo,
  ProcessesPayload as ProcessList,
  HistoryListPayload as HistoryList,
  type CommandExitInfo as ExitInfo,
  type GapInfo,
  type ProcessInfo as ProcessInfoType,
  type PortInfo,
} from '../../shared/protocol/server-frames';
export { PreviewMessagePayload, PreviewScriptSettings } from '../../shared/protocol/preview-script';
export { QuotaWarningPayload } from '../../shared/protocol/quota';

/** Any text frame: `{type, id?, payload}`. */
export const ServerFrameSchema = z.object({ type: z.string(), id: ClientFrameId.optional(), payload: z.unknown().optional() });

export const SessionEnvelope = z.object({ session: SessionViewSchema });
export const SessionsEnvelope = z.object({ sessions: z.array(SessionViewSchema) });
export const DeletedSession = z.object({ message: z.string(), session: z.object({ id: z.string(), status: z.literal('destroyed') }) });

const PublicUserSchema = z.object({ id: z.string(), email: z.string(), username: z.string() }) satisfies z.ZodType<PublicUser>;
export const AuthEnvelope = z.object({ message: z.string(), token: z.string(), user: PublicUserSchema });
export const MeEnvelope = z.object({ user: PublicUserSchema });

export const ExecResultSchema = z.object({
  exitCode: z.number().int().nullable(),
  signal: z.string().optional(),
  reason: ExitReasonSchema,
  stdout: z.string(),
  stderr: z.string(),
  durationMs: z.number(),
  truncated: z.boolean(),
});

export const PreviewLink = z.object({ url: z.string(), pathUrl: z.string(), expiresIn: z.number() });
