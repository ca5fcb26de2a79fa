// Builds @mominai/client with esbuild (run by the repository's install
// lifecycle, so `import('@mominai/client')` works with plain node after
// `npm ci`):
//   dist/index.js, dist/webcontainer.js  ESM for Node 20 and bundlers, shared/ and zod bundled in
//   dist/browser/mominai-client.js       one minified ESM file for a <script type="module">
// and prints the browser bundle's size.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

// An install without dev dependencies (`npm ci --omit=dev`) has no esbuild and
// needs no client: say so and leave, instead of failing the whole install.
let build;
try {
  ({ build } = await import('esbuild'));
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
  console.warn('@mominai/client: esbuild is not installed (install without dev dependencies); the client was not built');
  process.exit(0);
}

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, 'dist');
fs.rmSync(dist, { recursive: true, force: true });

const common = {
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  mainFields: ['module', 'main'],
  conditions: ['import', 'default'],
  logLevel: 'warning',
  legalComments: 'none',
  // See zod-slim.mjs: only the zod constructors the SDK uses.
  plugins: [{ name: 'zod-slim', setup: (b) => b.onResolve({ filter: /^zod$/ }, () => ({ path: path.join(here, 'zod-slim.mjs') })) }],
};

await build({
  ...common,
  entryPoints: { index: path.join(here, 'src/index.ts'), webcontainer: path.join(here, 'src/webcontainer/index.ts') },
  outdir: dist,
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  sourcemap: true,
});

const browserFile = path.join(dist, 'browser/mominai-client.js');
await build({
  ...common,
  platform: 'browser',
  entryPoints: [path.join(here, 'src/browser.ts')],
  outfile: browserFile,
  minify: true,
  sourcemap: true,
});

const bytes = fs.readFileSync(browserFile);
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(`@mominai/client: browser bundle dist/browser/mominai-client.js ${kib(bytes.byteLength)} (${kib(zlib.gzipSync(bytes).byteLength)} gzip)`);
