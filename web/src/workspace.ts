/**
 * One open session: its connection (the SDK's SessionConnection, which
 * reconnects and resumes by itself), and the panels that use it: file tree,
 * editor, terminal and preview. Live status comes from the connection
 * (`container_status`, `idle_warning`); start, stop and delete go through REST.
 */
import { MominaiError, type FileType, type MominaiClient, type SessionConnection, type SessionView } from '@mominai/client';
import { h, messageOf } from './dom';
import { EditorPanel } from './editor';
import { FileTree } from './file-tree';
import { absPath, baseName, parentOf, relPath } from './paths';
import { PreviewPanel } from './preview';
import { TerminalPanel } from './terminal';
import { entriesFromDrop, uploadTar } from './upload';

/** Largest file sent over the WebSocket; larger ones go through REST (the SDK's limits). */
const WS_FILE_LIMIT = 512 * 1024;

export interface WorkspaceHooks {
  /** The session changed (status, or deleted: status `destroyed`). */
  changed(session: SessionView): void;
}

export class Workspace {
  readonly el: HTMLElement;
  private conn: SessionConnection | undefined;
  private readonly tree: FileTree;
  private readonly editor: EditorPanel;
  private readonly terminal: TerminalPanel;
  private readonly preview: PreviewPanel;
  private readonly statusEl: HTMLElement;
  private readonly linkEl: HTMLElement;
  private readonly banner: HTMLElement;
  private readonly error: HTMLElement;
  private readonly buttons: Record<'start' | 'stop' | 'delete', HTMLButtonElement>;
  private readonly off: Array<() => void> = [];
  private disposed = false;
  private session: SessionView;

  constructor(
    private readonly client: MominaiClient,
    session: SessionView,
    private readonly hooks: WorkspaceHooks,
  ) {
    this.session = session;
    this.statusEl = h('span', { class: 'status', 'data-testid': 'session-status' });
    this.linkEl = h('span', { class: 'muted', 'data-testid': 'connection-state' }, 'connecting…');
    this.error = h('span', { class: 'error', role: 'alert', 'data-testid': 'workspace-error' });
    const action = (name: 'start' | 'stop' | 'delete', label: string) =>
      h('button', { type: 'button', class: 'small', 'data-testid': `session-${name}`, onclick: () => void this.act(name) }, label);
    this.buttons = { start: action('start', 'Start'), stop: action('stop', 'Stop'), delete: action('delete', 'Delete') };
    this.banner = h('div', { class: 'banner', role: 'alert', hidden: true, 'data-testid': 'idle-banner' });

    this.tree = new FileTree({
      list: async (rel) => (await this.need().files.list(absPath(rel))),
      open: (rel) => void this.openFile(rel),
      create: (rel, type) => this.create(rel, type),
      rename: (from, to) => this.rename(from, to),
      remove: (rel, type) => this.remove(rel, type),
      drop: (folder, dt) => this.upload(folder, dt),
    });
    this.editor = new EditorPanel((path, text) => this.save(path, text));
    this.terminal = new TerminalPanel();
    this.terminal.onProcess = (id) => sessionStorage.setItem(this.shellKey, id);
    this.preview = new PreviewPanel({
      link: async (port) => (await this.client.previewUrl(this.session.id, port)).url,
      setPublic: (port, on) => this.client.setPortVisibility(this.session.id, port, on ? 'public' : 'private'),
    });
    this.el = h(
      'div',
      { class: 'workspace' },
      h(
        'div',
        { class: 'session-bar' },
        h('strong', { 'data-testid': 'session-name' }, session.name || session.id),
        h('span', { class: 'muted' }, session.image),
        this.statusEl,
        this.linkEl,
        this.buttons.start,
        this.buttons.stop,
        this.buttons.delete,
        this.error,
      ),
      this.banner,
      h('div', { class: 'panels' }, this.tree.el, this.editor.el, this.terminal.el, this.preview.el),
    );
    this.showStatus(session);
  }

