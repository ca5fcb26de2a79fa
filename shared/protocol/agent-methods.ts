/**
 * Methods the edge calls on an agent over the control socket (`req` frames),
 * with the params each must carry. The agent validates params with these
 * schemas (./tunnel.ts describes the framing).
 *
 *   session.create  {sessionId, userId, image, env, ports, network?, limits} → SessionInfo
 *   session.start   {sessionId}                                    → SessionInfo
 *   session.stop    {sessionId}                                    → SessionInfo
 *   session.remove  {sessionId, keepWorkspace?}                    → {removed: true}
 *   session.stats   {sessionId}                                    → ResourceFigures | null
 */
import { z } from 'zod';
import { EnvEntry, ImageRef, Port, SessionNetwork } from '../api/containers';
import { ResourceFiguresSchema } from './server-frames';

const SessionId = z.string().regex(/^ses_[0-9a-f]{8,64}$/);
const UserId = z.string().min(1).max(64).regex(/^[\w-]+$/);

export const SessionCreateParams = z.object({
  sessionId: SessionId,
  userId: UserId,
  image: ImageRef,
  env: z.array(EnvEntry).max(64),
  ports: z.array(Port).max(10),
  /** Absent: the agent's DEFAULT_NETWORK. */
  network: SessionNetwork.optional(),
  limits: z.object({
    cpu: z.number().positive().max(256).optional(),
    memoryBytes: z.number().int().positive().optional(),
    pids: z.number().int().positive().max(1_000_000).optional(),
  }),
});
export type SessionCreateParams = z.infer<typeof SessionCreateParams>;

export const SessionRefParams = z.object({ sessionId: SessionId });
export const SessionRemoveParams = z.object({ sessionId: SessionId, keepWorkspace: z.boolean().optional() });

export const SessionInfoResult = z.object({
  sessionId: z.string(),
  userId: z.string(),
  containerId: z.string().optional(),
  state: z.enum(['running', 'stopped', 'missing']),
  address: z.string().optional(),
  limits: z.object({ cpu: z.number(), memoryBytes: z.number(), pids: z.number() }).optional(),
});
export type SessionInfoResult = z.infer<typeof SessionInfoResult>;

export const ResourceFiguresResult = ResourceFiguresSchema.nullable();
