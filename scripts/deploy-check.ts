/**
 * `npm run deploy:check [-- --strict] [--budget-kib N]`: what `wrangler deploy
 * --env production` would upload, built offline (`--dry-run --outdir`), then
 * checked: every binding the edge needs is there, NODE_ENV is production, and
 * the Worker bundle stays under a gzip budget (printed, so growth shows in CI
 * logs). Without --strict the placeholders in wrangler.toml's production
 * section (the zeroed D1 id, the example hosts) are reported as warnings; an
 * operator runs it with --strict before a real deploy and it fails on them.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { ROOT, wranglerEnv } from './lib/stack';

/** The bundle was about 195 KiB gzip when this was set; the budget leaves room for one round of growth. */
const DEFAULT_BUDGET_KIB = 250;
const PLACEHOLDERS = ['00000000-0000-0000-0000-000000000000', 'example.com', 'example-preview.net'];
const REQUIRED_BINDINGS = ['env.FLEET (FleetDO)', 'env.RATE_LIMITER (RateLimiterDO)', 'env.SESSION (SessionDO)', 'env.DB (', 'env.NODE_ENV ("production")'];

const { values } = parseArgs({
  options: {
    strict: { type: 'boolean', default: false },
    'budget-kib': { type: 'string' },
    env: { type: 'string', default: 'production' },
  },
});
const budgetKiB = Number(values['budget-kib'] ?? process.env.DEPLOY_BUNDLE_BUDGET_KIB ?? DEFAULT_BUDGET_KIB);
if (!Number.isFinite(budgetKiB) || budgetKiB <= 0) fail(`--budget-kib / DEPLOY_BUNDLE_BUDGET_KIB must be a positive number, not ${budgetKiB}`);

function fail(msg: string): never {
  process.stderr.write(`deploy-check: FAIL: ${msg}\n`);
  process.exit(1);
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mominai-deploy-check-'));
try {
  const outdir = path.join(work, 'out');
  const run = spawnSync(
    process.execPath,
    [path.join(ROOT, 'node_modules/wrangler/bin/wrangler.js'), 'deploy', '--dry-run', '--env', values.env!, '--outdir', outdir],
    { cwd: ROOT, encoding: 'utf8', env: wranglerEnv(work), timeout: 120_000 },
  );
  const output = `${run.stdout ?? ''}${run.stderr ?? ''}`;
  if (run.status !== 0) fail(`wrangler deploy --dry-run exited with ${run.status ?? run.signal}:\n${output}`);

  const missing = REQUIRED_BINDINGS.filter((b) => !output.includes(b));
  if (missing.length > 0) fail(`the ${values.env} environment lacks ${missing.join(', ')}:\n${output}`);

  const bundle = fs.readFileSync(path.join(outdir, 'index.js'));
  const gzipKiB = gzipSync(bundle).length / 1024;
  const rawKiB = bundle.length / 1024;
  process.stdout.write(
    `deploy-check: env ${values.env}: Worker bundle ${rawKiB.toFixed(1)} KiB, gzip ${gzipKiB.toFixed(1)} KiB (budget ${budgetKiB} KiB gzip)\n`,
  );
  if (gzipKiB > budgetKiB) fail(`the Worker bundle is ${gzipKiB.toFixed(1)} KiB gzip, over the ${budgetKiB} KiB budget`);

  const section = productionSection(fs.readFileSync(path.join(ROOT, 'wrangler.toml'), 'utf8'), values.env!);
  const found = PLACEHOLDERS.filter((p) => section.includes(p));
  if (found.length > 0) {
    const msg = `wrangler.toml [env.${values.env}] still has placeholders: ${found.join(', ')} (see docs/deploy.md)`;
    if (values.strict) fail(msg);
    process.stdout.write(`deploy-check: warning: ${msg}\n`);
  }
  process.stdout.write('deploy-check: ok\n');
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}

/** The text of every [env.<name>…] table, comments left out. */
function productionSection(toml: string, env: string): string {
  const lines = toml.split('\n');
  const out: string[] = [];
  let inside = false;
  for (const line of lines) {
    const header = /^\s*\[\[?([^\]]+)\]\]?/.exec(line);
    if (header) inside = header[1]!.trim().startsWith(`env.${env}`);
    if (inside && !/^\s*#/.test(line)) out.push(line);
  }
  return out.join('\n');
}
