/**
 * The MominAI IDE page: sign in, then sessions, files, editor, terminal and
 * preview, all through @mominai/client against the edge that serves this page
 * (same origin). The signed-in part (./ide-view.ts, with CodeMirror and
 * xterm.js) is a separate chunk loaded after sign-in. `window.mominaiIde`
 * exposes the client and the terminal's text for the devtools console and
 * the browser tests.
 */
import { MominaiClient, type PublicUser } from '@mominai/client';
import { authView, TOKEN_KEY } from './auth-view';
import { h, replace } from './dom';
import type { IdeView } from './ide-view';

declare global {
  interface Window {
    mominaiIde?: { client: MominaiClient; terminalText(): string };
  }
}

const root = document.getElementById('app')!;
const client = new MominaiClient({ baseUrl: location.origin, token: sessionStorage.getItem(TOKEN_KEY) ?? undefined });
let ide: IdeView | undefined;

window.mominaiIde = { client, terminalText: () => ide?.terminalText() ?? '' };

function showAuth(): void {
  ide?.dispose();
  ide = undefined;
  replace(root, authView(client, (user) => void showIde(user)));
}

function signOut(): void {
  sessionStorage.removeItem(TOKEN_KEY);
  client.setToken(undefined);
  showAuth();
}

async function showIde(user: PublicUser): Promise<void> {
  replace(root, h('p', { class: 'placeholder muted' }, 'Loading the IDE…'));
  const { mountIde } = await import('./ide-view');
  ide = mountIde(root, client, user, signOut);
}

async function boot(): Promise<void> {
  if (client.token) {
    try {
      await showIde(await client.me());
    } catch {
      signOut();
    }
  } else showAuth();
  document.documentElement.dataset.ready = String(Math.round(performance.now()));
}

void boot();
