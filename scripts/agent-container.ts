/**
 * Entry of the agent image (bundled with the agent into one file by
 * scripts/build-agent.ts). The container starts as root, and this decides
 * whether the agent keeps it:
 *
 * - The egress policy (EGRESS_POLICY=on, the default) is iptables rules in
 *   the host's network namespace; writing them needs CAP_NET_ADMIN, which a
 *   process loses when it leaves uid 0. So with the policy on, the agent stays
 *   root (in a container that has only Docker's default capabilities plus
 *   NET_ADMIN; the Docker socket it holds is root-equivalent on the host
 *   anyway).
 * - Otherwise (EGRESS_POLICY=off, or AGENT_USER=uid:gid given explicitly) it
 *   drops to AGENT_USER (default 1000:1000: the `node` user of the Node
 *   images and the default CONTAINER_USER of sessions, so workspace files a
 *   session writes are the agent's own), after joining the group that owns
 *   the host's Docker socket, whatever its number is on that host (so no
 *   `--group-add` is needed) and handing it the workspace and state folders.
 * - AGENT_USER=root keeps root in every case.
 *
 * AGENT_TOKEN_FILE names a file holding the join token, read when AGENT_TOKEN
 * is not set (docker compose's token service writes one into a volume).
 *
 * `agent.cjs --health` is the image's HEALTHCHECK: healthy while the agent has
 * written its health file within the last 30 s and is connected to the edge.
 */
import fs from 'node:fs';
import { readHealthFile } from '../agent/metrics/health-file';
import { agentUser, dockerSocket } from './agent-user';

const HEALTH_MAX_AGE_MS = 30_000;

function say(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, component: 'agent-container', msg, ...fields }) + '\n');
}

function health(): never {
  const file = process.env.AGENT_HEALTH_FILE;
  if (!file) {
    process.stdout.write('AGENT_HEALTH_FILE is not set\n');
    process.exit(1);
  }
  const h = readHealthFile(file);
  const age = h ? Date.now() - h.time : Number.POSITIVE_INFINITY;
  const ok = h !== undefined && age <= HEALTH_MAX_AGE_MS && h.connected;
  process.stdout.write(`${ok ? 'healthy' : 'unhealthy'}: ${h ? `connected=${h.connected}, written ${Math.round(age / 1000)} s ago` : 'no health file yet'}\n`);
  process.exit(ok ? 0 : 1);
}

function dropPrivileges(): void {
  if (process.getuid?.() !== 0) return;
  const target = agentUser(process.env);
  if (!target) {
    say('info', 'the agent keeps root in its container', {
      why: process.env.AGENT_USER ? 'AGENT_USER=root' : 'the egress policy needs CAP_NET_ADMIN (EGRESS_POLICY=off or AGENT_USER=uid:gid drops root)',
    });
    return;
  }
  const groups: number[] = [];
  const socket = dockerSocket(process.env);
  if (socket && fs.existsSync(socket)) {
    const gid = fs.statSync(socket).gid;
    if (gid === 0) {
      say('warn', 'the Docker socket belongs to group 0 (root); the agent keeps root to reach it', { socket });
      return;
    }
    groups.push(gid);
  }
  const base = process.env.USER_WORKSPACE_BASE;
  if (base) {
    fs.mkdirSync(base, { recursive: true });
    fs.chownSync(base, target.uid, target.gid);
  }
  const stateDir = process.env.STATE_DIR;
  if (stateDir) {
    fs.mkdirSync(stateDir, { recursive: true });
    fs.chownSync(stateDir, target.uid, target.gid);
  }
  process.setgroups!(groups);
  process.setgid!(target.gid);
  process.setuid!(target.uid);
  say('info', 'running as a non-root user', { uid: target.uid, gid: target.gid, groups });
}

/** AGENT_TOKEN from AGENT_TOKEN_FILE when only the file is given. */
function tokenFromFile(): void {
  const file = process.env.AGENT_TOKEN_FILE?.trim();
  if (process.env.AGENT_TOKEN || !file) return;
  const token = fs.readFileSync(file, 'utf8').trim();
  if (!token) throw new Error(`AGENT_TOKEN_FILE ${file} is empty`);
  process.env.AGENT_TOKEN = token;
}

if (process.argv.includes('--health')) health();
try {
  tokenFromFile();
  dropPrivileges();
} catch (err) {
  say('error', 'cannot start the agent', { error: err instanceof Error ? err.message : String(err) });
  process.exit(2);
}
void import('../agent/main');
