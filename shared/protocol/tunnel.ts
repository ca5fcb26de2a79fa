/**
 * The agent tunnel: how a host agent and the edge talk.
 *
 * Flow of messages on the control socket (agent dials the Fleet DO):
 *   1. agent → edge  `hello`    protocol version, who it is, what it runs.
 *   2. edge  → agent `welcome`  the agent id the edge knows it by and the
 *                               heartbeat interval it expects; or `error`
 *                               and a close when the version is unsupported.
 *   3. agent → edge  `heartbeat` every interval, with fresh system figures;
 *      edge  → agent `heartbeat_ack` with the same `seq`.
 *   4. either side   `req` {id, method, params} → `res` {id, ok, result|error};
 *                    `event` {event, data} for one-way news.
 *   5. anything malformed or unknown is answered with `error` and dropped;
 *      neither side closes the socket or crashes over one bad frame.
 *
 * Bulk bytes never travel as JSON: see ./binary.ts.
 * Every frame is decoded with `parseTunnelFrame` (zod, never a cast).
 */
import { z } from 'zod';
import { AppError, ErrorCode, isErrorCode } from '../errors';
import { MAX_FRAME_BYTES } from './version';

export const RuntimeMode = z.enum(['docker', 'local']);
export type RuntimeMode = z.infer<typeof RuntimeMode>;

export const SystemInfo = z.object({
  hostname: z.string().max(256),
  platform: z.string().max(64),
  arch: z.string().max(64),
  cpus: z.number().int().nonnegative(),
  loadavg: z.array(z.number()).max(3),
  memTotal: z.number().nonnegative(),
  memFree: z.number().nonnegative(),
  uptime: z.number().nonnegative(),
});
export type SystemInfo = z.infer<typeof SystemInfo>;

export const DockerStatus = z.object({
  available: z.boolean(),
  version: z.string().max(64).optional(),
  apiVersion: z.string().max(16).optional(),
  error: z.string().max(1024).optional(),
});
export type DockerStatus = z.infer<typeof DockerStatus>;

/** What an agent runs, re-announced after every (re)connect. */
export const SessionReport = z.object({
  sessionId: z.string().min(1).max(64),
  userId: z.string().min(1).max(64),
  containerId: z.string().max(128).optional(),
  state: z.enum(['running', 'stopped', 'missing']),
});
export type SessionReport = z.infer<typeof SessionReport>;

export const WireError = z.object({
  code: z.string().max(64),
  message: z.string().max(4096),
  details: z.unknown().optional(),
});
export type WireError = z.infer<typeof WireError>;

const FrameId = z.string().min(1).max(64);

export const HelloFrame = z.object({
  type: z.literal('hello'),
  protocolVersion: z.number().int().positive(),
  agent: z.object({
    name: z.string().min(1).max(64),
    version: z.string().max(32),
    mode: RuntimeMode,
    capacity: z.object({ maxSessions: z.number().int().nonnegative() }),
    docker: DockerStatus,
    system: SystemInfo,
    /** Whether the agent's egress policy holds for its containers (absent from older agents: treat as unenforced). */
    egress: z.enum(['enforced', 'unenforced']).optional(),
    /** What separates sessions from the host: `container` (runc), `gvisor` (runsc), `none` (local mode). */
    isolation: z.enum(['container', 'gvisor', 'none']).optional(),
  }),
  sessions: z.array(SessionReport).max(10_000),
});

export const WelcomeFrame = z.object({
  type: z.literal('welcome'),
  protocolVersion: z.number().int().positive(),
  agentId: z.string().min(1).max(64),
  heartbeatIntervalMs: z.number().int().positive(),
});

export const HeartbeatFrame = z.object({
  type: z.literal('heartbeat'),
  seq: z.number().int().nonnegative(),
  system: SystemInfo,
  activeSessions: z.number().int().nonnegative(),
  /** Relayed preview requests and WebSockets open now, for /health `previews.active`. */
  activePreviews: z.number().int().nonnegative().optional(),
  /** Latest cheap figures per container, for /health `containers.details`. */
  containers: z
    .array(
      z.object({
        sessionId: z.string().max(64),
        state: z.enum(['running', 'stopped', 'missing']),
        cpuPercent: z.number().optional(),
        memoryUsed: z.number().optional(),
        memoryLimit: z.number().optional(),
      }),
    )
    .max(10_000)
    .optional(),
});

