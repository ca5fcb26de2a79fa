import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { extract as tarExtract } from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../../agent/logger';
import { FileService } from '../../../agent/services/files/file-service';
import { codeOf, makeSandbox, makeTar, PROBE, readAll, treeFingerprint, waitUntil, type Sandbox, type TarEntry } from './fixtures';


/** A small project: nested folders, text, binary, empty file and folder, an executable, inside links. */
async function makeProject(dir: string): Promise<void> {
  const w = (rel: string, data: string | Buffer, mode?: number) =>
    fs.promises.mkdir(path.dirname(path.join(dir, rel)), { recursive: true }).then(() => fs.promises.writeFile(path.join(dir, rel), data, { mode }));
  await w('package.json', '{"name":"demo","version":"1.0.0"}\n');
  await w('src/index.ts', 'export const x = 1;\n');
  await w('src/lib/util.ts', 'export function f() { return "ünïcödé"; }\n');
  await w('assets/logo.bin', Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7919) % 256)));
  await w('empty.txt', '');
  await w('bin/run.sh', '#!/bin/sh\necho hi\n', 0o755);
  await w(`deep/${'d/'.repeat(20)}leaf.txt`, 'deep');
  await w(`long-names/${'n'.repeat(200)}.txt`, 'long');
  await fs.promises.mkdir(path.join(dir, 'empty-dir'));
  await fs.promises.symlink('src/index.ts', path.join(dir, 'index-link'));
  await fs.promises.symlink('../src', path.join(dir, 'bin', 'src-link'));
}

