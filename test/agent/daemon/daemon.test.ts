/**
 * The session daemon as it ships (the esbuild bundle), run on this host with
 * a run folder of its own, driven through the agent's real client: the
 * handshake and its refusals, processes and their streams, and what a
 * restarted agent gets back (every byte from the acknowledged offset, once).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../../agent/logger';
import { encodeJson, FrameReader, SECRET_FILE_NAME, DAEMON_SOCKET_NAME } from '../../../agent/daemon/protocol';
import { ensureDaemonBundle } from '../../../agent/runtime/daemon/bundle';
import { DaemonClient } from '../../../agent/runtime/daemon/daemon-client';
import { daemonAdopt, daemonExec } from '../../../agent/runtime/daemon/daemon-exec';
import type { ProcessHandle } from '../../../agent/runtime/runtime';

const log = memoryLogger('error');

function text(stream: NodeJS.ReadableStream | null): Promise<string> {
  if (!stream) return Promise.resolve('');
  return new Promise((resolve) => {
    let s = '';
    stream.on('data', (c: Buffer) => (s += c.toString()));
    stream.on('end', () => resolve(s));
  });
}

/** Resolves once `stream` has produced `want` (returns everything read so far). */
function until(stream: NodeJS.ReadableStream, want: string): Promise<string> {
  return new Promise((resolve) => {
    let s = '';
    const on = (c: Buffer) => {
      s += c.toString();
      if (s.includes(want)) {
        stream.off('data', on);
        resolve(s);
      }
    };
    stream.on('data', on);
  });
}

