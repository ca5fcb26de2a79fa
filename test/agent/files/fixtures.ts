/**
 * Sandboxes for the file service tests: a temporary base folder holding the
 * workspace (`ws`) and a sibling `outside` folder with canary files, plus a
 * fingerprint of everything that must never change (the outside folder, the
 * base folder's own listing, probe names under /etc and /tmp).
 */
import { AppError } from '../../../shared/errors';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pack as tarPack, type Header } from 'tar-stream';

export const CANARY = 'CANARY: outside the workspace, never to be read or written\n';
export const PROBE = 'mominai-jail-probe';

export interface Sandbox {
  base: string;
  ws: string;
  outside: string;
  /** Everything the jail must leave alone, as one comparable string. */
  fingerprint(): Promise<string>;
  cleanup(): Promise<void>;
}

export async function makeSandbox(): Promise<Sandbox> {
  const base = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'mominai-files-'));
  const ws = path.join(base, 'ws');
  const outside = path.join(base, 'outside');
  await fs.promises.mkdir(ws);
  await fs.promises.mkdir(path.join(outside, 'sub'), { recursive: true });
  await fs.promises.writeFile(path.join(outside, 'canary.txt'), CANARY);
  await fs.promises.writeFile(path.join(outside, 'sub', 'deep.txt'), CANARY);
  return {
    base,
    ws,
    outside,
    fingerprint: async () =>
      JSON.stringify({
        outside: await treeFingerprint(outside),
        base: (await fs.promises.readdir(base)).sort(),
        probes: [path.join('/etc', PROBE), path.join(os.tmpdir(), PROBE), path.join(base, PROBE)].filter((p) => fs.existsSync(p)),
      }),
    cleanup: () => fs.promises.rm(base, { recursive: true, force: true }),
  };
}

/** Every entry under `dir`: type, size, mode, mtime, content hash or link target. */
export async function treeFingerprint(dir: string, opts: { mtimes?: boolean } = {}): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await fs.promises.readdir(path.join(dir, rel))).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = path.join(dir, r);
      const st = await fs.promises.lstat(p);
      const mtime = opts.mtimes === false ? '' : `:${st.mtimeMs}`;
      if (st.isDirectory()) {
        out[r] = `dir:${st.mode & 0o7777}${mtime}`;
        await walk(r);
      } else if (st.isSymbolicLink()) {
        out[r] = `link:${await fs.promises.readlink(p)}`;
      } else {
        out[r] = `file:${st.size}:${st.mode & 0o7777}${mtime}:${sha256(await fs.promises.readFile(p))}`;
      }
    }
  };
  await walk('');
  return out;
}

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

export interface TarEntry extends Partial<Header> {
  name: string;
  content?: string | Buffer;
}

/** A tar archive with exactly these headers (also ones a real tar would refuse to write). */
export async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tarPack();
  const done = readAll(pack as AsyncIterable<unknown>);
  for (const { content, ...header } of entries) {
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (content !== undefined) pack.entry(header, content, cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  return done;
}

/** Resolves once `pred` holds (the shared wait helper, under the name these suites use). */
export { until as waitUntil } from '../../helpers/wait';

/** The AppError code an operation fails with, or 'ok'. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (err instanceof AppError) return err.code;
    throw err;
  }
}
