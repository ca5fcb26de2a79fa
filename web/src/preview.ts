/**
 * The preview panel: the session's dev server in an iframe on its own origin
 * (`<port>-<sessionId>.PREVIEW_DOMAIN`, another site than the page). Private
 * ports are opened with a short-lived signed link that sets the preview
 * cookie and lands on the clean URL, which is what the panel shows. It opens
 * by itself on `server-ready`, or on a port picked by hand; reload and "new
 * tab" ask for a fresh link, so they work after the link's lifetime too.
 */
import { h, messageOf } from './dom';

export interface PreviewBackend {
  /** A link that opens the port's preview in a browser (signed for private ports). */
  link(port: number): Promise<string>;
  setPublic(port: number, on: boolean): Promise<void>;
}

/** `http://3000-ses_x.preview.localhost:3001/__mominai/auth?ticket=…` → `http://3000-ses_x.preview.localhost:3001/` */
export function cleanUrl(link: string): string {
  const u = new URL(link);
  return `${u.origin}/`;
}

export class PreviewPanel {
  readonly el: HTMLElement;
  private readonly frame: HTMLIFrameElement;
  private readonly url: HTMLAnchorElement;
  private readonly portInput: HTMLInputElement;
  private readonly ports: HTMLDataListElement;
  private readonly publicBox: HTMLInputElement;
  private readonly note: HTMLElement;
  private port: number | undefined;
  private readonly known = new Set<number>();

  constructor(private readonly backend: PreviewBackend) {
    this.frame = h('iframe', {
      class: 'preview-frame',
      title: 'Preview',
      'data-testid': 'preview-frame',
      referrerpolicy: 'no-referrer',
      // Another origin already; the sandbox also keeps it from navigating the IDE tab.
      sandbox: 'allow-scripts allow-same-origin allow-forms allow-popups allow-modals allow-downloads',
    });
    this.url = h('a', { class: 'preview-url', target: '_blank', rel: 'noopener noreferrer', 'data-testid': 'preview-url' });
    this.url.addEventListener('click', (ev) => (ev.preventDefault(), void this.openTab()));
    this.ports = h('datalist', { id: 'preview-ports' });
    this.portInput = h('input', { type: 'number', min: 1, max: 65535, placeholder: 'port', list: 'preview-ports', 'aria-label': 'port', 'data-testid': 'preview-port' });
    this.publicBox = h('input', { type: 'checkbox', 'data-testid': 'preview-public', onchange: () => void this.togglePublic() });
    this.note = h('span', { class: 'muted', role: 'status', 'data-testid': 'preview-note' });
    const button = (label: string, testid: string, title: string, onclick: () => void) =>
      h('button', { type: 'button', class: 'small', title, 'data-testid': testid, onclick }, label);
    this.el = h(
      'section',
      { class: 'panel preview' },
      h(
        'header',
        {},
        h('span', { class: 'title' }, 'Preview'),
        h(
          'form',
          { class: 'inline', onsubmit: (ev) => (ev.preventDefault(), void this.show(Number(this.portInput.value))) },
          this.portInput,
          this.ports,
          h('button', { type: 'submit', class: 'small', 'data-testid': 'preview-open' }, 'Open'),
        ),
        button('↻', 'preview-reload', 'Reload', () => void this.reload()),
        button('New tab', 'preview-newtab', 'Open in a new tab', () => void this.openTab()),
        h('label', { class: 'check', title: 'Anyone with the link can open a public port' }, this.publicBox, 'public'),
        button('Copy link', 'preview-copy', 'Copy a link to this preview', () => void this.copy()),
      ),
      h('div', { class: 'preview-bar' }, this.url, this.note),
      this.frame,
    );
  }

  /** A port the container listens on (`port` events); `server-ready` opens the first one. */
  portState(port: number, open: boolean): void {
    if (open) this.known.add(port);
    else this.known.delete(port);
    this.ports.replaceChildren(...[...this.known].sort((a, b) => a - b).map((p) => h('option', { value: String(p) })));
  }

  serverReady(port: number): void {
    this.portState(port, true);
    if (this.port === undefined || this.port === port) void this.show(port);
  }

  async show(port: number): Promise<void> {
    if (!Number.isInteger(port) || port < 1 || port > 65535) return void (this.note.textContent = 'pick a port from 1 to 65535');
    try {
      const link = await this.backend.link(port);
      if (this.port !== port) this.publicBox.checked = false;
      this.port = port;
      this.portInput.value = String(port);
      this.url.textContent = cleanUrl(link);
      this.url.href = cleanUrl(link);
      this.note.textContent = '';
      this.frame.src = link;
    } catch (err) {
      this.note.textContent = messageOf(err);
    }
  }

  async reload(): Promise<void> {
    if (this.port !== undefined) await this.show(this.port);
  }

  private async openTab(): Promise<void> {
    if (this.port === undefined) return;
    // Opened before the link is known, so the browser counts it as the click's own window.
    const win = window.open('about:blank', '_blank');
    try {
      const link = await this.backend.link(this.port);
      if (win) {
        win.opener = null;
        win.location.href = link;
      }
    } catch (err) {
      win?.close();
      this.note.textContent = messageOf(err);
    }
  }

  private async togglePublic(): Promise<void> {
    if (this.port === undefined) return void (this.publicBox.checked = false);
    const on = this.publicBox.checked;
    try {
      await this.backend.setPublic(this.port, on);
      this.note.textContent = on ? 'public: anyone with the link can open it' : 'private: only you';
    } catch (err) {
      this.publicBox.checked = !on;
      this.note.textContent = messageOf(err);
    }
  }

  private async copy(): Promise<void> {
    if (this.port === undefined) return;
    try {
      const text = this.publicBox.checked ? cleanUrl(await this.backend.link(this.port)) : await this.backend.link(this.port);
      await navigator.clipboard.writeText(text);
      this.note.textContent = this.publicBox.checked ? 'link copied' : 'signed link copied (valid for a few minutes; make the port public for a lasting one)';
    } catch (err) {
      this.note.textContent = `cannot copy: ${messageOf(err)}`;
    }
  }
}
