/**
 * `npm run deploy:check`: the production deploy built offline by wrangler
 * (--dry-run), its bindings checked, its gzip size held to a budget, and the
 * placeholders of wrangler.toml refused under --strict.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../scripts/lib/stack';

function deployCheck(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/deploy-check.ts', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

describe('deploy:check', () => {
  let plain: ReturnType<typeof deployCheck>;
  beforeAll(() => {
    // wrangler.toml's [assets] directory; npm runs build:web before deploy:check, this test calls the script directly.
    if (!fs.existsSync(path.join(ROOT, 'dist/web/index.html'))) {
      expect(spawnSync(process.execPath, ['--import', 'tsx', 'scripts/build-web.ts'], { cwd: ROOT, encoding: 'utf8' }).status).toBe(0);
    }
    plain = deployCheck();
  });

  it('builds the production environment offline and prints its size against the budget', () => {
    const r = plain;
    expect(r.status, r.err).toBe(0);
    expect(r.out).toMatch(/^deploy-check: env production: Worker bundle \d+\.\d KiB, gzip \d+\.\d KiB \(budget 250 KiB gzip\)$/m);
    expect(r.out).toContain('deploy-check: ok');
    const gzip = Number(/gzip (\d+\.\d) KiB \(/.exec(r.out)?.[1]);
    expect(gzip).toBeGreaterThan(100);
    expect(gzip).toBeLessThanOrEqual(250);
  });

  it('fails when the bundle is over the budget', () => {
    const r = deployCheck('--budget-kib', '50');
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/^deploy-check: FAIL: the Worker bundle is \d+\.\d KiB gzip, over the 50 KiB budget$/m);
  });

  it('refuses the placeholders of wrangler.toml with --strict, and only warns without it', () => {
    const strict = deployCheck('--strict');
    expect(strict.status).toBe(1);
    expect(strict.err).toContain(
      'deploy-check: FAIL: wrangler.toml [env.production] still has placeholders: 00000000-0000-0000-0000-000000000000, example.com, example-preview.net (see docs/deploy.md)',
    );
    expect(plain.out).toContain('deploy-check: warning: wrangler.toml [env.production] still has placeholders');
  });
});
