/**
 * The traversal suite: every hostile path against every operation, each in a
 * fresh sandbox, asserting the exact error code and that nothing outside the
 * workspace was read or written (the sibling `outside` folder, the base
 * folder's listing, probe files under /etc and /tmp).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../../agent/logger';
import { FileService } from '../../../agent/services/files/file-service';
import { AppError } from '../../../shared/errors';
import { CANARY, makeSandbox, makeTar, PROBE, readAll, type Sandbox } from './fixtures';

const OPS = ['read', 'stat', 'write', 'list', 'mkdir', 'delete', 'renameFrom', 'renameTo', 'pack', 'extractTo'] as const;
type Op = (typeof OPS)[number];
type Outcome = 'ok' | 'invalid_path' | 'path_outside_workspace' | 'not_found' | 'conflict';
type Expect = Record<Op, Outcome>;

const all = (o: Outcome): Expect => Object.fromEntries(OPS.map((op) => [op, o])) as Expect;
/** A final symlink that leads out: following it is refused, acting on the link itself is fine. */
const finalLink = (o: Outcome): Expect => ({ ...all(o), stat: 'ok', delete: 'ok', renameFrom: 'ok', renameTo: 'ok' });
/** A literal odd name that stays inside and does not exist (one name, or several). */
const literal = (single: boolean): Expect => ({
  ...all('not_found'),
  write: single ? 'ok' : 'not_found',
  mkdir: 'ok',
  renameTo: single ? 'ok' : 'not_found',
  extractTo: 'ok',
});

interface Case {
  name: string;
  path: unknown | ((sb: Sandbox) => string);
  expect: Expect;
}

