/**
 * The signed-in page: top bar, the sessions list and the open session's
 * workspace. Loaded as its own chunk after sign-in, so the sign-in form does
 * not wait for the editor and the terminal.
 */
import type { MominaiClient, PublicUser, SessionView } from '@mominai/client';
import { h, replace } from './dom';
import { SessionsPanel } from './sessions-view';
import { Workspace } from './workspace';

/** Where this tab keeps the id of the session it has open. */
const OPEN_SESSION_KEY = 'mominai.open-session';

export interface IdeView {
  terminalText(): string;
  dispose(): void;
}

export function mountIde(root: HTMLElement, client: MominaiClient, user: PublicUser, signOut: () => void): IdeView {
  let workspace: Workspace | undefined;
  const main = h('main', { class: 'main' });
  const placeholder = () => replace(main, h('div', { class: 'placeholder muted' }, 'Create a session, or pick one on the left.'));
  const sessions = new SessionsPanel(client, openSession);
  const closeWorkspace = () => {
    workspace?.dispose();
    workspace = undefined;
  };

  function openSession(session: SessionView): void {
    closeWorkspace();
    sessions.setActive(session.id);
    sessionStorage.setItem(OPEN_SESSION_KEY, session.id);
    const ws = new Workspace(client, session, {
      changed: (s) => {
        sessions.update(s);
        if (s.status === 'destroyed' && workspace === ws) {
          sessionStorage.removeItem(OPEN_SESSION_KEY);
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
  // After a reload, the session this tab had open opens again.
  void sessions.refresh().then((all) => {
    const again = all.find((s) => s.id === sessionStorage.getItem(OPEN_SESSION_KEY));
    if (again && !workspace) openSession(again);
  });
  return { terminalText: () => workspace?.terminalText() ?? '', dispose: closeWorkspace };
}
