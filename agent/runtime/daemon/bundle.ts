/**
 * The daemon bundle on the host, where the engine can bind-mount it from:
 * a prebuilt `daemon.cjs` beside the agent's own bundle (the agent image), or
 * else built here from agent/daemon/main.ts with esbuild (a source checkout,
 * where esbuild is installed), once per agent start (about 0.2-0.7 s). It is
 * written with a rename, so running containers keep the file they mounted.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}

/** The repository root when running from source; undefined inside a bundle. */
function sourceRoot(): string | undefined {
  try {
    return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
  } catch {
    return undefined;
  }
}

/** Puts daemon.cjs into `dir` (mode 0644, readable by any container user); resolves with its path. */
export async function ensureDaemonBundle(dir: string): Promise<string> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const target = path.join(dir, 'daemon.cjs');
  const tmp = `${target}.${process.pid}.tmp`;
  const beside = process.argv[1] ? path.join(path.dirname(process.argv[1]), 'daemon.cjs') : undefined;
  if (beside && (await exists(beside))) {
    await fs.copyFile(beside, tmp);
  } else {
    const root = sourceRoot();
    const script = root ? path.join(root, 'scripts/build-daemon.ts') : undefined;
    if (!script || !(await exists(script))) throw new Error('no daemon.cjs beside the agent and no source to build it from');
    // A computed specifier: a bundler leaves it alone, and only a source checkout has the script.
    const mod = (await import(pathToFileURL(script).href)) as { buildDaemonBundle(out: string): Promise<number> };
    await mod.buildDaemonBundle(tmp);
  }
  await fs.chmod(tmp, 0o644);
  await fs.rename(tmp, target);
  return target;
}
