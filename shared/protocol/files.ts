/**
 * File work on a session's data socket (Session DO → agent requests). Paths
 * are the client's, checked by the agent's one path jail. Bodies travel as
 * one-shot byte streams (./byte-streams.ts) of kind File on a stream id the
 * DO allocates.
 *
 *   fs.stat    {path}                      → FileStatResult
 *   fs.list    {path}                      → DirListing
 *   fs.read    {path, streamId, range?}    → FileStatResult & {length, start}; the body follows on streamId
 *   fs.write   {path, streamId, parents, size?} → FileWritten, once the whole body (sent on streamId) is in place;
 *              with `size` (the client's Content-Length), a body of any other length fails and changes nothing
 *   fs.mkdir   {path, recursive} · fs.delete {path, recursive} · fs.rename {from, to}
 *   fs.tar.pack    {path, streamId}        → {path}; the tar follows on streamId
 *   fs.tar.extract {path, streamId}        → TarExtracted, once the tar (sent on streamId) is unpacked
 *   fs.watch   {}                          → {version}; then `fs.change` events for the whole workspace
 *   fs.changes_since {version}             → ChangesSinceResult
 *   DO → agent event stream.abort {streamId}: the sender gave up; the receiver discards the stream.
 */
import { z } from 'zod';
import { WorkspacePathInput } from '../api/files';

const StreamId = z.number().int().nonnegative().max(0xffffffff);
export const FsPath = z.object({ path: WorkspacePathInput });
export const FsRead = z.object({
  path: WorkspacePathInput,
  streamId: StreamId,
  range: z.object({ start: z.number().int().nonnegative().optional(), end: z.number().int().nonnegative().optional() }).optional(),
});
export const FsWrite = z.object({
  path: WorkspacePathInput,
  streamId: StreamId,
  parents: z.boolean().default(false),
  size: z.number().int().nonnegative().optional(),
});
export const FsMkdir = z.object({ path: WorkspacePathInput, recursive: z.boolean().default(false) });
export const FsDelete = z.object({ path: WorkspacePathInput, recursive: z.boolean().default(false) });
export const FsRename = z.object({ from: WorkspacePathInput, to: WorkspacePathInput });
export const FsTar = z.object({ path: WorkspacePathInput, streamId: StreamId });
export const FsChangesSince = z.object({ version: z.number().int().nonnegative() });
export const StreamAbort = z.object({ streamId: StreamId });
