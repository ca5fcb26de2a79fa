/** The runtimes' pure pieces, without an engine. */
import { describe, expect, it } from 'vitest';
import { CAP_ADD, containerOptions, Labels } from '../../../agent/runtime/docker/container-spec';
import { Demultiplexer } from '../../../agent/runtime/docker/demux';
import { killCommand } from '../../../agent/runtime/docker/exec-kill';
import { pack } from 'tar-stream';
import { Readable } from 'node:stream';
import { chooseUser, parsePasswd, readRegularFile, ROOT } from '../../../agent/runtime/docker/image-user';
import { networkName } from '../../../agent/runtime/docker/network';
import type Docker from 'dockerode';
import { memoryLogger } from '../../../agent/logger';
import { figuresOf, StatsSampler } from '../../../agent/runtime/docker/stats-sampler';
import { shellQuote } from '../../../agent/runtime/local/local-process';
import { parseStat, processTree, type ProcEntry } from '../../../agent/runtime/local/proc';
import { shellSignal, signalsFor } from '../../../agent/runtime/signals';
import { checkId } from '../../../agent/runtime/workspace';
import { sessionSpec } from './runtime-contract';

function frame(kind: number, text: string): Buffer {
  const body = Buffer.from(text);
  const head = Buffer.alloc(8);
  head[0] = kind;
  head.writeUInt32BE(body.length, 4);
  return Buffer.concat([head, body]);
}

describe('choosing the container user', () => {
  const passwd = parsePasswd('root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/bash\nweb:x:1001:1002::/srv:/bin/sh\n');

  it('takes the uid-1000 user when the image sets no USER', () => {
    expect(chooseUser('', passwd)).toEqual({ uid: 1000, gid: 1000, user: '1000:1000', name: 'node' });
  });
  it('honours the image USER by name or number', () => {
    expect(chooseUser('web', passwd)).toMatchObject({ user: '1001:1002', name: 'web' });
    expect(chooseUser('1001:5', passwd)).toMatchObject({ user: '1001:5' });
    expect(chooseUser('4242', passwd)).toMatchObject({ user: '4242:4242' });
  });
  it('falls back to another ordinary user, then to CONTAINER_USER, never root by default', () => {
    expect(chooseUser('', parsePasswd('root:x:0:0::/:/bin/sh\ndev:x:1500:1500::/h:/bin/sh'))).toMatchObject({ user: '1500:1500' });
    expect(chooseUser('', parsePasswd('root:x:0:0::/:/bin/sh\nnobody:x:65534:65534::/:/bin/false'))).toEqual({ uid: 1000, gid: 1000, user: '1000:1000' });
    expect(chooseUser('', [])).toEqual({ uid: 1000, gid: 1000, user: '1000:1000' });
    expect(chooseUser('root', parsePasswd('root:x:0:0::/:/bin/sh'))).toEqual({ uid: 1000, gid: 1000, user: '1000:1000' });
    expect(chooseUser('0:0', [], { fallback: { uid: 2000, gid: 3000 }, allowRoot: false })).toEqual({ uid: 2000, gid: 3000, user: '2000:3000' });
  });
  it('runs root-only images as root only with ALLOW_ROOT_CONTAINERS', () => {
    expect(chooseUser('', parsePasswd('root:x:0:0::/:/bin/sh'), { fallback: { uid: 1000, gid: 1000 }, allowRoot: true })).toEqual(ROOT);
  });
});

