/**
 * `npm run dev`: the npm start stack (edge + agent) comes up, is restarted
 * when a watched source file changes, and stops with nothing left on Ctrl-C.
 * It watches a folder of the test's own (--watch), so no repository file is
 * touched; local mode keeps it quick.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../scripts/lib/stack';
import { freePort } from '../helpers/stack';

describe('npm run dev', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mominai-dev-'));
  const watched = path.join(dir, 'src');
  fs.mkdirSync(watched);
  const lines: string[] = [];
  let child: ReturnType<typeof spawn> | undefined;

  afterAll(() => {
    if (child?.pid !== undefined && child.exitCode === null) process.kill(-child.pid, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const waitFor = (what: string, pred: () => boolean, timeoutMs = 120_000) =>
    new Promise<void>((resolve, reject) => {
      const deadline = Date.now() + timeoutMs;
      const tick = setInterval(() => {
        if (pred()) {
          clearInterval(tick);
          resolve();
        } else if (Date.now() > deadline) {
          clearInterval(tick);
          reject(new Error(`timed out waiting for ${what}; last lines:\n${lines.slice(-15).join('\n')}`));
        }
      }, 100);
    });
  const count = (text: string) => lines.filter((l) => l.includes(text)).length;
  const portOpen = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });

  it('restarts edge and agent when a watched file changes, and stops cleanly', async () => {
    const port = await freePort();
    child = spawn(process.execPath, ['--import', 'tsx', 'scripts/dev.ts', '--watch', watched], {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PORT: String(port), STATE_DIR: path.join(dir, 'state'), AGENT_RUNTIME: 'local', AGENT_NAME: 'dev-test' },
    });
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => lines.push(...chunk.split('\n').filter(Boolean)));
    }
    await waitFor('the first start', () => count('MominAI backend is up') === 1);
    fs.writeFileSync(path.join(watched, 'changed.ts'), 'export const x = 1;\n');
    await waitFor('the restart', () => count('MominAI backend is up') === 2);
    expect(lines.filter((l) => l.includes('"component":"dev"')).map((l) => JSON.parse(l).msg)).toEqual([
      'watching for changes',
      'change seen; restarting edge and agent',
    ]);
    expect(count('"msg":"stopping"')).toBe(1);
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);

    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    process.kill(-child.pid!, 'SIGINT');
    expect(await exited).toBe(0);
    expect(await portOpen(port)).toBe(false);
  }, 300_000);
});
