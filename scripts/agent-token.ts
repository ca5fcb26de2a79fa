/**
 * Prints an agent join token: `npm run agent:token -- --name <name> [--id <agentId>] [--ttl <seconds>]`.
 * Signed with AGENT_SECRET from the environment, or the development secret in STATE_DIR.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { newId } from '../shared/ids';
import { signToken } from '../edge/auth/tokens';
import { loadSecrets } from './lib/secrets';

const { values } = parseArgs({
  options: { name: { type: 'string' }, id: { type: 'string' }, ttl: { type: 'string' } },
});
const name = values.name;
if (!name || !/^[\w.-]{1,64}$/.test(name)) {
  process.stderr.write('usage: npm run agent:token -- --name <name> [--id <agentId>] [--ttl <seconds>]\n');
  process.exit(2);
}
const secrets = loadSecrets(path.resolve(process.env.STATE_DIR || '.data'));
const ttl = values.ttl === undefined ? undefined : Number(values.ttl);
if (ttl !== undefined && !(Number.isInteger(ttl) && ttl > 0)) {
  process.stderr.write('--ttl must be a positive number of seconds\n');
  process.exit(2);
}
const token = await signToken({
  secret: secrets.AGENT_SECRET,
  typ: 'agent',
  sub: values.id ?? newId('agt'),
  claims: { name },
  ...(ttl === undefined ? {} : { ttlSeconds: ttl }),
});
process.stdout.write(token + '\n');
