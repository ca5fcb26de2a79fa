/**
 * A Session DO evicted while its client sockets stay open (Cloudflare does
 * this to hibernating objects): the relays are built again from storage and
 * socket attachments only, and the client keeps getting output and
 * `file_changed` without sending anything.
 */
import { describe, expect, it } from 'vitest';
import { encodeBinaryFrame, FrameKind } from '../../../shared/protocol/binary';
import { clientAttachment } from '../../../edge/session/attachments';
import { FileRelay } from '../../../edge/session/file-relay';
import { EdgeByteStreams } from '../../../edge/session/byte-streams';
import { ProcessRelay } from '../../../edge/session/process-relay';
import { decodeBinaryFrame } from '../../../shared/protocol/binary';
import { FakeSocket, MemoryAgentLink, MemoryClientStore, MemoryProcessStore } from '../../helpers/memory-stores';

/** Everything that survives an eviction: storage and the sockets (with their attachments). */
function durable() {
  const socket = new FakeSocket({ role: 'client', userId: 'usr_1', output: 'text', origin: 'http://edge.test', sid: 'sock-1' });
  return { processes: new MemoryProcessStore(), clients: new MemoryClientStore(), socket, agent: new MemoryAgentLink({ 'fs.watch': () => ({ version: 1 }), 'proc.spawn': (p) => ({ processId: (p as { processId: string }).processId }) }) };
}

/** A fresh DO's relays over what survived (nothing else is shared). */
function wake(d: ReturnType<typeof durable>) {
  const clients = () => [d.socket.ws];
  const send = (ws: WebSocket, frame: unknown) => ws.send(JSON.stringify(frame));
  const processes = new ProcessRelay({
    store: d.processes,
    agent: async () => d.agent,
    clients,
    send,
    sendBinary: (ws, bytes) => ws.send(bytes),
    socketInfo: (ws) => {
      const a = clientAttachment(ws);
      return a && { sid: a.sid, binary: a.output === 'binary' };
    },
    clientStore: d.clients,
  });
  processes.restore();
  const files = new FileRelay({
    agent: async () => d.agent,
    streams: new EdgeByteStreams(() => d.agent),
    nextStreamId: () => 1 << 30,
    maxFileSize: 1024,
    send,
    clients,
    socketId: (ws) => clientAttachment(ws)?.sid,
    store: d.clients,
  });
  return { processes, files };
}

const output = (streamId: number, offset: number, text: string) => {
  const frame = decodeBinaryFrame(encodeBinaryFrame({ kind: FrameKind.Output, flags: 0, streamId, offset, payload: new TextEncoder().encode(text) }));
  return frame;
};

describe('Session DO state across an eviction (sockets stay open, memory goes)', () => {
  it('keeps sending a followed process its output from the last acknowledged offset, without a resume', async () => {
    const d = durable();
    const before = wake(d);
    await before.processes.handleClient(d.socket.ws, 'container_command', 'c1', { command: 'yes' });
    const processId = String(d.socket.frames().find((f) => f.type === 'process_started')!.payload.processId);
    const streamId = (d.agent.requests.find((r) => r.method === 'proc.spawn')!.params as { streamBase: number }).streamBase;
    before.processes.onAgentBinary(output(streamId, 0, 'hello '));
    await before.processes.handleClient(d.socket.ws, 'ack', undefined, { processId, stream: 'stdout', offset: 6 });
    const sentBefore = d.socket.sent.length;

    const after = wake(d); // evicted: new relays, same storage and sockets
    after.processes.onAgentBinary(output(streamId, 6, 'world'));

    const fresh = d.socket.frames().slice(d.socket.frames().length - (d.socket.sent.length - sentBefore));
    expect(fresh).toEqual([{ type: 'command_output', payload: { processId, stream: 'stdout', data: 'world', offset: 6, length: 5 } }]);
  });

  it('resends what was sent but not acknowledged before the eviction, at the same offsets', async () => {
    const d = durable();
    const before = wake(d);
    await before.processes.handleClient(d.socket.ws, 'container_command', 'c1', { command: 'yes' });
    const processId = String(d.socket.frames().find((f) => f.type === 'process_started')!.payload.processId);
    const streamId = (d.agent.requests.find((r) => r.method === 'proc.spawn')!.params as { streamBase: number }).streamBase;
    before.processes.onAgentBinary(output(streamId, 0, 'abc'));
    // Not acknowledged, and held in storage only once the edge acknowledged it to the agent.
    d.processes.appendChunk(processId, 'stdout', { offset: 0, bytes: new TextEncoder().encode('abc') });
    const sentBefore = d.socket.sent.length;

    const after = wake(d);
    after.processes.onAgentBinary(output(streamId, 3, 'def'));

    const fresh = d.socket.frames().slice(d.socket.frames().length - (d.socket.sent.length - sentBefore));
    expect(fresh).toEqual([{ type: 'command_output', payload: { processId, stream: 'stdout', data: 'abcdef', offset: 0, length: 6 } }]);
  });

  it('keeps sending file_changed for a watch made before the eviction', async () => {
    const d = durable();
    const before = wake(d);
    await before.files.client(d.socket.ws, 'watch', 'w1', { path: '/workspace/src', recursive: true });
    expect(d.socket.frames().at(-1)).toEqual({ type: 'watching', id: 'w1', payload: { path: '/workspace/src', version: 1 } });

    const after = wake(d);
    const change = { version: 2, event: 'change' as const, path: '/workspace/src/a/b.ts' };
    expect(after.files.onEvent({ event: 'fs.change', data: change })).toBe(true);
    after.files.onEvent({ event: 'fs.change', data: { ...change, path: '/workspace/other.ts', version: 3 } });

    expect(d.socket.frames().at(-1)).toEqual({ type: 'file_changed', payload: change });
    expect(d.socket.frames().filter((f) => f.type === 'file_changed')).toHaveLength(1);
  });
});
