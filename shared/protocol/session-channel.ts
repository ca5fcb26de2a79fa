/**
 * The typed session channel: every request the Session DO makes of the agent
 * on a session's data socket, as one map `{method: {params, result}}`, and
 * every event either side sends there, as one discriminated union. Both sides
 * decode with these schemas once, at the socket: the agent its params (its
 * dispatcher), the edge each result (`callSession`) and each event
 * (`decodeSessionEvent`), so nothing that crossed the socket is cast.
 *
 * Flow (details in ./session-data.ts, ./files.ts, ./preview.ts, ./byte-streams.ts):
 *   DO → agent  req proc.* / fs.* / ports.* / ws.open   → res with the method's result
 *   DO → agent  event ack | stream.abort | http.request | ws.close
 *   agent → DO  event proc.exit | proc.state | fs.change | port | http.error | ws.close | ack | stream.abort | session.quota
 *   both ways   binary frames (./binary.ts) carry the bytes: output, file bodies, preview bodies and messages.
 */
import { z } from 'zod';
import { AppError, ErrorCode } from '../errors';
import { ChangesSinceResult, DirListing, FileChanged, FileStatResult, FileWritten, TarExtracted } from '../api/files';
import { FsChangesSince, FsDelete, FsMkdir, FsPath, FsRead, FsRename, FsTar, FsWrite, StreamAbort } from './files';
import { HttpErrorEvent, HttpRequestParams, PortEvent, PortsDeclareParams, PortsWaitParams, WsCloseEvent, WsOpenParams } from './preview';
import { summariseIssues } from './tunnel';
import { QUOTA_EVENT, QuotaEvent } from './quota';
import { AckEvent, ProcExitEvent, ProcKillParams, ProcResizeParams, ProcSpawnParams, ProcStateEvent } from './session-data';

const Port = z.number().int().min(1).max(65535);

/** What `fs.read` answers before the body follows on its stream. */
export const FsReadHead = FileStatResult.omit({ type: true }).extend({ length: z.number().int().nonnegative(), start: z.number().int().nonnegative(), end: z.number().int() });

export const SessionMethods = {
  'proc.spawn': { params: ProcSpawnParams, result: z.object({ processId: z.string() }) },
  'proc.resize': { params: ProcResizeParams, result: z.object({}) },
  'proc.kill': { params: ProcKillParams, result: z.object({}) },
  'fs.stat': { params: FsPath, result: FileStatResult },
  'fs.list': { params: FsPath, result: DirListing },
  'fs.read': { params: FsRead, result: FsReadHead },
  'fs.write': { params: FsWrite, result: FileWritten },
  'fs.mkdir': { params: FsMkdir, result: z.object({ path: z.string() }) },
  'fs.delete': { params: FsDelete, result: z.object({ path: z.string() }) },
  'fs.rename': { params: FsRename, result: z.object({ from: z.string(), to: z.string() }) },
  'fs.tar.pack': { params: FsTar, result: z.object({ path: z.string() }) },
  'fs.tar.extract': { params: FsTar, result: TarExtracted },
  'fs.watch': { params: z.object({}), result: z.object({ version: z.number().int().nonnegative() }) },
  'fs.changes_since': { params: FsChangesSince, result: ChangesSinceResult },
  'ports.declare': { params: PortsDeclareParams, result: z.object({ ports: z.array(Port) }) },
  'ports.wait': { params: PortsWaitParams, result: z.object({ port: Port }) },
  'ws.open': { params: WsOpenParams, result: z.object({ protocol: z.string().optional() }) },
} as const;

export type SessionMethod = keyof typeof SessionMethods;
export type SessionParams<M extends SessionMethod> = z.input<(typeof SessionMethods)[M]['params']>;
export type SessionResult<M extends SessionMethod> = z.output<(typeof SessionMethods)[M]['result']>;
/** The params as the agent's handler gets them (decoded, defaults filled) and the result as it returns it. */
export type SessionParamsDecoded<M extends SessionMethod> = z.output<(typeof SessionMethods)[M]['params']>;
export type SessionResultOut<M extends SessionMethod> = z.input<(typeof SessionMethods)[M]['result']>;

/** The raw request/response link a caller has (a socket plus pending requests). */
export interface RawSessionLink {
  request(method: string, params: unknown, timeoutMs?: number): Promise<unknown>;
}

/** A typed call: the params as the method takes them, the result decoded (an odd answer is a `protocol_error`). */
export async function callSession<M extends SessionMethod>(link: RawSessionLink, method: M, params: SessionParams<M>, timeoutMs?: number): Promise<SessionResult<M>> {
  const raw = await link.request(method, params, timeoutMs);
  const schema: z.ZodType = SessionMethods[method].result;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new AppError(ErrorCode.ProtocolError, `the agent answered ${method} with something else than its result`);
  // Parsed by this method's own result schema just above; TypeScript cannot tie the schema chosen by `method` to M.
  return parsed.data as SessionResult<M>;
}

/** The agent's side of a call: params decoded by the method's own schema, or a `validation_failed` error listing the problems. */
export function decodeSessionParams<M extends SessionMethod>(method: M, raw: unknown): SessionParamsDecoded<M> {
  const schema: z.ZodType = SessionMethods[method].params;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new AppError(ErrorCode.ValidationFailed, `invalid params for ${method}`, { issues: summariseIssues(parsed.error) });
  // Parsed by this method's own params schema just above (see callSession).
  return parsed.data as SessionParamsDecoded<M>;
}

/** Events on the data socket, either way. */
export const SessionEvent = z.discriminatedUnion('event', [
  z.object({ event: z.literal('proc.exit'), data: ProcExitEvent }),
  z.object({ event: z.literal('proc.state'), data: ProcStateEvent }),
  z.object({ event: z.literal('fs.change'), data: FileChanged }),
  z.object({ event: z.literal('port'), data: PortEvent }),
  z.object({ event: z.literal('http.error'), data: HttpErrorEvent }),
  z.object({ event: z.literal('ws.close'), data: WsCloseEvent }),
  z.object({ event: z.literal('ack'), data: AckEvent }),
  z.object({ event: z.literal('stream.abort'), data: StreamAbort }),
  z.object({ event: z.literal('http.request'), data: HttpRequestParams }),
  z.object({ event: z.literal(QUOTA_EVENT), data: QuotaEvent }),
]);
export type SessionEvent = z.infer<typeof SessionEvent>;

/** An event as it arrived (`{type: 'event', event, data}`), decoded; undefined for one this side does not know or that does not decode. */
export function decodeSessionEvent(event: string, data: unknown): SessionEvent | undefined {
  const parsed = SessionEvent.safeParse({ event, data });
  return parsed.success ? parsed.data : undefined;
}

export type SessionEventName = SessionEvent['event'];
/** The data an event of this name carries, as a sender builds it. */
export type SessionEventData<E extends SessionEventName> = Extract<z.input<typeof SessionEvent>, { event: E }>['data'];

/** Sends typed events (an agent link, a byte-stream sink). */
export interface SessionEventSender {
  sendEvent<E extends SessionEventName>(event: E, data: SessionEventData<E>): boolean;
}
