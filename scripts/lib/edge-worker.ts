/**
 * The edge Worker as Miniflare runs it: the esbuild bundle wrangler would
 * make, and the bindings `wrangler.toml` declares. Miniflare runs the same
 * workerd as `wrangler dev`, minus wrangler's dev proxy (a second workerd in
 * front of every request) and its inspector relay, neither of which exists
 * in production. A unit test keeps these bindings equal to wrangler.toml.
 */
import fs from 'node:fs';
import path from 'node:path';

/** Durable Object bindings → class names; every class stores in SQLite (wrangler.toml's new_sqlite_classes). */
export const DURABLE_OBJECTS = { FLEET: 'FleetDO', RATE_LIMITER: 'RateLimiterDO', SESSION: 'SessionDO' } as const;
/** The one D1 binding. */
export const D1_BINDING = 'DB';
/** The static assets binding (the IDE page). */
export const ASSETS_BINDING = 'ASSETS';

export interface WranglerSettings {
  /** The Worker's name: Durable Object storage is keyed by it. */
  name: string;
  compatibilityDate: string;
  /** The D1 database's id: local D1 storage is keyed by it. */
  d1DatabaseId: string;
  vars: Record<string, string>;
  /** [assets] directory, absolute: the built IDE page. */
  assetsDirectory: string;
}

/**
 * What Miniflare needs from wrangler.toml (the only place these are written),
 * so that both runners keep state in the same files under --persist-to.
 */
export function wranglerSettings(root: string): WranglerSettings {
  const text = fs.readFileSync(path.join(root, 'wrangler.toml'), 'utf8');
  const field = (key: string) => {
    const v = new RegExp(`^${key}\\s*=\\s*"([^"]+)"`, 'm').exec(text)?.[1];
    if (!v) throw new Error(`wrangler.toml has no ${key}`);
    return v;
  };
  const vars: Record<string, string> = {};
  const section = /^\[vars\]\n([\s\S]*?)(?=^\[|$(?![\s\S]))/m.exec(text)?.[1] ?? '';
  for (const m of section.matchAll(/^([A-Z0-9_]+)\s*=\s*"([^"]*)"/gm)) vars[m[1]!] = m[2]!;
  const assets = /^\[assets\]\n([\s\S]*?)(?=^\[|$(?![\s\S]))/m.exec(text)?.[1] ?? '';
  const assetsDir = /^directory\s*=\s*"([^"]+)"/m.exec(assets)?.[1];
  if (!assetsDir) throw new Error('wrangler.toml has no [assets] directory');
  return {
    name: field('name'),
    compatibilityDate: field('compatibility_date'),
    d1DatabaseId: field('database_id'),
    vars,
    assetsDirectory: path.resolve(root, assetsDir),
  };
}

/** Bundles edge/index.ts as wrangler does (ES module, workerd export conditions) and returns the file written. */
export async function bundleEdge(root: string, outDir: string): Promise<string> {
  const { build } = await import('esbuild');
  const outfile = path.join(outDir, 'index.mjs');
  await build({
    entryPoints: [path.join(root, 'edge/index.ts')],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    external: ['cloudflare:*'],
    logLevel: 'warning',
  });
  return outfile;
}
