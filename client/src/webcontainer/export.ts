/**
 * `export(path, {format, includes, excludes})`: the folder comes down as one
 * tar (GET …/tar/<path>) and is turned into a FileSystemTree (`json`), a zip
 * (`zip`, stored without compression) or handed back as the tar itself
 * (`binary`: WebContainers' own snapshot format is not public, a tar is what
 * `mount()` takes back here).
 */
import type { SessionFiles } from '../files';
import { decodeTar, encodeTar, type TarEntry } from '../tar';
import { joinBytes } from '../../../shared/bytes';
import { PathFilter } from './glob';
import { relativePath, WORKDIR } from './fs';
import type { ExportOptions, FileSystemTree } from './types';

export async function exportTree(rest: SessionFiles, path: string, opts: ExportOptions = {}, shown: string = WORKDIR): Promise<FileSystemTree | Uint8Array> {
  const stream = await rest.tarDownload(relativePath(path, shown));
  const tar = new Uint8Array(await new Response(stream).arrayBuffer());
  // Globs are relative to the exported folder, as WebContainers' are.
  const filter = new PathFilter(opts.includes, opts.excludes, WORKDIR);
  const entries = decodeTar(tar)
    .map((e) => ({ ...e, name: e.name.replace(/^\.\//, '').replace(/\/$/, '') }))
    .filter((e) => e.name !== '' && e.name !== '.' && (opts.includes || opts.excludes ? filter.matches(`${WORKDIR}/${e.name}`) : true));
  const format = opts.format ?? 'json';
  if (format === 'binary') return encodeTar(entries);
  if (format === 'zip') return encodeZip(entries);
  return toTree(entries);
}

export function toTree(entries: readonly TarEntry[]): FileSystemTree {
  const root: FileSystemTree = {};
  const dirOf = (parts: string[]): FileSystemTree => {
    let t = root;
    for (const p of parts) {
      const node = t[p];
      if (node && 'directory' in node) t = node.directory;
      else {
        const d: FileSystemTree = {};
        t[p] = { directory: d };
        t = d;
      }
    }
    return t;
  };
  for (const e of entries) {
    const parts = e.name.split('/');
    const name = parts.pop()!;
    const dir = dirOf(parts);
    if (e.type === 'directory') dirOf([...parts, name]);
    else if (e.type === 'symlink') dir[name] = { file: { symlink: e.linkname ?? '' } };
    else dir[name] = { file: { contents: e.data ?? new Uint8Array(0) } };
  }
  return root;
}

/** The entries of a FileSystemTree, folders before what they hold. */
export function fromTree(tree: FileSystemTree, prefix = ''): TarEntry[] {
  const out: TarEntry[] = [];
  for (const [name, node] of Object.entries(tree)) {
    if (name.includes('/') || name === '..' || name === '.' || name === '') throw new TypeError(`invalid name in FileSystemTree: ${JSON.stringify(name)}`);
    const path = prefix ? `${prefix}/${name}` : name;
    if ('directory' in node) {
      out.push({ name: path, type: 'directory' });
      out.push(...fromTree(node.directory, path));
    } else if ('symlink' in node.file) {
      out.push({ name: path, type: 'symlink', linkname: node.file.symlink });
    } else {
      const c = node.file.contents;
      out.push({ name: path, type: 'file', data: typeof c === 'string' ? new TextEncoder().encode(c) : c });
    }
  }
  return out;
}

const crcTable = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A zip archive (method 0, stored) of files and folders; symlinks are stored as files holding their target. */
export function encodeZip(entries: readonly TarEntry[]): Uint8Array {
  const enc = new TextEncoder();
  const locals: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = enc.encode(e.type === 'directory' ? `${e.name}/` : e.name);
    const data = e.type === 'file' ? (e.data ?? new Uint8Array(0)) : e.type === 'symlink' ? enc.encode(e.linkname ?? '') : new Uint8Array(0);
    const crc = crc32(data);
    const local = new Uint8Array(30 + name.byteLength);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 10, true);
    lv.setUint16(6, 0x0800, true); // UTF-8 names
    lv.setUint32(14, crc, true);
    lv.setUint32(18, data.byteLength, true);
    lv.setUint32(22, data.byteLength, true);
    lv.setUint16(26, name.byteLength, true);
    local.set(name, 30);
    const head = new Uint8Array(46 + name.byteLength);
    const cv = new DataView(head.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 0x031e, true); // made by Unix, spec 3.0
    cv.setUint16(6, 10, true);
    cv.setUint16(8, 0x0800, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, data.byteLength, true);
    cv.setUint32(24, data.byteLength, true);
    cv.setUint16(28, name.byteLength, true);
    const mode = e.type === 'directory' ? 0o40755 : 0o100644;
    cv.setUint32(38, (mode << 16) >>> 0, true);
    cv.setUint32(42, offset, true);
    head.set(name, 46);
    locals.push(local, data);
    central.push(head);
    offset += local.byteLength + data.byteLength;
  }
  const centralBytes = joinBytes(central);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
  ev.setUint32(12, centralBytes.byteLength, true);
  ev.setUint32(16, offset, true);
  return joinBytes([...locals, centralBytes, end]);
}
