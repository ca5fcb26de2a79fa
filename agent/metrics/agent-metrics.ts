/**
 * What an operator watches on an agent, as Prometheus metrics (prom-client).
 * One registry per process: the counters are bumped by one-line hooks where
 * the events happen (tunnel reconnects, relayed bytes, preview requests,
 * Docker calls); the gauges are read when scraped, from the live objects
 * registered here (process managers, output streams) and from the agent's
 * latest session figures, so nothing is computed between scrapes.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What the session and process gauges read at scrape time. */
export interface MetricsSource {
  /** The state of every session this agent knows of (its latest figures). */
  sessionStates(): string[];
}

interface ProcessCounter {
  list(): Array<{ running: boolean }>;
}
interface StreamFigures {
  readonly acked: number;
  readonly ring: { readonly size: number; readonly end: number };
}

export class AgentMetrics {
  readonly registry = new Registry();
  private source: MetricsSource | undefined;
  private readonly managers = new Set<WeakRef<ProcessCounter>>();
  private readonly streams = new Set<WeakRef<StreamFigures>>();
  /** Whether the control socket to the edge is up now (also read by the health file). */
  connected = false;

  readonly tunnelConnected: Gauge = new Gauge({
    name: 'mominai_agent_tunnel_connected',
    help: '1 while the control socket to the edge is open, else 0',
    registers: [this.registry],
    collect: () => this.tunnelConnected.set(this.connected ? 1 : 0),
  });
  readonly tunnelReconnects = new Counter({
    name: 'mominai_agent_tunnel_reconnects_total',
    help: 'Dials of the control socket after a lost connection or a failed dial',
    registers: [this.registry],
  });
  readonly relayedBytes = new Counter({
    name: 'mominai_agent_relayed_bytes_total',
    help: 'Bytes of binary frames (terminal output, file and preview bodies) on session data sockets, by direction',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });
  readonly previewRequests = new Counter({
    name: 'mominai_agent_preview_requests_total',
    help: 'Preview requests relayed to session containers, by kind (http, websocket) and outcome (ok, error)',
    labelNames: ['kind', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly previewDuration = new Histogram({
    name: 'mominai_agent_preview_response_seconds',
    help: 'Time from a preview request reaching the agent to its response head (or error) being ready',
    labelNames: ['outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly dockerDuration = new Histogram({
    name: 'mominai_agent_docker_call_seconds',
    help: 'Docker Engine API calls: time to the response (for streams, to the stream being open), by method, operation and outcome',
    labelNames: ['method', 'operation', 'outcome'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly sessions = new Gauge({
    name: 'mominai_agent_sessions',
    help: 'Sessions on this agent by state (from the latest figures, refreshed every 5 s)',
    labelNames: ['state'] as const,
    registers: [this.registry],
    collect: () => {
      this.sessions.reset();
      for (const state of this.source?.sessionStates() ?? []) this.sessions.inc({ state });
    },
  });
  readonly processes = new Gauge({
    name: 'mominai_agent_processes',
    help: 'Processes started through the agent that are still running, over all sessions',
    registers: [this.registry],
    collect: () => {
      let n = 0;
      for (const m of live(this.managers)) n += m.list().filter((p) => p.running).length;
      this.processes.set(n);
    },
  });
  readonly outputStreams: Gauge = new Gauge({
    name: 'mominai_agent_output_streams',
    help: 'Process output streams whose bytes the agent still holds',
    registers: [this.registry],
    collect: () => this.outputStreams.set(live(this.streams).length),
  });
  readonly ringBytes: Gauge = new Gauge({
    name: 'mominai_agent_output_ring_bytes',
    help: 'Bytes held in output rings (kept for resume), over all streams',
    registers: [this.registry],
    collect: () => this.ringBytes.set(sum(live(this.streams), (s) => s.ring.size)),
  });
  readonly windowBytes: Gauge = new Gauge({
    name: 'mominai_agent_output_window_bytes',
    help: 'Output bytes produced but not yet acknowledged by the edge (the flow-control window in use), over all streams',
    registers: [this.registry],
    collect: () => this.windowBytes.set(sum(live(this.streams), (s) => s.ring.end - s.acked)),
  });

  constructor({ defaultMetrics = true }: { defaultMetrics?: boolean } = {}) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'mominai_agent_' });
  }

  /** Where the session gauge reads from (the running agent). */
  setSource(source: MetricsSource): void {
    this.source = source;
  }

  /** A process manager whose running processes count; forgotten once it is garbage. */
  trackProcesses(manager: ProcessCounter): void {
    this.managers.add(new WeakRef(manager));
  }

  /** An output stream whose ring and window use count; forgotten once it is garbage. */
  trackStream(stream: StreamFigures): void {
    this.streams.add(new WeakRef(stream));
  }

  /** Times one preview HTTP request; call the result with how it ended. */
  previewStarted(): (outcome: 'ok' | 'error') => void {
    const end = this.previewDuration.startTimer();
    return (outcome) => {
      end({ outcome });
      this.previewRequests.inc({ kind: 'http', outcome });
    };
  }

  tunnelUp(): void {
    this.connected = true;
  }

  tunnelDown(): void {
    this.connected = false;
  }
}

function live<T extends object>(refs: Set<WeakRef<T>>): T[] {
  const out: T[] = [];
  for (const ref of refs) {
    const v = ref.deref();
    if (v === undefined) refs.delete(ref);
    else out.push(v);
  }
  return out;
}

function sum<T>(items: T[], f: (t: T) => number): number {
  let n = 0;
  for (const i of items) n += f(i);
  return n;
}

/** The agent process's metrics: the hooks in the runtime and services bump these. */
export const metrics = new AgentMetrics();