describe('tree sync (tar)', () => {
  let sb: Sandbox;
  let svc: FileService;
  beforeEach(async () => {
    sb = await makeSandbox();
    svc = await FileService.open({ root: sb.ws, logger: memoryLogger(), maxFileSize: 1024 * 1024 });
  });
  afterEach(() => sb.cleanup());

  describe('packTar and extractTar', () => {
    it('round-trips a small project identically (names, types, modes, hashes, link targets)', async () => {
      await makeProject(path.join(sb.ws, 'project'));
      const archive = await readAll(await svc.packTar('/workspace/project'));
      const result = await svc.extractTar('copy', [archive]);
      expect(result).toMatchObject({ path: '/workspace/copy', symlinks: 2 });
      expect(result.files).toBe(8);
      const a = await treeFingerprint(path.join(sb.ws, 'project'), { mtimes: false });
      const b = await treeFingerprint(path.join(sb.ws, 'copy'), { mtimes: false });
      expect(Object.keys(a).length).toBeGreaterThan(30);
      expect(b).toEqual(a);
      // File mtimes travel too (to the second, as tar stores them).
      const ma = (await fs.promises.stat(path.join(sb.ws, 'project', 'src', 'index.ts'))).mtimeMs;
      const mb = (await fs.promises.stat(path.join(sb.ws, 'copy', 'src', 'index.ts'))).mtimeMs;
      expect(Math.floor(mb / 1000)).toBe(Math.floor(ma / 1000));
    });

    it('packs with relative names, folders ending in /, links as links, sorted', async () => {
      await makeProject(path.join(sb.ws, 'p'));
      const ex = tarExtract();
      const headers: Array<{ name: string; type: string; linkname: string | null }> = [];
      ex.on('entry', (h, stream, next) => {
        headers.push({ name: h.name, type: h.type, linkname: h.linkname ?? null });
        stream.on('end', () => next());
        stream.resume();
      });
      const done = new Promise((resolve, reject) => {
        ex.on('finish', () => resolve(undefined));
        ex.on('error', reject);
      });
      (await svc.packTar('p')).pipe(ex as unknown as NodeJS.WritableStream);
      await done;
      expect(headers[0]).toEqual({ name: 'assets/', type: 'directory', linkname: null });
      expect(headers.find((h) => h.name === 'index-link')).toEqual({ name: 'index-link', type: 'symlink', linkname: 'src/index.ts' });
      expect(headers.every((h) => !h.name.startsWith('/') && !h.name.startsWith('./'))).toBe(true);
    });

    it('accepts tar.gz, detected by its magic bytes', async () => {
      const tgz = gzipSync(await makeTar([{ name: 'a/b.txt', content: 'gz!' }]));
      await svc.extractTar('.', Readable.from([tgz.subarray(0, 1), tgz.subarray(1)]));
      expect(await fs.promises.readFile(path.join(sb.ws, 'a', 'b.txt'), 'utf8')).toBe('gz!');
    });

    it('merges into an existing folder, replacing files and keeping others', async () => {
      await fs.promises.mkdir(path.join(sb.ws, 'd', 'keep'), { recursive: true });
      await fs.promises.writeFile(path.join(sb.ws, 'd', 'keep', 'old.txt'), 'old');
      await fs.promises.writeFile(path.join(sb.ws, 'd', 'replace.txt'), 'old');
      await svc.extractTar('d', [await makeTar([{ name: 'replace.txt', content: 'new' }, { name: 'keep/new.txt', content: 'new' }])]);
      expect(await treeFingerprint(path.join(sb.ws, 'd'), { mtimes: false })).toMatchObject({
        'keep/old.txt': expect.stringContaining('file:3'),
        'keep/new.txt': expect.stringContaining('file:3'),
        'replace.txt': expect.stringContaining('file:3'),
      });
      expect(await fs.promises.readFile(path.join(sb.ws, 'd', 'replace.txt'), 'utf8')).toBe('new');
    });

    it('streams a folder larger than its buffers without holding it', async () => {
      const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
      await fs.promises.mkdir(path.join(sb.ws, 'big'));
      await fs.promises.writeFile(path.join(sb.ws, 'big', 'blob'), big);
      const stream = await svc.packTar('big');
      let total = 0;
      for await (const chunk of stream) total += (chunk as Buffer).length;
      expect(total).toBeGreaterThan(big.length);
    });

    it('stops and closes its descriptors when the reader goes away', async () => {
      await makeProject(path.join(sb.ws, 'p'));
      const fds = () => fs.readdirSync('/proc/self/fd').length;
      const baseline = fds();
      const stream = await svc.packTar('p');
      const first = await new Promise<Buffer>((resolve) => stream.once('data', resolve));
      expect(first.length).toBeGreaterThan(0);
      stream.destroy();
      await waitUntil(() => fds() <= baseline, 'pack descriptors to close');
    });
  });

  describe('extractTar refuses hostile archives, all or nothing', () => {
    type Bad = { name: string; entries: (sb: Sandbox) => TarEntry[]; code: string; dest?: string };
    const bad: Bad[] = [
      { name: '../ entry', entries: () => [{ name: '../escape.txt', content: 'x' }], code: 'path_outside_workspace' },
      { name: '../../outside/canary.txt', entries: () => [{ name: '../../outside/canary.txt', content: 'x' }], code: 'path_outside_workspace' },
      { name: 'absolute /etc probe', entries: () => [{ name: `/etc/${PROBE}`, content: 'x' }], code: 'path_outside_workspace' },
      { name: 'absolute /workspace name', entries: () => [{ name: '/workspace/x.txt', content: 'x' }], code: 'path_outside_workspace' },
      { name: 'a/../../x', entries: () => [{ name: 'a/../../x', content: 'x' }], code: 'path_outside_workspace' },
      { name: 'a/../b (any ..)', entries: () => [{ name: 'a/../b', content: 'x' }], code: 'path_outside_workspace' },
      { name: 'host path of outside', entries: (sb) => [{ name: path.join(sb.outside, 'canary.txt'), content: 'x' }], code: 'path_outside_workspace' },
      { name: 'symlink to ../../outside', entries: () => [{ name: 'l', type: 'symlink', linkname: '../../outside' }], code: 'path_outside_workspace' },
      { name: 'symlink to /etc', entries: () => [{ name: 'l', type: 'symlink', linkname: '/etc' }], code: 'path_outside_workspace' },
      { name: 'symlink to host path', entries: (sb) => [{ name: 'l', type: 'symlink', linkname: sb.outside }], code: 'path_outside_workspace' },
      { name: 'symlink out, then a file through it', entries: () => [{ name: 'l', type: 'symlink', linkname: '../..' }, { name: `l/${PROBE}`, content: 'x' }], code: 'path_outside_workspace' },
      { name: 'inside symlink, then a file through it', entries: () => [{ name: 'real/', type: 'directory' }, { name: 'l', type: 'symlink', linkname: 'real' }, { name: 'l/x', content: 'x' }], code: 'invalid_path' },
      { name: 'hard link to an inside file', entries: () => [{ name: 'a', content: 'x' }, { name: 'h', type: 'link', linkname: 'a' }], code: 'invalid_path' },
      { name: 'hard link to outside', entries: () => [{ name: 'h', type: 'link', linkname: '../outside/canary.txt' }], code: 'invalid_path' },
      { name: 'character device', entries: () => [{ name: 'null', type: 'character-device', devmajor: 1, devminor: 3 }], code: 'invalid_path' },
      { name: 'block device', entries: () => [{ name: 'sda', type: 'block-device', devmajor: 8, devminor: 0 }], code: 'invalid_path' },
      { name: 'fifo', entries: () => [{ name: 'pipe', type: 'fifo' }], code: 'invalid_path' },
      { name: '256-byte name', entries: () => [{ name: 'n'.repeat(256), content: 'x' }], code: 'invalid_path' },
      { name: 'file then folder at one name', entries: () => [{ name: 'x', content: 'x' }, { name: 'x/', type: 'directory' }], code: 'conflict' },
      { name: 'folder clashing with a workspace link', entries: () => [{ name: 'link-out/pwn', content: 'x' }], code: 'conflict' },
      { name: 'destination is a link out', dest: 'link-out', entries: () => [{ name: 'pwn', content: 'x' }], code: 'path_outside_workspace' },
      { name: 'destination through a link out', dest: 'link-out/sub', entries: () => [{ name: 'pwn', content: 'x' }], code: 'path_outside_workspace' },
      { name: 'file over the size limit', entries: () => [{ name: 'big', content: Buffer.alloc(1024 * 1024 + 1) }], code: 'payload_too_large' },
      { name: 'good entries, then a bad one', entries: () => [{ name: 'fine.txt', content: 'ok' }, { name: 'dir/ok.txt', content: 'ok' }, { name: '../bad', content: 'x' }], code: 'path_outside_workspace' },
    ];

    for (const c of bad) {
      it(`${c.name} → ${c.code}`, async () => {
        await fs.promises.mkdir(path.join(sb.ws, 'existing'));
        await fs.promises.writeFile(path.join(sb.ws, 'existing', 'keep.txt'), 'keep');
        await fs.promises.symlink('../outside', path.join(sb.ws, 'link-out'));
        const outsideBefore = await sb.fingerprint();
        const wsBefore = await treeFingerprint(sb.ws);
        expect(await codeOf(svc.extractTar(c.dest ?? '.', [await makeTar(c.entries(sb))]))).toBe(c.code);
        expect(await sb.fingerprint()).toBe(outsideBefore);
        expect(await treeFingerprint(sb.ws)).toEqual(wsBefore); // untouched, and no temporary folder left
      });
    }

    it('refuses more entries than the limit', async () => {
      const small = await FileService.open({ root: sb.ws, logger: memoryLogger(), extractLimits: { maxEntries: 3 } });
      const entries = Array.from({ length: 4 }, (_, i) => ({ name: `f${i}`, content: 'x' }));
      expect(await codeOf(small.extractTar('.', [await makeTar(entries)]))).toBe('payload_too_large');
      expect(await fs.promises.readdir(sb.ws)).toEqual([]);
    });

    it('refuses more content than the total limit', async () => {
      const small = await FileService.open({ root: sb.ws, logger: memoryLogger(), extractLimits: { maxTotalBytes: 10 } });
      const entries = [{ name: 'a', content: '123456' }, { name: 'b', content: '123456' }];
      expect(await codeOf(small.extractTar('.', [await makeTar(entries)]))).toBe('payload_too_large');
      expect(await fs.promises.readdir(sb.ws)).toEqual([]);
    });

    it('refuses a cut-off archive and a stream that fails, leaving nothing behind', async () => {
      const archive = await makeTar([{ name: 'a.txt', content: Buffer.alloc(10_000, 1) }, { name: 'b.txt', content: 'b' }]);
      expect(await codeOf(svc.extractTar('.', [archive.subarray(0, 5_000)]))).toBe('bad_request');
      async function* failing() {
        yield archive.subarray(0, 6_000);
        throw new Error('connection reset');
      }
      expect(await codeOf(svc.extractTar('.', failing()))).toBe('bad_request');
      expect(await codeOf(svc.extractTar('.', [Buffer.from('this is not a tar archive at all'.repeat(40))]))).toBe('bad_request');
      expect(await fs.promises.readdir(sb.ws)).toEqual([]);
    });

    it('replaces a workspace link by a file of the same name without writing through it', async () => {
      await fs.promises.symlink('../outside/canary.txt', path.join(sb.ws, 'link-file'));
      const before = await sb.fingerprint();
      await svc.extractTar('.', [await makeTar([{ name: 'link-file', content: 'mine' }])]);
      expect(await sb.fingerprint()).toBe(before);
      expect((await fs.promises.lstat(path.join(sb.ws, 'link-file'))).isFile()).toBe(true);
    });
  });
});

describe('extractTar with a stalled upload', () => {
  it('fails at the first bad entry without waiting for the rest of the stream, and stops it', async () => {
    const sb = await makeSandbox();
    try {
      const svc = await FileService.open({ root: sb.ws, logger: memoryLogger() });
      const bad = await makeTar([{ name: '../evil', content: 'x' }]);
      const src = new Readable({ read() {} }); // sends one archive's worth, then nothing, never ends
      src.push(bad.subarray(0, 1024));
      expect(await codeOf(svc.extractTar('.', src))).toBe('path_outside_workspace');
      expect(src.destroyed).toBe(true);
      expect(await fs.promises.readdir(sb.ws)).toEqual([]);
    } finally {
      await sb.cleanup();
    }
  });
});
