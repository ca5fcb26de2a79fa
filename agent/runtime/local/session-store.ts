/**
 * The local runtime's session records, kept in one JSON file under the
 * workspace base so `list()` still knows the sessions after an agent restart.
 * Writes are serialised and atomic (temp file + rename).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { Logger } from '../../logger';

export const LocalSessionRecord = z.object({
  sessionId: z.string(),
  userId: z.string(),
  image: z.string(),
  env: z.array(z.string()),
  ports: z.array(z.number()),
  memoryBytes: z.number(),
  state: z.enum(['running', 'stopped']),
  createdAt: z.number(),
  startedAt: z.number(),
});
export type LocalSessionRecord = z.infer<typeof LocalSessionRecord>;

const FileShape = z.object({ version: z.literal(1), sessions: z.array(LocalSessionRecord) });

export const STORE_FILE = '.local-sessions.json';

export class SessionStore {
  private records: Map<string, LocalSessionRecord> | undefined;
  private writing: Promise<void> = Promise.resolve();
  private readonly file: string;

  constructor(workspaceBase: string, private readonly logger: Logger) {
    this.file = path.join(workspaceBase, STORE_FILE);
  }

  async all(): Promise<LocalSessionRecord[]> {
    return [...(await this.load()).values()];
  }

  async get(sessionId: string): Promise<LocalSessionRecord | undefined> {
    return (await this.load()).get(sessionId);
  }

  async put(record: LocalSessionRecord): Promise<void> {
    (await this.load()).set(record.sessionId, record);
    await this.save();
  }

  async delete(sessionId: string): Promise<void> {
    if ((await this.load()).delete(sessionId)) await this.save();
  }

  private async load(): Promise<Map<string, LocalSessionRecord>> {
    if (this.records) return this.records;
    let sessions: LocalSessionRecord[] = [];
    try {
      const parsed = FileShape.safeParse(JSON.parse(await fs.readFile(this.file, 'utf8')));
      if (parsed.success) sessions = parsed.data.sessions;
      else this.logger.warn('ignoring an unreadable local session file', { file: this.file });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.logger.warn('cannot read the local session file', { file: this.file, error: err });
    }
    this.records ??= new Map(sessions.map((s) => [s.sessionId, s]));
    return this.records;
  }

  private save(): Promise<void> {
    const body = JSON.stringify({ version: 1, sessions: [...(this.records?.values() ?? [])] }, null, 2);
    this.writing = this.writing.catch(() => undefined).then(async () => {
      await fs.mkdir(path.dirname(this.file), { recursive: true });
      const tmp = `${this.file}.${process.pid}.tmp`;
      await fs.writeFile(tmp, body, { mode: 0o600 });
      await fs.rename(tmp, this.file);
    });
    return this.writing;
  }
}
