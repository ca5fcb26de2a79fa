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
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { Miniflare } from 'miniflare';
import { ROOT } from './lib/stack';
import { D1_BINDING, DURABLE_OBJECTS, bundleEdge, wranglerSettings } from './lib/edge-worker';

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

const persist = path.resolve(values['persist-to']!);
fs.mkdirSync(persist, { recursive: true });
const settings = wranglerSettings(ROOT);
const scriptPath = await bundleEdge(ROOT, path.join(persist, 'bundle'));

// wrangler's layout under --persist-to, so either runner can open the other's state.
const stateRoot = path.join(persist, 'v3');
const mf = new Miniflare({
  name: settings.name,
  host: values.ip,
  port: Number(values.port),
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
  d1Persist: path.join(stateRoot, 'd1'),
  durableObjectsPersist: path.join(stateRoot, 'do'),
  ...(values['inspector-port'] ? { inspectorPort: Number(values['inspector-port']) } : {}),
  handleRuntimeStdio(stdout: Readable, stderr: Readable) {
    stdout.pipe(process.stdout);
    stderr.pipe(process.stderr);
  },
});
const url = await mf.ready;
process.stdout.write(
  JSON.stringify({ level: 'info', time: new Date().toISOString(), msg: 'edge.ready', runner: 'miniflare', url: url.href }) + '\n',
);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void mf.dispose().finally(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
