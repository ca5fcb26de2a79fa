/**
 * Data that crossed a socket or came out of storage is decoded with zod,
 * never cast: this reads every source file in edge/ and agent/ for the casts
 * that would hide such data from the compiler (a JSON.parse, an attachment,
 * a typed storage read, an agent's answer or event taken `as` some type).
 * Casts of platform values (a dockerode stream, an error object) are not data
 * and are not looked for.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../..');

const patterns: Array<{ name: string; re: RegExp }> = [
  { name: 'JSON.parse(…) as T', re: /JSON\.parse\([^\n]*\)\)?\s+as\s+(?!unknown\b|const\b)/ },
  { name: 'deserializeAttachment() as T', re: /deserializeAttachment\(\)\s*\)?\s*as\s/ },
  { name: 'storage.get<T>', re: /storage\.get</ },
  { name: 'sql.exec<T> with a row type of its own', re: /\.exec<(?![^>]*SqlStorageValue)/ },
  { name: 'an answer or event taken as T', re: /\b(?:data|payload|result|parsed|params|frame\.payload)\s+as\s+(?!unknown\b|const\b)/ },
  { name: 'request(…) as T', re: /\.request\([^\n]*\)\)\s*as\s/ },
];

/** Casts to a library's own type, not of data (Hono's validated-data slot takes `object`). */
const platformCasts = ["c.req.addValidatedData('json', result.data as object)"];

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) out.push(...sources(rel));
    else if (e.name.endsWith('.ts')) out.push(rel);
  }
  return out;
}

function castsIn(file: string): string[] {
  const found: string[] = [];
  fs.readFileSync(path.join(root, file), 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (/^\s*(\/\/|\*)/.test(line) || platformCasts.some((c) => line.includes(c))) return;
      for (const p of patterns) if (p.re.test(line)) found.push(`${file}:${i + 1}: ${p.name}: ${line.trim()}`);
    });
  return found;
}

describe('no casts of socket or storage data in edge/ and agent/', () => {
  it('finds none', () => {
    const found = [...sources('edge'), ...sources('agent')].flatMap(castsIn);
    expect(found).toEqual([]);
  });

  it('recognises each kind of cast it looks for', () => {
    const lines = [
      'const v = JSON.parse(text) as Row;',
      'const a = ws.deserializeAttachment() as Attachment | null;',
      'const a = (ws.deserializeAttachment() as Attachment | null)?.x;',
      "const r = await ctx.storage.get<Rec>('record');",
      "this.sql.exec<{ n: number }>('SELECT 1')",
      'const x = data as { port: number };',
      "const r = (await link.request('m', p)) as Result;",
    ];
    for (const l of lines) expect(patterns.some((p) => p.re.test(l)), l).toBe(true);
    for (const l of ['JSON.parse(text) as unknown', "this.sql.exec<Record<string, SqlStorageValue>>('x')", 'const s = stream as NodeJS.ReadableStream;']) {
      expect(patterns.some((p) => p.re.test(l)), l).toBe(false);
    }
  });
});
