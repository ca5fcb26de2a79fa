/**
 * The parts of one Session DO and how they are wired to each other and to
 * the runtime's sockets and storage: the record's lifecycle, the agent's
 * data socket, the byte streams, and the process, file and preview relays.
 * ../do/session.ts hands the runtime's events to them.
 */
import type { Env } from '../env';
import { pathFormBase, previewSettings } from '../preview/settings';
import { sendJson, trySend } from '../relay/socket';
import { AgentChannel } from './agent-channel';
import { clientAttachment, type Attachment } from './attachments';
import { EdgeByteStreams } from './byte-streams';
import { SqlClientStore } from './client-store';
import { FileRelay } from './file-relay';
import { SessionLifecycle } from './lifecycle';
import { PreviewRelay } from './preview-relay';
import { ProcessRelay } from './process-relay';
import { ProcessStore } from './process-store';
import { sessionSettings } from './settings';
import { OneShotStreamIds } from './stream-ids';

export interface SessionParts {
  lifecycle: SessionLifecycle;
  agent: AgentChannel;
  relay: ProcessRelay;
  streams: EdgeByteStreams;
  files: FileRelay;
  previews: PreviewRelay;
  clientStore: SqlClientStore;
}

export function sessionParts(ctx: DurableObjectState, env: Env, broadcast: (frame: { type: string; payload: unknown }) => void): SessionParts {
  const settings = sessionSettings(env);
  const fleet = () => env.FLEET.get(env.FLEET.idFromName('fleet'));
  const clients = () => ctx.getWebSockets('client');
  const oneShotIds = new OneShotStreamIds(); // file and preview streams (./stream-ids.ts)
  const clientStore = new SqlClientStore(ctx.storage.sql);
  const lifecycle = new SessionLifecycle({ storage: ctx.storage, fleet, broadcast, idle: () => settings });
  const agent = new AgentChannel(() => ctx.getWebSockets('agent'));
  const link = () => agent.link();
  const streams = new EdgeByteStreams(() => {
    const ws = agent.socket();
    return ws && { sendBinary: (b) => trySend(ws, b), sendEvent: (event, data) => trySend(ws, JSON.stringify({ type: 'event', event, data })) };
  });
  const socketId = (ws: WebSocket) => clientAttachment(ws)?.sid;
  const files = new FileRelay({ agent: link, streams, nextStreamId: () => oneShotIds.take(1), maxFileSize: settings.maxFileSize, send: sendJson, clients, socketId, store: clientStore });
  const previews = new PreviewRelay({
    agent: link,
    streams,
    nextStreamIds: (n) => oneShotIds.take(n),
    record: () => lifecycle.record,
    saveRecord: async (next) => void (await lifecycle.commit(next)),
    publicOrigin: () => clients().map((ws) => clientAttachment(ws)?.origin).findLast((o) => o !== undefined) ?? '',
    domain: previewSettings(env).domain,
    pathFormBase: (edge, sessionId) => pathFormBase(previewSettings(env), edge, sessionId),
    acceptPreviewSocket: (server, streamBase) => {
      ctx.acceptWebSocket(server, ['preview', `preview:${streamBase}`]);
      server.serializeAttachment({ role: 'preview', streamBase, sent: 0 } satisfies Attachment);
    },
    previewSockets: (streamBase) => ctx.getWebSockets(`preview:${streamBase}`),
    broadcast,
  });
  const relay = new ProcessRelay({
    store: new ProcessStore(ctx.storage.sql),
    agent: link,
    clients,
    send: sendJson,
    sendBinary: (ws, bytes) => void trySend(ws, bytes),
    socketInfo: (ws) => {
      const a = clientAttachment(ws);
      return a && { sid: a.sid, binary: a.output === 'binary' };
    },
    clientStore,
  });
  void ctx.blockConcurrencyWhile(async () => {
    await lifecycle.load();
    relay.restore();
    clientStore.keepOnly(new Set(clients().flatMap((ws) => clientAttachment(ws)?.sid ?? [])));
  });
  return { lifecycle, agent, relay, streams, files, previews, clientStore };
}
