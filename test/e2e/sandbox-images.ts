/**
 * Images the sandbox tests need and no registry offers: busybox-static with
 * an /etc/passwd that knows only root (as alpine or python images are), one
 * whose /etc/passwd is a folder, and one whose /etc/passwd is 50 MiB. Built
 * with the engine's import API from a tar assembled here.
 */
import fs from 'node:fs';
import Docker from 'dockerode';
import { pack } from 'tar-stream';

export type PasswdKind = string | 'dir' | 'huge';

export async function importImage(docker: Docker, ref: string, opts: { passwd: PasswdKind }): Promise<void> {
  const [repo, tag] = ref.split(':');
  const tar = pack();
  const add = (header: Parameters<typeof tar.entry>[0], body?: Buffer) =>
    new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      if (body) tar.entry(header, body, done);
      else tar.entry(header, done);
    });
  const writing = (async () => {
    for (const dir of ['bin', 'etc', 'tmp', 'workspace', 'root', 'proc', 'sys', 'dev']) {
      await add({ name: dir, type: 'directory', mode: dir === 'tmp' ? 0o1777 : 0o755 });
    }
    await add({ name: 'bin/busybox', mode: 0o755 }, fs.readFileSync('/bin/busybox'));
    for (const applet of ['sh', 'id', 'cp', 'chmod', 'cat', 'ls', 'sleep', 'echo', 'stty', 'ps', 'dd', 'rm', 'mkdir', 'true', 'env']) {
      await add({ name: `bin/${applet}`, type: 'symlink', linkname: '/bin/busybox' });
    }
    if (opts.passwd === 'dir') {
      await add({ name: 'etc/passwd', type: 'directory', mode: 0o755 });
    } else if (opts.passwd === 'huge') {
      const size = 50 * 1024 * 1024;
      const line = Buffer.from('root:x:0:0:root:/root:/bin/sh\n');
      const body = Buffer.alloc(size);
      for (let o = 0; o < size; o += line.length) line.copy(body, o);
      await add({ name: 'etc/passwd', mode: 0o644 }, body);
    } else {
      await add({ name: 'etc/passwd', mode: 0o644 }, Buffer.from(opts.passwd));
    }
    tar.finalize();
  })();
  const stream = (await docker.importImage(tar as unknown as NodeJS.ReadableStream, { repo, tag })) as NodeJS.ReadableStream;
  await new Promise<void>((resolve, reject) => {
    stream.on('data', () => undefined);
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  await writing;
}

/** Resident memory of a process and its children's agent (bytes), from /proc. */
export function rssOf(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1];
  return Number(kb ?? 0) * 1024;
}
