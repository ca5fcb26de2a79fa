/**
 * Workspace quota news, agent → Session DO on the session's data socket as an
 * `event` frame named `session.quota`, and what clients get from it:
 *   - `action: "warning"`: the workspace is past WORKSPACE_QUOTA; API writes
 *     now get 507 quota_exceeded. Clients get `quota_warning {diskUsed, quota}`.
 *   - `action: "stopped"`: past twice the quota; the agent is stopping the
 *     container. Clients get `container_status {status: "stopped", reason: "disk_quota"}`.
 */
import { z } from 'zod';

export const QUOTA_EVENT = 'session.quota';

export const QuotaEvent = z.object({
  action: z.enum(['warning', 'stopped']),
  diskUsed: z.number().int().nonnegative(),
  quota: z.number().int().positive(),
});
export type QuotaEvent = z.infer<typeof QuotaEvent>;

/** The client frame a `warning` becomes: `{type: "quota_warning", payload}`. */
export const QuotaWarningPayload = QuotaEvent.pick({ diskUsed: true, quota: true });
export type QuotaWarningPayload = z.infer<typeof QuotaWarningPayload>;
