/**
 * What each socket of a Session DO carries in its hibernation attachment
 * (at most 2 KiB, kept by the runtime while the DO is evicted), decoded with
 * zod whenever it is read. Client sockets: the user, the output format, the
 * origin browsers reach the edge at (for preview URLs) and a socket id keying
 * the state in ./client-store.ts. Preview sockets: their stream base and how
 * many browser messages went to the agent (the next message's offset).
 */
import { z } from 'zod';
import { OutputFormat } from '../../shared/protocol/client';

export const ClientAttachment = z.object({
  role: z.literal('client'),
  userId: z.string(),
  output: OutputFormat,
  origin: z.string(),
  sid: z.string(),
});
export type ClientAttachment = z.infer<typeof ClientAttachment>;

export const AgentAttachment = z.object({ role: z.literal('agent'), agentId: z.string() });
export type AgentAttachment = z.infer<typeof AgentAttachment>;

export const PreviewAttachment = z.object({ role: z.literal('preview'), streamBase: z.number().int().nonnegative(), sent: z.number().int().nonnegative() });
export type PreviewAttachment = z.infer<typeof PreviewAttachment>;

export const Attachment = z.discriminatedUnion('role', [ClientAttachment, AgentAttachment, PreviewAttachment]);
export type Attachment = z.infer<typeof Attachment>;

/** A socket's attachment, or undefined when it has none this code understands. */
export function attachmentOf(ws: { deserializeAttachment(): unknown }): Attachment | undefined {
  const parsed = Attachment.safeParse(ws.deserializeAttachment());
  return parsed.success ? parsed.data : undefined;
}

export function clientAttachment(ws: { deserializeAttachment(): unknown }): ClientAttachment | undefined {
  const a = attachmentOf(ws);
  return a?.role === 'client' ? a : undefined;
}
