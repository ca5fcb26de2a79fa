/**
 * Paths on the page are relative to the workspace (`src/app.js`, `''` for
 * the workspace itself); the API reports `/workspace/...`.
 */
export function relPath(workspacePath: string): string {
  return workspacePath.replace(/^\/workspace(?=\/|$)/, '').replace(/^\/+|\/+$/g, '');
}

export function absPath(rel: string): string {
  return rel ? `/workspace/${rel}` : '/workspace';
}

export function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

export function baseName(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

export function joinPath(dir: string, name: string): string {
  return dir ? `${dir}/${name}` : name;
}

/** Each segment URL-encoded, slashes kept. */
export function encodePath(rel: string): string {
  return rel.split('/').filter(Boolean).map(encodeURIComponent).join('/');
}
