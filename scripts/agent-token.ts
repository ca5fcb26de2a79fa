/**
 * Registers an agent with the edge and prints its join token:
 *   npm run agent:token -- --name <name> [--ttl 90d] [--id <agentId>]
 * The edge records the agent (id, name, created, expires) in its D1 and signs
 * the token (with `exp`); `--id` renews an existing agent instead of making a
 * new one. The edge must be running: it is found at EDGE_URL,
 * else http://127.0.0.1:$PORT, and the operator token is OPERATOR_TOKEN or
 * the development one in STATE_DIR. The token goes to stdout, the record to stderr.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AdminError, edgeHttpUrl, registerAgent } from './lib/admin-client';
import { operatorTokenFor } from './lib/secrets';

const usage = 'usage: npm run agent:token -- --name <name> [--ttl <seconds|30m|24h|90d>] [--id <agentId>]\n';
let values: { name?: string; id?: string; ttl?: string };
try {
  ({ values } = parseArgs({ options: { name: { type: 'string' }, id: { type: 'string' }, ttl: { type: 'string' } } }));
} catch (err) {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n${usage}`);
  process.exit(2);
}
if (!values.name || !/^[\w.-]{1,64}$/.test(values.name)) {
  process.stderr.write(usage);
  process.exit(2);
}
const edgeUrl = edgeHttpUrl();
try {
  const operatorToken = operatorTokenFor(path.resolve(process.env.STATE_DIR || '.data'));
  const { agent, token } = await registerAgent(
    { edgeUrl, operatorToken },
    { name: values.name, ...(values.id ? { id: values.id } : {}), ...(values.ttl ? { ttl: values.ttl } : {}) },
  );
  process.stderr.write(JSON.stringify({ level: 'info', msg: 'agent registered', edge: edgeUrl, ...agent }) + '\n');
  process.stdout.write(token + '\n');
} catch (err) {
  const message = err instanceof Error ? err.message : String(err);
  const code = err instanceof AdminError ? err.code : 'error';
  process.stderr.write(JSON.stringify({ level: 'error', msg: 'could not register the agent', edge: edgeUrl, code, message }) + '\n');
  process.exit(1);
}
