/**
 * A bounded in-memory journal of file changes for one workspace. Each change
 * gets the next version number; a client that reconnects asks for the
 * changes after the last version it saw and gets them, or `resync: true`
 * when the journal no longer reaches back that far (it then reloads the
 * tree).
 *
 * Versions start at the journal's creation time in microseconds, not at 0,
 * so a journal made after an agent restart continues above the old one (as
 * long as fewer than a million changes a second were recorded): a client
 * holding an old version is told to resync instead of being told "nothing
 * changed" by a fresh journal that happens to be at a smaller number.
 */
import type { ChangeKind, ChangesSinceResult, FileChanged } from '../../../shared/api/files';

export const DEFAULT_JOURNAL_CAPACITY = 10_000;

export interface ChangeEvent {
  event: ChangeKind;
  /** `/workspace/...` */
  path: string;
}

export interface ChangeJournalOptions {
  capacity?: number;
  /** Version before the first change; default: now in microseconds. */
  firstVersion?: number;
}

export class ChangeJournal {
  readonly capacity: number;
  private readonly ring: Array<FileChanged | undefined>;
  private start = 0; // ring index of the oldest entry
  private count = 0;
  private latest: number;

  constructor({ capacity = DEFAULT_JOURNAL_CAPACITY, firstVersion = Date.now() * 1000 }: ChangeJournalOptions = {}) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error('journal capacity must be a positive whole number');
    if (!Number.isSafeInteger(firstVersion) || firstVersion < 0) throw new Error('firstVersion must be a safe whole number');
    this.capacity = capacity;
    this.ring = new Array<FileChanged | undefined>(capacity);
    this.latest = firstVersion;
  }

  /** The version of the newest change (or the starting version while empty). */
  get version(): number {
    return this.latest;
  }

  /** Records a change, evicting the oldest when full, and returns it with its version. */
  append(change: ChangeEvent): FileChanged {
    const entry: FileChanged = { version: ++this.latest, event: change.event, path: change.path };
    if (this.count < this.capacity) {
      this.ring[(this.start + this.count) % this.capacity] = entry;
      this.count++;
    } else {
      this.ring[this.start] = entry;
      this.start = (this.start + 1) % this.capacity;
    }
    return entry;
  }

  /**
   * Changes with a version above `version`, oldest first, optionally filtered.
   * `resync` when changes after `version` have been evicted, or when
   * `version` is from the future (another journal's numbering).
   */
  since(version: number, filter?: (change: FileChanged) => boolean): ChangesSinceResult {
    if (!Number.isSafeInteger(version) || version > this.latest) return { version: this.latest, resync: true };
    const oldest = this.count === 0 ? this.latest + 1 : (this.ring[this.start] as FileChanged).version;
    if (version < oldest - 1) return { version: this.latest, resync: true };
    const skip = version - (oldest - 1); // versions are consecutive, so this is an index
    const changes: FileChanged[] = [];
    for (let i = skip; i < this.count; i++) {
      const entry = this.ring[(this.start + i) % this.capacity] as FileChanged;
      if (!filter || filter(entry)) changes.push(entry);
    }
    return { version: this.latest, resync: false, changes };
  }
}
