/**
 * Which changes a `watch {path, recursive}` hears about, for the agent's
 * watcher and the edge's fanout alike: the watched path itself, its direct
 * children (all descendants when recursive), and the removal of a folder
 * above it (removing a folder reports only that folder, so a watch inside it
 * must hear that one event). `base` is a normalised workspace path
 * (`/workspace` or `/workspace/a/b`, no trailing slash).
 */
import type { FileChanged } from '../api/files';

export function watchCovers(base: string, recursive: boolean, change: Pick<FileChanged, 'path' | 'event'>): boolean {
  const p = change.path;
  if (p === base) return true;
  const prefix = base === '/workspace' ? '/workspace/' : `${base}/`;
  if (p.startsWith(prefix)) return recursive || !p.slice(prefix.length).includes('/');
  return change.event === 'remove_dir' && base.startsWith(`${p}/`);
}
