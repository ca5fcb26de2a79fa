/**
 * The MominAI IDE page: sign in, then sessions, files, editor, terminal and
 * preview, all through @mominai/client against the edge that serves this page
 * (same origin). `window.mominaiIde` exposes the client and the terminal's
 * text for the devtools console and the browser tests.
 */
import { MominaiClient, type PublicUser, type SessionView } from '@mominai/client';
import { authView, TOKEN_KEY } from './auth-view';
import { h, replace } from './dom';
import { SessionsPanel } from './sessions-view';
import { Workspace } from './workspace';

declare global {
  interface Window {
    mominaiIde?: { client: MominaiClient; terminalText(): string };
  }
}

const root = document.getElementById('app')!;
const client = new MominaiClient({ baseUrl: location.origin, token: sessionStorage.getItem(TOKEN_KEY) ?? undefined });
let workspace: Workspace | undefined;

window.mominaiIde = { client, terminalText: () => workspace?.terminalText() ?? '' };

function showAuth(): void {
  closeWorkspace();
  replace(root, authView(client, showIde));
}

function signOut(): void {
  sessionStorage.removeItem(TOKEN_KEY);
  client.setToken(undefined);
  showAuth();
}

function closeWorkspace(): void {
  workspace?.dispose();
  workspace = undefined;
}

function showIde(user: PublicUser): void {
  const main = h('main', { class: 'main' });
  const placeholder = () => replace(main, h('div', { class: 'placeholder muted' }, 'Create a session, or pick one on the left.'));
  const sessions = new SessionsPanel(client, openSession);

  function openSession(session: SessionView): void {
    closeWorkspace();
    sessions.setActive(session.id);
    const ws = new Workspace(client, session, {
      changed: (s) => {
        sessions.update(s);
        if (s.status === 'destroyed' && workspace === ws) {
          closeWorkspace();
          sessions.setActive(undefined);
          placeholder();
        }
      },
    });
    workspace = ws;
    replace(main, ws.el);
    void ws.init();
  }

  replace(
    root,
    h(
      'div',
      { class: 'ide' },
      h(
        'header',
        { class: 'topbar' },
        h('span', { class: 'brand' }, 'MominAI'),
        h('span', { class: 'spacer' }),
        h('span', { class: 'muted', 'data-testid': 'user-name' }, user.username),
        h('button', { type: 'button', class: 'small', 'data-testid': 'sign-out', onclick: signOut }, 'Sign out'),
      ),
      sessions.el,
      main,
    ),
  );
  placeholder();
  void sessions.refresh();
}

async function boot(): Promise<void> {
  if (client.token) {
    try {
      showIde(await client.me());
    } catch {
      signOut();
    }
  } else showAuth();
  document.documentElement.dataset.ready = String(Math.round(performance.now()));
}

void boot();
