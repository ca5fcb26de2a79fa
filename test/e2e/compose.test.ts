/**
 * docker-compose.yml as an operator runs it: both images built the way the
 * README says, settings from an .env file, `docker-compose up`, the first
 * agent registered by the one-shot agent-token service; then a user, a
 * session, a command, a preview through the host form, and `down` leaving no
 * container, network, volume or workspace behind. Debian's docker-compose
 * (1.29) runs it; skipped without Docker or docker-compose unless
 * REQUIRE_DOCKER=1.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../scripts/lib/stack';
import { rawRequest } from '../helpers/client';
import { hasDocker, requireDocker } from '../helpers/docker';
import { ensureTestImage } from '../helpers/images';
import { freePort } from '../helpers/stack';
import { poll } from '../helpers/wait';

const hasCompose = spawnSync('docker-compose', ['version'], { encoding: 'utf8' }).status === 0;
if (requireDocker && !hasCompose) throw new Error('REQUIRE_DOCKER=1 but docker-compose is not installed (apt-get install docker-compose)');

const TAG = 'e2e';
const BASE = 'node:20-bullseye';
const DOMAIN = 'preview.localhost';

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 300_000): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

describe.skipIf(!hasDocker || !hasCompose)('docker compose (edge image + agent image, docker-compose 1.29)', () => {
  const docker = new Docker();
  const project = `mominai-e2e-${randomBytes(3).toString('hex')}`;
  const agentName = `compose-${randomBytes(3).toString('hex')}`;
  let dir = '';
  let envFile = '';
  const operatorToken = `op-${randomBytes(24).toString('hex')}`;
  let port = 0;
  let base = '';
  // Only what docker-compose itself needs: a setting in this process's environment would override the .env file.
  const composeEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...(process.env.DOCKER_HOST ? { DOCKER_HOST: process.env.DOCKER_HOST } : {}),
    COMPOSE_DOCKER_CLI_BUILD: '0',
    DOCKER_BUILDKIT: '0',
  };
  const composeArgs = () => ['-f', path.join(ROOT, 'docker-compose.yml'), '--project-directory', ROOT, '--env-file', envFile, '-p', project];
  const compose = (...args: string[]) => run('docker-compose', [...composeArgs(), ...args], composeEnv);

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mominai-compose-'));
    envFile = path.join(dir, '.env');
    await ensureTestImage('node');
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    if (!fs.existsSync(path.join(ROOT, 'dist/web/index.html'))) run(process.execPath, ['--import', 'tsx', 'scripts/build-web.ts']);
    run(process.execPath, ['--import', 'tsx', 'scripts/build-agent.ts', '--image', `mominai/agent:${TAG}`, '--node-image', BASE, '--host-iptables']);
    run('docker', ['build', '-q', '-f', 'edge/Dockerfile', '--build-arg', `NODE_IMAGE=${BASE}`, '-t', `mominai/edge:${TAG}`, '.'], { ...process.env, DOCKER_BUILDKIT: '0' });
    fs.writeFileSync(
      envFile,
      [
        `AGENT_SECRET=${randomBytes(24).toString('hex')}`,
        `JWT_SECRET=${randomBytes(24).toString('hex')}`,
        `OPERATOR_TOKEN=${operatorToken}`,
        'HOST=127.0.0.1',
        `PORT=${port}`,
        `MOMINAI_DIR=${dir}/srv`,
        `MOMINAI_TAG=${TAG}`,
        `NODE_IMAGE=${BASE}`,
        `AGENT_NAME=${agentName}`,
        `PREVIEW_DOMAIN=${DOMAIN}`,
        'CORS_ORIGINS=https://ide.compose.test',
        'RATE_LIMIT_MAX=10000',
        'MAX_SESSIONS=7',
        `DEFAULT_IMAGE=${BASE}`,
        '',
      ].join('\n'),
    );
    compose('up', '-d');
  }, 600_000);

  afterAll(async () => {
    if (port) {
      const r = spawnSync('docker-compose', [...composeArgs(), 'down', '-v', '-t', '20'], { cwd: ROOT, encoding: 'utf8', env: composeEnv });
      if (r.status !== 0) process.stderr.write(`compose down: ${r.stderr}\n`);
    }
    // What the agent made outside compose's knowledge, if a test failed before cleaning up.
    if (agentId) {
      for (const c of await docker.listContainers({ all: true, filters: { label: [`dev.mominai.agent=${agentId}`] } })) {
        await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined);
      }
    }
    await docker.getNetwork(`mominai-${agentName}`).remove().catch(() => undefined);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  let token = '';
  let sessionId = '';
  let agentId = '';

  it('starts the edge, registers the first agent through the agent-token service, and the agent connects', async () => {
    const health = await poll(
      async () => {
        const res = await fetch(`${base}/health`, { headers: { Authorization: `Bearer ${operatorToken}` }, signal: AbortSignal.timeout(5_000) });
        const h = (await res.json()) as { status: string; agents: Array<{ id: string; name: string; mode: string; connected: boolean; capacity: { maxSessions: number } }> };
        return h.agents.some((a) => a.name === agentName && a.connected) ? h : undefined;
      },
      'the agent to connect',
      120_000,
    );
    const agent = health.agents.find((a) => a.name === agentName)!;
    agentId = agent.id;
    expect(health.status).toBe('ok');
    expect(agent.mode).toBe('docker');
    // MAX_SESSIONS=7 came from the .env file to the agent.
    expect(agent.capacity.maxSessions).toBe(7);
    const ps = run('docker', ['ps', '-a', '--filter', `label=com.docker.compose.project=${project}`, '--format', '{{.Label "com.docker.compose.service"}} {{.State}}']).stdout;
    expect(ps.split('\n').filter(Boolean).sort()).toEqual(['agent running', 'agent-token exited', 'edge running']);
    // The images' health checks: the edge answers /health, the agent's health file says it is connected.
    const statusOf = (service: string) =>
      run('docker', ['ps', '--filter', `label=com.docker.compose.project=${project}`, '--filter', `label=com.docker.compose.service=${service}`, '--format', '{{.Status}}']).stdout.trim();
    expect(statusOf('edge')).toMatch(/\(healthy\)$/);
    await poll(() => (/\(healthy\)$/.test(statusOf('agent')) ? true : undefined), 'the agent container to be healthy', 90_000);
  }, 180_000);

  it('passes edge settings through from .env (CORS_ORIGINS answers a preflight)', async () => {
    const res = await fetch(`${base}/api/auth/login`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://ide.compose.test', 'Access-Control-Request-Method': 'POST' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://ide.compose.test');
  });

  it('serves a user: register, create a session, run a command', async () => {
    const name = `c${randomBytes(4).toString('hex')}`;
    const reg = await fetch(`${base}/api/auth/register`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email: `${name}@compose.test`, password: 'correct horse battery', username: name }),
    });
    expect(reg.status).toBe(201);
    token = ((await reg.json()) as { token: string }).token;
    const auth = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
    const created = await fetch(`${base}/api/containers`, { method: 'POST', headers: auth, body: JSON.stringify({ ports: [3000] }) });
    const body = (await created.json()) as { session: { id: string; agentId: string; image: string } };
    expect(created.status, JSON.stringify(body)).toBe(201);
    sessionId = body.session.id;
    expect(body.session.agentId).toBe(agentId);
    expect(body.session.image).toBe(BASE);
    await poll(
      async () => {
        const r = await fetch(`${base}/api/containers/${sessionId}`, { headers: auth });
        const s = (await r.json()) as { session: { status: string } };
        return s.session.status === 'running' ? true : undefined;
      },
      'the session to run',
      120_000,
    );
    const exec = await fetch(`${base}/api/containers/${sessionId}/exec`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ command: 'echo hello-compose; id -u; pwd' }),
    });
    const out = (await exec.json()) as { exitCode: number; stdout: string; stderr: string };
    expect(exec.status, JSON.stringify(out)).toBe(200);
    expect(out).toMatchObject({ exitCode: 0, stdout: 'hello-compose\n1000\n/workspace\n', stderr: '' });
  }, 240_000);

  it('reaches a dev server in the session through the preview host form', async () => {
    const auth = { Authorization: `Bearer ${token}` };
    const server = fs.readFileSync(path.join(ROOT, 'test/fixtures/preview-server.cjs'));
    const put = await fetch(`${base}/api/containers/${sessionId}/files/server.cjs`, {
      method: 'PUT',
      headers: { ...auth, 'Content-Type': 'application/octet-stream' },
      body: server,
    });
    expect(put.status).toBe(200);
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?token=${token}&sessionId=${sessionId}`);
    const frames: Array<{ type: string; id?: string; payload: Record<string, unknown> }> = [];
    const next = (pred: (f: (typeof frames)[number]) => boolean, ms: number) =>
      poll(() => frames.find(pred), 'a WebSocket frame', ms);
    ws.on('message', (d, binary) => !binary && frames.push(JSON.parse(d.toString()) as (typeof frames)[number]));
    await next((f) => f.type === 'ready', 30_000);
    ws.send(JSON.stringify({ type: 'container_command', id: 'srv', payload: { command: 'node server.cjs' } }));
    await next((f) => f.id === 'srv' && f.type === 'process_started', 30_000);
    ws.send(JSON.stringify({ type: 'start_preview', id: 'pv', payload: { port: 3000 } }));
    const ready = await next((f) => f.id === 'pv', 120_000);
    expect(ready.type, JSON.stringify(ready)).toBe('preview_ready');
    ws.close();
    const pub = await fetch(`${base}/api/containers/${sessionId}/ports/3000`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ visibility: 'public' }),
    });
    expect(pub.status).toBe(200);
    const res = await rawRequest(port, { path: '/hello', host: `3000-${sessionId}.${DOMAIN}` });
    expect({ status: res.status, body: res.body.toString() }).toEqual({ status: 200, body: 'hello from 3000 GET' });
  }, 240_000);

  it('tears down with nothing left behind', async () => {
    const del = await fetch(`${base}/api/containers/${sessionId}`, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } });
    expect(del.status).toBe(200);
    compose('down', '-v', '-t', '20');
    // The agent's own bridge outlives it by design (sessions survive agent restarts); an operator removes it after `down`.
    await docker.getNetwork(`mominai-${agentName}`).remove();
    const containers = await docker.listContainers({ all: true, filters: { label: [`com.docker.compose.project=${project}`] } });
    const sessions = await docker.listContainers({ all: true, filters: { label: [`dev.mominai.agent=${agentId}`] } });
    const volumes = (await docker.listVolumes({ filters: { label: [`com.docker.compose.project=${project}`] } })).Volumes ?? [];
    const networks = (await docker.listNetworks()).filter((n) => n.Name.startsWith(project) || n.Name === `mominai-${agentName}`);
    expect({ containers: containers.length, sessions: sessions.length, volumes: volumes.length, networks: networks.map((n) => n.Name) }).toEqual({
      containers: 0,
      sessions: 0,
      volumes: 0,
      networks: [],
    });
    const workspaces = path.join(dir, 'srv/workspaces');
    expect(fs.readdirSync(workspaces).filter((name) => name !== '.mominai')).toEqual([]);
    // The agent's own folder stays (the session daemon's bundle it mounts); nothing of the session is left in it.
    const own = path.join(workspaces, '.mominai');
    const perSession = ['run', 'keys'].flatMap((d) => (fs.existsSync(path.join(own, d)) ? fs.readdirSync(path.join(own, d)) : []));
    expect(perSession).toEqual([]);
  }, 120_000);
});

describe('docker-compose.yml and .env.example', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const compose = fs.readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
  const example = fs.readFileSync(path.join(ROOT, '.env.example'), 'utf8');
  /** Every variable named in the first column of a README settings table. */
  const settings = [...new Set([...readme.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \|/gm)].map((m) => m[1]!))];
  /** Settings compose fixes itself, with the reason; everything else passes through from .env. */
  const fixedByCompose: Record<string, string> = {
    EDGE_RUNNER: 'the edge image runs the Miniflare runner',
    DOCKER_HOST: 'the agent talks to the mounted /var/run/docker.sock',
    STATE_DIR: 'the edge keeps its state in the edge-data volume, the agent under MOMINAI_DIR',
    USER_WORKSPACE_BASE: 'MOMINAI_DIR/workspaces, mounted at the same path',
    EDGE_URL: 'the agent dials the edge on 127.0.0.1:PORT',
    AGENT_HEALTH_FILE: 'the agent image sets it for its health check',
    AGENT_TOKEN_FILE: 'the agent reads the agent-token service’s file',
  };

  it('finds the README settings tables', () => {
    expect(settings).toEqual(expect.arrayContaining(['PORT', 'JWT_SECRET', 'MAX_SESSIONS', 'PREVIEW_DOMAIN', 'CORS_ORIGINS', 'METRICS_ADDR']));
  });

  it('passes every README setting through from .env, and .env.example lists each', () => {
    const notPassed = settings.filter((name) => !fixedByCompose[name] && !compose.includes(`\${${name}:`));
    const notListed = settings.filter((name) => !fixedByCompose[name] && !new RegExp(`^#? ?${name}=`, 'm').test(example));
    expect({ notPassed, notListed }).toEqual({ notPassed: [], notListed: [] });
  });
});