export const HeartbeatAckFrame = z.object({
  type: z.literal('heartbeat_ack'),
  seq: z.number().int().nonnegative(),
});

export const RequestFrame = z.object({
  type: z.literal('req'),
  id: FrameId,
  method: z.string().min(1).max(64),
  params: z.unknown(),
});

export const ResponseFrame = z.discriminatedUnion('ok', [
  z.object({ type: z.literal('res'), id: FrameId, ok: z.literal(true), result: z.unknown() }),
  z.object({ type: z.literal('res'), id: FrameId, ok: z.literal(false), error: WireError }),
]);

export const EventFrame = z.object({
  type: z.literal('event'),
  event: z.string().min(1).max(64),
  data: z.unknown(),
});

export const ErrorFrame = z.object({
  type: z.literal('error'),
  id: FrameId.optional(),
  error: WireError,
});

// Discriminated by `type`: a frame is checked against its own schema only, not tried against each in turn.
export const AgentToEdgeFrame = z.discriminatedUnion('type', [HelloFrame, HeartbeatFrame, RequestFrame, ResponseFrame, EventFrame, ErrorFrame]);
export type AgentToEdgeFrame = z.infer<typeof AgentToEdgeFrame>;
export const EdgeToAgentFrame = z.discriminatedUnion('type', [WelcomeFrame, HeartbeatAckFrame, RequestFrame, ResponseFrame, EventFrame, ErrorFrame]);
export type EdgeToAgentFrame = z.infer<typeof EdgeToAgentFrame>;

export type HelloFrame = z.infer<typeof HelloFrame>;
export type WelcomeFrame = z.infer<typeof WelcomeFrame>;
export type HeartbeatFrame = z.infer<typeof HeartbeatFrame>;
export type ContainerFigures = NonNullable<HeartbeatFrame['containers']>[number];
export type RequestFrame = z.infer<typeof RequestFrame>;
export type ResponseFrame = z.infer<typeof ResponseFrame>;
export type EventFrame = z.infer<typeof EventFrame>;
export type ErrorFrame = z.infer<typeof ErrorFrame>;

export type ParseResult<T> = { ok: true; frame: T } | { ok: false; error: AppError; id?: string };

/**
 * Decodes one text frame against a schema. Never throws: a frame that is too
 * large, not JSON, or not of the schema comes back as a protocol error (with the
 * frame's `id` when one could be read, so the reply can echo it).
 */
export function parseFrame<S extends z.ZodType>(schema: S, text: string): ParseResult<z.infer<S>> {
  if (text.length > MAX_FRAME_BYTES) {
    return { ok: false, error: new AppError(ErrorCode.PayloadTooLarge, 'frame larger than 1 MiB') };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, error: new AppError(ErrorCode.InvalidJson, 'frame is not valid JSON') };
  }
  const result = schema.safeParse(raw);
  if (result.success) return { ok: true, frame: result.data };
  const id = readId(raw);
  const type = typeof raw === 'object' && raw !== null ? (raw as { type?: unknown }).type : undefined;
  const message = typeof type === 'string' ? `invalid or unknown frame of type "${type.slice(0, 64)}"` : 'frame has no type';
  const error = new AppError(ErrorCode.ProtocolError, message, { issues: summariseIssues(result.error) });
  return id === undefined ? { ok: false, error } : { ok: false, error, id };
}

function readId(raw: unknown): string | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const id = (raw as { id?: unknown }).id;
  return typeof id === 'string' && id.length > 0 && id.length <= 64 ? id : undefined;
}

/** A zod error as `{path, message}` issues (the first `max`), the one shape every validation error carries. */
export function summariseIssues(error: z.ZodError, max = 10): Array<{ path: string; message: string }> {
  return error.issues.slice(0, max).map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
}

export function wireErrorToAppError(e: WireError): AppError {
  return new AppError(isErrorCode(e.code) ? e.code : ErrorCode.Internal, e.message, e.details);
}

/** Close codes used on tunnel sockets (4000–4999 are the application's). */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 4000,
  Unauthorized: 4001,
  UnsupportedVersion: 4002,
  Replaced: 4003,
  HeartbeatTimeout: 4008,
} as const;