  /** Call once `el` is in the document. Connects, lists the files, opens a shell. */
  async init(): Promise<void> {
    this.terminal.mount();
    try {
      const conn = await this.client.connect(this.session.id);
      if (this.disposed) return conn.close();
      this.conn = conn;
      this.listen(conn);
      this.linkEl.textContent = 'connected';
      await conn.files.watch('/workspace', { recursive: true }, () => undefined);
      await this.tree.reload();
      if (this.session.status === 'running') {
        this.watchDeclaredPorts(conn);
        await this.terminal.start(conn, sessionStorage.getItem(this.shellKey) ?? undefined);
      }
    } catch (err) {
      this.error.textContent = messageOf(err);
    }
  }

  terminalText(): string {
    return this.terminal.text();
  }

  dispose(): void {
    this.disposed = true;
    for (const f of this.off) f();
    this.conn?.close();
    this.terminal.dispose();
    this.editor.dispose();
  }

  /** Where this tab keeps the id of the session's shell, so a reload follows the same one. */
  private get shellKey(): string {
    return `mominai.shell.${this.session.id}`;
  }

  private need(): SessionConnection {
    if (!this.conn) throw new Error('not connected yet');
    return this.conn;
  }

  private listen(conn: SessionConnection): void {
    this.off.push(
      conn.on('status', (s) => this.showStatus(s.session ?? { ...this.session, status: s.status }, s.reason)),
      conn.on('open', ({ session, reconnect }) => {
        this.linkEl.textContent = reconnect ? 'reconnected' : 'connected';
        this.showStatus(session);
      }),
      conn.on('close', () => (this.linkEl.textContent = 'reconnecting…')),
      conn.on('idle-warning', ({ inMs }) => this.idleWarning(inMs)),
      conn.on('port', (p) => this.preview.portState(p.port, p.state === 'open')),
      conn.on('server-ready', (p) => this.preview.serverReady(p.port)),
      conn.on('resync', () => void this.tree.reload()),
      conn.on('file-change', (c) => {
        this.tree.apply(c);
        const rel = relPath(c.path);
        if (rel !== this.editor.path) return;
        if (c.event === 'change' || c.event === 'add_file') void this.readText(rel).then((t) => t !== undefined && this.editor.changedOnDisk(t)).catch(() => undefined);
        if (c.event === 'remove_file') this.editor.moved(undefined);
      }),
    );
  }

  private showStatus(session: SessionView, reason?: string): void {
    const was = this.session.status;
    this.session = session;
    this.statusEl.textContent = session.status;
    this.statusEl.dataset.status = session.status;
    this.statusEl.title = reason ? `${session.status} (${reason})` : session.status;
    this.buttons.start.disabled = session.status === 'running' || session.status === 'creating';
    this.buttons.stop.disabled = session.status !== 'running';
    if (session.status !== 'running') this.banner.hidden = true;
    this.hooks.changed(session);
    if (session.status === 'running' && was !== 'running' && this.conn && !this.terminal.running) {
      void this.conn.request('watch', { path: '/workspace', recursive: true }).catch(() => undefined);
      void this.tree.reload();
      this.watchDeclaredPorts(this.conn);
      void this.terminal.start(this.conn).catch((err) => (this.error.textContent = messageOf(err)));
    }
  }

  /**
   * `server-ready` is pushed once, when the port opens; a page that connects
   * later (a reload) would miss it. `start_preview` answers once a declared
   * port accepts connections, whenever that is, so the preview opens either way.
   */
  private watchDeclaredPorts(conn: SessionConnection): void {
    for (const port of this.session.ports ?? []) {
      void conn.startPreview(port).then(
        () => !this.disposed && this.preview.serverReady(port),
        () => undefined,
      );
    }
  }

  private idleWarning(inMs: number): void {
    const keep = h('button', { type: 'button', class: 'small', 'data-testid': 'keep-working', onclick: () => void this.keepWorking() }, 'Keep working');
    this.banner.replaceChildren(`This session stops in about ${Math.max(1, Math.round(inMs / 1000))} s without activity. `, keep);
    this.banner.hidden = false;
  }

