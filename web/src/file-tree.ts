/**
 * The file tree: folders are listed when opened, and the session's watch
 * (file_changed, commands in the container included) patches what is shown,
 * so a file made in the terminal appears without a refresh. Items carry
 * `data-path` (relative to the workspace) and `data-type`. A small form in
 * the toolbar creates, renames and deletes; dropping files or folders onto
 * the tree (or onto a folder in it) uploads them as one tar.
 */
import type { FileChange, FileEntry, FileType } from '@mominai/client';
import { h, messageOf, replace } from './dom';
import { baseName, joinPath, parentOf, relPath } from './paths';

export interface TreeBackend {
  list(rel: string): Promise<FileEntry[]>;
  open(rel: string): void;
  create(rel: string, type: 'file' | 'directory'): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  remove(rel: string, type: FileType): Promise<void>;
  drop(folder: string, dt: DataTransfer): Promise<void>;
}

type Pending = { kind: 'file' | 'directory' | 'rename'; from?: string };

export class FileTree {
  readonly el: HTMLElement;
  private readonly list: HTMLElement;
  private readonly form: HTMLFormElement;
  private readonly input: HTMLInputElement;
  private readonly message: HTMLElement;
  readonly progress: HTMLProgressElement;
  /** Listed folders: folder → (name → type). */
  private readonly dirs = new Map<string, Map<string, FileType>>();
  private readonly expanded = new Set<string>(['']);
  private selected: { path: string; type: FileType } | undefined;
  private pending: Pending | undefined;
  private renderQueued = false;

  constructor(private readonly backend: TreeBackend) {
    const button = (label: string, testid: string, title: string, onclick: () => void) =>
      h('button', { type: 'button', class: 'small', title, 'data-testid': testid, onclick }, label);
    this.input = h('input', { type: 'text', 'data-testid': 'tree-input', spellcheck: 'false', 'aria-label': 'path' });
    this.form = h('form', { class: 'tree-form', hidden: true, onsubmit: (ev) => (ev.preventDefault(), void this.commit()) }, this.input);
    this.input.addEventListener('keydown', (ev) => ev.key === 'Escape' && this.cancel());
    this.message = h('p', { class: 'tree-message', role: 'status', 'data-testid': 'tree-message' });
    this.progress = h('progress', { max: 1, value: 0, hidden: true, 'data-testid': 'upload-progress' });
    this.list = h('ul', { role: 'tree', class: 'tree' });
    this.el = h(
      'section',
      { class: 'panel files', 'data-testid': 'file-tree' },
      h(
        'header',
        {},
        h('span', { class: 'title' }, 'Files'),
        button('+ File', 'tree-new-file', 'New file', () => this.ask({ kind: 'file' })),
        button('+ Folder', 'tree-new-folder', 'New folder', () => this.ask({ kind: 'directory' })),
        button('Rename', 'tree-rename', 'Rename the selected item', () => this.selected && this.ask({ kind: 'rename', from: this.selected.path })),
        button('Delete', 'tree-delete', 'Delete the selected item', () => void this.removeSelected()),
      ),
      this.form,
      this.progress,
      this.message,
      this.list,
      h('p', { class: 'muted hint' }, 'Drop files or folders here to upload them.'),
    );
    this.el.addEventListener('dragover', (ev) => {
      ev.preventDefault();
      this.el.classList.add('dropping');
    });
    this.el.addEventListener('dragleave', () => this.el.classList.remove('dropping'));
    this.el.addEventListener('drop', (ev) => {
      ev.preventDefault();
      this.el.classList.remove('dropping');
      if (!ev.dataTransfer) return;
      const row = (ev.target as Element).closest<HTMLElement>('[data-path]');
      const folder = row ? (row.dataset.type === 'directory' ? row.dataset.path! : parentOf(row.dataset.path!)) : '';
      void this.backend.drop(folder, ev.dataTransfer).catch((err) => this.say(messageOf(err)));
    });
  }

  /** Lists the workspace again, keeping open folders open. */
  async reload(): Promise<void> {
    this.dirs.clear();
    for (const dir of [...this.expanded].sort()) await this.load(dir);
  }

  /** A change the session's watch reported. */
  apply(change: FileChange): void {
    this.patch(change.event, relPath(change.path));
  }

