import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../../agent/logger';
import { FileService } from '../../../agent/services/files/file-service';
import { AppError } from '../../../shared/errors';
import { codeOf, makeSandbox, type Sandbox } from './fixtures';


const isRoot = process.getuid?.() === 0;

describe('FileService.writeFile atomicity and limits', () => {
  let sb: Sandbox;
  let svc: FileService;
  let target: string;
  beforeEach(async () => {
    sb = await makeSandbox();
    svc = await FileService.open({ root: sb.ws, logger: memoryLogger(), maxFileSize: 1024 * 1024 });
    target = path.join(sb.ws, 'doc.txt');
    await fs.promises.writeFile(target, 'old content');
  });
  afterEach(() => sb.cleanup());

  const entries = () => fs.promises.readdir(sb.ws);

  it('keeps the old file when the source stream fails midway, and leaves no temporary file', async () => {
    async function* failing() {
      yield Buffer.alloc(300_000, 1);
      yield Buffer.alloc(300_000, 2);
      throw new Error('client went away');
    }
    expect(await codeOf(svc.writeFile('doc.txt', failing()))).toBe('bad_request');
    expect(await fs.promises.readFile(target, 'utf8')).toBe('old content');
    expect(await entries()).toEqual(['doc.txt']);
  });

  it('keeps the old file when a Readable is destroyed with an error', async () => {
    const src = new Readable({ read() {} });
    const p = svc.writeFile('doc.txt', src);
    src.push(Buffer.alloc(100_000, 3));
    src.destroy(new Error('socket hang up')); // before the service has even started reading
    expect(await codeOf(p)).toBe('bad_request');
    expect(await fs.promises.readFile(target, 'utf8')).toBe('old content');
    expect(await entries()).toEqual(['doc.txt']);
  });

  it('refuses an oversized stream with payload_too_large, stopping the source', async () => {
    let produced = 0;
    const src = new Readable({
      read() {
        produced += 64 * 1024;
        this.push(Buffer.alloc(64 * 1024, 9));
      },
    });
    expect(await codeOf(svc.writeFile('doc.txt', src))).toBe('payload_too_large');
    expect(src.destroyed).toBe(true);
    expect(produced).toBeLessThan(2 * 1024 * 1024); // it stopped right after the limit
    expect(await fs.promises.readFile(target, 'utf8')).toBe('old content');
    expect(await entries()).toEqual(['doc.txt']);
  });

  it('refuses an oversized buffer before touching the disk', async () => {
    expect(await codeOf(svc.writeFile('doc.txt', Buffer.alloc(1024 * 1024 + 1)))).toBe('payload_too_large');
    expect(await codeOf(svc.writeFile('new.txt', 'x'.repeat(1024 * 1024 + 1)))).toBe('payload_too_large');
    expect(await entries()).toEqual(['doc.txt']);
  });

  it('accepts exactly the limit', async () => {
    expect(await svc.writeFile('doc.txt', Buffer.alloc(1024 * 1024, 1))).toMatchObject({ size: 1024 * 1024 });
  });

  it('treats an upload shorter than announced as cut off', async () => {
    const err = await svc.writeFile('doc.txt', Readable.from([Buffer.from('abc')]), { expectedSize: 10 }).catch((e: unknown) => e);
    expect((err as AppError).code).toBe('bad_request');
    expect(await fs.promises.readFile(target, 'utf8')).toBe('old content');
    expect(await entries()).toEqual(['doc.txt']);
  });

  it('lets readers see the old or the new content, never a mix', async () => {
    const a = Buffer.alloc(256 * 1024, 'a');
    const b = Buffer.alloc(256 * 1024, 'b');
    await fs.promises.writeFile(target, a);
    let stop = false;
    const seen = new Set<string>();
    const reader = (async () => {
      while (!stop) {
        const data = await fs.promises.readFile(target);
        seen.add(data.equals(a) ? 'a' : data.equals(b) ? 'b' : 'mixed');
      }
    })();
    for (let i = 0; i < 30; i++) await svc.writeFile('doc.txt', i % 2 ? a : b);
    stop = true;
    await reader;
    expect(seen.has('mixed')).toBe(false);
  });

  it('keeps an existing file’s mode, and gives new files 0644', async () => {
    await fs.promises.chmod(target, 0o600);
    await svc.writeFile('doc.txt', 'new');
    expect((await fs.promises.stat(target)).mode & 0o7777).toBe(0o600);
    await svc.writeFile('fresh.txt', 'new');
    expect((await fs.promises.stat(path.join(sb.ws, 'fresh.txt'))).mode & 0o7777).toBe(0o644);
  });

  it('drops setuid and setgid bits of a rewritten file', async () => {
    await fs.promises.chmod(target, 0o6755);
    await svc.writeFile('doc.txt', 'new');
    expect((await fs.promises.stat(target)).mode & 0o7777).toBe(0o755);
  });

  it('breaks a hard link instead of writing through it', async () => {
    const other = path.join(sb.outside, 'hardlinked.txt');
    await fs.promises.link(target, other);
    const before = await fs.promises.readFile(other, 'utf8');
    await svc.writeFile('doc.txt', 'new');
    expect(await fs.promises.readFile(other, 'utf8')).toBe(before);
    expect(await fs.promises.readFile(target, 'utf8')).toBe('new');
  });

  describe.runIf(isRoot)('ownership (as root)', () => {
    it('gives new files and folders the workspace root’s owner', async () => {
      await fs.promises.chown(sb.ws, 1234, 2345);
      await svc.writeFile('a/b/new.txt', 'x', { parents: true });
      await svc.mkdir('m/n', { recursive: true });
      for (const rel of ['a', 'a/b', 'a/b/new.txt', 'm', 'm/n']) {
        const st = await fs.promises.stat(path.join(sb.ws, rel));
        expect([rel, st.uid, st.gid]).toEqual([rel, 1234, 2345]);
      }
    });

    it('keeps the owner of an existing file', async () => {
      await fs.promises.chown(sb.ws, 1234, 2345);
      await fs.promises.chown(target, 4321, 5432);
      await svc.writeFile('doc.txt', 'new');
      const st = await fs.promises.stat(target);
      expect([st.uid, st.gid]).toEqual([4321, 5432]);
    });

    it('gives extracted entries the workspace root’s owner, not the archive’s', async () => {
      const { makeTar } = await import('./fixtures');
      await fs.promises.chown(sb.ws, 1234, 2345);
      await svc.extractTar('.', [await makeTar([{ name: 'd/f.txt', content: 'x', uid: 0, gid: 0 }, { name: 'l', type: 'symlink', linkname: 'd' }])]);
      for (const rel of ['d', 'd/f.txt', 'l']) {
        const st = await fs.promises.lstat(path.join(sb.ws, rel));
        expect([rel, st.uid, st.gid]).toEqual([rel, 1234, 2345]);
      }
    });
  });

  it('does not change ownership when told not to', async () => {
    const plain = await FileService.open({ root: sb.ws, logger: memoryLogger(), chown: false });
    await fs.promises.chown(sb.ws, 1234, 2345).catch(() => undefined);
    await plain.writeFile('mine.txt', 'x');
    expect((await fs.promises.stat(path.join(sb.ws, 'mine.txt'))).uid).toBe(process.getuid?.());
  });
});
