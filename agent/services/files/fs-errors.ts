/**
 * Node file system errors turned into AppErrors with the client's view of the
 * path. Messages never carry host paths: the client knows only /workspace.
 */
import { AppError, ErrorCode } from '../../../shared/errors';
import { clip } from './workspace-path';

export function errnoOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

export function hasErrno(err: unknown, ...codes: string[]): boolean {
  const code = errnoOf(err);
  return code !== undefined && codes.includes(code);
}

/** AppErrors pass through; errno errors get a code and a message about `shown`. */
export function toAppError(err: unknown, shown: string): AppError {
  if (err instanceof AppError) return err;
  const p = clip(shown);
  switch (errnoOf(err)) {
    case 'ENOENT':
      return new AppError(ErrorCode.NotFound, `no such file or folder: ${p}`);
    case 'ENOTDIR':
      return new AppError(ErrorCode.NotFound, `a parent of ${p} is not a folder`);
    case 'EEXIST':
      return new AppError(ErrorCode.Conflict, `already exists: ${p}`);
    case 'ENOTEMPTY':
      return new AppError(ErrorCode.Conflict, `folder is not empty: ${p}`);
    case 'EISDIR':
      return new AppError(ErrorCode.Conflict, `is a folder: ${p}`);
    case 'ELOOP':
      // O_NOFOLLOW met a symlink where the walk had just seen something else:
      // the path changed under us. Refused rather than followed.
      return new AppError(ErrorCode.Conflict, `path changed during the operation: ${p}`);
    case 'EXDEV':
      return new AppError(ErrorCode.Conflict, `cannot move across file systems: ${p}`);
    case 'EBUSY':
      return new AppError(ErrorCode.Conflict, `busy: ${p}`);
    case 'EINVAL':
      return new AppError(ErrorCode.InvalidPath, `invalid operation on ${p}`);
    case 'ENAMETOOLONG':
      return new AppError(ErrorCode.InvalidPath, `path too long: ${p}`);
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new AppError(ErrorCode.Forbidden, `permission denied: ${p}`);
    case 'ENOSPC':
    case 'EDQUOT':
    case 'EFBIG':
      return new AppError(ErrorCode.PayloadTooLarge, `no space left in the workspace for ${p}`);
    default:
      return new AppError(ErrorCode.Internal, 'Internal server error');
  }
}