describe('reading /etc/passwd out of an image archive', () => {
  async function archive(entries: Array<{ name: string; type?: 'file' | 'directory' | 'symlink'; body?: Buffer; linkname?: string }>) {
    const p = pack();
    for (const e of entries) {
      const header = { name: e.name, type: e.type ?? 'file', ...(e.linkname ? { linkname: e.linkname } : {}) };
      if (e.body) p.entry(header, e.body);
      else p.entry(header);
    }
    p.finalize();
    return p as unknown as NodeJS.ReadableStream;
  }
  it('returns a regular file up to the limit', async () => {
    expect((await readRegularFile(await archive([{ name: 'passwd', body: Buffer.from('root:x:0:0::/:/bin/sh\n') }]), 1024))?.toString()).toBe(
      'root:x:0:0::/:/bin/sh\n',
    );
  });
  it('ignores a directory, a symlink and a file over the limit', async () => {
    expect(await readRegularFile(await archive([{ name: 'passwd', type: 'directory' }]), 1024)).toBeUndefined();
    expect(await readRegularFile(await archive([{ name: 'passwd', type: 'symlink', linkname: '/dev/zero' }]), 1024)).toBeUndefined();
    expect(await readRegularFile(await archive([{ name: 'passwd', body: Buffer.alloc(2048, 97) }]), 1024)).toBeUndefined();
  });
  it('stops reading an endless stream after the header', async () => {
    // The header of a 50 MiB file, then zeros for as long as anyone reads.
    const packer = pack();
    packer.entry({ name: 'passwd', size: 50 * 1024 * 1024 });
    const header = await new Promise<Buffer>((resolve) => packer.once('data', (d: unknown) => resolve(Buffer.from(d as Uint8Array).subarray(0, 512))));
    let pushed = 0;
    const endless = new Readable({
      read() {
        pushed++;
        this.push(pushed === 1 ? header : Buffer.alloc(65536));
      },
    });
    expect(await readRegularFile(endless, 1024)).toBeUndefined();
    expect(pushed).toBeLessThan(64);
  });
});

describe('container options', () => {
  const spec = sessionSpec('img', { limits: { cpu: 1.5, memoryBytes: 256 * 1024 * 1024, pids: 100 } });
  const opts = containerOptions({ spec, imageId: 'sha256:1', user: ROOT, network: 'mominai-a', workspace: '/ws/u/s', agent: 'a' });

  it('limits, drops and labels as documented, publishing nothing', () => {
    expect(opts.HostConfig).toMatchObject({
      Memory: 256 * 1024 * 1024,
      MemorySwap: 256 * 1024 * 1024,
      NanoCpus: 1_500_000_000,
      PidsLimit: 100,
      CapDrop: ['ALL'],
      CapAdd: [...CAP_ADD],
      SecurityOpt: ['no-new-privileges'],
      Init: true,
      NetworkMode: 'mominai-a',
      PortBindings: {},
      Binds: ['/ws/u/s:/workspace'],
    });
    expect(opts.Labels).toMatchObject({ [Labels.managed]: 'true', [Labels.session]: spec.sessionId, [Labels.agent]: 'a' });
    expect(opts.Entrypoint).toEqual([]);
  });
  it('names a network after the agent, safely', () => {
    expect(networkName('Build Box #1')).toBe('mominai-build-box-1');
    expect(networkName('')).toBe('mominai-agent');
  });
});

describe('Demultiplexer', () => {
  it('splits frames across chunk boundaries into stdout and stderr', async () => {
    const d = new Demultiplexer();
    const all = Buffer.concat([frame(1, 'out1 '), frame(2, 'err'), frame(1, 'out2')]);
    let out = '';
    let err = '';
    d.stdout.on('data', (c: Buffer) => (out += c));
    d.stderr.on('data', (c: Buffer) => (err += c));
    for (let i = 0; i < all.length; i += 3) d.write(all.subarray(i, i + 3));
    d.end();
    await new Promise((r) => d.stdout.on('end', r));
    expect([out, err]).toEqual(['out1 out2', 'err']);
  });
  it('holds the source back while a reader does not read', async () => {
    const d = new Demultiplexer();
    const big = frame(1, 'x'.repeat(64 * 1024));
    d.write(big);
    d.write(big);
    await new Promise((r) => setTimeout(r, 10));
    // stdout's buffer is full, so the first chunk is not acknowledged and the second waits.
    expect(d.writableLength).toBe(2 * big.length);
    d.stdout.resume();
    await new Promise((r) => setTimeout(r, 10));
    expect(d.writableLength).toBe(0);
  });
});

