/**
 * The terminal panel: xterm.js (its DOM renderer, so the text is in the page)
 * on an `open_terminal` process. Output is read from the SDK's process stream
 * and the next chunk is taken only once xterm has parsed the last one, so the
 * SDK acknowledges bytes as the terminal shows them and a flood of output
 * holds the process back instead of piling up in the tab. The SDK resumes
 * the stream by offset after a network drop: nothing is lost or repeated.
 * The panel's size follows its box (ResizeObserver + fit addon) and is sent
 * to the PTY.
 */
import type { ProcessHandle, SessionConnection } from '@mominai/client';
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import { h, messageOf } from './dom';

export class TerminalPanel {
  readonly el: HTMLElement;
  private readonly host: HTMLElement;
  private readonly term: Terminal;
  private readonly fit = new FitAddon();
  private readonly resizeObserver: ResizeObserver;
  private proc: ProcessHandle | undefined;
  private conn: SessionConnection | undefined;
  private readonly restartButton: HTMLButtonElement;
  private disposed = false;
  private typed = '';
  private writing = false;

  constructor() {
    this.host = h('div', { class: 'terminal-host', 'data-testid': 'terminal' });
    this.restartButton = h('button', { type: 'button', class: 'small', title: 'Open a new shell', 'data-testid': 'terminal-restart', onclick: () => void this.restart() }, 'New shell');
    this.el = h('section', { class: 'panel terminal' }, h('header', {}, h('span', { class: 'title' }, 'Terminal'), this.restartButton), this.host);
    this.term = new Terminal({
      fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace',
      fontSize: 13,
      cursorBlink: true,
      scrollback: 5000,
      theme: { background: '#11151c', foreground: '#d8dee9' },
    });
    this.term.loadAddon(this.fit);
    this.term.onData((data) => this.input(data));
    this.term.onResize(({ cols, rows }) => void this.proc?.resize(cols, rows).catch(() => undefined));
    this.resizeObserver = new ResizeObserver(() => this.refit());
  }

  /** Call once the panel is in the document (xterm measures its font there). */
  mount(): void {
    this.term.open(this.host);
    this.resizeObserver.observe(this.host);
    this.refit();
  }

  /**
   * Opens a shell on this connection (the image's bash, else sh). With
   * `reattachTo` (the shell this tab had before a reload) it follows that one
   * from its first byte instead, when the session still runs it.
   */
  async start(conn: SessionConnection, reattachTo?: string): Promise<void> {
    this.conn = conn;
    this.refit();
    const proc = (reattachTo && (await this.reattach(conn, reattachTo))) || (await conn.openTerminal({ cols: this.term.cols, rows: this.term.rows }));
    if (this.disposed) return void proc.kill().catch(() => undefined);
    this.proc = proc;
    this.onProcess?.(proc.processId);
    void this.pump(proc);
    // The panel may have been fitted while the shell was starting (a resize with no process to take it).
    this.refit();
    void proc.resize(this.term.cols, this.term.rows).catch(() => undefined);
  }

  /** Called with the id of each shell the panel shows (to find it again after a reload). */
  onProcess: ((processId: string) => void) | undefined;

  private async reattach(conn: SessionConnection, processId: string): Promise<ProcessHandle | undefined> {
    try {
      const { payload } = await conn.request('list_processes');
      const list: unknown[] = typeof payload === 'object' && payload !== null && 'processes' in payload && Array.isArray(payload.processes) ? payload.processes : [];
      const running = list.some((p) => typeof p === 'object' && p !== null && 'processId' in p && p.processId === processId && 'running' in p && p.running === true);
      if (!running) return undefined;
      return await conn.attach(processId);
    } catch {
      return undefined;
    }
  }

  /** Everything the terminal holds, scrollback included, one string per line (trailing spaces cut). */
  text(): string {
    const buf = this.term.buffer.active;
    const lines: string[] = [];
    for (let i = 0; i < buf.length; i++) {
      const line = buf.getLine(i);
      if (!line) continue;
      const s = line.translateToString();
      if (line.isWrapped && lines.length) lines[lines.length - 1] += s;
      else lines.push(s);
    }
    // Spaces a program wrote at the end of a line are cells like any other: cut them as trimRight cuts empty cells.
    return lines.map((l) => l.trimEnd()).join('\n').replace(/\n+$/, '');
  }

  get running(): boolean {
    return !!this.proc && !this.proc.hasExited;
  }

  focus(): void {
    this.term.focus();
  }

  dispose(): void {
    this.disposed = true;
    this.resizeObserver.disconnect();
    this.term.dispose();
  }

  /**
   * Keystrokes go one write at a time, each after the previous one was
   * answered, with what was typed meanwhile joined into the next: the order
   * holds however the edge schedules its messages, and fast typing costs
   * fewer messages.
   */
  private input(data: string): void {
    this.typed += data;
    if (this.writing) return;
    this.writing = true;
    void (async () => {
      while (this.typed && this.proc && !this.proc.hasExited) {
        const chunk = this.typed;
        this.typed = '';
        await this.proc.write(chunk).catch(() => undefined);
      }
      this.typed = '';
      this.writing = false;
    })();
  }

  private async restart(): Promise<void> {
    if (!this.conn) return;
    if (this.running) await this.proc!.kill().catch(() => undefined);
    this.term.write('\r\n');
    await this.start(this.conn).catch((err) => this.term.write(`\r\n\x1b[31m${messageOf(err)}\x1b[0m\r\n`));
  }

  private async pump(proc: ProcessHandle): Promise<void> {
    const reader = proc.output.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.disposed) break;
        await new Promise<void>((resolve) => this.term.write(value, resolve));
      }
    } catch (err) {
      if (!this.disposed) this.term.write(`\r\n\x1b[31m${messageOf(err)}\x1b[0m\r\n`);
      return;
    }
    if (this.disposed) return;
    const exit = await proc.exit;
    this.term.write(`\r\n\x1b[2m[shell ended: ${exit.reason}${exit.exitCode === null ? '' : ` ${exit.exitCode}`}; "New shell" opens another]\x1b[0m\r\n`);
  }

  private refit(): void {
    if (this.disposed || !this.host.isConnected || this.host.clientWidth === 0 || this.host.clientHeight === 0) return;
    try {
      this.fit.fit();
    } catch {
      // Not rendered yet: the next resize fits it.
    }
  }
}
