/**
 * `node --import tsx scripts/build-daemon.ts [outfile]`: the session daemon
 * (agent/daemon/main.ts) as one CommonJS file for Node ≥ 18 with no native
 * module, which the agent mounts read-only into session containers. The
 * agent builds it by itself at start when no prebuilt file sits beside its
 * bundle (agent/runtime/daemon/bundle.ts), so nothing needs running first.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DAEMON_ENTRY = path.join(ROOT, 'agent/daemon/main.ts');

/** Writes the bundle to `outfile`; resolves with its size in bytes. */
export async function buildDaemonBundle(outfile: string): Promise<number> {
  const result = await build({
    entryPoints: [DAEMON_ENTRY],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node18',
    minify: true,
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
  });
  return Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = path.resolve(process.argv[2] ?? path.join(ROOT, 'dist/agent/daemon.cjs'));
  const started = Date.now();
  const size = await buildDaemonBundle(out);
  process.stdout.write(`build-daemon: ${path.relative(ROOT, out)} ${(size / 1024).toFixed(1)} KiB in ${Date.now() - started} ms\n`);
}
