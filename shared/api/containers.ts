/**
 * REST contracts for container sessions (`/api/containers`), shared by the
 * edge (which validates) and clients/tests (which build requests).
 */
import { z } from 'zod';

export const SessionStatus = z.enum(['creating', 'running', 'stopped', 'error', 'destroyed']);
export type SessionStatus = z.infer<typeof SessionStatus>;

/** Environment entries: `KEY=value`, POSIX-ish names, bounded sizes. */
export const EnvEntry = z
  .string()
  .max(8192)
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}=/, 'env entries must look like KEY=value with a valid name')
  .refine((s) => !s.includes('\0'), 'env entries must not contain NUL bytes');

export const Port = z.number().int().min(1).max(65535);

/** Docker image reference: registry/name:tag or @digest, no spaces or shell characters. */
export const ImageRef = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[a-z0-9][a-z0-9._\-/:@]*$/i, 'not a valid image reference');

export const SessionNetwork = z.enum(['internet', 'none']);
export type SessionNetwork = z.infer<typeof SessionNetwork>;

export const CreateContainerBody = z
  .object({
    image: ImageRef.optional(),
    name: z.string().min(1).max(64).regex(/^[\w .\-]+$/, 'name may hold letters, digits, spaces, _ . -').optional(),
    env: z.array(EnvEntry).max(64).optional(),
    ports: z.array(Port).max(10).optional(),
    /** `internet`: public internet only (the agent's egress policy); `none`: loopback only. Default: the agent's DEFAULT_NETWORK. */
    network: SessionNetwork.optional(),
  })
  .strict();
export type CreateContainerBody = z.infer<typeof CreateContainerBody>;

export interface ResourceFigures {
  cpuPercent: number;
  memoryUsed: number;
  memoryLimit: number;
  networkRx: number;
  networkTx: number;
  pids: number;
  uptimeSeconds: number;
  /** Bytes the workspace folder holds on the host (measured by the agent; absent where not measured yet). */
  diskUsed?: number;
}

export interface SessionView {
  id: string;
  name: string;
  image: string;
  status: SessionStatus;
  ports: number[];
  agentId: string;
  createdAt: string;
  lastActiveAt: string;
  limits: { cpu: number; memory: number };
  previewPort: number | null;
  publicPorts: number[];
  error?: string;
  resources?: ResourceFigures | null;
}

export const ExecBody = z
  .object({
    command: z.string().min(1).max(65_536),
    args: z.array(z.string().max(32_768)).max(1024).optional(),
    cwd: z.string().max(4096).optional(),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/), z.string().max(32_768)).optional(),
    timeoutMs: z.number().int().min(1).max(600_000).optional(),
  })
  .strict();
export type ExecBody = z.infer<typeof ExecBody>;

export interface ExecResult {
  exitCode: number | null;
  signal?: string;
  reason: 'exit' | 'killed' | 'oom' | 'timeout' | 'lost';
  stdout: string;
  stderr: string;
  durationMs: number;
  /** True when output passed the 1 MiB a stream keeps: then stdout/stderr hold the last 1 MiB. */
  truncated: boolean;
}

export const PortVisibilityBody = z.object({ visibility: z.enum(['public', 'private']) }).strict();