  /** Shows a change at once (what this page did itself; the watch reports it again, which changes nothing). */
  private patch(event: FileChange['event'], rel: string): void {
    if (!rel) return;
    const change = { event };
    const parent = this.dirs.get(parentOf(rel));
    if (change.event === 'add_file' || change.event === 'add_dir') {
      parent?.set(baseName(rel), change.event === 'add_dir' ? 'directory' : 'file');
    } else if (change.event === 'remove_file' || change.event === 'remove_dir') {
      parent?.delete(baseName(rel));
      for (const d of [...this.dirs.keys()]) if (d === rel || d.startsWith(`${rel}/`)) this.dirs.delete(d);
      if (this.selected?.path === rel) this.selected = undefined;
    } else return;
    this.queueRender();
  }

  say(text: string): void {
    this.message.textContent = text;
  }

  private async load(dir: string): Promise<void> {
    try {
      const entries = await this.backend.list(dir);
      this.dirs.set(dir, new Map(entries.map((e) => [e.name, e.type])));
    } catch (err) {
      this.expanded.delete(dir);
      if (dir === '') this.say(messageOf(err));
    }
    this.queueRender();
  }

  private queueRender(): void {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      replace(this.list, ...this.items(''));
    });
  }

  private items(dir: string): HTMLElement[] {
    const entries = [...(this.dirs.get(dir) ?? new Map<string, FileType>())].sort(([an, at], [bn, bt]) =>
      at === bt || (at !== 'directory' && bt !== 'directory') ? an.localeCompare(bn) : at === 'directory' ? -1 : 1,
    );
    return entries.map(([name, type]) => {
      const path = joinPath(dir, name);
      const open = type === 'directory' && this.expanded.has(path);
      const row = h(
        'div',
        { class: `row${this.selected?.path === path ? ' selected' : ''}`, style: `padding-left: ${0.5 + 0.9 * (path.split('/').length - 1)}rem` },
        h('span', { class: 'icon', 'aria-hidden': 'true' }, type === 'directory' ? (open ? '▾' : '▸') : type === 'symlink' ? '↪' : '·'),
        name,
      );
      row.addEventListener('click', () => this.click(path, type));
      const item = h('li', { role: 'treeitem', 'data-path': path, 'data-type': type, ...(type === 'directory' ? { 'aria-expanded': String(open) } : {}) }, row);
      if (open) item.appendChild(h('ul', { role: 'group' }, ...this.items(path)));
      return item;
    });
  }

  private click(path: string, type: FileType): void {
    this.selected = { path, type };
    if (type === 'directory') {
      if (this.expanded.has(path)) this.expanded.delete(path);
      else {
        this.expanded.add(path);
        if (!this.dirs.has(path)) void this.load(path);
      }
    } else this.backend.open(path);
    this.queueRender();
  }

  private ask(p: Pending): void {
    this.pending = p;
    this.form.hidden = false;
    const base = this.selected ? (this.selected.type === 'directory' ? this.selected.path : parentOf(this.selected.path)) : '';
    this.input.value = p.kind === 'rename' ? p.from! : base ? `${base}/` : '';
    this.input.placeholder = p.kind === 'file' ? 'new file path, e.g. src/app.js' : p.kind === 'directory' ? 'new folder path' : 'new path';
    this.input.focus();
  }

  private cancel(): void {
    this.pending = undefined;
    this.form.hidden = true;
  }

  private async commit(): Promise<void> {
    const p = this.pending;
    const target = this.input.value.trim().replace(/^\/+|\/+$/g, '');
    if (!p || !target) return this.cancel();
    this.cancel();
    try {
      if (p.kind === 'rename') {
        await this.backend.rename(p.from!, target);
        const type = this.dirs.get(parentOf(p.from!))?.get(baseName(p.from!));
        this.patch(type === 'directory' ? 'remove_dir' : 'remove_file', p.from!);
        this.patch(type === 'directory' ? 'add_dir' : 'add_file', target);
      } else {
        await this.backend.create(target, p.kind);
        this.patch(p.kind === 'file' ? 'add_file' : 'add_dir', target);
        this.expandTo(parentOf(target));
        if (p.kind === 'file') this.backend.open(target);
      }
      this.say('');
    } catch (err) {
      this.say(messageOf(err));
    }
  }

  private expandTo(dir: string): void {
    let at = '';
    for (const part of dir.split('/').filter(Boolean)) {
      at = joinPath(at, part);
      if (!this.expanded.has(at)) {
        this.expanded.add(at);
        void this.load(at);
      }
    }
  }

  private async removeSelected(): Promise<void> {
    const sel = this.selected;
    if (!sel || !confirm(`Delete ${sel.path}${sel.type === 'directory' ? ' and everything in it' : ''}?`)) return;
    try {
      await this.backend.remove(sel.path, sel.type);
      this.patch(sel.type === 'directory' ? 'remove_dir' : 'remove_file', sel.path);
      this.say('');
    } catch (err) {
      this.say(messageOf(err));
    }
  }
}
