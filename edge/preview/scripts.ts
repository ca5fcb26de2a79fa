/**
 * A session's preview script and error forwarding, in its Session DO
 * (flow: ../../shared/protocol/preview-script.ts):
 *   - `set_preview_script` from a client of the session stores the settings
 *     (DO storage, so they outlive hibernation and restarts; the last writer wins);
 *   - every HTML response of the session's previews gets the reporter (when
 *     forwarding is on) and the script, first in `<head>` (./inject.ts);
 *   - the reporter's POSTs to PREVIEW_MESSAGE_PATH become `preview_message`
 *     frames for every client of the session.
 * Messages are taken from the session's owner only (the preview cookie,
 * whatever the port's visibility): a visitor of a public port cannot put
 * words in the owner's IDE. At most MESSAGES_PER_WINDOW per window.
 */
import { AppError, ErrorCode } from '../../shared/errors';
import {
  MAX_PREVIEW_MESSAGE_BYTES,
  MAX_PREVIEW_SCRIPT_BYTES,
  PREVIEW_MESSAGE_PATH,
  PreviewMessageBody,
  PreviewScriptSettings,
  SetPreviewScriptPayload,
  type PreviewMessagePayload,
} from '../../shared/protocol/preview-script';
import { summariseIssues } from '../../shared/protocol/tunnel';
import { refuse } from '../errors';
import { readJson } from '../middleware/validate';
import { log } from '../log';
import type { SessionRecord } from '../session/record';
import type { PreviewRequestInfo } from '../session/preview-relay';
import { parsePayload } from '../session/payload';
import { injectIntoHtml, scriptText } from './inject';
import { reporterSource } from './reporter';

const STORAGE_KEY = 'previewScript';
const NONE: PreviewScriptSettings = { script: null, forwardErrors: false };
export const MESSAGES_PER_WINDOW = 100;
const WINDOW_MS = 10_000;

export interface PreviewScriptDeps {
  storage: { get(key: string): Promise<unknown>; put(key: string, value: unknown): Promise<void>; delete(key: string): Promise<boolean> };
  record(): SessionRecord | undefined;
  broadcast(frame: { type: 'preview_message'; payload: PreviewMessagePayload }): void;
  now?: () => number;
}

/** Whether a preview request (its path inside the preview, query included) is a reporter's message. */
export function isPreviewMessagePath(path: string): boolean {
  return path.split('?')[0] === PREVIEW_MESSAGE_PATH;
}

export class PreviewScripts {
  private cached: PreviewScriptSettings | undefined;
  private window = { start: 0, count: 0 };

  constructor(private readonly deps: PreviewScriptDeps) {}

  async settings(): Promise<PreviewScriptSettings> {
    if (!this.cached) {
      const stored = PreviewScriptSettings.safeParse(await this.deps.storage.get(STORAGE_KEY));
      this.cached = stored.success ? stored.data : NONE;
    }
    return this.cached;
  }

  /** `set_preview_script`: fields given replace what was set (`script: null` removes it). */
  async set(payload: unknown): Promise<PreviewScriptSettings> {
    const p = parsePayload(SetPreviewScriptPayload, payload);
    if (p.script && new TextEncoder().encode(p.script.source).byteLength > MAX_PREVIEW_SCRIPT_BYTES) {
      throw new AppError(ErrorCode.PayloadTooLarge, `a preview script may have at most ${MAX_PREVIEW_SCRIPT_BYTES} bytes`);
    }
    const now = await this.settings();
    const next: PreviewScriptSettings = {
      script: p.script === undefined ? now.script : p.script,
      forwardErrors: p.forwardErrors ?? now.forwardErrors,
    };
    await this.deps.storage.put(STORAGE_KEY, next);
    this.cached = next;
    return next;
  }

  /** The session is gone: its setting goes too. */
  async forget(): Promise<void> {
    await this.deps.storage.delete(STORAGE_KEY);
    this.cached = NONE;
  }

  /** The response with the session's tags in it, when it is HTML and there is something to inject. */
  async decorate(request: Request, info: PreviewRequestInfo, response: Response): Promise<Response> {
    const s = await this.settings();
    if (!s.script && !s.forwardErrors) return response;
    return injectIntoHtml(request.method, response, (nonce) => PreviewScripts.tags(s, info.prefix, nonce));
  }

  /** The `<script>` tags for a page under `prefix` ('' on the host form). */
  static tags(s: PreviewScriptSettings, prefix: string, nonce?: string): string {
    const n = nonce ? ` nonce="${nonce}"` : '';
    let html = '';
    if (s.forwardErrors) html += `<script${n}>${scriptText(reporterSource(`${prefix}${PREVIEW_MESSAGE_PATH}`, s.forwardErrors === true))}</script>`;
    if (s.script) {
      const attrs = `${s.script.type ? ` type="${s.script.type}"` : ''}${s.script.defer ? ' defer' : ''}${s.script.async ? ' async' : ''}`;
      html += `<script${attrs}${n}>${scriptText(s.script.source)}</script>`;
    }
    return html;
  }

  /** A reporter's POST: checked (owner, size, shape, rate), then sent to every client as `preview_message`. */
  async receive(request: Request, info: PreviewRequestInfo): Promise<Response> {
    try {
      const record = this.deps.record();
      if (!record || record.status === 'destroyed') throw new AppError(ErrorCode.NotFound, 'no such preview');
      if (request.method !== 'POST') throw new AppError(ErrorCode.MethodNotAllowed, `${PREVIEW_MESSAGE_PATH} takes POST`);
      if (!info.userId) throw new AppError(ErrorCode.Unauthorized, 'preview messages are taken from the session owner only: open the preview through a preview link');
      if (info.userId !== record.userId) throw new AppError(ErrorCode.Forbidden, 'this preview belongs to another user');
      const now = (this.deps.now ?? Date.now)();
      if (now - this.window.start >= WINDOW_MS) this.window = { start: now, count: 0 };
      if (++this.window.count > MESSAGES_PER_WINDOW) throw new AppError(ErrorCode.RateLimited, `at most ${MESSAGES_PER_WINDOW} preview messages per ${WINDOW_MS / 1000} s`);
      const parsed = PreviewMessageBody.safeParse(await readJson(request, MAX_PREVIEW_MESSAGE_BYTES));
      if (!parsed.success) throw new AppError(ErrorCode.ValidationFailed, 'invalid preview message', { issues: summariseIssues(parsed.error) });
      const port = info.port ?? record.previewPort ?? record.ports[0] ?? 0;
      this.deps.broadcast({ type: 'preview_message', payload: { ...parsed.data, port, previewId: `${port}-${record.id}` } });
      return new Response(null, { status: 204 });
    } catch (err) {
      if (!(err instanceof AppError)) log('warn', 'preview message failed', { error: String(err) });
      return refuse(request, err);
    }
  }
}
