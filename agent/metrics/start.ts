/**
 * Turns on what an operator watches, from the agent's entry point: the
 * session gauge's source, the metrics endpoint when METRICS_ADDR is set, and
 * the health file when AGENT_HEALTH_FILE is set (the agent image sets it).
 */
import type Docker from 'dockerode';
import type { Logger } from '../logger';
import { dockerClient } from '../runtime/create-runtime';
import { metrics } from './agent-metrics';
import { metricsAddressFromEnv } from './config';
import { instrumentDocker } from './docker';
import { keepHealthFile } from './health-file';
import { startMetricsServer } from './server';

export interface ObservedAgent {
  sessions: { latestFigures(): Array<{ state: string }> };
}

export async function startAgentMetrics(env: NodeJS.ProcessEnv, agent: ObservedAgent, logger: Logger): Promise<void> {
  metrics.setSource({ sessionStates: () => agent.sessions.latestFigures().map((f) => f.state) });
  const healthFile = env.AGENT_HEALTH_FILE?.trim();
  if (healthFile) keepHealthFile(healthFile, () => metrics.connected);
  const addr = metricsAddressFromEnv(env);
  if (!addr) return;
  const server = await startMetricsServer(metrics.registry, addr.host, addr.port);
  logger.info('serving metrics', { url: `http://${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${server.address.port}/metrics` });
}

/** The Docker client the runtime uses, with every call timed. */
export function instrumentedDockerClient(host: string | undefined): Docker {
  return instrumentDocker(dockerClient(host), metrics.dockerDuration);
}
