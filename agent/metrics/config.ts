/**
 * METRICS_ADDR: where the agent serves Prometheus metrics, `host:port`
 * (e.g. `127.0.0.1:9464`, `[::1]:9464`, `0.0.0.0:9464`). Unset or empty: off.
 * Read once at start; a bad value stops the agent naming the variable.
 */
import { ConfigError } from '../config';

export interface MetricsAddress {
  host: string;
  port: number;
}

export function metricsAddressFromEnv(env: NodeJS.ProcessEnv): MetricsAddress | undefined {
  const raw = env.METRICS_ADDR?.trim();
  if (!raw) return undefined;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(raw);
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ConfigError(`METRICS_ADDR must be host:port (e.g. 127.0.0.1:9464), not "${raw}"`);
  }
  return { host: m[1] ?? m[2]!, port };
}
