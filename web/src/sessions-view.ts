/**
 * The user's sessions: a form that creates one (image, ports) and the list,
 * whose statuses follow what the open session's connection reports.
 */
import type { MominaiClient, SessionView } from '@mominai/client';
import { h, messageOf, replace } from './dom';

export class SessionsPanel {
  readonly el: HTMLElement;
  private readonly list: HTMLElement;
  private readonly error: HTMLElement;
  private readonly sessions = new Map<string, SessionView>();
  private active: string | undefined;

  constructor(
    private readonly client: MominaiClient,
    private readonly open: (session: SessionView) => void,
  ) {
    const image = h('input', { type: 'text', placeholder: 'default image', 'aria-label': 'image', 'data-testid': 'session-image' });
    const ports = h('input', { type: 'text', placeholder: 'ports, e.g. 3000, 5173', 'aria-label': 'ports', 'data-testid': 'session-ports' });
    const create = h('button', { type: 'submit', class: 'primary', 'data-testid': 'new-session' }, 'New session');
    this.error = h('p', { class: 'error', role: 'alert', 'data-testid': 'sessions-error' });
    this.list = h('ul', { class: 'sessions', 'data-testid': 'session-list' });
    const form = h(
      'form',
      {
        class: 'new-session',
        onsubmit: (ev) => {
          ev.preventDefault();
          void this.create(image.value.trim(), ports.value, create);
        },
      },
      image,
      ports,
      create,
    );
    this.el = h('aside', { class: 'sidebar' }, h('h2', {}, 'Sessions'), form, this.error, this.list);
  }

  async refresh(): Promise<SessionView[]> {
    try {
      const all = await this.client.sessions.list();
      this.sessions.clear();
      for (const s of all) if (s.status !== 'destroyed') this.sessions.set(s.id, s);
      this.render();
      return [...this.sessions.values()];
    } catch (err) {
      this.error.textContent = messageOf(err);
      return [];
    }
  }

  update(session: SessionView): void {
    if (session.status === 'destroyed') this.sessions.delete(session.id);
    else this.sessions.set(session.id, session);
    this.render();
  }

  setActive(id: string | undefined): void {
    this.active = id;
    this.render();
  }

  private async create(image: string, portsText: string, button: HTMLButtonElement): Promise<void> {
    this.error.textContent = '';
    const ports = portsText
      .split(/[\s,]+/)
      .filter(Boolean)
      .map(Number);
    if (ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) return void (this.error.textContent = 'ports are numbers from 1 to 65535');
    button.disabled = true;
    try {
      const session = await this.client.sessions.create({ ...(image ? { image } : {}), ports });
      this.update(session);
      this.open(session);
    } catch (err) {
      this.error.textContent = messageOf(err);
    } finally {
      button.disabled = false;
    }
  }

  private render(): void {
    const rows = [...this.sessions.values()]
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt))
      .map((s) =>
        h(
          'li',
          { 'data-session-id': s.id, class: s.id === this.active ? 'active' : undefined },
          h(
            'button',
            { type: 'button', class: 'session-row', onclick: () => this.open(s) },
            h('span', { class: 'name' }, s.name || s.id),
            h('span', { class: 'status', 'data-status': s.status }, s.status),
          ),
        ),
      );
    replace(this.list, ...(rows.length ? rows : [h('li', { class: 'muted' }, 'No sessions yet.')]));
  }
}
