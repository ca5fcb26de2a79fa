/**
 * Local test images. Nothing can be pulled on the project's machines, so the
 * first suite that needs an image builds it with scripts/build-test-images.sh
 * (the script takes a lock, so parallel workers build it once).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Docker from 'dockerode';

const run = promisify(execFile);
const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../scripts/build-test-images.sh');

export const TEST_IMAGES = {
  busybox: 'mominai/busybox:test',
  node: 'mominai/node:test',
} as const;
export type TestImage = keyof typeof TEST_IMAGES;

const pending = new Map<TestImage, Promise<string>>();

/** The image's tag, once it exists locally (built on first use, about 1 s for busybox, 5 s for node). */
export function ensureTestImage(kind: TestImage, docker: Docker = new Docker()): Promise<string> {
  let p = pending.get(kind);
  if (!p) {
    p = (async () => {
      const tag = TEST_IMAGES[kind];
      try {
        await docker.getImage(tag).inspect();
        return tag;
      } catch {
        // missing: build it
      }
      try {
        await run('bash', [script, kind], { timeout: 120_000 });
      } catch (err) {
        const e = err as { stderr?: string; message: string };
        throw new Error(`building ${tag} failed: ${e.stderr || e.message}`);
      }
      return tag;
    })();
    pending.set(kind, p);
    p.catch(() => pending.delete(kind));
  }
  return p;
}