const cases: Case[] = [
  // Not a usable path at all.
  { name: 'empty string', path: '', expect: all('invalid_path') },
  { name: 'NUL in a name', path: 'sub/fi\0le.txt', expect: all('invalid_path') },
  { name: 'NUL then ../', path: 'ok\0/../../outside/canary.txt', expect: all('invalid_path') },
  { name: 'lone NUL', path: '\0', expect: all('invalid_path') },
  { name: 'NUL after /workspace', path: '/workspace/\0', expect: all('invalid_path') },
  { name: '256-byte name', path: 'x'.repeat(256), expect: all('invalid_path') },
  { name: '256-byte name of 2-byte chars', path: 'é'.repeat(128), expect: all('invalid_path') },
  { name: 'path over 4096 bytes', path: 'a/'.repeat(2049), expect: all('invalid_path') },
  { name: 'lone high surrogate', path: 'bad\uD800name', expect: all('invalid_path') },
  { name: 'lone low surrogate', path: '\uDC00', expect: all('invalid_path') },
  { name: 'a number', path: 42, expect: all('invalid_path') },
  { name: 'null', path: null, expect: all('invalid_path') },
  { name: 'undefined', path: undefined, expect: all('invalid_path') },
  { name: 'an object', path: { toString: () => '../outside' }, expect: all('invalid_path') },
  { name: 'an array', path: ['..', 'outside'], expect: all('invalid_path') },
  // `..` and absolute paths that leave.
  { name: '..', path: '..', expect: all('path_outside_workspace') },
  { name: '../', path: '../', expect: all('path_outside_workspace') },
  { name: '../outside/canary.txt', path: '../outside/canary.txt', expect: all('path_outside_workspace') },
  { name: '../../etc/passwd', path: '../../../../../../etc/passwd', expect: all('path_outside_workspace') },
  { name: './../outside', path: './../outside', expect: all('path_outside_workspace') },
  { name: 'sub/../../outside/canary.txt', path: 'sub/../../outside/canary.txt', expect: all('path_outside_workspace') },
  { name: 'a/b/../../../outside', path: 'a/b/../../../outside', expect: all('path_outside_workspace') },
  { name: '..//..//etc', path: '..//..//etc', expect: all('path_outside_workspace') },
  { name: 'sub/./../..', path: 'sub/./../..', expect: all('path_outside_workspace') },
  { name: 'out and back in: ../ws/sub/file.txt', path: '../ws/sub/file.txt', expect: all('path_outside_workspace') },
  { name: '/etc/passwd', path: '/etc/passwd', expect: all('path_outside_workspace') },
  { name: '/', path: '/', expect: all('path_outside_workspace') },
  { name: '/tmp probe', path: `/tmp/${PROBE}`, expect: all('path_outside_workspace') },
  { name: '/workspace/..', path: '/workspace/..', expect: all('path_outside_workspace') },
  { name: '/workspace/../etc/passwd', path: '/workspace/../etc/passwd', expect: all('path_outside_workspace') },
  { name: '/workspace/sub/../../outside', path: '/workspace/sub/../../outside', expect: all('path_outside_workspace') },
  { name: '/workspacex', path: '/workspacex/file', expect: all('path_outside_workspace') },
  { name: '/workspace-evil', path: '/workspace-evil/x', expect: all('path_outside_workspace') },
  { name: '//etc/passwd', path: '//etc/passwd', expect: all('path_outside_workspace') },
  { name: '/../workspace/sub', path: '/../workspace/sub', expect: all('path_outside_workspace') },
  { name: 'host path of outside', path: (sb: Sandbox) => path.join(sb.outside, 'canary.txt'), expect: all('path_outside_workspace') },
  { name: 'host path of the workspace itself', path: (sb: Sandbox) => path.join(sb.ws, 'sub', 'file.txt'), expect: all('path_outside_workspace') },
  // Encodings are not decoded here, backslashes are plain characters: all stay inside.
  { name: '%2e%2e/outside/canary.txt', path: '%2e%2e/outside/canary.txt', expect: literal(false) },
  { name: '..%2f..%2fetc%2fpasswd', path: '..%2f..%2fetc%2fpasswd', expect: literal(true) },
  { name: '..\\..\\outside\\canary.txt', path: '..\\..\\outside\\canary.txt', expect: literal(true) },
  { name: '....//outside', path: '....//outside', expect: literal(false) },
  { name: '.../canary.txt', path: '.../canary.txt', expect: literal(false) },
  { name: 'fullwidth dots ．．/outside', path: '\uFF0E\uFF0E/outside', expect: literal(false) },
  { name: 'one-dot leader ․․/outside', path: '\u2024\u2024/outside', expect: literal(false) },
  { name: 'RTL override name', path: '\u202Etxt.exe', expect: literal(true) },
  // Symlinks that lead out, as the last name...
  { name: 'link to outside file (relative)', path: 'link-out-file', expect: finalLink('path_outside_workspace') },
  { name: 'link to outside file (absolute)', path: 'link-out-file-abs', expect: finalLink('path_outside_workspace') },
  { name: 'link to outside dir', path: 'link-out-dir', expect: finalLink('path_outside_workspace') },
  { name: 'link to outside dir, trailing slash', path: 'link-out-dir/', expect: finalLink('path_outside_workspace') },
  { name: 'link to outside dir (absolute)', path: 'link-out-dir-abs', expect: finalLink('path_outside_workspace') },
  { name: 'link to /etc', path: 'link-etc', expect: finalLink('path_outside_workspace') },
  { name: 'link to /', path: 'link-root', expect: finalLink('path_outside_workspace') },
  { name: 'link to ..', path: 'link-dotdot', expect: finalLink('path_outside_workspace') },
  { name: 'chain of links leading out', path: 'chain1', expect: finalLink('path_outside_workspace') },
  { name: 'dangling link to outside', path: 'dangling-out', expect: finalLink('path_outside_workspace') },
  { name: 'link in a subfolder to ../..', path: 'sub/link-up', expect: finalLink('path_outside_workspace') },
  { name: 'link to /workspace/..', path: 'link-ws-dotdot', expect: finalLink('path_outside_workspace') },
  { name: 'link loop', path: 'loop1', expect: finalLink('invalid_path') },
  // ... and in the middle of the path.
  { name: 'outside dir link / canary', path: 'link-out-dir/canary.txt', expect: all('path_outside_workspace') },
  { name: 'outside dir link / new file', path: 'link-out-dir/new.txt', expect: all('path_outside_workspace') },
  { name: 'outside dir link / sub / deep', path: 'link-out-dir/sub/deep.txt', expect: all('path_outside_workspace') },
  { name: 'absolute outside dir link / canary', path: 'link-out-dir-abs/canary.txt', expect: all('path_outside_workspace') },
  { name: '/workspace/ + outside dir link', path: '/workspace/link-out-dir/canary.txt', expect: all('path_outside_workspace') },
  { name: 'link to /etc / passwd', path: 'link-etc/passwd', expect: all('path_outside_workspace') },
  { name: 'link to /etc / probe', path: `link-etc/${PROBE}`, expect: all('path_outside_workspace') },
  { name: 'link to / then etc/passwd', path: 'link-root/etc/passwd', expect: all('path_outside_workspace') },
  { name: 'link to .. then outside', path: 'link-dotdot/outside/canary.txt', expect: all('path_outside_workspace') },
  { name: 'link to .. then probe', path: `link-dotdot/${PROBE}`, expect: all('path_outside_workspace') },
  { name: 'chain of links / canary', path: 'chain1/canary.txt', expect: all('path_outside_workspace') },
  { name: 'subfolder link to ../.. / outside', path: 'sub/link-up/outside/canary.txt', expect: all('path_outside_workspace') },
  { name: 'deep link to ../../../outside / canary', path: 'sub/deep/link-up2/canary.txt', expect: all('path_outside_workspace') },
  { name: 'inside link to a link leading out', path: 'link-in-to-out/canary.txt', expect: all('path_outside_workspace') },
  { name: 'link loop in the middle', path: 'loop1/x', expect: all('invalid_path') },
  { name: 'outside dir link, then .. lexically', path: 'link-out-dir/../link-out-dir/canary.txt', expect: all('path_outside_workspace') },
];

