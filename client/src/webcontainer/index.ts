/**
 * `@mominai/client/webcontainer`: StackBlitz's WebContainer API (1.6.4)
 * backed by a MominAI session, so IDE code written for WebContainers runs
 * against a real container with only its import and `boot` options changed.
 * What cannot be honoured the same way is present, typed and documented
 * where it is declared (and in client/README.md).
 */
import type { PreviewMessagePayload } from '../../../shared/protocol/preview-script';
import { MominaiClient } from '../client';
import type { SessionConnection } from '../connection';
import { MominaiError } from '../errors';
import type { SessionFiles } from '../files';
import { encodeTar } from '../tar';
import { Emitter } from '../emitter';
import { exportTree, fromTree } from './export';
import { relativePath, WebContainerFs, WORKDIR } from './fs';
import { spawnProcess } from './spawn';
import { watchPaths, type StopWatching } from './watch-paths';
import {
  PreviewMessageType,
  type BootOptions,
  type CodeListener,
  type ErrorListener,
  type ExportOptions,
  type FileSystemTree,
  type OpenListener,
  type PathWatcherEvent,
  type PortListener,
  type PreviewMessage,
  type PreviewMessageListener,
  type PreviewScriptOptions,
  type ServerReadyListener,
  type SpawnOptions,
  type Unsubscribe,
  type WatchPathsOptions,
  type WebContainerProcess,
} from './types';

export * from './types';
export { FsError, type FsWatcher } from './fs';
export { JSH_BASH_RC } from './spawn';
export { encodeZip, toTree, fromTree } from './export';

export interface LoadFilesOptions {
  /** Folder (relative to the workdir) to unpack into; created when missing. */
  mountPoint?: string;
}

interface FacadeEvents {
  'xdg-open': [string];
  code: [Parameters<CodeListener>[0], Parameters<CodeListener>[1]];
}

export class WebContainer {
  readonly fs: WebContainerFs;
  /** Undocumented WebContainers calls that IDEs rely on. */
  readonly internal: { watchPaths(options: WatchPathsOptions, callback: (events: PathWatcherEvent[]) => void): StopWatching };
  /** Resolves when teardown() has finished (the session deleted, unless it was attached). */
  readonly tornDown: Promise<void>;
  private resolveTornDown!: () => void;
  private readonly events = new Emitter<FacadeEvents>();
  private readonly rest: SessionFiles;
  private previewScript: { src: string; options: PreviewScriptOptions } | undefined;
  private down = false;

  private constructor(
    readonly client: MominaiClient,
    readonly connection: SessionConnection,
    readonly sessionId: string,
    private readonly owned: boolean,
    private readonly shownWorkdir: string,
  ) {
    this.rest = client.files(sessionId);
    this.fs = new WebContainerFs(connection, this.rest, shownWorkdir);
    this.internal = { watchPaths: (options, callback) => watchPaths(connection, this.fs, options, callback, shownWorkdir) };
    this.tornDown = new Promise((resolve) => (this.resolveTornDown = resolve));
  }

