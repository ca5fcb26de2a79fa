/**
 * A small tar (POSIX ustar) encoder and decoder that runs in browsers:
 * `mount()` sends a whole tree as one upload, `export()` reads one back.
 * Names longer than ustar's 100 (+155 prefix) bytes, and long link targets,
 * go in a PAX extended header (`x`) before their entry, as GNU and
 * tar-stream also read them.
 */
import { joinBytes } from '../../shared/bytes';

export interface TarEntry {
  /** Relative path with `/` separators; folders may end with `/`. */
  name: string;
  type: 'file' | 'directory' | 'symlink';
  data?: Uint8Array;
  /** Target of a symlink. */
  linkname?: string;
  mode?: number;
  /** Seconds since the epoch. */
  mtime?: number;
}

const BLOCK = 512;
const enc = new TextEncoder();
const dec = new TextDecoder();

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function put(block: Uint8Array, at: number, width: number, text: string | Uint8Array): void {
  const bytes = typeof text === 'string' ? enc.encode(text) : text;
  block.set(bytes.subarray(0, width), at);
}

function header(name: string, opts: { size: number; typeflag: string; mode: number; mtime: number; linkname?: string; prefix?: string }): Uint8Array {
  const h = new Uint8Array(BLOCK);
  put(h, 0, 100, name);
  put(h, 100, 8, octal(opts.mode, 8));
  put(h, 108, 8, octal(0, 8));
  put(h, 116, 8, octal(0, 8));
  put(h, 124, 12, octal(opts.size, 12));
  put(h, 136, 12, octal(opts.mtime, 12));
  put(h, 148, 8, '        ');
  put(h, 156, 1, opts.typeflag);
  if (opts.linkname) put(h, 157, 100, opts.linkname);
  put(h, 257, 6, 'ustar\0');
  put(h, 263, 2, '00');
  if (opts.prefix) put(h, 345, 155, opts.prefix);
  let sum = 0;
  for (const b of h) sum += b;
  put(h, 148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return h;
}

/** Splits a name into ustar's prefix (≤ 155 bytes) and name (≤ 100 bytes) at a slash, if it can. */
function split(name: string): { name: string; prefix: string } | undefined {
  if (enc.encode(name).byteLength <= 100) return { name, prefix: '' };
  for (let i = name.indexOf('/'); i > 0; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (enc.encode(prefix).byteLength <= 155 && enc.encode(rest).byteLength <= 100 && rest) return { name: rest, prefix };
  }
  return undefined;
}

function paxRecord(key: string, value: string): string {
  // The record's length counts its own digits.
  const body = ` ${key}=${value}\n`;
  const base = enc.encode(body).byteLength;
  let len = base + String(base).length;
  if (String(len).length !== String(base).length) len = base + String(len).length;
  return `${len}${body}`;
}

function padding(size: number): Uint8Array {
  const rem = size % BLOCK;
  return new Uint8Array(rem === 0 ? 0 : BLOCK - rem);
}

/** The tar archive of `entries`, in order. */
export function encodeTar(entries: Iterable<TarEntry>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const e of entries) {
    const name = e.type === 'directory' && !e.name.endsWith('/') ? `${e.name}/` : e.name;
    const data = e.type === 'file' ? (e.data ?? new Uint8Array(0)) : new Uint8Array(0);
    const mode = e.mode ?? (e.type === 'directory' ? 0o755 : e.type === 'symlink' ? 0o777 : 0o644);
    const mtime = e.mtime ?? Math.floor(Date.now() / 1000);
    const typeflag = e.type === 'directory' ? '5' : e.type === 'symlink' ? '2' : '0';
    const fits = split(name);
    const longLink = e.linkname !== undefined && enc.encode(e.linkname).byteLength > 100;
    if (!fits || longLink) {
      const pax = enc.encode((fits ? '' : paxRecord('path', name)) + (longLink ? paxRecord('linkpath', e.linkname!) : ''));
      parts.push(header('PaxHeader', { size: pax.byteLength, typeflag: 'x', mode: 0o644, mtime }), pax, padding(pax.byteLength));
    }
    const short = fits ?? { name: name.slice(-100), prefix: '' };
    parts.push(header(short.name, { size: data.byteLength, typeflag, mode, mtime, ...(e.linkname && !longLink ? { linkname: e.linkname } : {}), prefix: short.prefix }));
    if (data.byteLength) parts.push(data, padding(data.byteLength));
  }
  parts.push(new Uint8Array(BLOCK * 2));
  return joinBytes(parts);
}

function text(block: Uint8Array, at: number, width: number): string {
  const slice = block.subarray(at, at + width);
  const end = slice.indexOf(0);
  return dec.decode(end === -1 ? slice : slice.subarray(0, end));
}

function parsePax(bytes: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < bytes.byteLength) {
    const space = bytes.indexOf(0x20, at);
    if (space < 0) break;
    const len = Number(dec.decode(bytes.subarray(at, space)));
    if (!(len > 0)) break;
    const record = dec.decode(bytes.subarray(space + 1, at + len - 1));
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    at += len;
  }
  return out;
}

/** The entries of a tar archive (files, folders, symlinks; other kinds are skipped). */
export function decodeTar(tar: Uint8Array): TarEntry[] {
  const out: TarEntry[] = [];
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  for (let at = 0; at + BLOCK <= tar.byteLength; ) {
    const h = tar.subarray(at, at + BLOCK);
    if (h.every((b) => b === 0)) break;
    const size = parseInt(text(h, 124, 12).trim() || '0', 8);
    const typeflag = String.fromCharCode(h[156]!);
    const body = tar.subarray(at + BLOCK, at + BLOCK + size);
    at += BLOCK + size + padding(size).byteLength;
    if (typeflag === 'x') {
      pax = parsePax(body);
      continue;
    }
    if (typeflag === 'L') {
      longName = text(body, 0, body.byteLength);
      continue;
    }
    if (typeflag === 'g') continue;
    const prefix = text(h, 345, 155);
    const name = pax.path ?? longName ?? (prefix ? `${prefix}/${text(h, 0, 100)}` : text(h, 0, 100));
    const linkname = pax.linkpath ?? text(h, 157, 100);
    pax = {};
    longName = undefined;
    const mode = parseInt(text(h, 100, 8).trim() || '0', 8);
    const mtime = parseInt(text(h, 136, 12).trim() || '0', 8);
    if (typeflag === '5') out.push({ name, type: 'directory', mode, mtime });
    else if (typeflag === '2') out.push({ name, type: 'symlink', linkname, mode, mtime });
    else if (typeflag === '0' || typeflag === '\0' || typeflag === '7') out.push({ name, type: 'file', data: body.slice(), mode, mtime });
  }
  return out;
}
