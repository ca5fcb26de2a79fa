/** Which user the agent image runs the agent as (scripts/agent-container.ts), and where its Docker socket is. */

/**
 * The user the agent runs as: uid/gid numbers, or undefined for root. AGENT_USER
 * unset means 1000:1000 when the egress policy is off, root while it is on.
 */
export function agentUser(env: NodeJS.ProcessEnv): { uid: number; gid: number } | undefined {
  const given = env.AGENT_USER?.trim();
  if (!given && (env.EGRESS_POLICY || 'on') !== 'off') return undefined;
  const value = given || '1000:1000';
  if (value === 'root' || value === '0' || value === '0:0') return undefined;
  const m = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(value);
  if (!m) throw new Error(`AGENT_USER must be uid[:gid] (numbers) or root, not "${value}"`);
  const uid = Number(m[1]);
  return { uid, gid: m[2] === undefined ? uid : Number(m[2]) };
}

/** The socket path of DOCKER_HOST when it names a local socket. */
export function dockerSocket(env: NodeJS.ProcessEnv): string | undefined {
  const host = env.DOCKER_HOST;
  if (!host) return '/var/run/docker.sock';
  if (host.startsWith('unix://')) return host.slice('unix://'.length);
  if (host.startsWith('/')) return host;
  return undefined;
}
