/**
 * Revokes an agent: `npm run agent:revoke -- <agentId|name>`. A name revokes
 * every agent registered under it. The edge closes the agent's sockets at once
 * and refuses its token from then on. Found the same way as agent:token
 * (EDGE_URL / PORT; OPERATOR_TOKEN or the one in STATE_DIR).
 */
import path from 'node:path';
import { AdminError, edgeHttpUrl, revokeAgent } from './lib/admin-client';
import { operatorTokenFor } from './lib/secrets';

const target = process.argv.slice(2).filter((a) => a !== '--')[0];
if (!target || !/^[\w.-]{1,64}$/.test(target)) {
  process.stderr.write('usage: npm run agent:revoke -- <agentId|name>\n');
  process.exit(2);
}
const edgeUrl = edgeHttpUrl();
try {
  const operatorToken = operatorTokenFor(path.resolve(process.env.STATE_DIR || '.data'));
  const { revoked } = await revokeAgent({ edgeUrl, operatorToken }, target);
  for (const a of revoked) process.stdout.write(`revoked ${a.id} (${a.name}) at ${a.revokedAt}\n`);
} catch (err) {
  const message = err instanceof Error ? err.message : String(err);
  const code = err instanceof AdminError ? err.code : 'error';
  process.stderr.write(JSON.stringify({ level: 'error', msg: 'could not revoke the agent', edge: edgeUrl, code, message }) + '\n');
  process.exit(1);
}
