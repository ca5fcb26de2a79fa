/**
 * MominaiClient against the real stack (workerd edge, agent, dockerd):
 * accounts, sessions, files of any size, watches that see commands' work,
 * tar uploads, errors, and a connection that never loses output.
 */
import { createHash, randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeTar, MominaiClient, MominaiError, type FileChange, type GapInfo, type SessionConnection } from '@mominai/client';
import { WebContainer } from '@mominai/client/webcontainer';
import { hasDocker } from '../helpers/docker';
import type { TestStack } from '../helpers/stack';
import { MiB, newClient, readAll, startStack, waitFor } from './setup';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe.skipIf(!hasDocker)('MominaiClient (real stack, Docker)', () => {
  let stack: TestStack;
  let client: MominaiClient;
  let sessionId: string;
  let conn: SessionConnection;

  beforeAll(async () => {
    stack = await startStack('busybox', 'sdk-agent');
    client = await newClient(stack, 'sdk');
    const session = await client.sessions.create({ name: 'sdk test' });
    sessionId = session.id;
    conn = await client.connect(sessionId);
  });
  afterAll(async () => {
    conn?.close();
    if (sessionId) await client.sessions.delete(sessionId).catch(() => undefined);
    await stack?.stop();
  });

  describe('accounts and sessions', () => {
    it('registers, logs in and knows who it is', async () => {
      const me = await client.me();
      expect(me.id).toMatch(/^usr_/);
      const other = new MominaiClient({ baseUrl: stack.baseUrl });
      const account = { email: `login-${Date.now()}@example.com`, password: 'a long enough password', username: `login_${Date.now().toString(36)}` };
      const registered = await other.register(account);
      other.setToken(undefined);
      const logged = await other.login({ email: account.email, password: account.password });
      expect(logged.user).toEqual(registered.user);
      expect(await other.me()).toEqual(registered.user);
    }, 180_000);

    it('creates, lists, gets and runs a command to completion in a session', async () => {
      const s = await client.sessions.get(sessionId);
      expect(s).toMatchObject({ id: sessionId, name: 'sdk test', status: 'running' });
      expect((await client.sessions.list()).map((x) => x.id)).toContain(sessionId);
      const r = await client.sessions.exec(sessionId, { command: 'echo out; echo err >&2; exit 3' });
      expect(r).toMatchObject({ exitCode: 3, reason: 'exit', stdout: 'out\n', stderr: 'err\n', truncated: false });
    }, 180_000);

    it('stops and starts a session, keeping its files', async () => {
      const other = await client.sessions.create({ name: 'stop start' });
      await client.files(other.id).write('kept.txt', 'still here');
      expect((await client.sessions.stop(other.id)).status).toBe('stopped');
      await expect(client.files(other.id).read('kept.txt')).rejects.toMatchObject({ code: 'conflict', status: 409 });
      expect((await client.sessions.start(other.id)).status).toBe('running');
      expect(await client.files(other.id).readText('kept.txt')).toBe('still here');
      await client.sessions.delete(other.id);
      await expect(client.sessions.get(other.id)).rejects.toMatchObject({ status: 404 });
    }, 180_000);

    it('reports API errors as MominaiError with code, status and retryable', async () => {
      const err = await client.sessions.get('ses_00000000000000000000dead').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MominaiError);
      expect(err).toMatchObject({ code: 'not_found', status: 404, retryable: false });
      const anon = new MominaiClient({ baseUrl: stack.baseUrl });
      await expect(anon.me()).rejects.toMatchObject({ code: 'unauthorized', status: 401 });
    }, 180_000);
  });

  describe('connect', () => {
    it('fails at once with the API\'s reason when the socket is refused: a bad token, another user\'s session', async () => {
      const forged = new MominaiClient({ baseUrl: stack.baseUrl, token: 'not-a-token', WebSocket: WebSocket as never });
      await expect(forged.connect(sessionId)).rejects.toMatchObject({ code: 'invalid_token', status: 401 });
      const stranger = await newClient(stack, 'stranger');
      await expect(stranger.connect(sessionId)).rejects.toMatchObject({ code: 'forbidden', status: 403 });
    }, 180_000);

    it('asks for a WebSocket constructor where the platform has none', async () => {
      const bare = new MominaiClient({ baseUrl: stack.baseUrl, token: client.token! });
      await expect(bare.connect(sessionId)).rejects.toThrow(/no WebSocket implementation/);
    }, 180_000);
  });

  describe('files', () => {
    it('streams a 20 MiB file up and down through REST, byte for byte', async () => {
      const data = randomBytes(20 * MiB);
      const files = client.files(sessionId);
      let at = 0;
      const upload = new ReadableStream<Uint8Array>({
        pull(c) {
          if (at >= data.byteLength) return c.close();
          c.enqueue(data.subarray(at, at + MiB));
          at += MiB;
        },
      });
      const written = await files.write('big/twenty.bin', upload, { parents: true });
      expect(written).toMatchObject({ path: '/workspace/big/twenty.bin', size: 20 * MiB });
      const back = await readAll(await files.readStream('big/twenty.bin'));
      expect(back.byteLength).toBe(20 * MiB);
      expect(sha(back)).toBe(sha(data));
      expect(sha(await files.read('big/twenty.bin'))).toBe(sha(data));
      expect(await files.stat('big/twenty.bin')).toMatchObject({ type: 'file', size: 20 * MiB });
    }, 180_000);

    it('makes folders, renames, lists and deletes through REST and over the socket', async () => {
      const files = client.files(sessionId);
      expect(await files.mkdir('ops/a/b', { recursive: true })).toEqual({ path: '/workspace/ops/a/b' });
      await files.write('ops/a/b/one.txt', 'one');
      await files.rename('ops/a/b/one.txt', 'ops/a/two.txt');
      expect((await files.list('ops/a')).map((e) => [e.name, e.type]).sort()).toEqual([['b', 'directory'], ['two.txt', 'file']]);
      await conn.files.rename('ops/a/two.txt', 'ops/three.txt');
      expect(new TextDecoder().decode(await conn.files.read('ops/three.txt'))).toBe('one');
      await conn.files.write('ops/bytes.bin', new Uint8Array([0, 255, 1]));
      expect([...(await conn.files.read('ops/bytes.bin'))]).toEqual([0, 255, 1]);
      await files.delete('ops', { recursive: true });
      await expect(files.list('ops')).rejects.toMatchObject({ code: 'not_found', status: 404 });
      const tar = await readAll(await files.tarDownload('big'));
      expect(new TextDecoder().decode(tar.subarray(257, 262))).toBe('ustar');
    }, 180_000);

    it('uploads a tar of 500 files in one request', async () => {
      const entries = Array.from({ length: 498 }, (_, i) => ({ name: `tree/d${i % 10}/f${i}.txt`, type: 'file' as const, data: new TextEncoder().encode(`file ${i}\n`) }));
      // Names past ustar's 100 bytes: one that fits the 155-byte prefix, one that needs a PAX header.
      const longDir = `tree/${'long-folder-name-'.repeat(5)}`;
      const longer = `tree/${'x'.repeat(200)}/${'y'.repeat(120)}.txt`;
      entries.push({ name: `${longDir}/${'n'.repeat(90)}.txt`, type: 'file', data: new TextEncoder().encode('prefixed') });
      entries.push({ name: longer, type: 'file', data: new TextEncoder().encode('pax') });
      const result = await client.files(sessionId).tarUpload('', encodeTar(entries));
      expect(result).toMatchObject({ files: 500 });
      expect(new TextDecoder().decode(await conn.files.read(longer))).toBe('pax');
      expect(new TextDecoder().decode(await conn.files.read(`${longDir}/${'n'.repeat(90)}.txt`))).toBe('prefixed');
      const listing = await conn.files.list('tree/d3');
      expect(listing.length).toBe(50);
      expect(new TextDecoder().decode(await conn.files.read('tree/d3/f13.txt'))).toBe('file 13\n');
    }, 180_000);

    it('sees through a watch a file that a command made', async () => {
      const changes: FileChange[] = [];
      const watch = await conn.files.watch('made', { recursive: true }, (c) => changes.push(c));
      const seen = waitFor<FileChange>((l) => conn.on('file-change', l), (c) => c.path === '/workspace/made/by-command.txt', 30_000, 'the change');
      const proc = await conn.run('mkdir -p made && echo hi > made/by-command.txt');
      expect((await proc.exit).exitCode).toBe(0);
      await seen;
      expect(changes.some((c) => c.path === '/workspace/made/by-command.txt')).toBe(true);
      watch.close();
    }, 180_000);

    it('keeps a watch across a reconnect and delivers the changes made while the socket was down', async () => {
      const changes: FileChange[] = [];
      const watch = await conn.files.watch('away', { recursive: true }, (c) => changes.push(c));
      conn.disconnect();
      // A second client sees the change first, so it is in the edge's change journal before conn comes back.
      const other = await client.connect(sessionId);
      const seenElsewhere = waitFor<FileChange>((l) => other.on('file-change', l), (c) => c.path === '/workspace/away/while-offline.txt', 30_000, 'the change');
      await other.files.watch('away', { recursive: true }, () => {});
      const r = await client.sessions.exec(sessionId, { command: 'mkdir -p away && echo x > away/while-offline.txt' });
      expect(r.exitCode).toBe(0);
      await seenElsewhere;
      other.close();
      expect(changes).toEqual([]);
      const caughtUp = waitFor<FileChange>((l) => conn.on('file-change', l), (c) => c.path === '/workspace/away/while-offline.txt', 30_000, 'the missed change');
      conn.reconnect();
      await caughtUp;
      expect(changes.filter((c) => c.path === '/workspace/away/while-offline.txt').length).toBe(1);
      watch.close();
    }, 180_000);

    it('fails with not_found for a missing file, conflict for an existing folder and a non-empty one', async () => {
      await expect(conn.files.read('no/such.txt')).rejects.toMatchObject({ code: 'not_found', status: 404 });
      await conn.files.mkdir('exists');
      await expect(conn.files.mkdir('exists')).rejects.toMatchObject({ code: 'conflict', status: 409 });
      await conn.files.write('exists/inner.txt', 'x');
      await expect(conn.files.delete('exists')).rejects.toMatchObject({ code: 'conflict', status: 409 });
    }, 180_000);
  });

  describe('jsh on an image without bash (busybox sh)', () => {
    it('prints interactive once and prompt markers, and runs what it is given', async () => {
      const wc = await WebContainer.boot({ apiUrl: stack.baseUrl, token: client.token!, sessionId, WebSocket: WebSocket as never });
      const shell = await wc.spawn('jsh', ['--osc'], { terminal: { cols: 80, rows: 24 } });
      let text = '';
      const reader = shell.output.getReader();
      const until = async (pred: (t: string) => boolean) => {
        while (!pred(text)) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`output ended before the expected text: ${JSON.stringify(text)}`);
          text += value;
        }
      };
      await until((t) => t.includes('\x1b]654;interactive\x07') && t.includes('\x1b]654;prompt\x07'));
      const input = shell.input.getWriter();
      await input.write('echo from-sh\n');
      await until((t) => /\r\nfrom-sh\r\n/.test(t) && t.split('\x1b]654;prompt\x07').length >= 3);
      expect(text.split('\x1b]654;interactive\x07').length).toBe(2);
      expect(text).not.toMatch(/654;exit=/);
      await input.write('exit 4\n');
      expect(await shell.exit).toBe(4);
      wc.teardown();
      await wc.tornDown;
      // Attached, not created: teardown leaves the session running.
      expect((await client.sessions.get(sessionId)).status).toBe('running');
    }, 180_000);
  });

  describe('processes that never lose output', () => {
    it('delivers exactly the 5 MiB a process printed although its socket is killed three times', async () => {
      const data = randomBytes(5 * MiB);
      await client.files(sessionId).write('five.bin', data);
      const before = conn.reconnects;
      const proc = await conn.run('cat five.bin');
      const kills = [1 * MiB, 2 * MiB, 3 * MiB];
      const reopened: Array<Promise<unknown>> = [];
      const got = await readAll(proc.stdout, (total) => {
        if (kills.length && total >= kills[0]!) {
          kills.shift();
          reopened.push(waitFor((l) => conn.on('open', l), () => true, 30_000, 'the reconnect'));
          (conn.socket as unknown as WebSocket).terminate();
        }
      });
      expect(kills).toEqual([]);
      await Promise.all(reopened);
      expect(await proc.exit).toEqual({ exitCode: 0, reason: 'exit' });
      expect(got.byteLength).toBe(5 * MiB);
      expect(Buffer.compare(Buffer.from(got), data)).toBe(0);
      expect(conn.reconnects - before).toBe(3);
    }, 180_000);

    it('reports one gap to a client that stayed away while more than the journal was printed', async () => {
      const size = 20 * MiB;
      const data = randomBytes(size);
      await client.files(sessionId).write('twenty.bin', data);
      const gaps: GapInfo[] = [];
      const proc = await conn.run('cat twenty.bin');
      proc.on('gap', (g) => gaps.push(g));
      conn.disconnect();
      // Another client learns when the process has ended, without following its output.
      const watcher = await client.connect(sessionId);
      const end = await watcher.attach(proc.processId, { offsets: { stdout: size, stderr: 0 } });
      expect(await end.exit).toEqual({ exitCode: 0, reason: 'exit' });
      watcher.close();
      conn.reconnect();
      const got = await readAll(proc.stdout);
      expect(gaps).toHaveLength(1);
      const gap = gaps[0]!;
      expect(gap.stream).toBe('stdout');
      expect(gap.toOffset).toBeGreaterThan(gap.fromOffset);
      expect(got.byteLength).toBe(size - (gap.toOffset - gap.fromOffset));
      // What came is the file with exactly the gap's bytes missing.
      const expected = Buffer.concat([data.subarray(0, gap.fromOffset), data.subarray(gap.toOffset)]);
      expect(Buffer.compare(Buffer.from(got), expected)).toBe(0);
    }, 180_000);
  });
});
