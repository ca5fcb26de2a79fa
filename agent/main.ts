/**
 * Agent process entry: config, logger, runtime, connection. SIGINT/SIGTERM
 * (an upgrade, Ctrl-C) stop it cleanly and exit 0: containers keep running,
 * and so do the processes their session daemons hold, for the next agent
 * process to adopt (Agent.stop).
 */
import { Agent } from './agent';
import { ConfigError, loadAgentConfig } from './config';
import { createLogger, levelFromEnv } from './logger';
import { instrumentedDockerClient, startAgentMetrics } from './metrics/start';
import { createRuntime, StartupRefused } from './runtime/create-runtime';
import { tightenStateDir } from './runtime/host-permissions';

async function main(): Promise<void> {
  const bootLogger = createLogger({ level: levelFromEnv(process.env), base: { component: 'agent' } });
  let config;
  try {
    config = loadAgentConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      bootLogger.error('bad configuration', { error: err.message });
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel, base: { component: 'agent', agent: config.agentName } });
  await tightenStateDir(config.stateDir, config.workspaceBase, logger);
  let runtime;
  try {
    runtime = await createRuntime({ config, logger, dockerFactory: instrumentedDockerClient });
  } catch (err) {
    if (err instanceof StartupRefused) {
      logger.error('agent refuses to start', { error: err.message });
      process.exit(3);
    }
    throw err;
  }
  const agent = new Agent({ config, runtime, logger });
  await startAgentMetrics(process.env, agent, logger);
  logger.info('agent starting', {
    edgeUrl: config.edgeUrl,
    mode: runtime.mode,
    isolation: runtime.isolation ?? (runtime.mode === 'docker' ? 'container' : 'none'),
    egress: runtime.egress?.() ?? 'unenforced',
    maxSessions: config.maxSessions,
  });
  agent.start();

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('agent stopping', { signal });
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    agent.stop().then(
      () => {
        logger.info('agent stopped', { signal });
        process.exit(0);
      },
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'error', component: 'agent', msg: 'agent failed', error: String(err) }) + '\n');
  process.exit(1);
});
