/**
 * The types of StackBlitz's `@webcontainer/api` 1.6.4 surface, as this
 * facade implements them (test/client/compat checks that they stay
 * assignable to that package's own), plus the options only we take.
 */
import type { FetchLike } from '../http';
import type { WebSocketConstructor } from '../connection';

export type Unsubscribe = () => void;

export interface FileSystemTree {
  [name: string]: DirectoryNode | FileNode | SymlinkNode;
}
export interface DirectoryNode {
  directory: FileSystemTree;
}
export interface FileNode {
  file: { contents: string | Uint8Array };
}
export interface SymlinkNode {
  file: { symlink: string };
}

export type BufferEncoding = 'ascii' | 'utf8' | 'utf-8' | 'utf16le' | 'ucs2' | 'ucs-2' | 'base64' | 'base64url' | 'latin1' | 'binary' | 'hex';

export interface DirEnt<T> {
  name: T;
  isFile(): boolean;
  isDirectory(): boolean;
}

export interface IFSWatcher {
  close(): void;
}
export type FSWatchOptions = { encoding?: BufferEncoding | null; persistent?: boolean; recursive?: boolean } | string | null;
export type FSWatchCallback = (event: 'rename' | 'change', filename: string | Uint8Array) => void;

export interface FileSystemAPI {
  readdir(path: string, options: 'buffer' | { encoding: 'buffer'; withFileTypes?: false }): Promise<Uint8Array[]>;
  readdir(path: string, options?: { encoding?: BufferEncoding | null; withFileTypes?: false } | BufferEncoding | null): Promise<string[]>;
  readdir(path: string, options: { encoding: 'buffer'; withFileTypes: true }): Promise<DirEnt<Uint8Array>[]>;
  readdir(path: string, options: { encoding?: BufferEncoding | null; withFileTypes: true }): Promise<DirEnt<string>[]>;
  readFile(path: string, encoding?: null): Promise<Uint8Array>;
  readFile(path: string, encoding: BufferEncoding): Promise<string>;
  writeFile(path: string, data: string | Uint8Array, options?: string | { encoding?: string | null } | null): Promise<void>;
  mkdir(path: string, options?: { recursive?: false }): Promise<void>;
  mkdir(path: string, options: { recursive: true }): Promise<string>;
  rm(path: string, options?: { force?: boolean; recursive?: boolean }): Promise<void>;
  rename(oldPath: string, newPath: string): Promise<void>;
  watch(filename: string, options?: FSWatchOptions, listener?: FSWatchCallback): IFSWatcher;
  watch(filename: string, listener?: FSWatchCallback): IFSWatcher;
}

export interface WebContainerProcess {
  exit: Promise<number>;
  input: WritableStream<string>;
  output: ReadableStream<string>;
  kill(): void;
  resize(dimensions: { cols: number; rows: number }): void;
}

export interface SpawnOptions {
  cwd?: string;
  env?: Record<string, string | number | boolean>;
  /** `false`: the output is dropped (and `output` ends at once). */
  output?: boolean;
  terminal?: { cols: number; rows: number };
}

export interface BootOptions {
  /** The MominAI edge's origin (e.g. `https://api.example.com`). */
  apiUrl: string;
  /** A user token (MominaiClient.login/register gives one). */
  token: string;
  /** The session's image, when a session is created (default: the edge's DEFAULT_IMAGE). */
  image?: string;
  /** Attach to this existing session instead of creating one; teardown() then leaves it running. */
  sessionId?: string;
  /**
   * The workdir this facade shows is `/home/<workdirName>` (as in WebContainers); the files
   * stay in the container's /workspace, and paths under either name are the same place.
   * One folder name (letters, digits, `.`, `_`, `-`); anything else fails boot with `validation_failed`.
   */
  workdirName?: string;
  /** Accepted for compatibility; previews live on their own origins and need no COEP. */
  coep?: 'require-corp' | 'credentialless' | 'none';
  /**
   * Given: the edge injects an error reporter into the session's preview pages, and uncaught
   * errors, unhandled rejections and (unless `exceptions-only`) console.error come back as
   * `preview-message` events. Not given: the session keeps what it had (off for a new one).
   */
  forwardPreviewErrors?: boolean | 'exceptions-only';
  /** Node 20 has no global WebSocket: pass `ws`'s constructor. */
  WebSocket?: WebSocketConstructor;
  fetch?: FetchLike;
  /** How long boot waits for the session to run (ms, default 120 s). */
  timeoutMs?: number;
}

export interface ExportOptions {
  format?: 'json' | 'binary' | 'zip';
  includes?: string[];
  excludes?: string[];
}

export interface PreviewScriptOptions {
  type?: 'module' | 'importmap';
  defer?: boolean;
  async?: boolean;
}

export enum PreviewMessageType {
  UncaughtException = 'PREVIEW_UNCAUGHT_EXCEPTION',
  UnhandledRejection = 'PREVIEW_UNHANDLED_REJECTION',
  ConsoleError = 'PREVIEW_CONSOLE_ERROR',
}
export interface BasePreviewMessage {
  previewId: string;
  port: number;
  pathname: string;
  search: string;
  hash: string;
}
export interface UncaughtExceptionMessage {
  type: PreviewMessageType.UncaughtException;
  message: string;
  stack: string | undefined;
}
export interface UnhandledRejectionMessage {
  type: PreviewMessageType.UnhandledRejection;
  message: string;
  stack: string | undefined;
}
export interface ConsoleErrorMessage {
  type: PreviewMessageType.ConsoleError;
  args: any[];
  stack: string;
}
export type PreviewMessage = (UncaughtExceptionMessage | UnhandledRejectionMessage | ConsoleErrorMessage) & BasePreviewMessage;

export type CodeEventType = 'open' | 'diff';
export interface CodeEvent {
  files: Array<{ filepath: string; line?: number; column?: number }>;
}

export type PortListener = (port: number, type: 'open' | 'close', url: string) => void;
export type ServerReadyListener = (port: number, url: string) => void;
export type PreviewMessageListener = (message: PreviewMessage) => void;
export type ErrorListener = (error: { message: string }) => void;
export type OpenListener = (text: string) => void;
export type CodeListener = (type: CodeEventType, event: CodeEvent) => void;

/** One change `internal.watchPaths` reports; `buffer` holds the file's bytes with `includeContent`. */
export interface PathWatcherEvent {
  type: 'add_file' | 'change' | 'remove_file' | 'add_dir' | 'remove_dir';
  path: string;
  buffer?: Uint8Array;
}
export interface WatchPathsOptions {
  include?: string[];
  exclude?: string[];
  includeContent?: boolean;
}
