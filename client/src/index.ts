/**
 * @mominai/client: the typed client of the MominAI backend. The message
 * types are the project's own contracts (shared/), bundled in.
 */
export { MominaiClient, type MominaiClientOptions, type PreviewLinkInfo } from './client';
export { MominaiError, ClientErrorCode } from './errors';
export { SessionConnection, type ConnectOptions, type ConnectionEvents, type ConnectionState, type WebSocketLike, type WebSocketConstructor } from './connection';
export { ProcessHandle, type ProcessExit, type ExitReason, type OutputChunk } from './process';
export type { RunOptions, ExecOptions, TerminalOptions } from './connection-processes';
export { ConnectionFiles, type FileChange } from './connection-files';
export { SessionFiles } from './files';
export { encodeTar, type TarEntry } from './tar';
export type { GapInfo, PortInfo, ProcessInfoType as ProcessInfo } from './protocol';
export type { ErrorCode } from '../../shared/errors';
export type { SessionView, SessionStatus, CreateContainerBody, ExecBody, ExecResult } from '../../shared/api/containers';
export type { PublicUser, RegisterRequest, LoginRequest } from '../../shared/api/auth';
export type { FileEntry, FileType, ChangeKind, TarExtracted } from '../../shared/api/files';
export type { StreamName } from '../../shared/protocol/session-data';
