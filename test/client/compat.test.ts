/**
 * The WebContainer facade's types against @webcontainer/api 1.6.4's own:
 * tsc checks compat/webcontainer-compat.ts (instance, process, FileSystemAPI
 * and FileSystemTree assignable, the tutorial's code compiling, and one
 * @ts-expect-error that proves the check can fail).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('WebContainer facade types', () => {
  it('are assignable to @webcontainer/api 1.6.4 and compile its tutorial code', async () => {
    const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
    const result = await promisify(execFile)(process.execPath, [tsc, '-p', 'test/client/compat/tsconfig.json', '--pretty', 'false'], { cwd: root, timeout: 170_000 }).then(
      (r) => ({ code: 0, out: r.stdout + r.stderr }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }),
    );
    expect(result.out).toBe('');
    expect(result.code).toBe(0);
    // tsc over @webcontainer/api and the SDK takes 5 s alone, much longer on two busy cores.
  }, 180_000);
});
