/**
 * Packs a workspace folder into a tar stream, one file at a time: the archive
 * is produced as the reader consumes it (tar-stream's backpressure reaches
 * the file reads), so memory stays flat whatever the folder's size.
 *
 * Walks like the rest of the file service: folders are opened with
 * O_NOFOLLOW through their parent's descriptor and files are read through a
 * checked descriptor, so a link swapped in during packing is stored as what
 * it is, never followed. Symlinks are stored as symlinks; sockets, FIFOs and
 * devices are skipped, and so are our own temporary files. A file that grows
 * or shrinks while it is read is cut or zero-padded to the size its header
 * announced, keeping the archive valid. Names are relative to the folder,
 * folders end in `/`, entries are sorted by name.
 */
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { pack as tarPack, type Header, type Pack } from 'tar-stream';
import { AppError, ErrorCode } from '../../../shared/errors';
import type { Logger } from '../../logger';
import { hasErrno, toAppError } from './fs-errors';
import { resolvePath, verifyDescriptor, type DirRef, type Jail } from './path-jail';
import { drained } from './tar';
import { isTempName } from './workspace-path';

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
const CHUNK = 64 * 1024;

/** A byte stream of the folder `input` as a tar archive; errors before the first byte are thrown here. */
export async function packTar(jail: Jail, input: unknown, logger: Logger): Promise<Readable> {
  const r = await resolvePath(jail, input, { final: 'follow' });
  let dir: DirRef | undefined;
  try {
    if (r.missing.length > 0 || !r.stat) throw new AppError(ErrorCode.NotFound, `no such folder: ${r.shown}`);
    if (!r.stat.isDirectory()) throw new AppError(ErrorCode.Conflict, `not a folder: ${r.shown}`);
    dir = r.name === null ? r.dir : await r.dir.openChild(r.name);
    await dir.verify();
  } catch (err) {
    await dir?.close();
    await r.close();
    throw toAppError(err, r.shown);
  }
  const root = dir;
  const pack = tarPack();
  void (async () => {
    try {
      await packDir(jail, pack, root, '');
      pack.finalize();
    } catch (err) {
      logger.debug('tar pack stopped', { path: r.shown, err });
      pack.destroy(err instanceof Error ? err : new Error(String(err)));
    } finally {
      await root.close();
      await r.close();
    }
  })();
  return Readable.from(pack as AsyncIterable<Buffer>, { objectMode: false });
}

async function packDir(jail: Jail, pack: Pack, dir: DirRef, prefix: string): Promise<void> {
  const names = (await fs.promises.readdir(dir.self)).filter((n) => !isTempName(n)).sort();
  for (const name of names) {
    if (pack.destroying || pack.destroyed) throw new Error('reader went away');
    let st: fs.Stats;
    try {
      st = await fs.promises.lstat(dir.child(name));
    } catch (err) {
      if (hasErrno(err, 'ENOENT')) continue; // deleted while packing
      throw err;
    }
    const base = { name: prefix + name, mode: st.mode & 0o7777, mtime: st.mtime, uid: st.uid, gid: st.gid };
    if (st.isDirectory()) {
      let sub: DirRef;
      try {
        sub = await dir.openChild(name);
      } catch (err) {
        if (hasErrno(err, 'ENOENT', 'ELOOP', 'ENOTDIR')) continue; // changed under us: left out
        throw err;
      }
      try {
        await addEntry(pack, { ...base, name: `${prefix}${name}/`, type: 'directory' });
        await packDir(jail, pack, sub, `${prefix}${name}/`);
      } finally {
        await sub.close();
      }
    } else if (st.isSymbolicLink()) {
      const linkname = await fs.promises.readlink(dir.child(name)).catch(() => null);
      if (linkname !== null) await addEntry(pack, { ...base, type: 'symlink', linkname });
    } else if (st.isFile()) {
      await packFile(jail, pack, dir, name, base);
    }
  }
}

async function packFile(jail: Jail, pack: Pack, dir: DirRef, name: string, base: Partial<Header> & { name: string }): Promise<void> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(dir.child(name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    if (hasErrno(err, 'ENOENT', 'ELOOP')) return; // deleted or swapped for a link since the lstat
    throw err;
  }
  try {
    await verifyDescriptor(jail, fh, base.name);
    const st = await fh.stat();
    if (!st.isFile()) return;
    await addEntry(pack, { ...base, type: 'file', size: st.size, mode: st.mode & 0o7777, mtime: st.mtime }, exactBytes(fh, st.size));
  } finally {
    await fh.close();
  }
}

/** Exactly `size` bytes of the file: cut if it grew, zero-padded if it shrank. */
async function* exactBytes(fh: fs.promises.FileHandle, size: number): AsyncGenerator<Buffer> {
  let pos = 0;
  while (pos < size) {
    const want = Math.min(CHUNK, size - pos);
    const buf = Buffer.alloc(want);
    const { bytesRead } = await fh.read(buf, 0, want, pos);
    if (bytesRead === 0) {
      yield Buffer.alloc(size - pos);
      return;
    }
    pos += bytesRead;
    yield bytesRead === want ? buf : buf.subarray(0, bytesRead);
  }
}

/** Adds one entry, writing `body` with backpressure; resolves when tar-stream has taken it. */
function addEntry(pack: Pack, header: Partial<Header> & { name: string }, body?: AsyncIterable<Buffer>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
    if (!body) return;
    void (async () => {
      for await (const chunk of body) {
        if (sink.destroyed) return;
        if (!sink.write(chunk)) await drained(sink);
      }
      sink.end(undefined);
    })().catch((err: unknown) => {
      sink.destroy(err instanceof Error ? err : new Error(String(err)));
      reject(err);
    });
  });
}
