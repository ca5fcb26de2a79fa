import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../../agent/logger';
import { FileService } from '../../../agent/services/files/file-service';
import { decodeContent } from '../../../agent/services/files/write-ops';
import { AppError } from '../../../shared/errors';
import { codeOf, makeSandbox, readAll, type Sandbox } from './fixtures';


// Every behaviour holds with /proc/self/fd addressing (Linux) and without it.
describe.each([
  { mode: 'with /proc/self/fd', procFd: true },
  { mode: 'with plain paths (no /proc)', procFd: false },
])('FileService $mode', ({ procFd }) => {
  let sb: Sandbox;
  let svc: FileService;
  beforeEach(async () => {
    sb = await makeSandbox();
    svc = await FileService.open({ root: sb.ws, logger: memoryLogger(), procFd });
    await fs.promises.mkdir(path.join(sb.ws, 'src', 'lib'), { recursive: true });
    await fs.promises.writeFile(path.join(sb.ws, 'src', 'app.ts'), 'console.log(1);\n');
    await fs.promises.writeFile(path.join(sb.ws, 'README.md'), '# hi\n');
    await fs.promises.symlink('src/app.ts', path.join(sb.ws, 'app-link'));
  });
  afterEach(() => sb.cleanup());

  it('reports which addressing mode it uses', () => {
    expect(svc.jail.procFd).toBe(procFd);
  });

  describe('stat', () => {
    it('describes files, folders and links with /workspace paths', async () => {
      const file = await svc.stat('src/app.ts');
      expect(file).toMatchObject({ path: '/workspace/src/app.ts', type: 'file', size: 16, mode: 0o644 });
      expect(file.etag).toMatch(/^W\/"/);
      expect(new Date(file.mtime).getTime()).toBeGreaterThan(0);
      expect(await svc.stat('/workspace/src')).toMatchObject({ path: '/workspace/src', type: 'directory' });
      expect(await svc.stat('app-link')).toMatchObject({ type: 'symlink' });
      expect(await svc.stat('app-link', { follow: true })).toMatchObject({ path: '/workspace/app-link', type: 'file', size: 16 });
      expect(await svc.stat('/workspace')).toMatchObject({ path: '/workspace', type: 'directory' });
      expect(await svc.stat('.')).toMatchObject({ path: '/workspace', type: 'directory' });
    });

    it('is not_found for a missing path', async () => {
      expect(await codeOf(svc.stat('nope/x'))).toBe('not_found');
    });
  });

  describe('readFile', () => {
    it('streams the bytes with size, mtime and etag', async () => {
      const r = await svc.readFile('/workspace/src/app.ts');
      expect(r).toMatchObject({ path: '/workspace/src/app.ts', size: 16, length: 16, start: 0, end: 15 });
      expect((await readAll(r.stream)).toString()).toBe('console.log(1);\n');
    });

    it('serves a byte range', async () => {
      const r = await svc.readFile('src/app.ts', { range: { start: 8, end: 10 } });
      expect(r.length).toBe(3);
      expect((await readAll(r.stream)).toString()).toBe('log');
      const tail = await svc.readFile('src/app.ts', { range: { start: 12 } });
      expect((await readAll(tail.stream)).toString()).toBe('1);\n');
    });

    it('refuses a range past the end with the size in details', async () => {
      const err = await svc.readFile('src/app.ts', { range: { start: 100 } }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AppError);
      expect((err as AppError).toBody()).toMatchObject({ code: 'bad_request', details: { reason: 'range_not_satisfiable', size: 16 } });
    });

    it('reads an empty file as an empty stream', async () => {
      await fs.promises.writeFile(path.join(sb.ws, 'empty'), '');
      const r = await svc.readFile('empty');
      expect(r.length).toBe(0);
      expect((await readAll(r.stream)).length).toBe(0);
    });

    it('follows a link that stays inside', async () => {
      const r = await svc.readFile('app-link');
      expect(r.path).toBe('/workspace/app-link'); // results name what was asked for
      expect((await readAll(r.stream)).toString()).toBe('console.log(1);\n');
    });

    it('refuses folders (conflict) and FIFOs (invalid_path) without hanging', async () => {
      expect(await codeOf(svc.readFile('src'))).toBe('conflict');
      expect(await codeOf(svc.readFile('/workspace'))).toBe('conflict');
      const { execFileSync } = await import('node:child_process');
      execFileSync('mkfifo', [path.join(sb.ws, 'fifo')]);
      expect(await codeOf(svc.readFile('fifo'))).toBe('invalid_path');
    });

    it('reads a small file into memory, refusing large ones', async () => {
      const r = await svc.readBuffer('README.md', 100);
      expect(r.content.toString()).toBe('# hi\n');
      expect(await codeOf(svc.readBuffer('README.md', 2))).toBe('payload_too_large');
    });
  });

  describe('listDir', () => {
    it('lists entries sorted by name with type, size, mtime and mode', async () => {
      const l = await svc.listDir('/workspace');
      expect(l.path).toBe('/workspace');
      expect(l.entries.map((e) => [e.name, e.type])).toEqual([
        ['README.md', 'file'],
        ['app-link', 'symlink'],
        ['src', 'directory'],
      ]);
      const readme = l.entries[0];
      expect(readme).toMatchObject({ size: 5, mode: 0o644 });
      expect(typeof readme?.mtime).toBe('string');
    });

    it('lists a linked folder under the name it was asked by', async () => {
      await fs.promises.symlink('src', path.join(sb.ws, 'src-link'));
      const l = await svc.listDir('src-link/');
      expect(l.path).toBe('/workspace/src-link');
      expect(l.entries.map((e) => e.name)).toEqual(['app.ts', 'lib']);
    });

    it('is conflict for a file and not_found for a missing folder', async () => {
      expect(await codeOf(svc.listDir('README.md'))).toBe('conflict');
      expect(await codeOf(svc.listDir('nope'))).toBe('not_found');
    });

    it('leaves out our temporary files', async () => {
      await fs.promises.writeFile(path.join(sb.ws, '.mominai-tmp-123'), 'x');
      expect((await svc.listDir('.')).entries.map((e) => e.name)).not.toContain('.mominai-tmp-123');
    });
  });

  describe('writeFile', () => {
    it('creates and replaces files from strings, buffers and streams', async () => {
      expect(await svc.writeFile('new.txt', 'hello')).toMatchObject({ path: '/workspace/new.txt', size: 5 });
      await svc.writeFile('/workspace/new.txt', Buffer.from([1, 2, 3]));
      expect([...(await fs.promises.readFile(path.join(sb.ws, 'new.txt')))]).toEqual([1, 2, 3]);
      await svc.writeFile('new.txt', Readable.from([Buffer.from('ab'), Buffer.from('cd')]));
      expect(await fs.promises.readFile(path.join(sb.ws, 'new.txt'), 'utf8')).toBe('abcd');
    });

    it('needs `parents` to create missing folders', async () => {
      expect(await codeOf(svc.writeFile('a/b/c.txt', 'x'))).toBe('not_found');
      expect(await svc.writeFile('a/b/c.txt', 'x', { parents: true })).toMatchObject({ path: '/workspace/a/b/c.txt' });
      expect((await fs.promises.stat(path.join(sb.ws, 'a', 'b'))).isDirectory()).toBe(true);
    });

    it('writes through a link that stays inside, keeping the link', async () => {
      await svc.writeFile('app-link', 'changed');
      expect(await fs.promises.readlink(path.join(sb.ws, 'app-link'))).toBe('src/app.ts');
      expect(await fs.promises.readFile(path.join(sb.ws, 'src', 'app.ts'), 'utf8')).toBe('changed');
    });

    it('is conflict for a folder', async () => {
      expect(await codeOf(svc.writeFile('src', 'x'))).toBe('conflict');
      expect(await codeOf(svc.writeFile('/workspace', 'x'))).toBe('conflict');
    });
  });

  describe('mkdir', () => {
    it('creates one folder, or a chain with recursive', async () => {
      expect(await svc.mkdir('d1')).toEqual({ path: '/workspace/d1' });
      expect(await codeOf(svc.mkdir('d2/x'))).toBe('not_found');
      expect(await svc.mkdir('d2/x/y', { recursive: true })).toEqual({ path: '/workspace/d2/x/y' });
      expect(await codeOf(svc.mkdir('d1'))).toBe('conflict');
      expect(await codeOf(svc.mkdir('d1', { recursive: true }))).toBe('ok');
      expect(await codeOf(svc.mkdir('README.md', { recursive: true }))).toBe('conflict');
      expect(await codeOf(svc.mkdir('README.md/x', { recursive: true }))).toBe('not_found');
    });
  });

  describe('remove', () => {
    it('deletes files, links (not their targets) and empty folders', async () => {
      await svc.remove('app-link');
      expect(fs.existsSync(path.join(sb.ws, 'src', 'app.ts'))).toBe(true);
      await svc.remove('README.md');
      await svc.mkdir('empty');
      await svc.remove('empty');
      expect((await fs.promises.readdir(sb.ws)).sort()).toEqual(['src']);
    });

    it('needs recursive for a non-empty folder', async () => {
      expect(await codeOf(svc.remove('src'))).toBe('conflict');
      await svc.remove('src', { recursive: true });
      expect(fs.existsSync(path.join(sb.ws, 'src'))).toBe(false);
    });

    it('never deletes the root, and is not_found for missing paths', async () => {
      expect(await codeOf(svc.remove('/workspace', { recursive: true }))).toBe('invalid_path');
      expect(await codeOf(svc.remove('nope'))).toBe('not_found');
    });

    it('deletes a deep tree with links without following them', async () => {
      await fs.promises.mkdir(path.join(sb.ws, 't', 'a', 'b'), { recursive: true });
      await fs.promises.writeFile(path.join(sb.ws, 't', 'a', 'b', 'f'), 'x');
      await fs.promises.symlink(sb.outside, path.join(sb.ws, 't', 'a', 'out'));
      const before = await sb.fingerprint();
      await svc.remove('t', { recursive: true });
      expect(fs.existsSync(path.join(sb.ws, 't'))).toBe(false);
      expect(await sb.fingerprint()).toBe(before);
    });
  });

  describe('rename', () => {
    it('moves files and folders within the workspace', async () => {
      expect(await svc.rename('README.md', '/workspace/src/README.md')).toEqual({ from: '/workspace/README.md', to: '/workspace/src/README.md' });
      await svc.rename('src', 'source');
      expect(fs.existsSync(path.join(sb.ws, 'source', 'README.md'))).toBe(true);
    });

    it('replaces a file but never a folder, and needs the destination folder', async () => {
      await fs.promises.writeFile(path.join(sb.ws, 'other.txt'), 'other');
      await svc.rename('other.txt', 'README.md');
      expect(await fs.promises.readFile(path.join(sb.ws, 'README.md'), 'utf8')).toBe('other');
      expect(await codeOf(svc.rename('README.md', 'src'))).toBe('conflict');
      await svc.mkdir('empty');
      expect(await codeOf(svc.rename('src', 'empty'))).toBe('conflict');
      expect(await codeOf(svc.rename('README.md', 'no/such/place'))).toBe('not_found');
      expect(await codeOf(svc.rename('src', 'src/lib/inside'))).toBe('invalid_path');
      expect(await codeOf(svc.rename('missing', 'x'))).toBe('not_found');
      expect(await codeOf(svc.rename('/workspace', 'x'))).toBe('invalid_path');
    });

    it('renames a link itself', async () => {
      await svc.rename('app-link', 'src/link2');
      expect(await fs.promises.readlink(path.join(sb.ws, 'src', 'link2'))).toBe('src/app.ts');
    });
  });
});

describe('decodeContent', () => {
  it('decodes utf8 and strict base64', () => {
    expect(decodeContent('héllo').toString()).toBe('héllo');
    expect([...decodeContent('AQID', 'base64')]).toEqual([1, 2, 3]);
    expect(decodeContent('aGVs\nbG8=', 'base64').toString()).toBe('hello');
  });

  it('refuses malformed base64 instead of skipping characters', () => {
    expect(() => decodeContent('AQI*', 'base64')).toThrow(AppError);
    expect(() => decodeContent('AQI', 'base64')).toThrow(/base64/);
  });
});
