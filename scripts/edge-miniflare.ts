/**
 * Runs the edge Worker under Miniflare (workerd without wrangler's dev proxy
 * and inspector relay) in the foreground: `spawnEdge({runner: 'miniflare'})`
 * starts this with the same arguments it gives `wrangler dev`.
 *
 *   node --import tsx scripts/edge-miniflare.ts --ip 127.0.0.1 --port 3001 \
 *     --persist-to .data/edge --env-file .data/edge.env
 *
 * State lives under --persist-to (D1 and Durable Objects), the vars come from
 * wrangler.toml's [vars] and then the env file, exactly as under wrangler.
 * Requests reach the Worker directly (no Miniflare entry Worker in front), so
 * no CF-Connecting-IP is set: per-client rate limits count every client as
 * "unknown" (one shared bucket, stricter, never looser) unless TRUST_PROXY and
 * a reverse proxy name the client.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { Miniflare } from 'miniflare';
import { ROOT } from './lib/stack';
import { ASSETS_BINDING, D1_BINDING, DURABLE_OBJECTS, bundleEdge, wranglerSettings } from './lib/edge-worker';

const { values } = parseArgs({
  options: {
    ip: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '3001' },
    'persist-to': { type: 'string', default: path.join(ROOT, '.data/edge') },
    'env-file': { type: 'string' },
    /** Opens workerd's DevTools inspector (CPU profiles, heap snapshots) on this port; off by default. */
    'inspector-port': { type: 'string' },
  },
});

/** The env file spawnEdge writes: KEY=<JSON string> a line. */
function readEnvFile(file: string | undefined): Record<string, string> {
  if (!file) return {};
  const vars: Record<string, string> = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const i = line.indexOf('=');
    if (i <= 0) continue;
    const raw = line.slice(i + 1);
    vars[line.slice(0, i)] = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
  }
  return vars;
}

const ENTRY_IN_FRONT = process.env.MINIFLARE_ENTRY_WORKER === '1';
const persist = path.resolve(values['persist-to']!);
fs.mkdirSync(persist, { recursive: true });
const settings = wranglerSettings(ROOT);
const scriptPath = await bundleEdge(ROOT, path.join(persist, 'bundle'));

// wrangler's layout under --persist-to, so either runner can open the other's state.
const stateRoot = path.join(persist, 'v3');
const mf = new Miniflare({
  name: settings.name,
  // The Worker itself answers on --ip/--port (a direct socket), as on Cloudflare where no dev
  // entry Worker sits in front: Miniflare's entry Worker (request.cf, CF-Connecting-IP, request
  // logs, pretty errors) costs more workerd time per request than the edge's own Worker (a
  // trivial request: ~2,100 → ~4,400 req/s without it). Miniflare keeps its entry on a private
  // loopback port. MINIFLARE_ENTRY_WORKER=1 puts the entry Worker back in front.
  host: ENTRY_IN_FRONT ? values.ip : '127.0.0.1',
  port: ENTRY_IN_FRONT ? Number(values.port) : 0,
  ...(ENTRY_IN_FRONT ? {} : { unsafeDirectSockets: [{ host: values.ip, port: Number(values.port) }] }),
  modules: true,
  scriptPath,
  // Module names are paths relative to this; the default (the working directory) breaks for a bundle outside it.
  modulesRoot: path.dirname(scriptPath),
  compatibilityDate: settings.compatibilityDate,
  bindings: { ...settings.vars, ...readEnvFile(values['env-file']) },
  durableObjects: Object.fromEntries(
    Object.entries(DURABLE_OBJECTS).map(([binding, className]) => [binding, { className, useSQLite: true }]),
  ),
  d1Databases: { [D1_BINDING]: settings.d1DatabaseId },
  // wrangler.toml's [assets]: the IDE page, reached through the ASSETS binding (the Worker runs first).
  assets: { directory: settings.assetsDirectory, binding: ASSETS_BINDING, routerConfig: { has_user_worker: true, invoke_user_worker_ahead_of_assets: true } },
  d1Persist: path.join(stateRoot, 'd1'),
  durableObjectsPersist: path.join(stateRoot, 'do'),
  ...(values['inspector-port'] ? { inspectorPort: Number(values['inspector-port']) } : {}),
  handleRuntimeStdio(stdout: Readable, stderr: Readable) {
    stdout.pipe(process.stdout);
    stderr.pipe(process.stderr);
  },
});
const entryUrl = await mf.ready;
const url = ENTRY_IN_FRONT ? entryUrl : await mf.unsafeGetDirectURL();
process.stdout.write(
  JSON.stringify({ level: 'info', time: new Date().toISOString(), msg: 'edge.ready', runner: 'miniflare', url: url.href, entryWorker: ENTRY_IN_FRONT }) + '\n',
);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void mf.dispose().finally(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
