/**
 * Preview scripts and preview messages (WebContainers' `setPreviewScript`,
 * `forwardPreviewErrors` and `preview-message`), as the session WebSocket
 * and the preview origin carry them:
 *
 *   client → edge   set_preview_script {script?, forwardErrors?} → preview_script_set {script, forwardErrors}
 *                   Kept per session in the Session DO's storage (the last writer wins); `script: null`
 *                   removes the script, an absent field keeps what was set.
 *   edge → browser  every HTML response of the session's previews gets, first in <head>, the error
 *                   reporter (when forwardErrors is on) and then the script (../../edge/preview/inject.ts).
 *   page → edge     the reporter POSTs a PreviewMessageBody to PREVIEW_MESSAGE_PATH on the preview's
 *                   own origin (owner only, like the path form), and the edge sends every client of the
 *                   session `preview_message`, a PreviewMessage with the preview's port and id.
 */
import { z } from 'zod';

/** Where a preview page posts its messages (on its own origin; under the prefix on the path forms). */
export const PREVIEW_MESSAGE_PATH = '/__mominai/preview-message';
/** The largest script kept for a session (bytes of UTF-8). */
export const MAX_PREVIEW_SCRIPT_BYTES = 256 * 1024;
/** The largest message body a preview page may post. */
export const MAX_PREVIEW_MESSAGE_BYTES = 16 * 1024;

/** WebContainers' PreviewScriptOptions. */
export const PreviewScriptAttributes = z.object({
  type: z.enum(['module', 'importmap']).optional(),
  defer: z.boolean().optional(),
  async: z.boolean().optional(),
});

export const PreviewScript = PreviewScriptAttributes.extend({ source: z.string().max(MAX_PREVIEW_SCRIPT_BYTES) });
export type PreviewScript = z.infer<typeof PreviewScript>;

/** `true`: uncaught errors, unhandled rejections and console.error; `exceptions-only`: not console.error. */
export const ForwardErrors = z.union([z.boolean(), z.literal('exceptions-only')]);
export type ForwardErrors = z.infer<typeof ForwardErrors>;

export const SetPreviewScriptPayload = z.object({
  script: PreviewScript.nullable().optional(),
  forwardErrors: ForwardErrors.optional(),
});
export type SetPreviewScriptPayload = z.infer<typeof SetPreviewScriptPayload>;

/** What a session keeps (and `preview_script_set` answers). */
export const PreviewScriptSettings = z.object({ script: PreviewScript.nullable(), forwardErrors: ForwardErrors });
export type PreviewScriptSettings = z.infer<typeof PreviewScriptSettings>;

/** WebContainers' PreviewMessageType values. */
export const PreviewMessageKind = z.enum(['PREVIEW_UNCAUGHT_EXCEPTION', 'PREVIEW_UNHANDLED_REJECTION', 'PREVIEW_CONSOLE_ERROR']);

const Location = { pathname: z.string().max(2048), search: z.string().max(2048), hash: z.string().max(2048) };
const Text = z.string().max(8192);

/** What the reporter in a preview page posts. */
export const PreviewMessageBody = z.union([
  z.object({ type: z.enum(['PREVIEW_UNCAUGHT_EXCEPTION', 'PREVIEW_UNHANDLED_REJECTION']), message: Text, stack: Text.optional(), ...Location }),
  z.object({ type: z.literal('PREVIEW_CONSOLE_ERROR'), args: z.array(Text).max(32), stack: Text, ...Location }),
]);
export type PreviewMessageBody = z.infer<typeof PreviewMessageBody>;

/** The `preview_message` frame's payload: WebContainers' PreviewMessage. */
export const PreviewMessagePayload = z.union([
  z.object({ type: z.enum(['PREVIEW_UNCAUGHT_EXCEPTION', 'PREVIEW_UNHANDLED_REJECTION']), message: Text, stack: Text.optional(), ...Location, port: z.number().int(), previewId: z.string() }),
  z.object({ type: z.literal('PREVIEW_CONSOLE_ERROR'), args: z.array(Text).max(32), stack: Text, ...Location, port: z.number().int(), previewId: z.string() }),
]);
export type PreviewMessagePayload = z.infer<typeof PreviewMessagePayload>;
