/**
 * One stream of the engine's container events for this agent's containers.
 * An `oom` event is the only sign that the kernel killed a process inside a
 * container that stays up (State.OOMKilled is set only when the main process
 * dies), so execs compare OOM counts from before and after they ran; a `die`
 * tells an exec killed by a signal that its container stopped under it, and
 * the stats sampler to let go of the container; `die`, `stop` and `destroy`
 * also tell the agent that a session's container ended without being asked
 * (see DockerRuntime.watchContainers), so the edge hears of it at once.
 */
import type Docker from 'dockerode';
import { z } from 'zod';
import { jsonText } from '../../../shared/json-text';
import type { Logger } from '../../logger';

const ContainerEventName = z.enum(['oom', 'die', 'stop', 'destroy']);
export type ContainerEvent = z.infer<typeof ContainerEventName>;
/** One line of the engine's event stream, as far as it is read here (older engines name the action `status`). */
const EngineEventLine = jsonText(
  z.object({
    id: z.string().optional(),
    Action: z.string().optional(),
    status: z.string().optional(),
    Actor: z.object({ Attributes: z.unknown() }).partial().optional(),
  }),
);
/** What an event says besides its kind: the container's labels and, for `die`, its exit code. */
export interface EventAttributes {
  labels: Record<string, string>;
  exitCode: number | null;
}
type Listener = (containerId: string, event: ContainerEvent, attributes: EventAttributes) => void;

export class DockerEvents {
  private stream: (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
  private opening: Promise<void> | undefined;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  private readonly counts = new Map<string, { oom: number; die: number }>();
  private readonly listeners = new Set<Listener>();

  constructor(
    private readonly docker: Docker,
    private readonly labelFilters: string[],
    private readonly logger: Logger,
    private readonly retryMs = 1000,
  ) {}

  /** Opens the stream once; resolves when the engine is sending. Never rejects. */
  start(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.stream) return Promise.resolve();
    this.opening ??= this.open().finally(() => (this.opening = undefined));
    return this.opening;
  }

  /** How many `oom` or `die` events the container has had since the stream opened. */
  count(containerId: string, event: 'oom' | 'die'): number {
    return this.counts.get(containerId)?.[event] ?? 0;
  }

  on(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    this.stream?.destroy?.();
    this.stream = undefined;
  }

  private async open(): Promise<void> {
    try {
      const stream = (await this.docker.getEvents({
        filters: { type: ['container'], event: [...ContainerEventName.options], label: this.labelFilters },
      })) as NodeJS.ReadableStream & { destroy?: () => void };
      if (this.closed) {
        stream.destroy?.();
        return;
      }
      this.stream = stream;
      let pending = '';
      stream.on('data', (chunk: Buffer | string) => {
        pending += chunk.toString();
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          this.onLine(pending.slice(0, nl));
          pending = pending.slice(nl + 1);
        }
      });
      const lost = () => {
        if (this.stream !== stream) return;
        this.stream = undefined;
        this.scheduleRetry();
      };
      stream.on('end', lost);
      stream.on('close', lost);
      stream.on('error', lost);
    } catch (err) {
      this.logger.warn('cannot follow Docker events; OOM reasons may be missed', { error: err });
      this.scheduleRetry();
    }
  }

  private scheduleRetry(): void {
    if (this.closed || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      void this.start();
    }, this.retryMs);
    this.retry.unref();
  }

  private onLine(line: string): void {
    if (!line.trim()) return;
    const decoded = EngineEventLine.safeParse(line);
    if (!decoded.success) return;
    const msg = decoded.data;
    const kind = ContainerEventName.safeParse(msg.Action ?? msg.status);
    if (!msg.id || !kind.success) return;
    const { id } = msg;
    const event = kind.data;
    if (event === 'destroy') this.counts.delete(id);
    else if (event === 'oom' || event === 'die') {
      const c = this.counts.get(id) ?? { oom: 0, die: 0 };
      c[event] += 1;
      this.counts.set(id, c);
    }
    const attributes = eventAttributes(msg.Actor?.Attributes);
    for (const l of this.listeners) l(id, event, attributes);
  }
}

/** The engine puts a container's labels and, on `die`, `exitCode` among an event's string attributes. */
function eventAttributes(raw: unknown): EventAttributes {
  const labels: Record<string, string> = {};
  if (raw && typeof raw === 'object') for (const [k, v] of Object.entries(raw)) if (typeof v === 'string') labels[k] = v;
  const code = labels.exitCode !== undefined && /^\d{1,3}$/.test(labels.exitCode) ? Number(labels.exitCode) : null;
  return { labels, exitCode: code };
}
