/**
 * A session's container ended without the edge asking: the agent says so at
 * once on its control socket, as an `event` frame
 *   agent → edge  `event` {event: "session.state", data: ContainerStateEvent}
 * and the Fleet DO moves the session (through its Session DO's lifecycle) to
 * `stopped`, or `error` when the container is gone, with the reason, which
 * clients see in `container_status {status, reason}`. Heartbeats carry every
 * container's state as well (`containers[].state`), so a lost event is
 * corrected within a heartbeat or two, and hello reconciles after a reconnect.
 */
import { z } from 'zod';

export const CONTAINER_STATE_EVENT = 'session.state';

/** Why a container ended: its main process exited by itself, was killed by a signal, or by the kernel for memory. */
export const ContainerEndReason = z.enum(['exited', 'oom', 'killed']);
export type ContainerEndReason = z.infer<typeof ContainerEndReason>;

export const ContainerStateEvent = z.object({
  sessionId: z.string().min(1).max(64),
  containerId: z.string().max(128),
  /** `stopped`: the container is there, not running; `missing`: it was removed. */
  state: z.enum(['stopped', 'missing']),
  reason: ContainerEndReason,
  exitCode: z.number().int().min(0).max(255).nullable(),
});
export type ContainerStateEvent = z.infer<typeof ContainerStateEvent>;
