import { describe, expect, it } from 'vitest';
import { parseLinkTarget, parseWorkspacePath, toWorkspacePath } from '../../../agent/services/files/workspace-path';
import { AppError } from '../../../shared/errors';

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return err instanceof AppError ? err.code : 'thrown';
  }
}

describe('parseWorkspacePath', () => {
  it.each([
    ['src/app.ts', ['src', 'app.ts']],
    ['/workspace/src/app.ts', ['src', 'app.ts']],
    ['/workspace', []],
    ['/workspace/', []],
    ['.', []],
    ['./', []],
    ['//workspace//src//', ['src']],
    ['/./workspace/./src', ['src']],
    ['src/../README.md', ['README.md']],
    ['a/b/../../c', ['c']],
    ['...', ['...']],
    ['%2e%2e', ['%2e%2e']],
    ['..\\x', ['..\\x']],
    ['workspace/x', ['workspace', 'x']],
    ['ünï cödé/名前.txt', ['ünï cödé', '名前.txt']],
    ['emoji-😀', ['emoji-😀']],
    [' spaced ', [' spaced ']],
    ['x'.repeat(255), ['x'.repeat(255)]],
  ])('%j → %j', (input, names) => {
    expect(parseWorkspacePath(input)).toEqual(names);
  });

  it.each([
    ['', 'invalid_path'],
    ['a\0b', 'invalid_path'],
    ['x'.repeat(256), 'invalid_path'],
    ['ü'.repeat(128), 'invalid_path'],
    ['a/'.repeat(2049), 'invalid_path'],
    ['\uD83D', 'invalid_path'],
    ['..', 'path_outside_workspace'],
    ['a/../..', 'path_outside_workspace'],
    ['../workspace/x', 'path_outside_workspace'],
    ['/', 'path_outside_workspace'],
    ['/etc', 'path_outside_workspace'],
    ['/workspace/..', 'path_outside_workspace'],
    ['/workspaces', 'path_outside_workspace'],
    ['/../workspace', 'path_outside_workspace'],
  ])('%j → %s', (input, code) => {
    expect(codeOf(() => parseWorkspacePath(input))).toBe(code);
  });

  it.each([[1], [null], [undefined], [{}], [[]], [Buffer.from('a')]])('refuses the non-string %j', (input) => {
    expect(codeOf(() => parseWorkspacePath(input))).toBe('invalid_path');
  });
});

describe('parseLinkTarget', () => {
  it('reads targets as the container sees them', () => {
    expect(parseLinkTarget('../lib/./x', '/workspace/l')).toEqual({ absolute: false, names: ['..', 'lib', 'x'] });
    expect(parseLinkTarget('/workspace/src', '/workspace/l')).toEqual({ absolute: true, names: ['src'] });
    expect(codeOf(() => parseLinkTarget('/etc/passwd', '/workspace/l'))).toBe('path_outside_workspace');
    expect(codeOf(() => parseLinkTarget('/workspace/../etc', '/workspace/l'))).toBe('path_outside_workspace');
    expect(codeOf(() => parseLinkTarget('', '/workspace/l'))).toBe('not_found');
  });
});

describe('toWorkspacePath', () => {
  it('renders names in the /workspace form', () => {
    expect(toWorkspacePath([])).toBe('/workspace');
    expect(toWorkspacePath(['a', 'b'])).toBe('/workspace/a/b');
  });
});