// Links that stay inside are followed: a few controls, so the suite shows the jail is not simply refusing links.
const controls: Case[] = [
  { name: 'inside file link', path: 'link-in-file', expect: { ...all('ok'), list: 'conflict', mkdir: 'conflict', pack: 'conflict', extractTo: 'conflict' } },
  { name: 'inside dir link / file', path: 'link-in-dir/file.txt', expect: { ...all('ok'), list: 'conflict', mkdir: 'conflict', pack: 'conflict', extractTo: 'conflict' } },
  { name: '/workspace-absolute link / file', path: 'link-ws-abs/file.txt', expect: { ...all('ok'), list: 'conflict', mkdir: 'conflict', pack: 'conflict', extractTo: 'conflict' } },
  { name: 'out-of-workspace link, then .. lexically back in', path: 'link-out-dir/../sub/file.txt', expect: { ...all('ok'), list: 'conflict', mkdir: 'conflict', pack: 'conflict', extractTo: 'conflict' } },
];

async function buildWorkspace(sb: Sandbox): Promise<void> {
  const ws = sb.ws;
  const link = (target: string, at: string) => fs.promises.symlink(target, path.join(ws, at));
  await fs.promises.mkdir(path.join(ws, 'sub', 'deep'), { recursive: true });
  await fs.promises.writeFile(path.join(ws, 'sub', 'file.txt'), 'inside\n');
  await link('../outside/canary.txt', 'link-out-file');
  await link(path.join(sb.outside, 'canary.txt'), 'link-out-file-abs');
  await link('../outside', 'link-out-dir');
  await link(sb.outside, 'link-out-dir-abs');
  await link('/etc', 'link-etc');
  await link('/', 'link-root');
  await link('..', 'link-dotdot');
  await link('chain2', 'chain1');
  await link('chain3', 'chain2');
  await link('../outside', 'chain3');
  await link('../outside/not-there.txt', 'dangling-out');
  await link('../..', 'sub/link-up');
  await link('../../../outside', 'sub/deep/link-up2');
  await link('/workspace/..', 'link-ws-dotdot');
  await link('loop2', 'loop1');
  await link('loop1', 'loop2');
  await link('sub/file.txt', 'link-in-file');
  await link('sub', 'link-in-dir');
  await link('/workspace/sub', 'link-ws-abs');
  await link('link-out-dir', 'link-in-to-out');
}

async function run(svc: FileService, op: Op, p: unknown): Promise<void> {
  switch (op) {
    case 'read': {
      const r = await svc.readFile(p);
      const body = (await readAll(r.stream)).toString();
      expect(body).not.toContain('CANARY');
      return;
    }
    case 'stat':
      await svc.stat(p);
      return;
    case 'write':
      await svc.writeFile(p, 'PWNED');
      return;
    case 'list': {
      const l = await svc.listDir(p);
      expect(l.entries.map((e) => e.name)).not.toContain('canary.txt');
      return;
    }
    case 'mkdir':
      await svc.mkdir(p, { recursive: true });
      return;
    case 'delete':
      await svc.remove(p, { recursive: true });
      return;
    case 'renameFrom':
      await svc.rename(p, 'renamed');
      return;
    case 'renameTo':
      await svc.rename('sub/file.txt', p);
      return;
    case 'pack': {
      const body = (await readAll(await svc.packTar(p))).toString('latin1');
      expect(body).not.toContain('CANARY');
      return;
    }
    case 'extractTo':
      await svc.extractTar(p, [await makeTar([{ name: 'x.txt', content: 'PWNED' }])]);
      return;
  }
}

let total = 0;
afterAll(() => {
  expect(total).toBeGreaterThanOrEqual(100);
});

// Without /proc (the macOS fallback) the jail gives the same answers; only its race safety is weaker.
describe.each([
  { mode: 'with /proc/self/fd', procFd: true },
  { mode: 'with plain paths (no /proc)', procFd: false },
])('path jail $mode: hostile paths × operations', ({ procFd }) => {
  let sb: Sandbox;
  let svc: FileService;
  let before: string;
  beforeEach(async () => {
    sb = await makeSandbox();
    await buildWorkspace(sb);
    svc = await FileService.open({ root: sb.ws, logger: memoryLogger(), procFd });
    before = await sb.fingerprint();
  });
  afterEach(async () => {
    expect(await sb.fingerprint()).toBe(before);
    await sb.cleanup();
  });

  for (const c of [...cases, ...controls]) {
    for (const op of OPS) {
      total++;
      it(`${op} ${c.name} → ${c.expect[op]}`, async () => {
        const p = typeof c.path === 'function' ? (c.path as (sb: Sandbox) => string)(sb) : c.path;
        let outcome: string = 'ok';
        try {
          await run(svc, op, p);
        } catch (err) {
          if (!(err instanceof AppError)) throw err;
          outcome = err.code;
          expect(err.status).toBe({ invalid_path: 400, path_outside_workspace: 403, not_found: 404, conflict: 409 }[err.code as string]);
          // No host paths in messages, unless the client sent one itself.
          if (typeof p !== 'string' || !p.includes(sb.base)) expect(err.message).not.toContain(sb.base);
        }
        expect(outcome).toBe(c.expect[op]);
        expect(await fs.promises.readFile(path.join(sb.outside, 'canary.txt'), 'utf8')).toBe(CANARY);
      });
    }
  }
});
