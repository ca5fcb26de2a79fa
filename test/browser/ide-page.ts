/**
 * What a test does on the IDE page, through its data-testid hooks only (and
 * the terminal's text, which `window.mominaiIde.terminalText()` reads from
 * xterm's buffer, scrollback included, since the DOM shows only the rows on
 * screen).
 */
import type { Page } from 'playwright-core';

declare global {
  interface Window {
    /** Set by web/src/main.ts. */
    mominaiIde?: { terminalText(): string };
  }
}

let counter = 0;

export interface Account {
  email: string;
  username: string;
  password: string;
}

export function newAccount(tag: string): Account {
  const n = `${Date.now().toString(36)}${(counter++).toString(36)}`;
  return { email: `${tag}-${n}@example.com`, username: `${tag}_${n}`.slice(0, 32), password: 'correct horse battery' };
}

export class IdePage {
  constructor(
    readonly page: Page,
    readonly baseUrl: string,
  ) {}

  /** Opens `/` and resolves with the page's own load-to-interactive time (ms since navigation start). */
  async open(): Promise<number> {
    await this.page.goto(`${this.baseUrl}/`);
    await this.page.getByTestId('auth-email').waitFor();
    const ready = await this.page.waitForFunction(() => document.documentElement.dataset.ready);
    return Number(await ready.jsonValue());
  }

  async register(account: Account): Promise<void> {
    await this.page.getByTestId('auth-email').fill(account.email);
    await this.page.getByTestId('auth-username').fill(account.username);
    await this.page.getByTestId('auth-password').fill(account.password);
    await this.page.getByTestId('auth-register').click();
    await this.page.getByTestId('new-session').waitFor();
  }

  /** Fills the new-session form and clicks "new session" (does not wait for the status). */
  async clickNewSession(opts: { image: string; ports?: number[] }): Promise<void> {
    await this.page.getByTestId('session-image').fill(opts.image);
    await this.page.getByTestId('session-ports').fill((opts.ports ?? []).join(', '));
    await this.page.getByTestId('new-session').click();
  }

  async waitForStatus(status: string, timeout = 90_000): Promise<void> {
    await this.page.getByTestId('session-status').filter({ hasText: new RegExp(`^${status}$`) }).waitFor({ timeout });
  }

  async status(): Promise<string> {
    return (await this.page.getByTestId('session-status').textContent()) ?? '';
  }

  terminalText(): Promise<string> {
    return this.page.evaluate(() => window.mominaiIde?.terminalText() ?? '');
  }

  /** Waits until the terminal's text matches (polled in the page). */
  async waitForTerminal(re: RegExp, timeout = 60_000): Promise<string> {
    await this.page.waitForFunction(
      ([source, flags]) => new RegExp(source!, flags).test(window.mominaiIde?.terminalText() ?? ''),
      [re.source, re.flags],
      { timeout, polling: 100 },
    );
    return this.terminalText();
  }

  /** A shell prompt on the terminal's last line (`$` or `#`, as bash and sh print them). */
  waitForPrompt(timeout = 90_000): Promise<string> {
    return this.waitForTerminal(/[$#] ?$/, timeout);
  }

  /** Types a command line into the terminal and presses Enter. */
  async run(line: string): Promise<void> {
    await this.page.getByTestId('terminal').click();
    await this.page.keyboard.type(line);
    await this.page.keyboard.press('Enter');
  }

  /** Creates a file through the tree's "new file" form; the editor opens it. */
  async newFile(path: string): Promise<void> {
    await this.page.getByTestId('tree-new-file').click();
    await this.page.getByTestId('tree-input').fill(path);
    await this.page.getByTestId('tree-input').press('Enter');
    await this.page.getByTestId('editor-path').filter({ hasText: new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }).waitFor();
  }

  /** Replaces the editor's text and saves with Ctrl-S. */
  async replaceEditorText(text: string): Promise<void> {
    await this.page.locator('[data-testid=editor] .cm-content').click();
    await this.page.keyboard.press('Control+A');
    await this.page.keyboard.insertText(text);
  }

  async saveWithShortcut(): Promise<void> {
    await this.page.keyboard.press('Control+S');
    await this.page.getByTestId('editor-status').filter({ hasText: /^saved$/ }).waitFor();
  }

  treeItem(path: string) {
    return this.page.locator(`[data-testid=file-tree] [data-path="${path}"]`);
  }
}