describe('stats samples', () => {
  it('computes CPU like docker stats and leaves page cache out of memory', () => {
    const s = figuresOf({
      cpu_stats: { cpu_usage: { total_usage: 3_000 }, system_cpu_usage: 20_000, online_cpus: 2 },
      precpu_stats: { cpu_usage: { total_usage: 1_000 }, system_cpu_usage: 10_000 },
      memory_stats: { usage: 50_000, limit: 100_000, stats: { total_inactive_file: 10_000 } },
      networks: { eth0: { rx_bytes: 5, tx_bytes: 7 }, eth1: { rx_bytes: 1, tx_bytes: 1 } },
      pids_stats: { current: 3 },
    });
    expect(s).toEqual({ cpuPercent: 40, memoryUsed: 40_000, memoryLimit: 100_000, networkRx: 6, networkTx: 8, pids: 3 });
  });

  it('reads one-shot samples, serves one younger than a second from the cache, and measures CPU since the previous one', async () => {
    let now = 1_000_000;
    const asked: string[] = [];
    let total = 0;
    let system = 0;
    const docker = {
      getContainer: (id: string) => ({
        inspect: async () => (asked.push(`inspect ${id}`), { State: { Running: id === 'c1', StartedAt: new Date(now - 5_000).toISOString() } }),
        stats: async (opts: unknown) => {
          asked.push(`stats ${id} ${JSON.stringify(opts)}`);
          await new Promise((r) => setTimeout(r, 1));
          return { cpu_stats: { cpu_usage: { total_usage: total }, system_cpu_usage: system, online_cpus: 2 }, precpu_stats: {}, memory_stats: { usage: 7, limit: 9 }, pids_stats: { current: 2 } };
        },
      }),
    };
    const sampler = new StatsSampler({ docker: docker as unknown as Docker, logger: memoryLogger('error'), now: () => now });
    // The first sample has nothing to measure CPU against; two asks at once share one stats read.
    total = 1_000;
    system = 100_000;
    const [a, b] = await Promise.all([sampler.get('c1'), sampler.get('c1')]);
    expect(a).toEqual({ cpuPercent: 0, memoryUsed: 7, memoryLimit: 9, networkRx: 0, networkTx: 0, pids: 2, uptimeSeconds: 5 });
    expect(b).toEqual(a);
    expect(asked).toEqual(['inspect c1', 'inspect c1', 'stats c1 {"stream":false,"one-shot":true}']);
    now += 999;
    expect((await sampler.get('c1'))?.uptimeSeconds).toBe(6);
    expect(asked).toHaveLength(3);
    // A second later: a new read, CPU over the interval (a quarter of the system's time on 2 CPUs = 50 %).
    now += 1;
    total = 26_000;
    system = 200_000;
    expect((await sampler.get('c1'))?.cpuPercent).toBe(50);
    expect(asked).toHaveLength(4);
    // A stopped container has no figures and is not read.
    expect(await sampler.get('c2')).toBeNull();
    expect(asked.slice(4)).toEqual(['inspect c2']);
  });
});

describe('signals and kills', () => {
  it('accepts known signal names only', () => {
    expect(shellSignal('SIGTERM')).toBe('TERM');
    expect(() => shellSignal('SIGNOPE')).toThrow(/unknown signal/);
    expect(() => killCommand('abc', ['SIGBOGUS' as NodeJS.Signals])).toThrow();
  });
  it('hangs up a terminal before SIGTERM, since interactive shells ignore SIGTERM', () => {
    expect(signalsFor('SIGTERM', true)).toEqual(['SIGHUP', 'SIGTERM']);
    expect(signalsFor('SIGTERM', false)).toEqual(['SIGTERM']);
    expect(signalsFor('SIGKILL', true)).toEqual(['SIGKILL']);
  });
  it('finds a process tree by parent, group and session', () => {
    const p = (pid: number, ppid: number, pgid: number, sid: number): ProcEntry => ({ pid, state: 'S', ppid, pgid, sid, cpuTicks: 0, rssPages: 0 });
    const procs = [p(10, 1, 10, 10), p(11, 10, 10, 10), p(12, 1, 10, 10), p(13, 11, 13, 13), p(20, 1, 20, 20)];
    expect(processTree(10, procs).map((e) => e.pid).sort()).toEqual([10, 11, 12, 13]);
    expect(parseStat('42 (a (b) c) S 1 42 42 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 0 0 99')).toMatchObject({ pid: 42, state: 'S', ppid: 1, cpuTicks: 10, rssPages: 99 });
  });
  it('quotes arguments for sh', () => {
    expect(shellQuote('plain-arg')).toBe('plain-arg');
    expect(shellQuote("it's a $x")).toBe(`'it'\\''s a $x'`);
  });
});

describe('ids that become paths', () => {
  it('accepts generated ids and refuses anything that could leave a folder', () => {
    expect(checkId('sessionId', 'ses_0123abcd')).toBe('ses_0123abcd');
    for (const bad of ['', '..', '.hidden', 'a/b', 'a'.repeat(65), 'x y']) expect(() => checkId('sessionId', bad)).toThrow();
  });
});
