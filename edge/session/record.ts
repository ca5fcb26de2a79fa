/**
 * A session's record and the only ways its status may change. `destroyed` is
 * final; `creating` is never re-entered; everything else moves along the
 * table below, so a late or duplicated event cannot resurrect a session.
 */
import { z } from 'zod';
import { AppError, ErrorCode } from '../../shared/errors';
import { SessionStatus, type SessionView } from '../../shared/api/containers';

export interface SessionRecord {
  id: string;
  userId: string;
  agentId: string;
  name: string;
  image: string;
  status: SessionStatus;
  ports: number[];
  env: string[];
  /** The session's network (`none`: loopback only); absent: the agent's DEFAULT_NETWORK. */
  network?: 'internet' | 'none';
  createdAt: number;
  lastActiveAt: number;
  limits: { cpu: number; memory: number };
  error?: string;
  containerId?: string;
  address?: string;
  /** When clients were last warned of an idle stop (cleared by activity). */
  idleWarnedAt?: number;
  /** The port previews open by default (`start_preview`). */
  previewPort?: number;
  /** Ports anyone may open without the owner's cookie. */
  publicPorts?: number[];
}

/** The record as storage holds it, decoded on load (never cast). */
export const SessionRecordSchema = z.object({
  id: z.string(),
  userId: z.string(),
  agentId: z.string(),
  name: z.string(),
  image: z.string(),
  status: SessionStatus,
  ports: z.array(z.number().int()),
  env: z.array(z.string()),
  createdAt: z.number(),
  lastActiveAt: z.number(),
  limits: z.object({ cpu: z.number(), memory: z.number() }),
  error: z.string().optional(),
  containerId: z.string().optional(),
  address: z.string().optional(),
  idleWarnedAt: z.number().optional(),
  previewPort: z.number().int().optional(),
  publicPorts: z.array(z.number().int()).optional(),
});

const allowed: Record<SessionStatus, readonly SessionStatus[]> = {
  creating: ['running', 'error', 'destroyed'],
  running: ['stopped', 'error', 'destroyed'],
  stopped: ['running', 'error', 'destroyed'],
  error: ['running', 'stopped', 'destroyed'],
  destroyed: [],
};

export function canMove(from: SessionStatus, to: SessionStatus): boolean {
  return allowed[from].includes(to);
}

/** The record with its new status, or a `conflict` error naming both states. */
export function moveTo(record: SessionRecord, to: SessionStatus, error?: string): SessionRecord {
  if (record.status === to) return { ...record, ...(error ? { error } : {}) };
  if (!canMove(record.status, to)) {
    throw new AppError(ErrorCode.Conflict, `session is ${record.status}; it cannot become ${to}`);
  }
  const next: SessionRecord = { ...record, status: to };
  if (error) next.error = error;
  else delete next.error;
  return next;
}

export function toView(r: SessionRecord): SessionView {
  return {
    id: r.id,
    name: r.name,
    image: r.image,
    status: r.status,
    ports: r.ports,
    agentId: r.agentId,
    createdAt: new Date(r.createdAt).toISOString(),
    lastActiveAt: new Date(r.lastActiveAt).toISOString(),
    limits: r.limits,
    previewPort: r.previewPort ?? null,
    publicPorts: r.publicPorts ?? [],
    ...(r.error ? { error: r.error } : {}),
  };
}
