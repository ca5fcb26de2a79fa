/**
 * The editor panel: CodeMirror 6 with a small set of extensions (no
 * autocompletion or bracket closing: fewer bytes, and typed text lands as
 * typed). Ctrl-S / Cmd-S and the Save button write the file back.
 */
import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands';
import { javascript } from '@codemirror/lang-javascript';
import { bracketMatching, defaultHighlightStyle, syntaxHighlighting } from '@codemirror/language';
import { EditorState, type Extension } from '@codemirror/state';
import { drawSelection, EditorView, highlightActiveLine, highlightActiveLineGutter, keymap, lineNumbers } from '@codemirror/view';
import { h, messageOf } from './dom';

function languageFor(path: string): Extension {
  const m = /\.([cm]?[jt]sx?|json)$/.exec(path);
  if (!m) return [];
  const ext = m[1]!;
  return javascript({ jsx: ext.endsWith('x'), typescript: ext.includes('t') });
}

export class EditorPanel {
  readonly el: HTMLElement;
  private readonly view: EditorView;
  private readonly title: HTMLElement;
  private readonly status: HTMLElement;
  private readonly saveButton: HTMLButtonElement;
  private pathNow: string | undefined;
  private saved = '';

  /** `save(path, text)` writes the file; the panel shows the outcome. */
  constructor(private readonly save: (path: string, text: string) => Promise<void>) {
    this.title = h('span', { class: 'title', 'data-testid': 'editor-path' }, 'No file open');
    this.status = h('span', { class: 'muted', 'data-testid': 'editor-status' });
    this.saveButton = h('button', { type: 'button', class: 'small', disabled: true, 'data-testid': 'save', onclick: () => void this.saveNow() }, 'Save');
    const host = h('div', { class: 'editor-host', 'data-testid': 'editor' });
    this.el = h('section', { class: 'panel editor' }, h('header', {}, this.title, this.status, this.saveButton), host);
    this.view = new EditorView({ parent: host, state: this.stateFor('', '') });
  }

  get path(): string | undefined {
    return this.pathNow;
  }

  get dirty(): boolean {
    return this.pathNow !== undefined && this.view.state.doc.toString() !== this.saved;
  }

  /** Shows a file (its text as saved on disk). */
  open(path: string, text: string): void {
    this.pathNow = path;
    this.saved = text;
    this.view.setState(this.stateFor(path, text));
    this.title.textContent = path;
    this.status.textContent = '';
    this.saveButton.disabled = false;
    this.view.focus();
  }

  /** A file that cannot be edited here (binary, too large): shown as a note. */
  showNote(path: string, note: string): void {
    this.close();
    this.title.textContent = path;
    this.status.textContent = note;
  }

  /** The file changed on disk: take the new text unless there are unsaved edits. */
  changedOnDisk(text: string): void {
    if (this.dirty) {
      this.status.textContent = 'changed on disk; saving overwrites it';
      return;
    }
    if (text === this.view.state.doc.toString()) return;
    this.saved = text;
    this.view.dispatch({ changes: { from: 0, to: this.view.state.doc.length, insert: text } });
    this.markClean();
  }

  /** The open file was renamed or deleted elsewhere. */
  moved(to: string | undefined): void {
    if (to === undefined) return this.showNote(this.pathNow ?? '', 'deleted');
    this.pathNow = to;
    this.title.textContent = to;
  }

  close(): void {
    this.pathNow = undefined;
    this.saved = '';
    this.view.setState(this.stateFor('', ''));
    this.title.textContent = 'No file open';
    this.status.textContent = '';
    this.saveButton.disabled = true;
  }

  dispose(): void {
    this.view.destroy();
  }

  private async saveNow(): Promise<boolean> {
    const path = this.pathNow;
    if (path === undefined) return true;
    const text = this.view.state.doc.toString();
    this.status.textContent = 'saving…';
    try {
      await this.save(path, text);
      if (this.pathNow === path) {
        this.saved = text;
        this.markClean();
        this.status.textContent = 'saved';
      }
    } catch (err) {
      this.status.textContent = `not saved: ${messageOf(err)}`;
    }
    return true;
  }

  private markClean(): void {
    this.title.textContent = this.pathNow ?? 'No file open';
  }

  private stateFor(path: string, text: string): EditorState {
    return EditorState.create({
      doc: text,
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        highlightActiveLine(),
        drawSelection(),
        history(),
        bracketMatching(),
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        keymap.of([{ key: 'Mod-s', preventDefault: true, run: () => (void this.saveNow(), true) }, indentWithTab, ...defaultKeymap, ...historyKeymap]),
        EditorView.updateListener.of((u) => {
          if (u.docChanged && this.pathNow !== undefined) this.title.textContent = `${this.pathNow}${this.dirty ? ' •' : ''}`;
        }),
        EditorState.readOnly.of(path === ''),
        languageFor(path),
        EditorView.theme({ '&': { height: '100%' }, '.cm-scroller': { overflow: 'auto' } }),
      ],
    });
  }
}
