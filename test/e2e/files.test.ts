/**
 * Files through the real stack (workerd edge, agent, dockerd): REST and
 * WebSocket file work, large streamed bodies, the path jail, watch and tar sync.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasDocker } from '../helpers/docker';
import { api, registerUser, TestSocket, type TestUser } from '../helpers/client';
import { rssBytes, samplePeak } from '../helpers/memory';
import { refusedBodiesThenNormal } from '../helpers/refused-bodies';
import { createSession, startEdgeWithAgent } from '../helpers/sessions';
import { TestStack, type TestAgent } from '../helpers/stack';
import { poll, until } from '../helpers/wait';

const MiB = 1024 * 1024;

describe.skipIf(!hasDocker)('files (real stack, Docker)', () => {
  const stack = new TestStack({ edgeVars: { RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000', DEFAULT_IMAGE: 'mominai/busybox:test' } });
  let agent: TestAgent;
  let user: TestUser;
  let sessionId: string;
  let workspace: string;
  let outside: string;
  const filesUrl = (p: string) => `${stack.baseUrl}/api/containers/${sessionId}/files/${p}`;
  // identity: exact bytes and Content-Length (a browser asking for gzip gets a compressed, chunked body).
  const auth = () => ({ Authorization: `Bearer ${user.token}`, 'Accept-Encoding': 'identity' });

  beforeAll(async () => {
    agent = await startEdgeWithAgent(stack, { agentName: 'files-agent', image: 'busybox' });
    user = await registerUser(stack, 'files');
    sessionId = await createSession(stack, user);
    workspace = path.join(stack.stateDir, 'workspaces', user.id, sessionId);
    // A canary beside the workspace: nothing may ever read or change it.
    outside = path.join(stack.stateDir, 'workspaces', user.id, 'outside');
    fs.mkdirSync(outside, { recursive: true });
    fs.writeFileSync(path.join(outside, 'secret.txt'), 'canary');
  });
  afterAll(async () => {
    await stack.stop();
  });

  it('round-trips text and binary files with type, length and ETag, and stats them with HEAD', async () => {
    const put = await fetch(filesUrl('src/hello.txt?parents=1'), { method: 'PUT', headers: { ...auth(), 'Content-Type': 'text/plain' }, body: 'héllo\n' });
    expect(put.status).toBe(200);
    expect(await put.json()).toMatchObject({ path: '/workspace/src/hello.txt', size: Buffer.byteLength('héllo\n') });
    const get = await fetch(filesUrl('src/hello.txt'), { headers: auth() });
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(get.headers.get('content-length')).toBe(String(Buffer.byteLength('héllo\n')));
    const etag = get.headers.get('etag')!;
    expect(await get.text()).toBe('héllo\n');
    expect((await fetch(filesUrl('src/hello.txt'), { headers: { ...auth(), 'If-None-Match': etag } })).status).toBe(304);

    const bin = randomBytes(70_000);
    expect((await fetch(filesUrl('data/blob.bin?parents=1'), { method: 'PUT', headers: { ...auth(), 'Content-Type': 'application/octet-stream' }, body: bin })).status).toBe(200);
    const back = Buffer.from(await (await fetch(filesUrl('data/blob.bin'), { headers: auth() })).arrayBuffer());
    expect(back.equals(bin)).toBe(true);
    const head = await fetch(filesUrl('data/blob.bin'), { method: 'HEAD', headers: auth() });
    expect(head.status).toBe(200);
    expect(head.headers.get('x-file-type')).toBe('file');
    expect(head.headers.get('content-length')).toBe(String(bin.length));

    const json = await api(stack, 'PUT', `/api/containers/${sessionId}/files/data/b64.bin`, { token: user.token, body: { content: Buffer.from([0, 1, 2, 255]).toString('base64'), encoding: 'base64' } });
    expect(json.status).toBe(200);
    expect(fs.readFileSync(path.join(workspace, 'data/b64.bin'))).toEqual(Buffer.from([0, 1, 2, 255]));
    // The container user owns what the API wrote.
    expect(fs.statSync(path.join(workspace, 'data/b64.bin')).uid).toBe(fs.statSync(workspace).uid);
  });

  it('lists, makes, renames and deletes, answering missing paths with 404', async () => {
    expect((await api(stack, 'POST', `/api/containers/${sessionId}/mkdir`, { token: user.token, body: { path: 'a/b/c', recursive: true } })).status).toBe(201);
    fs.writeFileSync(path.join(workspace, 'a/b/c/x.txt'), 'x');
    const list = await api<{ path: string; entries: Array<{ name: string; type: string }> }>(stack, 'GET', `/api/containers/${sessionId}/files/a/b/c`, { token: user.token });
    expect(list.body).toMatchObject({ path: '/workspace/a/b/c', entries: [{ name: 'x.txt', type: 'file' }] });
    expect((await api(stack, 'POST', `/api/containers/${sessionId}/rename`, { token: user.token, body: { from: 'a/b/c/x.txt', to: '/workspace/a/y.txt' } })).status).toBe(200);
    expect(fs.readFileSync(path.join(workspace, 'a/y.txt'), 'utf8')).toBe('x');
    const nonEmpty = await api<{ error: { code: string } }>(stack, 'DELETE', `/api/containers/${sessionId}/files/a`, { token: user.token });
    expect(nonEmpty.status).toBe(409);
    expect((await api(stack, 'DELETE', `/api/containers/${sessionId}/files/a?recursive=1`, { token: user.token })).status).toBe(200);
    expect(fs.existsSync(path.join(workspace, 'a'))).toBe(false);
    const missing = await api<{ error: { code: string } }>(stack, 'GET', `/api/containers/${sessionId}/files/nope.txt`, { token: user.token });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
  });

  it('refuses every path that leaves the workspace at the file route itself, and touches nothing outside', async () => {
    fs.symlinkSync(outside, path.join(workspace, 'escape'));
    fs.symlinkSync('/etc/passwd', path.join(workspace, 'passwd-link'));
    fs.mkdirSync(path.join(workspace, 'data'), { recursive: true });
    fs.writeFileSync(path.join(workspace, 'data/blob.bin'), 'blob');
    // Encoded slashes keep `..` inside one URL segment, so no client or proxy normalises it away: each reaches the file route.
    const bad = [
      '..%2Foutside%2Fsecret.txt',
      '%2e%2e%2Foutside%2Fsecret.txt',
      '%2E%2E%2Foutside/secret.txt',
      'a%2F..%2F..%2Foutside%2Fsecret.txt',
      '%2Fetc%2Fpasswd',
      '%2Fworkspace%2F..%2Foutside%2Fsecret.txt',
      'escape/secret.txt',
      'passwd-link',
      'a/%00b',
      'escape/new.txt',
      `${'x'.repeat(300)}.txt`,
    ];
    const seen: string[] = [];
    for (const p of bad) {
      for (const [method, body] of [
        ['GET', undefined],
        ['PUT', 'pwned'],
        ['HEAD', undefined],
        ['DELETE', undefined],
      ] as const) {
        const res = await fetch(filesUrl(p), { method, headers: { ...auth(), 'Content-Type': 'text/plain' }, ...(body ? { body } : {}) });
        const code = method === 'HEAD' ? '-' : ((await res.json()) as { error?: { code: string } }).error?.code ?? 'ok';
        seen.push(`${method} ${p} ${res.status} ${code}`);
      }
    }
    for (const body of [{ from: 'escape/secret.txt', to: 'stolen.txt' }, { from: 'data/blob.bin', to: '../outside/blob.bin' }, { from: 'data/blob.bin', to: 'escape/blob.bin' }]) {
      const res = await api<{ error: { code: string } }>(stack, 'POST', `/api/containers/${sessionId}/rename`, { token: user.token, body });
      seen.push(`RENAME ${body.from} ${body.to} ${res.status} ${res.body.error.code}`);
    }
    const escapes = (p: string) => p !== 'a/%00b' && !p.startsWith('xxx') && p !== 'passwd-link';
    const expected = bad.flatMap((p) =>
      (['GET', 'PUT', 'HEAD', 'DELETE'] as const).map((m) => {
        if (p === 'passwd-link') return m === 'DELETE' ? `${m} ${p} 200 ok` : m === 'HEAD' ? `${m} ${p} 403 -` : `${m} ${p} 403 path_outside_workspace`;
        const [status, code] = escapes(p) ? [403, 'path_outside_workspace'] : [400, 'invalid_path'];
        return `${m} ${p} ${status} ${m === 'HEAD' ? '-' : code}`;
      }),
    );
    expected.push('RENAME escape/secret.txt stolen.txt 403 path_outside_workspace', 'RENAME data/blob.bin ../outside/blob.bin 403 path_outside_workspace', 'RENAME data/blob.bin escape/blob.bin 403 path_outside_workspace');
    expect(seen).toEqual(expected);
    expect(fs.readdirSync(outside)).toEqual(['secret.txt']);
    expect(fs.readFileSync(path.join(outside, 'secret.txt'), 'utf8')).toBe('canary');
    expect(fs.existsSync(path.join(workspace, 'stolen.txt'))).toBe(false);
    expect(fs.readFileSync('/etc/passwd', 'utf8')).toContain('root:');
  });

  it('streams a 200 MiB upload and download with matching SHA-256, agent memory far below the file size', async () => {
    const size = 200 * MiB;
    const seed = randomBytes(MiB);
    const upHash = createHash('sha256');
    let sent = 0;
    const source = new Readable({
      read() {
        if (sent >= size) return void this.push(null);
        const chunk = Buffer.from(seed);
        chunk.writeUInt32BE(sent / MiB, 0);
        upHash.update(chunk);
        sent += chunk.length;
        this.push(chunk);
      },
    });
    const baseline = rssBytes(agent.proc.child.pid!);
    const peak = samplePeak(() => [agent.proc.child.pid!]);
    const put = await fetch(filesUrl('big/file.bin?parents=1'), {
      method: 'PUT',
      headers: { ...auth(), 'Content-Type': 'application/octet-stream', 'Content-Length': String(size) },
      body: Readable.toWeb(source) as ReadableStream,
      duplex: 'half',
    } as RequestInit);
    expect(put.status).toBe(200);
    expect(((await put.json()) as { size: number }).size).toBe(size);
    const res = await fetch(filesUrl('big/file.bin'), { headers: auth() });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(size));
    const downHash = createHash('sha256');
    let got = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      downHash.update(chunk);
      got += chunk.byteLength;
    }
    const agentPeak = peak.stop();
    const growth = agentPeak - baseline;
    process.stderr.write(`[files] 200 MiB round trip: agent peak RSS ${(agentPeak / MiB).toFixed(1)} MiB, growth ${(growth / MiB).toFixed(1)} MiB\n`);
    expect(got).toBe(size);
    expect(downHash.digest('hex')).toBe(upHash.digest('hex'));
    expect(growth).toBeLessThan(size / 2);
  }, 300_000);

  it('keeps the old file when an upload is cut off', async () => {
    fs.writeFileSync(path.join(workspace, 'keep.txt'), 'original');
    const ctrl = new AbortController();
    // One chunk goes out, then the body stalls (never ends); once the agent has
    // its temporary file open, the request is aborted.
    let sent = false;
    const cut = new Readable({
      read() {
        if (sent) return;
        sent = true;
        this.push(Buffer.alloc(256 * 1024, 1));
      },
    });
    const temps = () => fs.readdirSync(workspace).filter((n) => n.startsWith('.') && n !== '.mominai');
    // It announces 1 MiB: a proxy in front (wrangler dev's) may end the body
    // cleanly when the client gives up, and the length is what tells a cut.
    const upload = fetch(filesUrl('keep.txt'), { method: 'PUT', headers: { ...auth(), 'Content-Type': 'application/octet-stream', 'Content-Length': String(1024 * 1024) }, body: Readable.toWeb(cut) as ReadableStream, duplex: 'half', signal: ctrl.signal } as RequestInit).catch(() => undefined);
    await until(() => temps().length > 0, "the upload's temporary file", 20_000);
    expect(temps().length).toBeGreaterThan(0);
    ctrl.abort();
    await upload;
    // The agent notices the cut (the edge aborts the stream) and removes its temporary file.
    await until(() => temps().length === 0, 'the temporary file to go', 20_000);
    expect(fs.readdirSync(workspace).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(fs.readFileSync(path.join(workspace, 'keep.txt'), 'utf8')).toBe('original');
  });

  it('answers every request after a refused body on the same connection (no 503)', async () => {
    const stranger = await registerUser(stack, 'stranger');
    expect(await refusedBodiesThenNormal(stack.baseUrl, { token: user.token, sessionId }, stranger)).toEqual([]);
  });

  it('serves file frames on the WebSocket, each reply echoing its id', async () => {
    const sock = await TestSocket.open(stack, user.token, sessionId);
    await sock.waitFor((f) => f.type === 'ready');
    expect(await sock.request('write_file', { path: 'ws/note.md', content: '# hi', parents: true })).toMatchObject({ type: 'file_written', payload: { path: '/workspace/ws/note.md', size: 4 } });
    expect(await sock.request('read_file', { path: '/workspace/ws/note.md' })).toMatchObject({ type: 'file_content', payload: { content: '# hi', encoding: 'utf8' } });
    expect((await sock.request('list_dir', { path: 'ws' })).payload.entries).toEqual([expect.objectContaining({ name: 'note.md' })]);
    expect((await sock.request('mkdir', { path: 'ws/sub', recursive: false })).type).toBe('dir_created');
    expect((await sock.request('rename', { from: 'ws/note.md', to: 'ws/sub/note.md' })).type).toBe('file_renamed');
    expect((await sock.request('delete_file', { path: 'ws', recursive: true })).type).toBe('file_deleted');
    expect(await sock.request('read_file', { path: '../outside/secret.txt' })).toMatchObject({ type: 'error', payload: { code: 'path_outside_workspace' } });
    sock.close();
  });

  it('reports a file made by a command in the container, and catches up a reconnecting client', async () => {
    const sock = await TestSocket.open(stack, user.token, sessionId);
    await sock.waitFor((f) => f.type === 'ready');
    const watching = await sock.request('watch', { path: '/workspace', recursive: true });
    expect(watching.type).toBe('watching');
    const version = Number(watching.payload.version);
    await sock.request('container_command', { command: 'mkdir -p gen/deep && echo made > gen/deep/out.txt' });
    const seen = await sock.waitFor((f) => f.type === 'file_changed' && f.payload.path === '/workspace/gen/deep/out.txt', 30_000);
    expect(['add_file', 'change']).toContain(seen.payload.event);
    sock.close();

    // While no client listens, more changes happen; a new client asks what it missed.
    await api(stack, 'POST', `/api/containers/${sessionId}/exec`, { token: user.token, body: { command: 'echo later > gen/later.txt' } });
    const again = await TestSocket.open(stack, user.token, sessionId);
    await again.waitFor((f) => f.type === 'ready');
    // Asked again until the later change shows; a resync ends the wait at once, and fails the test below.
    const changes = await poll(
      async () => {
        const { payload } = await again.request('changes_since', { version });
        return payload.resync !== false || (payload.changes as Array<{ path: string }>).some((c) => c.path === '/workspace/gen/later.txt') ? payload : undefined;
      },
      'the change to gen/later.txt',
      20_000,
    );
    expect(changes.resync).toBe(false);
    const paths = (changes.changes as Array<{ path: string }>).map((c) => c.path);
    expect(paths).toContain('/workspace/gen/deep/out.txt');
    expect(paths).toContain('/workspace/gen/later.txt');
    expect((await again.request('changes_since', { version: 1 })).payload.resync).toBe(true);
    again.close();
  });

  it('uploads a project as a tar, lists it, and downloads it back identical', async () => {
    const src = fs.mkdtempSync(path.join(os.tmpdir(), 'mominai-tar-'));
    try {
      fs.mkdirSync(path.join(src, 'proj/src'), { recursive: true });
      fs.writeFileSync(path.join(src, 'proj/package.json'), '{"name":"demo","scripts":{"dev":"node src/index.js"}}');
      fs.writeFileSync(path.join(src, 'proj/src/index.js'), 'console.log("hi")\n');
      fs.writeFileSync(path.join(src, 'proj/logo.bin'), randomBytes(3000));
      const tar = execFileSync('tar', ['-C', path.join(src, 'proj'), '-cf', '-', '.']);
      const up = await fetch(`${stack.baseUrl}/api/containers/${sessionId}/tar/project`, { method: 'PUT', headers: { ...auth(), 'Content-Type': 'application/x-tar' }, body: tar });
      expect(up.status).toBe(200);
      expect(await up.json()).toMatchObject({ files: 3 });
      const list = await api<{ entries: Array<{ name: string }> }>(stack, 'GET', `/api/containers/${sessionId}/files/project`, { token: user.token });
      expect(list.body.entries.map((e) => e.name).sort()).toEqual(['logo.bin', 'package.json', 'src']);
      const down = await fetch(`${stack.baseUrl}/api/containers/${sessionId}/tar/project`, { headers: auth() });
      expect(down.headers.get('content-type')).toBe('application/x-tar');
      const out = path.join(src, 'back');
      fs.mkdirSync(out);
      execFileSync('tar', ['-C', out, '-xf', '-'], { input: Buffer.from(await down.arrayBuffer()) });
      for (const f of ['package.json', 'src/index.js', 'logo.bin']) {
        expect(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(src, 'proj', f))), f).toBe(true);
      }
      const evil = execFileSync('sh', ['-c', `cd ${src} && ln -s /etc evil && tar -cf - evil`]);
      const refused = await fetch(`${stack.baseUrl}/api/containers/${sessionId}/tar/project`, { method: 'PUT', headers: { ...auth(), 'Content-Type': 'application/x-tar' }, body: evil });
      expect([400, 403]).toContain(refused.status);
      expect(fs.existsSync(path.join(workspace, 'project/evil'))).toBe(false);
    } finally {
      fs.rmSync(src, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!hasDocker)('files over MAX_FILE_SIZE (real stack, Docker)', () => {
  const stack = new TestStack({ edgeVars: { MAX_FILE_SIZE: '1m', DEFAULT_IMAGE: 'mominai/busybox:test' } });
  let user: TestUser;
  let sessionId: string;

  beforeAll(async () => {
    await startEdgeWithAgent(stack, { agentName: 'small-files', agentEnv: { MAX_FILE_SIZE: '1m' }, image: 'busybox' });
    user = await registerUser(stack, 'small');
    sessionId = await createSession(stack, user);
  });
  afterAll(async () => {
    await stack.stop();
  });

  it('answers 413 for a declared or a streamed body over the limit, and keeps the old file', async () => {
    const workspace = path.join(stack.stateDir, 'workspaces', user.id, sessionId);
    fs.writeFileSync(path.join(workspace, 'keep.txt'), 'original');
    const url = `${stack.baseUrl}/api/containers/${sessionId}/files/keep.txt`;
    const headers = { Authorization: `Bearer ${user.token}`, 'Content-Type': 'application/octet-stream' };
    const declared = await fetch(url, { method: 'PUT', headers, body: Buffer.alloc(2 * MiB, 7) });
    expect(declared.status).toBe(413);
    expect(((await declared.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');
    let sent = 0;
    const streamed = new Readable({
      read() {
        if (sent >= 3 * MiB) return void this.push(null);
        sent += 256 * 1024;
        this.push(Buffer.alloc(256 * 1024, 9));
      },
    });
    const res = await fetch(url, { method: 'PUT', headers, body: Readable.toWeb(streamed) as ReadableStream, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
    expect(fs.readFileSync(path.join(workspace, 'keep.txt'), 'utf8')).toBe('original');
    expect(fs.readdirSync(workspace).filter((n) => n.startsWith('.'))).toEqual([]);
    // The edge still serves requests normally afterwards.
    expect((await fetch(url, { headers: { Authorization: `Bearer ${user.token}` } })).status).toBe(200);
  });

  it('answers 413 for a JSON {content} body over its limit, even one sent without a length', async () => {
    const workspace = path.join(stack.stateDir, 'workspaces', user.id, sessionId);
    fs.writeFileSync(path.join(workspace, 'json.txt'), 'original');
    const url = `${stack.baseUrl}/api/containers/${sessionId}/files/json.txt`;
    // Small content, but 2 MiB of JSON: the JSON form is bounded by MAX_FILE_SIZE in base64 plus 64 KiB (1463640 bytes at 1m).
    const json = Buffer.from(`{"content":"x"${' '.repeat(2 * MiB)}}`);
    const chunked = new ReadableStream<Uint8Array>({
      start(c) {
        for (let at = 0; at < json.length; at += 64 * 1024) c.enqueue(json.subarray(at, at + 64 * 1024));
        c.close();
      },
    });
    const res = await fetch(url, { method: 'PUT', headers: { Authorization: `Bearer ${user.token}`, 'Content-Type': 'application/json' }, body: chunked, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({ error: { code: 'payload_too_large', message: 'request body is larger than 1463640 bytes', details: { maxBytes: 1463640 } } });
    expect(fs.readFileSync(path.join(workspace, 'json.txt'), 'utf8')).toBe('original');
    const ok = await fetch(url, { method: 'PUT', headers: { Authorization: `Bearer ${user.token}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ content: 'small' }) });
    expect(ok.status).toBe(200);
    expect(fs.readFileSync(path.join(workspace, 'json.txt'), 'utf8')).toBe('small');
  });
});
