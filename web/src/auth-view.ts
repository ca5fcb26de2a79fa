/**
 * Register / sign in. The token the API returns is kept in sessionStorage:
 * it lives as long as the tab, survives a reload, and is not shared with
 * other tabs or left behind when the tab closes.
 */
import type { MominaiClient, PublicUser } from '@mominai/client';
import { h, messageOf } from './dom';

export const TOKEN_KEY = 'mominai.token';

/** `ada.l@x.org` → `ada_l`: the API takes 3–32 of A–Z a–z 0–9 _ -. */
function defaultUsername(email: string): string {
  return (email.split('@')[0] ?? '').replace(/[^\w-]/g, '_').slice(0, 32).padEnd(3, '_');
}

export function authView(client: MominaiClient, onSignedIn: (user: PublicUser) => void): HTMLElement {
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'email', required: true, 'data-testid': 'auth-email' });
  const username = h('input', { type: 'text', name: 'username', autocomplete: 'username', 'data-testid': 'auth-username' });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true, minlength: 8, 'data-testid': 'auth-password' });
  const error = h('p', { class: 'error', role: 'alert', 'data-testid': 'auth-error' });
  const busy = (on: boolean) => form.querySelectorAll('button').forEach((b) => (b.disabled = on));

  async function submit(kind: 'register' | 'login'): Promise<void> {
    error.textContent = '';
    if (!email.reportValidity() || !password.reportValidity()) return;
    busy(true);
    try {
      const r =
        kind === 'register'
          ? await client.register({ email: email.value, password: password.value, username: username.value || defaultUsername(email.value) })
          : await client.login({ email: email.value, password: password.value });
      sessionStorage.setItem(TOKEN_KEY, r.token);
      onSignedIn(r.user);
    } catch (err) {
      error.textContent = messageOf(err);
    } finally {
      busy(false);
    }
  }

  const form = h(
    'form',
    { class: 'auth', onsubmit: (ev) => (ev.preventDefault(), void submit('login')) },
    h('h1', {}, 'MominAI'),
    h('p', { class: 'muted' }, 'A browser IDE backed by real containers. Sign in, or register a new account.'),
    h('label', {}, 'Email', email),
    h('label', {}, 'Username ', h('span', { class: 'muted' }, '(for a new account)'), username),
    h('label', {}, 'Password', password),
    h(
      'div',
      { class: 'row' },
      h('button', { type: 'submit', class: 'primary', 'data-testid': 'auth-login' }, 'Sign in'),
      h('button', { type: 'button', 'data-testid': 'auth-register', onclick: () => void submit('register') }, 'Register'),
    ),
    error,
  );
  return form;
}
