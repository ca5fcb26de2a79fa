/**
 * Builds the IDE page (web/) into dist/web, the folder wrangler.toml's
 * [assets] serves at `/` of the edge: one ES module bundle (app.js), one
 * stylesheet (app.css, xterm's CSS included) and index.html. Prints each
 * file's size and the gzip total, the figure that matters for page load.
 *
 *   node --import tsx scripts/build-web.ts
 *
 * `npm start` and `npm test` run it first (package.json pre-hooks), so a fresh
 * clone needs no extra step; the browser tests call buildWeb() themselves.
 */
import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { build, type Plugin } from 'esbuild';
import { ROOT } from './lib/stack';

export const WEB_OUT_DIR = path.join(ROOT, 'dist/web');

/**
 * `import { z } from 'zod'` makes esbuild keep all of zod's namespace object,
 * every locale included (about 350 KiB minified; Rollup and webpack shake it,
 * esbuild does not). As `import * as z from 'zod'` only what is used stays.
 * The two forms mean the same to the code, so the page's bundle reads the
 * SDK's and shared/'s sources that way.
 */
const zodNamespaceImport: Plugin = {
  name: 'zod-namespace-import',
  setup(b) {
    const ours = [path.join(ROOT, 'client') + path.sep, path.join(ROOT, 'shared') + path.sep];
    b.onLoad({ filter: /\.ts$/ }, async (args) => {
      if (!ours.some((dir) => args.path.startsWith(dir))) return undefined;
      const source = await fs.promises.readFile(args.path, 'utf8');
      return { contents: source.replace(/^import \{ z \} from 'zod';$/gm, "import * as z from 'zod';"), loader: 'ts' };
    });
  },
};

export interface WebBuild {
  outDir: string;
  files: Array<{ name: string; bytes: number; gzipBytes: number }>;
  gzipTotal: number;
}

export async function buildWeb({ outDir = WEB_OUT_DIR, minify = true }: { outDir?: string; minify?: boolean } = {}): Promise<WebBuild> {
  // Built beside outDir, then each file renamed into it (atomic per file): a running edge serves the
  // folder, and two builds at once (test files in parallel) never see each other's half-written files.
  const staging = `${outDir}.staging-${process.pid}-${Date.now()}`;
  fs.mkdirSync(outDir, { recursive: true });
  try {
    await build({
      absWorkingDir: ROOT,
      entryPoints: { app: 'web/src/main.ts', 'app-style': 'web/styles.css' },
      outdir: staging,
      entryNames: '[name]',
      // The signed-in part (editor, terminal) is a chunk of its own, loaded after sign-in.
      splitting: true,
      chunkNames: '[name]-[hash]',
      bundle: true,
      // The SDK from its source (tree-shaken with the page), so the page builds whatever state client/dist is in.
      alias: { '@mominai/client': path.join(ROOT, 'client/src/index.ts') },
      format: 'esm',
      platform: 'browser',
      target: ['chrome110', 'firefox115', 'safari16'],
      minify,
      legalComments: 'none',
      logLevel: 'warning',
      plugins: [zodNamespaceImport],
    });
    // esbuild names a CSS entry after its key; the page links app.css.
    fs.renameSync(path.join(staging, 'app-style.css'), path.join(staging, 'app.css'));
    fs.copyFileSync(path.join(ROOT, 'web/index.html'), path.join(staging, 'index.html'));
    const written = fs.readdirSync(staging);
    const chunks = written.filter((f) => f.endsWith('.js') && f !== 'app.js').sort();
    const files = ['index.html', 'app.js', ...chunks, 'app.css'].map((name) => {
      const body = fs.readFileSync(path.join(staging, name));
      return { name, bytes: body.length, gzipBytes: gzipSync(body, { level: 9 }).length };
    });
    // Scripts first, index.html last, so a page loaded meanwhile never names a chunk that is not there yet.
    // A file whose bytes did not change is left alone: `wrangler dev` watches this folder and reloads
    // the Worker on any event in it, resetting every Durable Object and dropping every socket (the
    // browser suites rebuild the page while other suites' edges stream, and their sockets closed 1006).
    for (const f of written.sort((a, b) => Number(a === 'index.html') - Number(b === 'index.html'))) {
      if (sameBytes(path.join(staging, f), path.join(outDir, f))) continue;
      fs.renameSync(path.join(staging, f), path.join(outDir, f));
    }
    // Chunk names carry hashes: remove the chunks of earlier builds.
    for (const f of fs.readdirSync(outDir)) if (f.endsWith('.js') && !written.includes(f)) fs.rmSync(path.join(outDir, f), { force: true });
    return { outDir, files, gzipTotal: files.reduce((n, f) => n + f.gzipBytes, 0) };
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

function sameBytes(a: string, b: string): boolean {
  try {
    return fs.readFileSync(a).equals(fs.readFileSync(b));
  } catch {
    return false; // b does not exist yet
  }
}

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

if (process.argv[1] && path.resolve(process.argv[1]) === path.join(ROOT, 'scripts/build-web.ts')) {
  const started = Date.now();
  const out = await buildWeb();
  for (const f of out.files) process.stdout.write(`web: ${f.name.padEnd(24)} ${kib(f.bytes).padStart(10)}  gzip ${kib(f.gzipBytes).padStart(9)}\n`);
  process.stdout.write(`web: built ${path.relative(ROOT, out.outDir)}/ in ${Date.now() - started} ms, gzip total ${kib(out.gzipTotal)}\n`);
}
