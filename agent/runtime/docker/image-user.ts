/**
 * Which user a session's container runs as: the image's non-root user where
 * it has one.
 *
 *   1. The image's USER, when set, resolved against its /etc/passwd.
 *   2. Else the passwd entry with uid 1000 (the convention of node, python and
 *      most dev images), else the first ordinary user (uid 1000-59999).
 *   3. Else root: the image has no other user.
 *
 * /etc/passwd is read from a created-but-never-started container with the
 * archive API (no process runs, about 30 ms) and the answer is cached per
 * image id, so each image is read once per agent run.
 */
import type Docker from 'dockerode';
import type { Logger } from '../../logger';
import { isNotFound } from './docker-errors';
import type { LocalImage } from './images';

export interface ContainerUser {
  uid: number;
  gid: number;
  /** Docker's `User` value: always numeric, so it works without a passwd lookup. */
  user: string;
  name?: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

export const ROOT: ContainerUser = { uid: 0, gid: 0, user: '0:0', name: 'root' };

export class ImageUserResolver {
  private readonly cache = new Map<string, Promise<ContainerUser>>();

  constructor(private readonly docker: Docker, private readonly logger: Logger) {}

  resolve(image: LocalImage): Promise<ContainerUser> {
    let found = this.cache.get(image.id);
    if (!found) {
      found = this.read(image).catch((err: unknown) => {
        this.cache.delete(image.id);
        throw err;
      });
      this.cache.set(image.id, found);
    }
    return found;
  }

  private async read(image: LocalImage): Promise<ContainerUser> {
    const passwd = parsePasswd(await this.readFile(image.id, '/etc/passwd'));
    const user = chooseUser(image.user, passwd);
    this.logger.debug('container user chosen', { image: image.id.slice(0, 19), configUser: image.user, user: user.user, name: user.name });
    return user;
  }

  private async readFile(imageId: string, file: string): Promise<string> {
    const container = await this.docker.createContainer({
      Image: imageId,
      Entrypoint: [],
      Cmd: ['true'],
      NetworkDisabled: true,
      Labels: { 'dev.mominai.probe': 'true' },
    });
    try {
      const archive = (await container.getArchive({ path: file })) as NodeJS.ReadableStream;
      return firstTarFile(await collect(archive)).toString('utf8');
    } catch (err) {
      if (isNotFound(err)) return '';
      throw err;
    } finally {
      await container.remove({ force: true }).catch(() => undefined);
    }
  }
}

export function parsePasswd(text: string): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const [name, , uid, gid] = line.split(':');
    if (!name || uid === undefined || gid === undefined) continue;
    const u = Number(uid);
    const g = Number(gid);
    if (Number.isInteger(u) && Number.isInteger(g) && uid !== '' && gid !== '') entries.push({ name, uid: u, gid: g });
  }
  return entries;
}

export function chooseUser(configUser: string, passwd: PasswdEntry[]): ContainerUser {
  if (configUser) {
    const [who = '', group] = configUser.split(':');
    const entry = /^\d+$/.test(who) ? passwd.find((e) => e.uid === Number(who)) : passwd.find((e) => e.name === who);
    const uid = /^\d+$/.test(who) ? Number(who) : entry?.uid;
    if (uid !== undefined) {
      const gid = group !== undefined && /^\d+$/.test(group) ? Number(group) : (entry?.gid ?? uid);
      return { uid, gid, user: `${uid}:${gid}`, ...(entry ? { name: entry.name } : {}) };
    }
  }
  const ordinary =
    passwd.find((e) => e.uid === 1000) ?? passwd.find((e) => e.uid >= 1000 && e.uid < 60000);
  if (ordinary) return { uid: ordinary.uid, gid: ordinary.gid, user: `${ordinary.uid}:${ordinary.gid}`, name: ordinary.name };
  return ROOT;
}

function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', reject);
    stream.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

/** The body of the first regular file in a ustar archive (pax headers skipped). */
export function firstTarFile(tar: Buffer): Buffer {
  let offset = 0;
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const size = parseInt(header.subarray(124, 136).toString('ascii').replace(/\0.*$/, '').trim() || '0', 8);
    const type = String.fromCharCode(header[156] ?? 0);
    const body = offset + 512;
    if (type === '0' || type === '\0') return tar.subarray(body, body + size);
    offset = body + Math.ceil(size / 512) * 512;
  }
  return Buffer.alloc(0);
}