  private async keepWorking(): Promise<void> {
    // Any message on the session's socket counts as activity.
    await this.conn?.request('get_session').catch(() => undefined);
    this.banner.hidden = true;
  }

  private async act(name: 'start' | 'stop' | 'delete'): Promise<void> {
    this.error.textContent = '';
    const id = this.session.id;
    try {
      if (name === 'delete') {
        if (!confirm(`Delete session ${this.session.name || id} and its files?`)) return;
        await this.client.sessions.delete(id);
        this.hooks.changed({ ...this.session, status: 'destroyed' });
        return;
      }
      this.buttons[name].disabled = true;
      this.showStatus(await this.client.sessions[name](id));
    } catch (err) {
      this.error.textContent = messageOf(err);
      this.showStatus(this.session);
    }
  }

  /* ---- files ---- */

  private async readText(rel: string): Promise<string | undefined> {
    const bytes = await this.readBytes(rel);
    if (bytes.subarray(0, 8000).includes(0)) return undefined;
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      return undefined;
    }
  }

  private async readBytes(rel: string): Promise<Uint8Array> {
    try {
      return await this.need().files.read(absPath(rel));
    } catch (err) {
      // Past the WebSocket's read limit: through REST.
      if (err instanceof MominaiError && err.code === 'payload_too_large') return this.client.files(this.session.id).read(rel);
      throw err;
    }
  }

  private async openFile(rel: string): Promise<void> {
    try {
      const text = await this.readText(rel);
      if (text === undefined) this.editor.showNote(rel, 'binary file: not shown');
      else this.editor.open(rel, text);
    } catch (err) {
      this.editor.showNote(rel, messageOf(err));
    }
  }

  private async save(rel: string, text: string): Promise<void> {
    const bytes = new TextEncoder().encode(text);
    if (bytes.byteLength <= WS_FILE_LIMIT) await this.need().files.write(absPath(rel), bytes);
    else await this.client.files(this.session.id).write(rel, bytes);
  }

  private async create(rel: string, type: 'file' | 'directory'): Promise<void> {
    if (type === 'directory') return this.need().files.mkdir(absPath(rel), { recursive: true });
    // A write would empty a file that exists already: look in its folder first (a missing folder is made by the write).
    const name = baseName(rel);
    const siblings = await this.need().files.list(absPath(parentOf(rel))).catch(() => []);
    if (siblings.some((e) => e.name === name)) throw new Error(`${rel} exists already`);
    await this.need().files.write(absPath(rel), '', { parents: true });
  }

  private async rename(from: string, to: string): Promise<void> {
    await this.need().files.rename(absPath(from), absPath(to));
    if (this.editor.path === from) this.editor.moved(to);
  }

  private async remove(rel: string, type: FileType): Promise<void> {
    await this.need().files.delete(absPath(rel), { recursive: type === 'directory' });
    const open = this.editor.path;
    if (open !== undefined && (open === rel || open.startsWith(`${rel}/`))) this.editor.moved(undefined);
  }

  private async upload(folder: string, dt: DataTransfer): Promise<void> {
    const entries = await entriesFromDrop(dt);
    if (entries.length === 0) return;
    const bar = this.tree.progress;
    bar.hidden = false;
    bar.value = 0;
    this.tree.say(`uploading ${entries.length} item${entries.length === 1 ? '' : 's'}…`);
    try {
      await uploadTar({
        baseUrl: this.client.baseUrl,
        token: this.client.token ?? '',
        sessionId: this.session.id,
        folder,
        entries,
        progress: (f) => (bar.value = f),
      });
      bar.value = 1;
      this.tree.say(`uploaded ${entries.length} item${entries.length === 1 ? '' : 's'}`);
      await this.tree.reload();
    } finally {
      bar.hidden = true;
    }
  }
}
