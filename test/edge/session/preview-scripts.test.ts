/** A session's preview script setting and the preview messages it lets through (in-memory storage; the DO wiring is covered by test/e2e/preview-script.test.ts). */
import { describe, expect, it } from 'vitest';
import { MESSAGES_PER_WINDOW, PreviewScripts, isPreviewMessagePath } from '../../../edge/preview/scripts';
import type { PreviewRequestInfo } from '../../../edge/session/preview-relay';
import type { SessionRecord } from '../../../edge/session/record';

const OWNER = 'usr_owner';
const RECORD: Partial<SessionRecord> & { id: string } = { id: 'ses_0123456789abcdef01234567', userId: OWNER, status: 'running', ports: [3000] };

function setup(record: Partial<SessionRecord> = RECORD) {
  const stored = new Map<string, unknown>();
  const frames: unknown[] = [];
  let now = 1_000_000;
  const scripts = new PreviewScripts({
    storage: {
      get: async (k) => stored.get(k),
      put: async (k, v) => void stored.set(k, v),
      delete: async (k) => stored.delete(k),
    },
    // A partial record is all the part reads (id, userId, status, ports, previewPort).
    record: () => record as SessionRecord,
    broadcast: (f) => frames.push(f),
    now: () => now,
  });
  return { scripts, stored, frames, tick: (ms: number) => (now += ms) };
}

const info = (userId: string | null, port: number | null = 3000): PreviewRequestInfo => ({
  userId,
  port,
  path: '/__mominai/preview-message',
  prefix: '',
  origin: 'http://3000-x.preview.localhost',
  cookieName: 'c',
  form: 'host',
});
const message = { type: 'PREVIEW_UNHANDLED_REJECTION', message: 'no', pathname: '/a', search: '', hash: '' };
const post = (body: string) => new Request('http://3000-x.preview.localhost/__mominai/preview-message', { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
const errorOf = async (res: Response) => [res.status, ((await res.json()) as { error: { code: string } }).error.code];

describe('PreviewScripts', () => {
  describe('set', () => {
    it('keeps what a field left out had, removes the script with null, and stores the result', async () => {
      const { scripts, stored } = setup();
      expect(await scripts.settings()).toEqual({ script: null, forwardErrors: false });
      expect(await scripts.set({ script: { source: 'a()', async: true } })).toEqual({ script: { source: 'a()', async: true }, forwardErrors: false });
      expect(await scripts.set({ forwardErrors: 'exceptions-only' })).toEqual({ script: { source: 'a()', async: true }, forwardErrors: 'exceptions-only' });
      expect(await scripts.set({ script: null })).toEqual({ script: null, forwardErrors: 'exceptions-only' });
      expect(stored.get('previewScript')).toEqual({ script: null, forwardErrors: 'exceptions-only' });
    });

    it('refuses a script over 256 KiB of UTF-8 with payload_too_large and a bad shape with validation_failed', async () => {
      const { scripts } = setup();
      await expect(scripts.set({ script: { source: 'é'.repeat(140 * 1024) } })).rejects.toMatchObject({ code: 'payload_too_large' });
      await expect(scripts.set({ script: { source: 'x', type: 'text/babel' } })).rejects.toMatchObject({ code: 'validation_failed' });
      expect(await scripts.settings()).toEqual({ script: null, forwardErrors: false });
    });

    it('forgets the setting when the session goes', async () => {
      const { scripts, stored } = setup();
      await scripts.set({ script: { source: 'a()' }, forwardErrors: true });
      await scripts.forget();
      expect(stored.has('previewScript')).toBe(false);
      expect(await scripts.settings()).toEqual({ script: null, forwardErrors: false });
    });
  });

  describe('tags', () => {
    it('puts the reporter (console errors only with forwardErrors true) before the script, with its attributes and the nonce', () => {
      const both = PreviewScripts.tags({ script: { source: 'x()', type: 'module', defer: true }, forwardErrors: 'exceptions-only' }, '/preview/ses_1', 'n0nce');
      expect(both.startsWith('<script nonce="n0nce">(function () {')).toBe(true);
      expect(both).toContain('var url = "/preview/ses_1/__mominai/preview-message";');
      expect(both).toContain('if (false) {');
      expect(both.endsWith('</script><script type="module" defer nonce="n0nce">x()</script>')).toBe(true);
      expect(PreviewScripts.tags({ script: null, forwardErrors: true }, '')).toContain('if (true) {');
      expect(PreviewScripts.tags({ script: { source: 'a("</SCRIPT>")' }, forwardErrors: false }, '')).toBe('<script>a("<\\/SCRIPT>")</script>');
    });
  });

  describe('receive', () => {
    it('sends the owner\'s message to every client with the port and preview id', async () => {
      const { scripts, frames } = setup();
      const res = await scripts.receive(post(JSON.stringify(message)), info(OWNER));
      expect(res.status).toBe(204);
      expect(frames).toEqual([{ type: 'preview_message', payload: { ...message, port: 3000, previewId: `3000-${RECORD.id}` } }]);
    });

    it('refuses anyone but the owner, other methods, bad bodies and a flood, each with its code', async () => {
      const { scripts, frames, tick } = setup();
      expect(await errorOf(await scripts.receive(post(JSON.stringify(message)), info(null)))).toEqual([401, 'unauthorized']);
      expect(await errorOf(await scripts.receive(post(JSON.stringify(message)), info('usr_other')))).toEqual([403, 'forbidden']);
      expect(await errorOf(await scripts.receive(new Request('http://x/__mominai/preview-message'), info(OWNER)))).toEqual([405, 'method_not_allowed']);
      expect(await errorOf(await scripts.receive(post('{'), info(OWNER)))).toEqual([400, 'invalid_json']);
      expect(await errorOf(await scripts.receive(post(JSON.stringify({ ...message, type: 'PREVIEW_OTHER' })), info(OWNER)))).toEqual([400, 'validation_failed']);
      expect(await errorOf(await scripts.receive(post(JSON.stringify({ ...message, message: 'x'.repeat(17_000) })), info(OWNER)))).toEqual([413, 'payload_too_large']);
      tick(10_000);
      for (let i = 0; i < MESSAGES_PER_WINDOW; i++) expect((await scripts.receive(post(JSON.stringify(message)), info(OWNER))).status).toBe(204);
      expect(await errorOf(await scripts.receive(post(JSON.stringify(message)), info(OWNER)))).toEqual([429, 'rate_limited']);
      tick(10_000);
      expect((await scripts.receive(post(JSON.stringify(message)), info(OWNER))).status).toBe(204);
      expect(frames).toHaveLength(MESSAGES_PER_WINDOW + 1);
    });

    it('answers not_found for a destroyed session', async () => {
      const { scripts } = setup({ ...RECORD, status: 'destroyed' });
      expect(await errorOf(await scripts.receive(post(JSON.stringify(message)), info(OWNER)))).toEqual([404, 'not_found']);
    });
  });

  it('knows the message path with or without a query', () => {
    expect(isPreviewMessagePath('/__mominai/preview-message?x=1')).toBe(true);
    expect(isPreviewMessagePath('/__mominai/preview-message/x')).toBe(false);
  });
});
