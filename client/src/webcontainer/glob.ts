/**
 * Glob patterns for `internal.watchPaths` and `export`: `*` (within one
 * name), `**` (any number of folders), `?`, `{a,b}` and `[...]`. A pattern
 * that starts with `/` is matched against the absolute path
 * (`/workspace/src/a.js`), any other against the path relative to the
 * workdir (`src/a.js`). A path is excluded when it or any folder above it
 * matches an exclude pattern, so `**\/node_modules` leaves out everything
 * inside node_modules too.
 */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        // `**/` matches zero or more folders; a trailing `**` anything below.
        const slash = glob[i + 2] === '/';
        re += slash ? '(?:.*/)?' : '.*';
        i += slash ? 2 : 1;
      } else {
        re += '[^/]*';
      }
    } else if (c === '?') re += '[^/]';
    else if (c === '{') {
      const end = glob.indexOf('}', i);
      if (end < 0) re += '\\{';
      else {
        re += `(?:${glob.slice(i + 1, end).split(',').map(escape).join('|')})`;
        i = end;
      }
    } else if (c === '[') {
      const end = glob.indexOf(']', i);
      if (end < 0) re += '\\[';
      else {
        re += `[${glob.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += escape(c);
  }
  return new RegExp(`^${re}$`);
}

function escape(s: string): string {
  return s.replace(/[.+^${}()|[\]\\]/g, '\\$&');
}

export class PathFilter {
  private readonly include: Array<{ abs: boolean; re: RegExp }>;
  private readonly exclude: Array<{ abs: boolean; re: RegExp }>;

  constructor(
    include: readonly string[] | undefined,
    exclude: readonly string[] | undefined,
    private readonly workdir: string,
  ) {
    const compile = (g: string) => ({ abs: g.startsWith('/'), re: globToRegExp(g.replace(/\/+$/, '')) });
    this.include = (include ?? []).map(compile);
    this.exclude = (exclude ?? []).map(compile);
  }

  /** `abs` is the absolute path (`/workspace/...`). */
  matches(abs: string): boolean {
    const rel = abs === this.workdir ? '' : abs.slice(this.workdir.length + 1);
    const test = (p: { abs: boolean; re: RegExp }, a: string, r: string) => p.re.test(p.abs ? a : r);
    if (this.include.length && !this.include.some((p) => test(p, abs, rel))) return false;
    const parts = rel.split('/');
    for (let n = 1; n <= parts.length; n++) {
      const r = parts.slice(0, n).join('/');
      const a = `${this.workdir}/${r}`;
      if (this.exclude.some((p) => test(p, a, r))) return false;
    }
    return true;
  }
}
