/**
 * Dropping files or folders onto the file tree: everything dropped becomes
 * one tar (the SDK's encoder), uploaded with PUT /api/containers/:id/tar/<folder>
 * in a single request. XMLHttpRequest rather than fetch because only it
 * reports upload progress in browsers (fetch's streaming uploads need HTTP/2).
 */
import { encodeTar, MominaiError, type TarEntry } from '@mominai/client';
import { encodePath } from './paths';

/** The files and folders of a drop, read through the File System entries API (folders included). */
export async function entriesFromDrop(dt: DataTransfer): Promise<TarEntry[]> {
  const roots = [...dt.items].map((i) => (i.kind === 'file' ? i.webkitGetAsEntry() : null)).filter((e): e is FileSystemEntry => !!e);
  const out: TarEntry[] = [];
  if (roots.length === 0) {
    for (const f of dt.files) out.push({ name: f.name, type: 'file', data: new Uint8Array(await f.arrayBuffer()), mtime: Math.floor(f.lastModified / 1000) });
    return out;
  }
  for (const root of roots) await walk(root, '', out);
  return out;
}

async function walk(entry: FileSystemEntry, prefix: string, out: TarEntry[]): Promise<void> {
  const name = `${prefix}${entry.name}`;
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
    out.push({ name, type: 'file', data: new Uint8Array(await file.arrayBuffer()), mtime: Math.floor(file.lastModified / 1000) });
    return;
  }
  if (!entry.isDirectory) return;
  out.push({ name: `${name}/`, type: 'directory' });
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  // readEntries answers in batches (about 100 at a time in Chromium) until it returns none.
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) break;
    for (const child of batch) await walk(child, `${name}/`, out);
  }
}

/** Uploads entries as one tar into `folder` (relative to the workspace); `progress` gets 0..1. */
export function uploadTar(opts: {
  baseUrl: string;
  token: string;
  sessionId: string;
  folder: string;
  entries: TarEntry[];
  progress: (fraction: number) => void;
}): Promise<void> {
  const tar = encodeTar(opts.entries);
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', `${opts.baseUrl}/api/containers/${encodeURIComponent(opts.sessionId)}/tar/${encodePath(opts.folder)}`);
    xhr.setRequestHeader('Authorization', `Bearer ${opts.token}`);
    xhr.setRequestHeader('Content-Type', 'application/x-tar');
    xhr.upload.onprogress = (ev) => ev.lengthComputable && opts.progress(ev.loaded / ev.total);
    xhr.onerror = () => reject(new MominaiError('network_error', 'the upload failed'));
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve();
      let body: unknown;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = undefined;
      }
      const error = typeof body === 'object' && body !== null && 'error' in body ? body.error : undefined;
      reject(error ? MominaiError.fromBody(error, xhr.status) : new MominaiError('bad_response', `upload failed (HTTP ${xhr.status})`, { status: xhr.status }));
    };
    // encodeTar's bytes live in a plain ArrayBuffer; the DOM typings want that spelled out.
    xhr.send(tar as Uint8Array<ArrayBuffer>);
  });
}
