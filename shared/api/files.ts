/**
 * File API shapes shared by the edge (REST routes, client WebSocket) and the
 * agent (tunnel requests).
 *
 * Paths are strings as the client sent them: relative to /workspace
 * (`src/app.ts`) or absolute under it (`/workspace/src/app.ts`). These schemas
 * only bound their size; the agent's path jail decides whether a path is valid
 * and inside the workspace (NUL bytes, `..`, symlinks, over-long names), so
 * that one function makes that decision for every entry point.
 *
 * Paths the agent sends back are always in the absolute form `/workspace/...`
 * (the workspace root itself is `/workspace`), with `/` separators.
 *
 * Client WebSocket requests and their replies (each reply echoes `id`):
 *   read_file     {path, encoding?}          → file_content {path, content, encoding, size, mtime, etag}
 *   write_file    {path, content, encoding?} → file_written {path, size}
 *   list_dir      {path}                     → dir_listing  {path, entries}
 *   mkdir         {path, recursive}          → dir_created  {path}
 *   delete_file   {path, recursive?}         → file_deleted {path}
 *   rename        {from, to}                 → file_renamed {from, to}
 *   watch         {path, recursive}          → watching {path, version}, then file_changed events
 *   changes_since {version}                  → changes {version, changes} or {version, resync: true}
 */
import { z } from 'zod';

/** Longest path the agent accepts, in UTF-8 bytes (Linux PATH_MAX). */
export const MAX_PATH_BYTES = 4096;
/** Longest single name, in UTF-8 bytes (Linux NAME_MAX). */
export const MAX_NAME_BYTES = 255;
/**
 * Largest `content` string in a JSON write (characters). Larger files go as a
 * raw streamed body; WebSocket frames are limited to 1 MiB anyway.
 */
export const MAX_JSON_CONTENT_CHARS = 64 * 1024 * 1024;

/** A path as sent by a client; the agent's jail checks everything else. */
export const WorkspacePathInput = z.string().min(1).max(MAX_PATH_BYTES * 4);

export const ContentEncoding = z.enum(['utf8', 'base64']);
export type ContentEncoding = z.infer<typeof ContentEncoding>;

export const ReadFileRequest = z.object({
  path: WorkspacePathInput,
  encoding: ContentEncoding.optional(),
});
export type ReadFileRequest = z.infer<typeof ReadFileRequest>;

export const WriteFileRequest = z.object({
  path: WorkspacePathInput,
  content: z.string().max(MAX_JSON_CONTENT_CHARS),
  encoding: ContentEncoding.optional(),
  /** Create missing parent folders (REST: `?parents=1`). */
  parents: z.boolean().optional(),
});
export type WriteFileRequest = z.infer<typeof WriteFileRequest>;

/** The body of `PUT .../files/<path>` with a JSON content type (the seed's shape). */
export const WriteFileJsonBody = z.object({
  content: z.string().max(MAX_JSON_CONTENT_CHARS),
  encoding: ContentEncoding.optional(),
});
export type WriteFileJsonBody = z.infer<typeof WriteFileJsonBody>;

export const ListDirRequest = z.object({ path: WorkspacePathInput });
export type ListDirRequest = z.infer<typeof ListDirRequest>;

export const MkdirRequest = z.object({
  path: WorkspacePathInput,
  recursive: z.boolean().default(false),
});
export type MkdirRequest = z.infer<typeof MkdirRequest>;

export const DeleteFileRequest = z.object({
  path: WorkspacePathInput,
  recursive: z.boolean().optional(),
});
export type DeleteFileRequest = z.infer<typeof DeleteFileRequest>;

export const RenameRequest = z.object({ from: WorkspacePathInput, to: WorkspacePathInput });
export type RenameRequest = z.infer<typeof RenameRequest>;

export const WatchRequest = z.object({
  path: WorkspacePathInput,
  recursive: z.boolean().default(true),
});
export type WatchRequest = z.infer<typeof WatchRequest>;

export const ChangesSinceRequest = z.object({
  version: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
});
export type ChangesSinceRequest = z.infer<typeof ChangesSinceRequest>;

export const FileType = z.enum(['file', 'directory', 'symlink']);
export type FileType = z.infer<typeof FileType>;

/** One entry of a folder listing; `mtime` is ISO 8601, `mode` the permission bits. */
export const FileEntry = z.object({
  name: z.string(),
  type: FileType,
  size: z.number().int().nonnegative(),
  mtime: z.string(),
  mode: z.number().int().nonnegative(),
});
export type FileEntry = z.infer<typeof FileEntry>;

export const DirListing = z.object({
  path: z.string(),
  entries: z.array(FileEntry),
});
export type DirListing = z.infer<typeof DirListing>;

/** `file_content`: `content` is UTF-8 text or base64, as `encoding` says. */
export const FileContent = z.object({
  path: z.string(),
  content: z.string(),
  encoding: ContentEncoding,
  size: z.number().int().nonnegative(),
  mtime: z.string(),
  etag: z.string(),
});
export type FileContent = z.infer<typeof FileContent>;

/** What HEAD (stat) reports; `etag` as in GET. */
export const FileStatResult = FileEntry.omit({ name: true }).extend({ path: z.string(), etag: z.string() });
export type FileStatResult = z.infer<typeof FileStatResult>;

/** Reply to a tar upload. */
export const TarExtracted = z.object({
  path: z.string(),
  files: z.number().int().nonnegative(),
  dirs: z.number().int().nonnegative(),
  symlinks: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
});
export type TarExtracted = z.infer<typeof TarExtracted>;

/** Reply to a write (REST and `write_file`): the new file's size, mtime (ISO 8601) and ETag. */
export const FileWritten = z.object({ path: z.string(), size: z.number().int().nonnegative(), mtime: z.string(), etag: z.string() });
export type FileWritten = z.infer<typeof FileWritten>;

export const ChangeKind = z.enum(['add_file', 'change', 'remove_file', 'add_dir', 'remove_dir']);
export type ChangeKind = z.infer<typeof ChangeKind>;

/** `file_changed` payload; `version` orders changes within one workspace's journal. */
export const FileChanged = z.object({
  version: z.number().int().nonnegative(),
  event: ChangeKind,
  path: z.string(),
});
export type FileChanged = z.infer<typeof FileChanged>;

export const ChangesSinceResult = z.union([
  z.object({ version: z.number().int().nonnegative(), resync: z.literal(false), changes: z.array(FileChanged) }),
  z.object({ version: z.number().int().nonnegative(), resync: z.literal(true) }),
]);
export type ChangesSinceResult = z.infer<typeof ChangesSinceResult>;
