/**
 * A client's JSON frames on its session socket: decoded once here, handed to
 * the relay that owns the type (processes, files), or answered here (ping,
 * start_preview, set_preview_script, get_session). Every failure becomes one `error` frame with
 * the request's id, shaped by `fromUnknown`; the socket stays open.
 */
import { AppError, ErrorCode, fromUnknown } from '../../shared/errors';
import { ClientFrame, StartPreviewPayload, type ServerFrame } from '../../shared/protocol/client';
import { parseFrame } from '../../shared/protocol/tunnel';
import { log } from '../log';
import { parsePayload } from './payload';

type Id = string | number | undefined;

export interface ClientFrameRoutes {
  send(ws: WebSocket, frame: ServerFrame): void;
  /** Each returns false for a type it does not own. */
  processes(ws: WebSocket, type: string, id: Id, payload: unknown): Promise<boolean>;
  files(ws: WebSocket, type: string, id: Id, payload: unknown): Promise<boolean>;
  startPreview(port: number): Promise<{ port: number; url: string; pathUrl: string }>;
  /** `set_preview_script` (../preview/scripts.ts): the settings the session keeps now. */
  setPreviewScript?(payload: unknown): Promise<unknown>;
  session(): unknown;
  /** Marks user activity (postpones the idle stop); not called for keep-alives. */
  activity(): Promise<void>;
}

/**
 * Frames a client sends on its own while a tab merely stays open: a ping keeps
 * the socket alive and must not keep an abandoned tab's session from its idle stop.
 */
const KEEP_ALIVE_TYPES: ReadonlySet<string> = new Set(['ping']);

export async function handleClientMessage(ws: WebSocket, message: string | ArrayBuffer, routes: ClientFrameRoutes): Promise<void> {
  if (typeof message !== 'string') {
    return routes.send(ws, { type: 'error', payload: { code: ErrorCode.ProtocolError, message: 'binary frames are not accepted here' } });
  }
  const parsed = parseFrame(ClientFrame, message);
  if (!parsed.ok) {
    return routes.send(ws, { type: 'error', ...(parsed.id ? { id: parsed.id } : {}), payload: { code: parsed.error.code, message: parsed.error.message } });
  }
  const { type, id, payload } = parsed.frame;
  const withId = id !== undefined ? { id } : {};
  if (!KEEP_ALIVE_TYPES.has(type)) await routes.activity();
  try {
    if (await routes.processes(ws, type, id, payload)) return;
    if (await routes.files(ws, type, id, payload)) return;
    switch (type) {
      case 'ping':
        return routes.send(ws, { type: 'pong', ...withId, payload: { time: Date.now() } });
      case 'start_preview':
        return routes.send(ws, { type: 'preview_ready', ...withId, payload: await routes.startPreview(parsePayload(StartPreviewPayload, payload).port) });
      case 'set_preview_script':
        if (!routes.setPreviewScript) break;
        return routes.send(ws, { type: 'preview_script_set', ...withId, payload: await routes.setPreviewScript(payload) });
      case 'get_session':
        return routes.send(ws, { type: 'session', ...withId, payload: { session: routes.session() } });
    }
    throw new AppError(ErrorCode.ProtocolError, `unknown message type "${type}"`);
  } catch (err) {
    const e = fromUnknown(err);
    if (!(err instanceof AppError)) log('error', 'client request failed', { type, error: String(err) });
    routes.send(ws, { type: 'error', ...withId, payload: { code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) } });
  }
}
