/**
 * Which changes a `watch {path, recursive}` subscription hears about: the
 * path itself, its direct children (or all descendants when recursive), and
 * the removal of a folder above it (removing a folder reports only that
 * folder, so a watch inside it must hear that one event).
 */
import type { FileChanged } from '../../../shared/api/files';
import { watchCovers } from '../../../shared/protocol/watch-filter';
import { parseWorkspacePath, toWorkspacePath } from './workspace-path';

export interface WatchSpec {
  /** A client path: the folder (or file) to hear about; checked lexically, it need not exist. */
  path: unknown;
  recursive: boolean;
}

/** Whether a change concerns a watch on `spec` (see `subscribe`); the rule itself is shared with the edge. */
export function matcher(spec: WatchSpec): (change: FileChanged) => boolean {
  const base = toWorkspacePath(parseWorkspacePath(spec.path));
  return (change) => watchCovers(base, spec.recursive, change);
}
