/**
 * What the SDK reads from the server, checked with zod at the boundary.
 * Request payloads, file shapes and REST bodies come from the project's
 * shared contracts (../../shared); the server→client frames of the session
 * WebSocket have no schema there yet, so the ones the SDK relies on are
 * spelled here from the README's tables, built on the shared pieces
 * (OutputStream, ChangeKind, SessionStatus, the exit reasons).
 */
import { z } from 'zod';
import { OutputStream, ClientFrameId } from '../../shared/protocol/client';
import { ExitReasonSchema, ProcessId } from '../../shared/protocol/session-data';
import { SessionStatus } from '../../shared/api/containers';
import { FileChanged } from '../../shared/api/files';
import type { SessionView } from '../../shared/api/containers';
import type { PublicUser } from '../../shared/api/auth';

export { FileChanged };

/** Any text frame: `{type, id?, payload}`. */
export const ServerFrameSchema = z.object({ type: z.string(), id: ClientFrameId.optional(), payload: z.unknown().optional() });

export const SessionViewSchema = z.looseObject({ id: z.string(), status: SessionStatus, name: z.string(), image: z.string() }).transform((v) => v as unknown as SessionView);
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

/* ---- Session WebSocket, server → client ---- */

export const ProcessStarted = z.object({ processId: ProcessId, tty: z.boolean().optional() });
export const OutputStreamAnnounce = z.object({ processId: ProcessId, stream: OutputStream, streamId: z.number().int().nonnegative() });
export const CommandOutput = z.object({ processId: ProcessId, stream: OutputStream, data: z.string(), offset: z.number().int().nonnegative(), length: z.number().int().nonnegative() });
export const CommandExit = z.object({ processId: ProcessId, exitCode: z.number().int().nullable(), signal: z.string().optional(), reason: ExitReasonSchema });
export const Gap = z.object({ processId: ProcessId, stream: OutputStream, fromOffset: z.number().int().nonnegative(), toOffset: z.number().int().nonnegative() });
export const FlowPaused = z.object({ processId: ProcessId, stream: OutputStream, offset: z.number().int().nonnegative() });
export const Watching = z.object({ path: z.string(), version: z.number().int().nonnegative() });
export const PortEvent = z.object({ port: z.number().int(), state: z.string(), url: z.string() });
export const PreviewReady = z.object({ port: z.number().int(), url: z.string(), pathUrl: z.string().optional() });
export const ServerReady = z.object({ port: z.number().int(), url: z.string() });
export const ContainerStatus = z.object({ status: SessionStatus, session: SessionViewSchema.optional(), reason: z.string().optional() });
export const IdleWarning = z.object({ stopAt: z.string(), inMs: z.number() });
export const ErrorPayload = z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() });
export const ProcessInfo = z.object({
  processId: ProcessId,
  command: z.string(),
  tty: z.boolean(),
  startedAt: z.string(),
  endedAt: z.string().nullable(),
  running: z.boolean(),
  exitCode: z.number().int().nullable(),
  reason: z.string().nullable(),
});
export const ProcessList = z.object({ processes: z.array(ProcessInfo) });
export const HistoryList = z.object({ commands: z.array(ProcessInfo) });

export type ExitInfo = z.infer<typeof CommandExit>;
export type GapInfo = z.infer<typeof Gap>;
export type ProcessInfo = z.infer<typeof ProcessInfo>;
export type PortInfo = z.infer<typeof PortEvent>;
