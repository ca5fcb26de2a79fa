/**
 * Runs only the edge (workerd via wrangler dev, local mode) in the foreground,
 * for self-hosting with docker compose: settings and secrets from the
 * environment (production refuses development secrets), state in STATE_DIR.
 */
import path from 'node:path';
import { loadSecrets } from './lib/secrets';
import { edgeVarsFromEnv, spawnEdge } from './lib/stack';

const stateDir = path.resolve(process.env.STATE_DIR || '.data');
const edge = spawnEdge({
  host: process.env.HOST || '0.0.0.0',
  port: Number(process.env.PORT || 3001),
  stateDir,
  vars: edgeVarsFromEnv(process.env, loadSecrets(stateDir)),
  stdio: 'inherit',
});
const stop = () => void edge.stop().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
const { code } = await edge.exited;
process.exit(code ?? 1);
