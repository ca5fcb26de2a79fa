/** The DO's file relay with an in-memory agent: typed calls, bodies as byte streams, refusals. */
import { describe, expect, it } from 'vitest';
import { EdgeByteStreams } from '../../../edge/session/byte-streams';
import { FileRelay } from '../../../edge/session/file-relay';
import { clientAttachment } from '../../../edge/session/attachments';
import { FrameFlag, FrameKind } from '../../../shared/protocol/binary';
import { FakeSocket, MemoryAgentLink, MemoryClientStore } from '../../helpers/memory-stores';

const stat = { path: '/workspace/a.txt', type: 'file', size: 5, mtime: '2026-01-01T00:00:00.000Z', mode: 420, etag: 'W/"e"' };

function setup(answers: Record<string, (p: unknown) => unknown>) {
  const socket = new FakeSocket({ role: 'client', userId: 'usr_1', output: 'text', origin: 'http://edge.test', sid: 's1' });
  const agent = new MemoryAgentLink(answers);
  const streams = new EdgeByteStreams(() => agent);
  let next = 1000;
  const relay = new FileRelay({
    agent: async () => agent,
    streams,
    nextStreamId: () => next++,
    maxFileSize: 1024 * 1024,
    send: (ws, frame) => ws.send(JSON.stringify(frame)),
    clients: () => [socket.ws],
    socketId: (ws) => clientAttachment(ws)?.sid,
    store: new MemoryClientStore(),
  });
  return { socket, agent, streams, relay };
}

describe('FileRelay', () => {
  it('reads a small file for a read_file frame: stat, then fs.read with its body on a stream', async () => {
    const t = setup({
      'fs.stat': () => stat,
      'fs.read': (p) => {
        const { streamId } = p as { streamId: number };
        // The body follows the answer on the stream the DO chose.
        setTimeout(() => t.streams.onBinary({ kind: FrameKind.File, flags: FrameFlag.End, streamId, offset: 0, payload: new TextEncoder().encode('hello') }), 0);
        return { path: '/workspace/a.txt', size: 5, mtime: stat.mtime, mode: 420, etag: stat.etag, length: 5, start: 0, end: 4 };
      },
    });
    expect(await t.relay.client(t.socket.ws, 'read_file', 'r1', { path: 'a.txt' })).toBe(true);
    expect(t.socket.frames()).toEqual([
      { type: 'file_content', id: 'r1', payload: { path: '/workspace/a.txt', content: 'hello', encoding: 'utf8', size: 5, mtime: stat.mtime, etag: stat.etag } },
    ]);
    expect(t.agent.requests.map((r) => r.method)).toEqual(['fs.stat', 'fs.read']);
  });

  it('writes a write_file frame as a byte stream and answers with what the agent wrote', async () => {
    const t = setup({ 'fs.write': () => ({ path: '/workspace/b.txt', size: 3, mtime: stat.mtime, etag: stat.etag }) });
    await t.relay.client(t.socket.ws, 'write_file', 'w1', { path: 'b.txt', content: 'YWJj', encoding: 'base64' });
    expect(t.agent.requests).toEqual([{ method: 'fs.write', params: { path: 'b.txt', parents: false, streamId: 1000 } }]);
    expect(t.agent.frames.map((f) => [f.kind, f.streamId, f.offset, new TextDecoder().decode(f.payload), f.flags & FrameFlag.End])).toEqual([
      [FrameKind.File, 1000, 0, 'abc', 0],
      [FrameKind.File, 1000, 3, '', FrameFlag.End],
    ]);
    expect(t.socket.frames()).toEqual([{ type: 'file_written', id: 'w1', payload: { path: '/workspace/b.txt', size: 3, mtime: stat.mtime, etag: stat.etag } }]);
  });

  it('refuses an agent answer that is not the method\'s result', async () => {
    const t = setup({ 'fs.stat': () => ({ nonsense: true }) });
    await expect(t.relay.client(t.socket.ws, 'read_file', 'r1', { path: 'a.txt' })).rejects.toMatchObject({ code: 'protocol_error' });
  });

  it('answers 413 for a JSON write over its limit before anything reaches the agent', async () => {
    const t = setup({});
    const body = JSON.stringify({ content: 'x'.repeat(2 * 1024 * 1024) });
    const req = new Request('http://edge.test/files', { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body });
    await expect(t.relay.http('put', '/workspace/c.txt', req, new URL(req.url))).rejects.toMatchObject({ code: 'payload_too_large', details: { maxBytes: 1463640 } });
    expect(t.agent.requests).toEqual([]);
  });

  it('refuses a write_file with content that is not base64', async () => {
    const t = setup({});
    await expect(t.relay.client(t.socket.ws, 'write_file', 'w1', { path: 'b.txt', content: 'not base64!', encoding: 'base64' })).rejects.toMatchObject({
      code: 'validation_failed',
      message: 'content is not valid base64',
    });
  });
});
