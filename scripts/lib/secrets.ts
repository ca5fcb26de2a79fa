/**
 * Development secrets: generated once per STATE_DIR and kept there (git-ignored),
 * prefixed so the edge refuses them in production. Real deployments set
 * AGENT_SECRET, JWT_SECRET and OPERATOR_TOKEN in the environment (or as
 * Worker secrets). OPERATOR_TOKEN opens the operator's view (full /health,
 * /api/admin/*), which `npm start` and the agent scripts use to register agents.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const SECRET_NAMES = ['AGENT_SECRET', 'JWT_SECRET', 'OPERATOR_TOKEN'] as const;
export type Secrets = Record<(typeof SECRET_NAMES)[number], string>;
export const DEV_SECRET_PREFIX = 'dev-';

export function loadSecrets(stateDir: string, env: NodeJS.ProcessEnv = process.env): Secrets {
  const production = env.NODE_ENV === 'production';
  const file = path.join(stateDir, 'secrets.json');
  let stored: Partial<Secrets> = {};
  if (fs.existsSync(file)) stored = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<Secrets>;
  const out: Partial<Secrets> = {};
  let changed = false;
  for (const name of SECRET_NAMES) {
    const given = env[name];
    if (given) {
      if (production && given.startsWith(DEV_SECRET_PREFIX)) throw new Error(`${name} is a development secret; refusing it with NODE_ENV=production`);
      if (given.length < 32) throw new Error(`${name} must be at least 32 characters`);
      out[name] = given;
    } else if (production) {
      throw new Error(`${name} must be set when NODE_ENV=production (development secrets are refused)`);
    } else {
      const value = stored[name] ?? `${DEV_SECRET_PREFIX}${randomBytes(32).toString('base64url')}`;
      if (!stored[name]) changed = true;
      stored[name] = value;
      out[name] = value;
    }
  }
  if (changed) {
    fs.mkdirSync(stateDir, { recursive: true });
    fs.writeFileSync(file, JSON.stringify(stored, null, 2) + '\n', { mode: 0o600 });
  }
  return out as Secrets;
}

/**
 * The operator token for the agent scripts: OPERATOR_TOKEN, else the
 * development one `npm start` keeps in STATE_DIR. Never generates one (a new
 * token would not match the running edge's).
 */
export function operatorTokenFor(stateDir: string, env: NodeJS.ProcessEnv = process.env): string {
  if (env.OPERATOR_TOKEN) return env.OPERATOR_TOKEN;
  const file = path.join(stateDir, 'secrets.json');
  const stored: unknown = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : null;
  const token = typeof stored === 'object' && stored !== null ? (stored as Record<string, unknown>).OPERATOR_TOKEN : undefined;
  if (typeof token !== 'string' || token === '') {
    throw new Error(`no operator token: set OPERATOR_TOKEN, or start the edge once with npm start so ${file} holds a development one`);
  }
  return token;
}
