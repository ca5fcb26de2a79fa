/**
 * `npm run build:agent [-- --outdir dist/agent] [--image <tag>] [--node-image <base>]`:
 * the host agent as one
 * JavaScript file (esbuild, Node 20, CommonJS: dockerode's ssh2 looks for
 * optional files beside itself with __dirname), with every dependency inside,
 * so the agent image needs Node and this file only. Native add-ons stay out:
 * each is optional where it is required (ws's bufferutil, ssh2's crypto
 * binding and cpu-features), and the bundle falls back to plain JavaScript.
 * The entry is scripts/agent-container.ts (privilege drop and health check
 * for the image) in front of agent/main.ts. Prints the file's size.
 *
 * With --image, also builds agent/Dockerfile from that folder, prints the
 * image's size and what it adds to its base, and fails when that addition is
 * over AGENT_IMAGE_BUDGET_MB (default 16: the bundle is about 2 MB and iptables 5-10; anything
 * more means something besides it got into the image). The base's own size
 * is the base's business, so it is printed but not budgeted.
 * --host-iptables copies this host's iptables (nft backend, its libraries
 * and extensions) into the image instead of installing Debian's package;
 * CI uses it, since its base is imported from this host and has no apt.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { buildDaemonBundle } from './build-daemon';
import { ROOT } from './lib/stack';

const { values } = parseArgs({
  options: {
    outdir: { type: 'string', default: path.join(ROOT, 'dist/agent') },
    image: { type: 'string' },
    'node-image': { type: 'string' },
    'host-iptables': { type: 'boolean', default: false },
  },
});
const DEFAULT_IMAGE_BUDGET_MB = 16;
const DEFAULT_NODE_IMAGE = 'node:20-bookworm-slim';
const outdir = path.resolve(values.outdir!);
const outfile = path.join(outdir, 'agent.cjs');

const started = Date.now();
await build({
  entryPoints: [path.join(ROOT, 'scripts/agent-container.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  minify: true,
  legalComments: 'linked',
  sourcemap: 'linked',
  external: ['bufferutil', 'utf-8-validate', 'cpu-features', '*.node'],
  logLevel: 'warning',
});
const size = fs.statSync(outfile).size;
// The session daemon, beside the agent: the agent mounts it into session containers (agent/runtime/daemon/bundle.ts).
const daemonSize = await buildDaemonBundle(path.join(outdir, 'daemon.cjs'));
fs.copyFileSync(path.join(ROOT, 'LICENSE'), path.join(outdir, 'LICENSE'));
// agent/Dockerfile copies extra/ into the image: empty unless --host-iptables fills it below.
const extra = path.join(outdir, 'extra');
fs.rmSync(extra, { recursive: true, force: true });
fs.mkdirSync(extra, { recursive: true });
process.stdout.write(`build-agent: ${path.relative(ROOT, outfile)} ${(size / 1024).toFixed(1)} KiB, daemon.cjs ${(daemonSize / 1024).toFixed(1)} KiB, in ${Date.now() - started} ms\n`);

if (values.image) {
  const budgetMB = Number(process.env.AGENT_IMAGE_BUDGET_MB ?? DEFAULT_IMAGE_BUDGET_MB);
  const args = ['build', '-f', path.join(ROOT, 'agent/Dockerfile'), '-t', values.image];
  if (values['node-image']) args.push('--build-arg', `NODE_IMAGE=${values['node-image']}`);
  if (values['host-iptables']) {
    stageHostIptables(extra);
    args.push('--build-arg', 'INSTALL_IPTABLES=0');
  }
  args.push(outdir);
  const t0 = Date.now();
  // The classic builder: it uses images already on the engine without asking a registry (BuildKit may ask).
  const run = spawnSync('docker', args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', env: { ...process.env, DOCKER_BUILDKIT: '0' } });
  if (run.status !== 0) {
    process.stderr.write(run.stdout ?? '');
    process.stderr.write(`build-agent: docker build failed (${run.status ?? run.signal})\n`);
    process.exit(1);
  }
  const sizeMB = (image: string) =>
    Number(spawnSync('docker', ['image', 'inspect', '--format', '{{.Size}}', image], { encoding: 'utf8' }).stdout.trim()) / 1e6;
  const base = values['node-image'] ?? DEFAULT_NODE_IMAGE;
  const imageMB = sizeMB(values.image);
  const addedMB = imageMB - sizeMB(base);
  process.stdout.write(
    `build-agent: image ${values.image} ${imageMB.toFixed(1)} MB: base ${base} + ${addedMB.toFixed(1)} MB (budget ${budgetMB} MB over the base), built in ${Date.now() - t0} ms\n`,
  );
  if (!(addedMB <= budgetMB)) {
    process.stderr.write(`build-agent: FAIL: the image adds ${addedMB.toFixed(1)} MB to its base, over the ${budgetMB} MB budget\n`);
    process.exit(1);
  }
}

/** The host's iptables-nft with what it loads: its shared libraries and the xtables extensions. */
function stageHostIptables(root: string): void {
  const which = spawnSync('sh', ['-c', 'command -v xtables-nft-multi || command -v iptables'], { encoding: 'utf8' }).stdout.trim();
  if (!which) throw new Error('--host-iptables: iptables is not installed on this host');
  const binary = fs.realpathSync(which);
  const copy = (file: string) => {
    const to = path.join(root, file);
    fs.mkdirSync(path.dirname(to), { recursive: true });
    fs.cpSync(fs.realpathSync(file), to, { recursive: true, dereference: true });
  };
  copy(binary);
  const ldd = spawnSync('ldd', [binary], { encoding: 'utf8' }).stdout;
  for (const m of ldd.matchAll(/=>\s+(\/\S+)/g)) copy(m[1]!);
  const extensions = ['/usr/lib/x86_64-linux-gnu/xtables', '/usr/lib/aarch64-linux-gnu/xtables', '/usr/lib/xtables'].find((d) => fs.existsSync(d));
  if (extensions) copy(extensions);
  const sbin = path.join(root, 'usr/sbin');
  fs.mkdirSync(sbin, { recursive: true });
  for (const name of ['iptables', 'iptables-restore', 'iptables-save']) fs.symlinkSync(binary, path.join(sbin, name));
}