  /**
   * Creates a session (or attaches to `sessionId`, starting it if stopped),
   * connects to it and resolves once it runs.
   */
  static async boot(options: BootOptions): Promise<WebContainer> {
    const shown = shownWorkdir(options.workdirName);
    const client = new MominaiClient({
      baseUrl: options.apiUrl,
      token: options.token,
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.WebSocket ? { WebSocket: options.WebSocket } : {}),
    });
    const timeoutMs = options.timeoutMs ?? 120_000;
    let session = options.sessionId ? await client.sessions.get(options.sessionId) : await client.sessions.create(options.image ? { image: options.image } : {});
    if (options.sessionId && session.status === 'stopped') session = await client.sessions.start(session.id);
    const conn = await client.connect(session.id);
    if (conn.session?.status !== 'running') {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          off();
          reject(new MominaiError('timeout', `the session did not reach running within ${timeoutMs} ms`));
        }, timeoutMs);
        const off = conn.on('status', (s) => {
          if (s.status === 'running') {
            clearTimeout(timer);
            off();
            resolve();
          } else if (s.status === 'error' || s.status === 'destroyed') {
            clearTimeout(timer);
            off();
            reject(new MominaiError('internal_error', `the session is ${s.status}${s.reason ? `: ${s.reason}` : ''}`));
          }
        });
      }).catch((err: unknown) => {
        conn.close();
        throw err;
      });
    }
    if (options.forwardPreviewErrors !== undefined) {
      await conn.setPreviewScript({ forwardErrors: options.forwardPreviewErrors }).catch((err: unknown) => {
        conn.close();
        throw err;
      });
    }
    return new WebContainer(client, conn, session.id, !options.sessionId, shown);
  }

  /**
   * The working folder as this facade shows it: `/home/<workdirName>` when
   * boot named one (as in WebContainers), else `/workspace`. Either way the
   * files are in the container's /workspace; paths under the shown workdir
   * are mapped there (fs, spawn's cwd, mount, export, watchPaths' events).
   */
  get workdir(): string {
    return this.shownWorkdir;
  }

  /** The PATH processes get, with the workdir's node_modules/.bin first (as WebContainers'). */
  get path(): string {
    return `${WORKDIR}/node_modules/.bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
  }

  spawn(command: string, args: string[], options?: SpawnOptions): Promise<WebContainerProcess>;
  spawn(command: string, options?: SpawnOptions): Promise<WebContainerProcess>;
  async spawn(command: string, a?: string[] | SpawnOptions, b?: SpawnOptions): Promise<WebContainerProcess & { processId: string }> {
    const args = Array.isArray(a) ? a : [];
    const options = (Array.isArray(a) ? b : a) ?? {};
    const p = await spawnProcess(this.connection, command, args, options, this.shownWorkdir);
    return { processId: p.processId, output: p.output, input: p.input, exit: p.exit, kill: p.kill, resize: p.resize };
  }

  /** Writes a FileSystemTree (one tar upload) or unpacks a tar (`Uint8Array`/`ArrayBuffer`, gzip allowed). */
  async mount(snapshotOrTree: FileSystemTree | Uint8Array | ArrayBuffer, options: LoadFilesOptions = {}): Promise<void> {
    const tar =
      snapshotOrTree instanceof Uint8Array ? snapshotOrTree : snapshotOrTree instanceof ArrayBuffer ? new Uint8Array(snapshotOrTree) : encodeTar(fromTree(snapshotOrTree));
    await this.rest.tarUpload(relativePath(options.mountPoint ?? '', this.shownWorkdir), tar);
  }

  export(path: string): Promise<FileSystemTree>;
  export(path: string, options: ExportOptions & { format?: 'json' }): Promise<FileSystemTree>;
  export(path: string, options: ExportOptions): Promise<Uint8Array>;
  /** `json` → FileSystemTree; `zip` → a zip; `binary` → a tar (which `mount` takes back). */
  export(path: string, options: ExportOptions = {}): Promise<FileSystemTree | Uint8Array> {
    return exportTree(this.rest, path, options, this.shownWorkdir);
  }

  on(event: 'port', listener: PortListener): Unsubscribe;
  on(event: 'server-ready', listener: ServerReadyListener): Unsubscribe;
  on(event: 'preview-message', listener: PreviewMessageListener): Unsubscribe;
  on(event: 'error', listener: ErrorListener): Unsubscribe;
  on(event: 'xdg-open', listener: OpenListener): Unsubscribe;
  on(event: 'code', listener: CodeListener): Unsubscribe;
  on(event: string, listener: (...args: never[]) => void): Unsubscribe {
    const l = listener as unknown as (...args: unknown[]) => void;
    switch (event) {
      case 'port':
        return this.connection.on('port', (p) => {
          const type = p.state === 'open' ? 'open' : 'close';
          if (type === 'close') return l(p.port, type, p.url);
          void this.openableUrl(p.port, p.url).then((url) => l(p.port, type, url));
        });
      case 'server-ready':
        return this.connection.on('server-ready', (p) => void this.openableUrl(p.port, p.url).then((url) => l(p.port, url)));
      case 'error':
        return this.connection.on('error', (e) => l({ message: e.message }));
      case 'preview-message':
        return this.connection.on('preview-message', (m) => l(toPreviewMessage(m)));
      case 'xdg-open':
      case 'code':
        return this.events.on(event, l as never);
      default:
        return () => {};
    }
  }

  /**
   * The script the edge injects, first in `<head>`, into every HTML
   * response of this session's previews (pages loaded after this resolves;
   * reload the open ones with `reloadPreview`). `scriptSrc` is the script's
   * source text; `type`, `defer` and `async` become its attributes. Kept by
   * the session (the last writer wins, so another tab of the same session
   * replaces it); an empty string removes it.
   */
  async setPreviewScript(scriptSrc: string, options: PreviewScriptOptions = {}): Promise<void> {
    const script = scriptSrc === '' ? null : { source: scriptSrc, ...options };
    await this.connection.setPreviewScript({ script });
    this.previewScript = script ? { src: scriptSrc, options } : undefined;
  }

  /** The script set with setPreviewScript, if any. */
  get previewScriptSource(): string | undefined {
    return this.previewScript?.src;
  }

  /** Closes the connection and deletes the session (unless boot attached to an existing one). */
  teardown(): void {
    if (this.down) return;
    this.down = true;
    this.connection.close();
    const done = this.owned ? this.client.sessions.delete(this.sessionId).catch(() => undefined) : Promise.resolve();
    void done.then(() => this.resolveTornDown());
  }

  /** A signed preview link that sets the preview cookie and lands on the clean URL (the `url` of the edge's event is private). */
  private async openableUrl(port: number, fallback: string): Promise<string> {
    try {
      return (await this.client.previewUrl(this.sessionId, port)).url;
    } catch {
      // No link could be made: the clean URL still opens a public port.
      return fallback;
    }
  }

}

/** Whether `data` is a PreviewMessage: an object whose `type` is one of PreviewMessageType (WebContainers' test). */
export function isPreviewMessage(data: unknown): data is PreviewMessage {
  if (typeof data !== 'object' || data === null || !('type' in data)) return false;
  return (Object.values(PreviewMessageType) as unknown[]).includes(data.type);
}

/** A validated `preview_message` payload with WebContainers' enum type. */
function toPreviewMessage(m: PreviewMessagePayload): PreviewMessage {
  const base = { previewId: m.previewId, port: m.port, pathname: m.pathname, search: m.search, hash: m.hash };
  if (m.type === 'PREVIEW_CONSOLE_ERROR') return { ...base, type: PreviewMessageType.ConsoleError, args: m.args, stack: m.stack };
  const type = m.type === 'PREVIEW_UNCAUGHT_EXCEPTION' ? PreviewMessageType.UncaughtException : PreviewMessageType.UnhandledRejection;
  return { ...base, type, message: m.message, stack: m.stack };
}

/** `/home/<workdirName>` (WebContainers' workdir), or /workspace without a name; a name that is not one folder name is refused. */
function shownWorkdir(name: string | undefined): string {
  if (name === undefined) return WORKDIR;
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(name) || name === '.' || name === '..') {
    throw new MominaiError('validation_failed', `workdirName must be one folder name (letters, digits, '.', '_', '-'; at most 64), not ${JSON.stringify(name)}`);
  }
  return `/home/${name}`;
}

/** Reloads a preview iframe (WebContainers' helper). */
export function reloadPreview(preview: { src: string }, _hardRefreshTimeout?: number): Promise<void> {
  const src = preview.src;
  preview.src = src;
  return Promise.resolve();
}

/** WebContainers' API key: not used here (sessions are authorised by the user token given to boot). */
export function configureAPIKey(_key: string): void {}

/**
 * WebContainers' StackBlitz sign-in. Here the user signs in to MominAI
 * (MominaiClient.login) and boot takes the token, so this reports
 * `authorized` and does nothing else.
 */
export const auth = {
  init: (_options: { editorOrigin?: string; clientId: string; scope: string }) => ({ status: 'authorized' as const }),
  startAuthFlow: (_options?: { popup?: boolean }) => {},
  loggedIn: () => Promise.resolve(),
  logout: (_options?: { ignoreRevokeError?: boolean }) => Promise.resolve(),
  on: (_event: 'logged-out' | 'auth-failed', _listener: (...args: never[]) => void): Unsubscribe => () => {},
};
