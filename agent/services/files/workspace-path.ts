/**
 * The lexical half of the path jail: turns what a client sent into the list of
 * names below the workspace root, or refuses it. No file system access here;
 * ./path-jail.ts then walks those names on disk.
 *
 * Rules (the same for REST, WebSocket, tar entries and symlink targets):
 * - a path is a non-empty string of at most 4096 UTF-8 bytes, without NUL
 *   bytes or unpaired UTF-16 surrogates (they cannot name a file: Node would
 *   turn them into U+FFFD, a different name), each name at most 255 bytes;
 * - relative paths are relative to /workspace; absolute paths must be
 *   /workspace or below it (`//workspace/a` and `/./workspace/a` are that too);
 * - `.` and empty names are dropped, `..` removes the previous name; a `..`
 *   that would leave /workspace is refused even if later names come back in;
 * - nothing is decoded: `%2e%2e` and `..\` are ordinary names here (the edge
 *   decodes URLs exactly once before the path reaches the agent), and a
 *   backslash is an ordinary character in a Linux name.
 * Lexical `..` is safe even across symlinks: the result only ever names
 * entries under the root, and the walk then checks every one of them.
 */
import { AppError, ErrorCode } from '../../../shared/errors';
import { MAX_NAME_BYTES, MAX_PATH_BYTES } from '../../../shared/api/files';

/** Where the workspace appears inside the container, and in every path we send back. */
export const WORKSPACE_MOUNT = '/workspace';

/** Names of our own temporary files and folders; the watcher and tar packing skip them. */
export const TEMP_FILE_PREFIX = '.mominai-tmp-';
export const TEMP_DIR_PREFIX = '.mominai-extract-';

export function isTempName(name: string): boolean {
  return name.startsWith(TEMP_FILE_PREFIX) || name.startsWith(TEMP_DIR_PREFIX);
}

const loneSurrogate = /\p{Cs}/u;

/** Names below /workspace for a client path; `[]` is the workspace root. */
export function parseWorkspacePath(input: unknown): string[] {
  if (typeof input !== 'string') throw invalid('path must be a string');
  if (input.length === 0) throw invalid('path is empty');
  if (input.length > MAX_PATH_BYTES || Buffer.byteLength(input, 'utf8') > MAX_PATH_BYTES) {
    throw invalid(`path is longer than ${MAX_PATH_BYTES} bytes`);
  }
  if (input.includes('\0')) throw invalid('path contains a NUL byte');
  if (loneSurrogate.test(input)) throw invalid('path is not valid Unicode');

  let names = input.split('/');
  if (input.startsWith('/')) {
    names = names.filter((n) => n !== '' && n !== '.');
    if (names[0] !== 'workspace') throw outside(input);
    names = names.slice(1);
  }
  return resolveNames(names, input);
}

/**
 * Names of a symlink's target, seen from inside the container: an absolute
 * target is read against the container's root, so `/workspace/x` is the
 * workspace's `x` and anything else absolute leaves the workspace.
 * Returns `absolute` so the walk knows whether to restart at the root; a
 * relative target keeps its `..` names, which the walk resolves against the
 * folder holding the link.
 */
export function parseLinkTarget(target: string, shown: string): { absolute: boolean; names: string[] } {
  if (target.length === 0) throw new AppError(ErrorCode.NotFound, `broken symlink: ${shown}`);
  if (!target.startsWith('/')) {
    return { absolute: false, names: target.split('/').filter((n) => n !== '' && n !== '.') };
  }
  const names = target.split('/').filter((n) => n !== '' && n !== '.');
  if (names[0] !== 'workspace') throw outside(shown);
  return { absolute: true, names: resolveNames(names.slice(1), shown) };
}

/** `/workspace/a/b` for `['a', 'b']`. */
export function toWorkspacePath(names: readonly string[]): string {
  return names.length === 0 ? WORKSPACE_MOUNT : `${WORKSPACE_MOUNT}/${names.join('/')}`;
}

function resolveNames(raw: readonly string[], shown: string): string[] {
  const out: string[] = [];
  for (const name of raw) {
    if (name === '' || name === '.') continue;
    if (name === '..') {
      if (out.length === 0) throw outside(shown);
      out.pop();
      continue;
    }
    if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) throw invalid(`a name is longer than ${MAX_NAME_BYTES} bytes`);
    out.push(name);
  }
  return out;
}

function invalid(message: string): AppError {
  return new AppError(ErrorCode.InvalidPath, message);
}

export function outside(shown: string): AppError {
  return new AppError(ErrorCode.PathOutsideWorkspace, `path leaves the workspace: ${clip(shown)}`);
}

/** Paths go into messages clipped, so an error never carries a 4 KiB string. */
export function clip(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
