/**
 * Which user a session's container runs as: never root unless the operator
 * allows it (ALLOW_ROOT_CONTAINERS=1).
 *
 *   1. The image's USER, when set and not root, resolved against its /etc/passwd.
 *   2. Else the passwd entry with uid 1000 (the convention of node, python and
 *      most dev images), else the first ordinary user (uid 1000-59999).
 *   3. Else CONTAINER_USER (1000:1000), a uid the image does not know; or
 *      root, when allowed and the image has no other user.
 *
 * /etc/passwd is read from a created-but-never-started container with the
 * archive API (no process runs, about 30 ms): at most 1 MiB, and only when it
 * is a regular file, so an image cannot make the agent hold a huge or endless
 * file. The probe container goes with its anonymous volumes. The answer is
 * cached per image id, so each image is read once per agent run.
 */
import type Docker from 'dockerode';
import { extract } from 'tar-stream';
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

/** Largest /etc/passwd the probe reads; a bigger one counts as absent. */
export const MAX_PASSWD_BYTES = 1024 * 1024;

export interface UserPolicy {
  /** Who runs an image without a non-root user of its own (CONTAINER_USER). */
  fallback: { uid: number; gid: number };
  /** ALLOW_ROOT_CONTAINERS: root instead of the fallback for such images. */
  allowRoot: boolean;
}

export const DEFAULT_USER_POLICY: UserPolicy = { fallback: { uid: 1000, gid: 1000 }, allowRoot: false };

export class ImageUserResolver {
  private readonly cache = new Map<string, Promise<ContainerUser>>();

  constructor(
    private readonly docker: Docker,
    private readonly logger: Logger,
    private readonly policy: UserPolicy = DEFAULT_USER_POLICY,
  ) {}

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
    const user = chooseUser(image.user, passwd, this.policy);
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
      const body = await readRegularFile(archive, MAX_PASSWD_BYTES);
      if (body === undefined) this.logger.warn('image /etc/passwd is not a regular file of at most 1 MiB; ignored', { image: imageId.slice(0, 19) });
      return body?.toString('utf8') ?? '';
    } catch (err) {
      if (isNotFound(err)) return '';
      throw err;
    } finally {
      await container.remove({ force: true, v: true }).catch(() => undefined);
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

export function chooseUser(configUser: string, passwd: PasswdEntry[], policy: UserPolicy = DEFAULT_USER_POLICY): ContainerUser {
  if (configUser) {
    const [who = '', group] = configUser.split(':');
    const entry = /^\d+$/.test(who) ? passwd.find((e) => e.uid === Number(who)) : passwd.find((e) => e.name === who);
    const uid = /^\d+$/.test(who) ? Number(who) : entry?.uid;
    if (uid !== undefined && uid !== 0) {
      const gid = group !== undefined && /^\d+$/.test(group) ? Number(group) : (entry?.gid ?? uid);
      return { uid, gid, user: `${uid}:${gid}`, ...(entry ? { name: entry.name } : {}) };
    }
  }
  const ordinary =
    passwd.find((e) => e.uid === 1000) ?? passwd.find((e) => e.uid >= 1000 && e.uid < 60000);
  if (ordinary) return { uid: ordinary.uid, gid: ordinary.gid, user: `${ordinary.uid}:${ordinary.gid}`, name: ordinary.name };
  if (policy.allowRoot) return ROOT;
  const { uid, gid } = policy.fallback;
  const known = passwd.find((e) => e.uid === uid);
  return { uid, gid, user: `${uid}:${gid}`, ...(known ? { name: known.name } : {}) };
}

/**
 * The body of the archive's first entry when it is a regular file of at most
 * `max` bytes; undefined otherwise. Stops reading the engine's stream as soon
 * as the header says no, so memory stays at most `max` plus a tar block.
 */
export function readRegularFile(archive: NodeJS.ReadableStream, max: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const tar = extract();
    let settled = false;
    const finish = (value: Buffer | undefined, err?: unknown) => {
      if (settled) return;
      settled = true;
      (archive as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      tar.destroy();
      if (err) reject(err instanceof Error ? err : new Error(String(err)));
      else resolve(value);
    };
    tar.on('entry', (header, body, next) => {
      if (header.type !== 'file' || (header.size ?? 0) > max) return finish(undefined);
      const chunks: Buffer[] = [];
      let size = 0;
      body.on('data', (data: unknown) => {
        const c = Buffer.isBuffer(data) ? data : Buffer.from(String(data));
        size += c.length;
        if (size > max) return finish(undefined);
        chunks.push(c);
      });
      body.on('end', () => {
        finish(Buffer.concat(chunks));
        next();
      });
    });
    tar.on('finish', () => finish(undefined));
    tar.on('error', (err: unknown) => finish(undefined, err));
    archive.on('error', (err: unknown) => finish(undefined, err));
    archive.pipe(tar);
  });
}