describe('session daemon', () => {
  let dir: string;
  let runDir: string;
  let secret: Buffer;
  let daemon: ChildProcess;
  const clients: DaemonClient[] = [];
  const connect = async (key = secret) => {
    const c = await DaemonClient.connect(path.join(runDir, DAEMON_SOCKET_NAME), key, log);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mominai-daemon-'));
    runDir = path.join(dir, 'run');
    fs.mkdirSync(runDir);
    fs.mkdirSync(path.join(dir, 'workspace'));
    const bundle = await ensureDaemonBundle(dir);
    secret = randomBytes(32);
    fs.writeFileSync(path.join(runDir, SECRET_FILE_NAME), secret.toString('hex'), { mode: 0o400 });
    daemon = spawn(process.execPath, [bundle, runDir], { stdio: ['ignore', 'ignore', 'pipe'], cwd: path.join(dir, 'workspace') });
    await until(daemon.stderr!, '"listening"');
  });
  afterAll(() => {
    for (const c of clients) c.close();
    daemon?.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('handshake', () => {
    it('unlinks its secret before it listens', () => {
      expect(fs.existsSync(path.join(runDir, SECRET_FILE_NAME))).toBe(false);
      expect(fs.statSync(path.join(runDir, DAEMON_SOCKET_NAME)).mode & 0o777).toBe(0o600);
    });

    it('closes the socket of a client that does not hold the secret, and still serves one that does', async () => {
      await expect(DaemonClient.connect(path.join(runDir, DAEMON_SOCKET_NAME), randomBytes(32), log)).rejects.toThrow('the session daemon closed the connection');
      const ok = await connect();
      expect((await ok.request('list', {})).processes).toEqual([]);
    });

    it('answers nothing but its hello before a valid auth (a request is refused with a closed socket)', async () => {
      const sock = net.createConnection(path.join(runDir, DAEMON_SOCKET_NAME));
      const reader = new FrameReader();
      const frames: string[] = [];
      sock.on('data', (c: Buffer) => frames.push(...reader.push(c).map((f) => (f.type === 'json' ? f.text : f.type))));
      await new Promise((r) => sock.once('connect', r));
      sock.write(encodeJson({ t: 'req', id: 1, m: 'list', p: {} }));
      await new Promise((r) => sock.once('close', r));
      expect(frames).toHaveLength(1);
      expect(JSON.parse(frames[0]!)).toMatchObject({ t: 'hello', version: 1 });
    });
  });

  describe('processes', () => {
    it('runs a command with stdout and stderr apart and reports its exit code', async () => {
      const c = await connect();
      const h = await daemonExec(c, { command: ['sh', '-c', 'echo out; echo err >&2; exit 4'] });
      const [out, err, exit] = await Promise.all([text(h.stdout), text(h.stderr), h.exited]);
      expect({ out, err, exit }).toEqual({ out: 'out\n', err: 'err\n', exit: { exitCode: 4, reason: 'exit' } });
    });

    it('answers a program that does not exist with exit 127 naming it', async () => {
      const c = await connect();
      const h = await daemonExec(c, { command: ['no-such-program-xyz'] });
      const [err, exit] = await Promise.all([text(h.stderr), h.exited, text(h.stdout)]);
      expect(err).toBe('no-such-program-xyz: command not found\n');
      expect(exit).toEqual({ exitCode: 127, reason: 'exit' });
    });

    it('kills the whole tree of a command and reports the signal it was asked to send', async () => {
      const c = await connect();
      const mark = `sleep ${40_000 + Math.floor(Math.random() * 9_999)}`;
      const h = await daemonExec(c, { command: ['sh', '-c', `${mark} & ${mark} & wait`] });
      h.stdout.resume();
      h.stderr?.resume();
      const cmdline = (p: string) => {
        try {
          return fs.readFileSync(`/proc/${p}/cmdline`, 'latin1').replace(/\0/g, ' ').trim();
        } catch {
          return '';
        }
      };
      const count = () => fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p) && cmdline(p) === mark).length;
      for (let i = 0; i < 200 && count() < 2; i++) await new Promise((r) => setTimeout(r, 10));
      expect(count()).toBe(2);
      await h.kill('SIGTERM');
      expect(await h.exited).toEqual({ exitCode: 143, signal: 'SIGTERM', reason: 'killed' });
      for (let i = 0; i < 200 && count() > 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(count()).toBe(0);
    });

    it('gives a PTY through script(1) whose size follows resize', async () => {
      const c = await connect();
      expect(c.pty).toBe(true);
      const h = await daemonExec(c, { command: ['sh'], tty: true, cols: 80, rows: 24 });
      expect(h.stderr).toBeNull();
      h.write('stty size\n');
      await until(h.stdout, '24 80');
      await h.resize(100, 40);
      h.write('stty size\n');
      await until(h.stdout, '40 100');
      h.write('exit 5\n');
      expect(await h.exited).toEqual({ exitCode: 5, reason: 'exit' });
    });
  });

  describe('a restarted agent', () => {
    it('finds a running process and gets every byte from the acknowledged offset exactly once', async () => {
      const first = await connect();
      const tag = { processId: 'prc_0123456789abcdef', streamBase: 16, command: ['sh'] };
      const h: ProcessHandle = await daemonExec(first, { command: ['sh', '-c', 'read a; echo first-line; read b; echo second-line'], tag });
      h.write('go\n');
      await until(h.stdout, 'first-line\n');
      // The edge holds the first 6 bytes ("first-"); then the agent dies.
      h.ack!('stdout', 6);
      const second = await connect();
      // The newer connection wins: the old one is closed and its handles end as lost.
      expect(await h.exited).toEqual({ exitCode: null, reason: 'lost' });
      const found = await daemonAdopt(second);
      const mine = found.find((a) => a.tag.processId === tag.processId)!;
      expect(mine.tag).toEqual(tag);
      expect(mine.offsets).toEqual({ stdout: 6, stderr: 0 });
      const out = text(mine.handle.stdout);
      await mine.resume();
      mine.handle.write('go\n');
      expect(await mine.handle.exited).toEqual({ exitCode: 0, reason: 'exit' });
      expect(await out).toBe('line\nsecond-line\n');
    });

    it('gets the rest and the exit of a process that ended while no agent was connected', async () => {
      const first = await connect();
      const tag = { processId: 'prc_fedcba9876543210', streamBase: 32, command: ['sh'] };
      const h = await daemonExec(first, { command: ['sh', '-c', 'read a; printf abcdef; exit 9'], tag });
      first.close();
      await h.exited;
      const second = await connect();
      // Input from the new agent reaches the process; its whole output and exit follow.
      let mine = (await daemonAdopt(second)).find((a) => a.tag.processId === tag.processId)!;
      const out = text(mine.handle.stdout);
      await mine.resume();
      mine.handle.write('x\n');
      expect(await mine.handle.exited).toEqual({ exitCode: 9, reason: 'exit' });
      expect(await out).toBe('abcdef');
      second.close();
      const third = await connect();
      mine = (await daemonAdopt(third)).find((a) => a.tag.processId === tag.processId)!;
      expect(mine.offsets).toEqual({ stdout: 0, stderr: 0 });
      const again = text(mine.handle.stdout);
      await mine.resume();
      expect(await mine.handle.exited).toEqual({ exitCode: 9, reason: 'exit' });
      expect(await again).toBe('abcdef');
    });
  });

  describe('ports', () => {
    it('reads the TCP tables without running anything', async () => {
      const c = await connect();
      const { text: tables } = await c.request('ports', {});
      expect(tables).toMatch(/^\s*sl\s+local_address/);
    });
  });
});
