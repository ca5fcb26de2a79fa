/**
 * Symlink-swap races: while a folder in the workspace is swapped again and
 * again between a real folder and a link to the outside folder, every file
 * operation runs through it. Whatever each operation answers, the outside
 * folder must end exactly as it began and no read may return outside bytes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../../agent/logger';
import { FileService } from '../../../agent/services/files/file-service';
import { AppError } from '../../../shared/errors';
import { codeOf, makeSandbox, makeTar, readAll, type Sandbox } from './fixtures';

const ROUNDS = 200;

describe('path jail under symlink swaps', () => {
  let sb: Sandbox;
  let svc: FileService;
  let before: string;
  let outcomes: Map<string, number>;
  let child: ChildProcess | undefined;

  beforeEach(async () => {
    sb = await makeSandbox();
    await fs.promises.mkdir(path.join(sb.ws, 'swap'));
    await fs.promises.writeFile(path.join(sb.ws, 'swap', 'f.txt'), 'inside');
    svc = await FileService.open({ root: sb.ws, logger: memoryLogger('error') });
    before = await sb.fingerprint();
    outcomes = new Map();
  });
  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child?.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    child = undefined;
    await sb.cleanup();
  });

  /** Runs `op`, counting how it ended; only AppErrors other than internal_error are acceptable failures. */
  async function attempt(name: string, op: () => Promise<void>): Promise<void> {
    let key = `${name}:ok`;
    try {
      await op();
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      key = `${name}:${err.code}`;
    }
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  }

  async function oneRound(i: number): Promise<void> {
    await Promise.all([
      attempt('read', async () => {
        const r = await svc.readFile('swap/f.txt');
        const body = (await readAll(r.stream)).toString();
        expect(body).not.toContain('CANARY');
      }),
      attempt('write', () => svc.writeFile('swap/f.txt', 'inside').then(() => undefined)),
      attempt('write-new', () => svc.writeFile(`swap/new-${i}.txt`, 'PWNED').then(() => undefined)),
      attempt('write-parents', () => svc.writeFile(`swap/p-${i}/q/x.txt`, 'PWNED', { parents: true }).then(() => undefined)),
      attempt('list', async () => {
        const l = await svc.listDir('swap');
        // The outside folder holds the file canary.txt and sub/. Inside, `rename-to` below
        // may have made a folder canary.txt, so only a file of that name means outside.
        expect(l.entries.filter((e) => e.name === 'canary.txt' && e.type === 'file')).toEqual([]);
        expect(l.entries.map((e) => e.name)).not.toContain('sub');
      }),
      attempt('mkdir', () => svc.mkdir(`swap/d-${i}/e`, { recursive: true }).then(() => undefined)),
      attempt('delete', () => svc.remove(`swap/new-${i - 1}.txt`).then(() => undefined)),
      ...['p', 'd', 't'].map((prefix) =>
        attempt('delete-tree', () => svc.remove(`swap/${prefix}-${i - 1}`, { recursive: true }).then(() => undefined)),
      ),
      attempt('rename-from', () => svc.rename('swap/f.txt', 'moved.txt').then(() => svc.rename('moved.txt', 'swap/f.txt')).then(() => undefined)),
      attempt('rename-to', () => svc.rename(`swap/d-${i}`, 'swap/canary.txt').then(() => undefined)),
      attempt('stat', async () => {
        const st = await svc.stat('swap/f.txt', { follow: true });
        expect(st.path.startsWith('/workspace/')).toBe(true);
      }),
      attempt('pack', async () => {
        const body = (await readAll(await svc.packTar('swap'))).toString('latin1');
        expect(body).not.toContain('CANARY');
      }),
      attempt('extract', async () => {
        await svc.extractTar('swap', [await makeTar([{ name: `t-${i}/x.txt`, content: 'PWNED' }])]);
      }),
    ]);
  }

  async function assertOutcomes(): Promise<void> {
    const keys = [...outcomes.keys()];
    expect(keys.filter((k) => k.endsWith(':internal_error'))).toEqual([]);
    // Both sides of the race, pinned without relying on scheduling: through a real
    // folder the operations work; through a link to outside they are refused.
    const swapPath = path.join(sb.ws, 'swap');
    await fs.promises.rm(swapPath, { recursive: true, force: true });
    await fs.promises.mkdir(swapPath);
    await svc.writeFile('swap/control.txt', 'inside');
    expect((await readAll((await svc.readFile('swap/control.txt')).stream)).toString()).toBe('inside');
    await fs.promises.rm(swapPath, { recursive: true, force: true });
    await fs.promises.symlink(sb.outside, swapPath);
    expect(await codeOf(svc.readFile('swap/canary.txt'))).toBe('path_outside_workspace');
    expect(await codeOf(svc.writeFile('swap/control.txt', 'PWNED'))).toBe('path_outside_workspace');
    await fs.promises.rm(swapPath, { force: true });
    expect(await sb.fingerprint()).toBe(before);
  }

  it(`holds while the same process swaps the folder (${ROUNDS} rounds)`, async () => {
    const swapPath = path.join(sb.ws, 'swap');
    const aside = path.join(sb.ws, 'swap-aside');
    let stop = false;
    // Steps may fail: the service itself recreates `swap` (mkdir -p, parents) in the gaps.
    const step = (p: Promise<unknown>) => p.catch(() => undefined);
    const swapper = (async () => {
      for (let n = 0; !stop; n++) {
        await step(fs.promises.rename(swapPath, aside));
        await step(fs.promises.symlink(n % 2 ? sb.outside : '../outside', swapPath));
        await new Promise((r) => setImmediate(r));
        await step(fs.promises.rm(swapPath, { recursive: true, force: true }));
        await step(fs.promises.rename(aside, swapPath));
        await new Promise((r) => setImmediate(r));
      }
    })();
    for (let i = 0; i < ROUNDS; i++) await oneRound(i);
    stop = true;
    await swapper;
    expect(await sb.fingerprint()).toBe(before);
    await assertOutcomes();
  });

  it(`holds while another process swaps the folder as fast as it can (${ROUNDS} rounds)`, async () => {
    const script = `
      const fs = require('fs');
      const [swap, aside, out] = process.argv.slice(1);
      process.stdout.write('ready\\n');
      for (let n = 0; ; n++) {
        try { fs.renameSync(swap, aside); } catch {}
        try { fs.symlinkSync(n % 2 ? out : '../outside', swap); } catch {}
        try { fs.rmSync(swap, { recursive: true, force: true }); } catch {}
        try { fs.renameSync(aside, swap); } catch {}
      }`;
    child = spawn(process.execPath, ['-e', script, path.join(sb.ws, 'swap'), path.join(sb.ws, 'swap-aside'), sb.outside], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child?.stdout?.once('data', () => resolve());
      child?.once('exit', (code) => reject(new Error(`swapper exited early (${code})`)));
    });
    for (let i = 0; i < ROUNDS; i++) await oneRound(i);
    const exited = new Promise((r) => child?.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    expect(await sb.fingerprint()).toBe(before);
    await assertOutcomes();
  });
});
