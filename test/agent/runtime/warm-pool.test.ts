/**
 * The warm pool against a real engine: what Docker allows on a running
 * container (the facts the claim is built on), what a pooled container is
 * before and after its claim, the fallback to a normal create, and the
 * start-up reconciliation after an agent that was killed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../../shared/ids';
import { ConfigError, loadAgentConfig } from '../../../agent/config';
import { memoryLogger } from '../../../agent/logger';
import { Labels } from '../../../agent/runtime/docker/container-spec';
import { DockerRuntime } from '../../../agent/runtime/docker/docker-runtime';
import { networkName } from '../../../agent/runtime/docker/network';
import { ClaimStore, POOL_LABEL, slotPath } from '../../../agent/runtime/docker/pool-claims';
import { WarmPool } from '../../../agent/runtime/docker/warm-pool';
import type { SessionSpec } from '../../../agent/runtime/runtime';
import { AppError, ErrorCode } from '../../../shared/errors';
import { hasDocker } from '../../helpers/docker';
import { ensureTestImage } from '../../helpers/images';
import { run, sessionSpec } from './runtime-contract';

const docker = new Docker();
const LIMITS = { cpu: 0.5, memoryBytes: 96 * 1024 * 1024, pids: 64 };

interface Agent {
  agentId: string;
  agentName: string;
  base: string;
  image: string;
}

async function newAgent(kind: 'busybox' | 'node' = 'busybox'): Promise<Agent> {
  const image = await ensureTestImage(kind, docker);
  const agentId = newId('agt');
  return { agentId, agentName: `test-${agentId.slice(-8)}`, base: fs.mkdtempSync(path.join(os.tmpdir(), 'mominai-pool-')), image };
}

function runtimeFor(a: Agent, size: number, sessionDaemon = false): DockerRuntime {
  return new DockerRuntime({
    docker,
    logger: memoryLogger('warn'),
    workspaceBase: a.base,
    agentId: a.agentId,
    agentName: a.agentName,
    pullTimeoutMs: 10_000,
    warmPool: { size, image: a.image, limits: LIMITS },
    sessionDaemon,
  });
}

async function cleanupAgent(a: Agent, ...runtimes: DockerRuntime[]): Promise<void> {
  for (const r of runtimes) await r.close();
  const left = await docker.listContainers({ all: true, filters: { label: [`${Labels.agent}=${a.agentId}`] } });
  await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  await docker.getNetwork(networkName(a.agentName)).remove().catch(() => undefined);
  fs.rmSync(a.base, { recursive: true, force: true });
}

function pooled(a: Agent): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${Labels.agent}=${a.agentId}`, POOL_LABEL] } });
}

function spec(a: Agent, extra: Partial<SessionSpec> = {}): SessionSpec {
  return sessionSpec(a.image, { limits: LIMITS, env: [], ...extra });
}

describe('WARM_POOL_SIZE and DEFAULT_IMAGE (agent config)', () => {
  const base = { AGENT_TOKEN: 'x.y.z' };
  it('defaults to no pool of node:20-bullseye', () => {
    expect(loadAgentConfig(base)).toMatchObject({ warmPoolSize: 0, defaultImage: 'node:20-bullseye' });
  });
  it('takes a whole number from 0 to 100 and the edge\'s DEFAULT_IMAGE', () => {
    expect(loadAgentConfig({ ...base, WARM_POOL_SIZE: '4', DEFAULT_IMAGE: 'mominai/busybox:test' })).toMatchObject({ warmPoolSize: 4, defaultImage: 'mominai/busybox:test' });
  });
  it('fails fast naming the variable', () => {
    expect(() => loadAgentConfig({ ...base, WARM_POOL_SIZE: '101' })).toThrow(new ConfigError('WARM_POOL_SIZE must be a number from 0 to 100, not "101"'));
    expect(() => loadAgentConfig({ ...base, WARM_POOL_SIZE: '1.5' })).toThrow(new ConfigError('WARM_POOL_SIZE must be a whole number'));
    expect(() => loadAgentConfig({ ...base, DEFAULT_IMAGE: 'bad image' })).toThrow(new ConfigError('DEFAULT_IMAGE must be an image reference like node:20-bullseye, not "bad image"'));
  });
});

describe.skipIf(!hasDocker)('WarmPool', () => {
  describe('what Docker allows on a running container', () => {
    let a: Agent;
    let id = '';
    beforeAll(async () => {
      a = await newAgent();
      fs.mkdirSync(path.join(a.base, 'slot'));
      const c = await docker.createContainer({
        Image: a.image,
        Cmd: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done'],
        Labels: { [Labels.agent]: a.agentId, [POOL_LABEL]: 'slot' },
        HostConfig: { Binds: [`${path.join(a.base, 'slot')}:/workspace`], Init: true },
      });
      await c.start();
      id = c.id;
    });
    afterAll(() => cleanupAgent(a));

    it('ignores labels in an update: a claim cannot relabel a container', async () => {
      await docker.getContainer(id).update({ Labels: { [Labels.user]: 'usr_x' } });
      expect((await docker.getContainer(id).inspect()).Config.Labels).toEqual({ [Labels.agent]: a.agentId, [POOL_LABEL]: 'slot' });
    });

    it('keeps /workspace on a bind source folder that was renamed, and mounts the configured path (through a symlink) after a restart', async () => {
      fs.mkdirSync(path.join(a.base, 'usr'));
      fs.renameSync(path.join(a.base, 'slot'), path.join(a.base, 'usr', 'ses'));
      fs.writeFileSync(path.join(a.base, 'usr', 'ses', 'after-rename'), 'x');
      const c = docker.getContainer(id);
      await c.rename({ name: `mominai-${id.slice(0, 12)}-renamed` });
      const ls = async () => {
        const exec = await c.exec({ Cmd: ['ls', '/workspace'], AttachStdout: true, AttachStderr: true });
        const stream = await exec.start({ hijack: true, stdin: false });
        const chunks: Buffer[] = [];
        await new Promise((resolve) => stream.on('data', (d: Buffer) => chunks.push(d)).on('end', resolve));
        return Buffer.concat(chunks).toString('latin1');
      };
      expect(await ls()).toContain('after-rename');
      expect((await c.inspect()).Name).toBe(`/mominai-${id.slice(0, 12)}-renamed`);
      fs.symlinkSync(path.join(a.base, 'usr', 'ses'), path.join(a.base, 'slot'));
      await c.restart({ t: 1 });
      expect(await ls()).toContain('after-rename');
    });
  });

  describe('claims', () => {
    let a: Agent;
    let plain: Agent;
    let runtime: DockerRuntime;
    let plainRuntime: DockerRuntime;
    let before: Docker.ContainerInfo[];
    beforeAll(async () => {
      a = await newAgent();
      plain = await newAgent();
      runtime = runtimeFor(a, 2);
      plainRuntime = runtimeFor(plain, 0);
      await runtime.pool.reconcile();
      await runtime.pool.fill();
      before = await pooled(a);
    });
    afterAll(async () => {
      await cleanupAgent(a, runtime);
      await cleanupAgent(plain, plainRuntime);
    });

    it('keeps WARM_POOL_SIZE started containers that carry no session, user or ports label', () => {
      expect(runtime.pool.available).toBe(2);
      expect(before.map((c) => c.State)).toEqual(['running', 'running']);
      for (const c of before) {
        expect(Object.keys(c.Labels).sort()).toEqual([Labels.agent, Labels.managed, Labels.network, POOL_LABEL].sort());
        expect(c.Labels[POOL_LABEL]).toMatch(/^pool-[0-9a-f]{16}$/);
      }
    });

    it('gives a pooled container the limits, user, network and privileges a normal create gives', async () => {
      const normal = await plainRuntime.create(spec(plain));
      const n = await docker.getContainer(normal.containerId!).inspect();
      const p = await docker.getContainer(before[0]!.Id).inspect();
      const pick = (i: Docker.ContainerInspectInfo) => ({
        host: {
          Memory: i.HostConfig.Memory,
          MemorySwap: i.HostConfig.MemorySwap,
          NanoCpus: i.HostConfig.NanoCpus,
          PidsLimit: i.HostConfig.PidsLimit,
          CapDrop: i.HostConfig.CapDrop,
          CapAdd: i.HostConfig.CapAdd,
          SecurityOpt: i.HostConfig.SecurityOpt,
          Init: i.HostConfig.Init,
          Privileged: i.HostConfig.Privileged,
          Runtime: i.HostConfig.Runtime,
          PortBindings: i.HostConfig.PortBindings,
          RestartPolicy: i.HostConfig.RestartPolicy,
        },
        User: i.Config.User,
        Cmd: i.Config.Cmd,
        Entrypoint: i.Config.Entrypoint,
        WorkingDir: i.Config.WorkingDir,
        Image: i.Image,
      });
      expect(pick(p)).toEqual(pick(n));
      expect(p.HostConfig.NetworkMode).toBe(networkName(a.agentName));
      expect(n.HostConfig.NetworkMode).toBe(networkName(plain.agentName));
      expect(p.HostConfig.Memory).toBe(LIMITS.memoryBytes);
      expect(p.Config.User).toBe(n.Config.User);
    });

    it('makes a pooled container the session\'s without restarting it: name, workspace, env, owner', async () => {
      const s = spec(a, { env: ['GREETING=from-claim'], ports: [3000] });
      const startedAt = new Map(await Promise.all(before.map(async (c) => [c.Id, (await docker.getContainer(c.Id).inspect()).State.StartedAt] as const)));
      const info = await runtime.create(s);
      expect(startedAt.has(info.containerId!)).toBe(true);
      const inspect = await docker.getContainer(info.containerId!).inspect();
      expect(inspect.State.StartedAt).toBe(startedAt.get(info.containerId!));
      expect(inspect.Name).toBe(`/mominai-${s.sessionId}`);
      expect(inspect.Config.Labels?.[Labels.user]).toBeUndefined();
      expect(info).toMatchObject({ sessionId: s.sessionId, userId: s.userId, state: 'running', workspace: path.join(a.base, s.userId, s.sessionId) });
      expect((await runtime.list()).find((x) => x.sessionId === s.sessionId)?.userId).toBe(s.userId);
      fs.writeFileSync(path.join(info.workspace, 'from-host'), 'x');
      expect((await run(runtime, s.sessionId, ['sh', '-c', 'ls /workspace; echo "$GREETING"'])).stdout).toBe('from-host\nfrom-claim\n');
      // After a stop and start the engine mounts the slot path again, which now points at the workspace.
      await runtime.stop(s.sessionId);
      await runtime.start(s.sessionId);
      expect((await run(runtime, s.sessionId, ['ls', '/workspace'])).stdout).toBe('from-host\n');
      await runtime.pool.fill();
      expect(runtime.pool.available).toBe(2);
    });

    it('gives two users claiming from the pool nothing of each other: files, env, processes', async () => {
      const sa = spec(a, { env: ['SECRET=alpha'] });
      const sb = spec(a, { env: ['SECRET=beta'] });
      const infoA = await runtime.create(sa);
      await run(runtime, sa.sessionId, ['sh', '-c', 'echo alpha > /workspace/mine']);
      const bg = await runtime.exec(sa.sessionId, { command: ['sleep', '4242'] });
      const infoB = await runtime.create(sb);
      const pooledIds = new Set((await pooled(a)).map((c) => c.Id));
      expect(pooledIds.has(infoA.containerId!) && pooledIds.has(infoB.containerId!)).toBe(true);
      const look = ['sh', '-c', 'ls -A /workspace; echo "env:$SECRET"; ps -o args | grep -c "[s]leep 4242" || true'];
      expect((await run(runtime, sb.sessionId, look)).stdout).toBe('env:beta\n0\n');
      // The same look from A's side sees A's own file, env and process: the check can see what it looks for.
      expect((await run(runtime, sa.sessionId, look)).stdout).toBe('mine\nenv:alpha\n1\n');
      await bg.kill('SIGKILL');
      await bg.exited;
    });

    it('creates a container as usual when the request asks for other limits or another network', async () => {
      await runtime.pool.fill();
      const other = spec(a, { limits: { ...LIMITS, pids: 65 } });
      const info = await runtime.create(other);
      const labels = (await docker.getContainer(info.containerId!).inspect()).Config.Labels ?? {};
      expect(labels[Labels.user]).toBe(other.userId);
      expect(labels[POOL_LABEL]).toBeUndefined();
      const isolated = await runtime.create(spec(a, { network: 'none' }));
      expect((await docker.getContainer(isolated.containerId!).inspect()).Config.Labels?.[POOL_LABEL]).toBeUndefined();
      expect(runtime.pool.available).toBe(2);
    });

    it('forgets the claim when the session is removed: record, slot symlink and workspace', async () => {
      const s = spec(a);
      const info = await runtime.create(s);
      const slot = (await docker.getContainer(info.containerId!).inspect()).Config.Labels?.[POOL_LABEL] ?? '';
      expect(fs.lstatSync(slotPath(a.base, slot)).isSymbolicLink()).toBe(true);
      await runtime.remove(s.sessionId);
      expect(fs.existsSync(path.join(a.base, '.pool', 'claims', `${info.containerId}.json`))).toBe(false);
      expect(fs.existsSync(slotPath(a.base, slot))).toBe(false);
      expect(fs.existsSync(info.workspace)).toBe(false);
      expect((await runtime.list()).some((x) => x.sessionId === s.sessionId)).toBe(false);
    });
  });

  describe('with the session daemon (SESSION_DAEMON)', () => {
    let a: Agent;
    let runtime: DockerRuntime;
    afterAll(() => cleanupAgent(a, runtime));

    it('claims a pooled container whose daemon then serves the session, also after a stop and start', async () => {
      a = await newAgent('node');
      runtime = runtimeFor(a, 1, true);
      await runtime.pool.reconcile();
      await runtime.pool.fill();
      const [p] = await pooled(a);
      expect(p?.Labels[Labels.daemon]).toBe('on');
      const s = spec(a, { env: ['GREETING=via-daemon'] });
      const info = await runtime.create(s);
      expect(info.containerId).toBe(p!.Id);
      // procNetTcp answers only through the daemon (null means docker exec): the moved socket folder and key work.
      expect(typeof (await runtime.procNetTcp(s.sessionId))).toBe('string');
      expect((await run(runtime, s.sessionId, ['sh', '-c', 'echo "$GREETING"'])).stdout).toBe('via-daemon\n');
      await runtime.stop(s.sessionId);
      await runtime.start(s.sessionId);
      expect(typeof (await runtime.procNetTcp(s.sessionId))).toBe('string');
      expect((await run(runtime, s.sessionId, ['sh', '-c', 'echo "$GREETING"'])).stdout).toBe('via-daemon\n');
    });
  });

  describe('a claim the egress guard refuses', () => {
    let a: Agent;
    afterAll(() => cleanupAgent(a));

    it('refuses the create as a normal one would, and undoes the claim: no record, no workspace, no container', async () => {
      a = await newAgent();
      const claims = new ClaimStore(a.base, memoryLogger('warn'));
      const pool = new WarmPool({
        docker,
        logger: memoryLogger('error'),
        workspaceBase: a.base,
        size: 1,
        template: { image: a.image, limits: LIMITS, network: 'none' },
        agentFilters: [`${Labels.agent}=${a.agentId}`],
        claims,
        create: async (slot) => {
          fs.mkdirSync(slotPath(a.base, slot), { recursive: true });
          const c = await docker.createContainer({
            Image: a.image,
            Cmd: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done'],
            Labels: { [Labels.agent]: a.agentId, [POOL_LABEL]: slot },
            HostConfig: { Binds: [`${slotPath(a.base, slot)}:/workspace`], Init: true, NetworkMode: 'none' },
          });
          await c.start();
          return { id: c.id, slot, imageId: (await c.inspect()).Image };
        },
        beforeClaim: async () => {
          throw new AppError(ErrorCode.AgentUnavailable, 'this agent cannot enforce its egress policy; it starts no containers');
        },
      });
      await pool.fill();
      const [p] = await pooled(a);
      const s = spec(a, { network: 'none' });
      await expect(pool.claim(s)).rejects.toMatchObject({ code: ErrorCode.AgentUnavailable });
      expect(claims.all()).toEqual([]);
      expect(fs.existsSync(path.join(a.base, s.userId, s.sessionId))).toBe(false);
      await expect(docker.getContainer(p!.Id).inspect()).rejects.toMatchObject({ statusCode: 404 });
      await pool.close();
    });
  });

  describe('reconciliation after a killed agent', () => {
    let a: Agent;
    let first: DockerRuntime;
    let second: DockerRuntime;
    afterAll(() => cleanupAgent(a, first, second));

    it('removes unclaimed pooled containers, keeps claimed sessions, and finishes a claim cut short', async () => {
      a = await newAgent();
      first = runtimeFor(a, 3);
      await first.pool.reconcile();
      await first.pool.fill();
      const claimed = spec(a, { env: ['K=v'] });
      const info = await first.create(claimed);
      await first.pool.fill();
      // The agent dies between writing a claim record and renaming anything.
      const unclaimed = (await pooled(a)).filter((c) => c.Id !== info.containerId);
      expect(unclaimed.length).toBe(3);
      const cut = unclaimed[0]!;
      const cutShort = spec(a);
      await new ClaimStore(a.base, memoryLogger('warn')).put({
        v: 1,
        containerId: cut.Id,
        slot: cut.Labels[POOL_LABEL] ?? '',
        sessionId: cutShort.sessionId,
        userId: cutShort.userId,
        ports: [],
        env: [],
        claimedAt: Date.now(),
      });
      // A new agent process with the same identity and no pool.
      second = runtimeFor(a, 0);
      await second.pool.reconcile();
      const left = await pooled(a);
      expect(left.map((c) => c.Id).sort()).toEqual([info.containerId!, cut.Id].sort());
      const sessions = await second.list();
      expect(sessions.map((x) => [x.sessionId, x.userId]).sort()).toEqual(
        [
          [claimed.sessionId, claimed.userId],
          [cutShort.sessionId, cutShort.userId],
        ].sort(),
      );
      expect((await docker.getContainer(cut.Id).inspect()).Name).toBe(`/mominai-${cutShort.sessionId}`);
      expect(fs.existsSync(path.join(a.base, cutShort.userId, cutShort.sessionId))).toBe(true);
      expect(fs.readdirSync(path.dirname(slotPath(a.base, 'x'))).sort()).toEqual(
        [info.containerId!, cut.Id].map((id) => left.find((c) => c.Id === id)!.Labels[POOL_LABEL]).sort(),
      );
      expect((await run(second, claimed.sessionId, ['sh', '-c', 'echo "$K"'])).stdout).toBe('v\n');
    });
  });
});
