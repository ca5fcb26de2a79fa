/**
 * The Session DO's preview relay with an in-memory agent link: what it sends
 * for a request and how it takes each kind of answer (an HttpHead frame with
 * or without the body, http.error, nothing), using the real EdgeByteStreams.
 */
import { describe, expect, it } from 'vitest';
import { FrameFlag, FrameKind, decodeBinaryFrame, type BinaryFrame } from '../../../shared/protocol/binary';
import { encodeHttpHead } from '../../../shared/protocol/preview';
import { EdgeByteStreams } from '../../../edge/session/byte-streams';
import { PreviewRelay, type PreviewRequestInfo } from '../../../edge/session/preview-relay';
import type { AgentLink } from '../../../edge/session/process-relay';
import type { SessionRecord } from '../../../edge/session/record';
import { until } from '../../helpers/wait';

// workerd's FixedLengthStream, for Node: a write resolves once it is read, and a stream
// that ends short of its length errors (the runtime behaviour the relay relies on).
if (!('FixedLengthStream' in globalThis)) {
  class FixedLengthStream extends TransformStream<Uint8Array, Uint8Array> {
    constructor(length: number) {
      let seen = 0;
      super(
        {
          transform(chunk, c) {
            seen += chunk.byteLength;
            if (seen > length) throw new Error('more bytes than the declared length');
            c.enqueue(chunk);
          },
          flush() {
            if (seen !== length) throw new Error('fewer bytes than the declared length');
          },
        },
        { highWaterMark: 0 },
        { highWaterMark: 0 },
      );
    }
  }
  (globalThis as Record<string, unknown>).FixedLengthStream = FixedLengthStream;
}

const record: SessionRecord = {
  id: 'ses_1',
  userId: 'usr_1',
  agentId: 'agt_1',
  name: 's',
  image: 'i',
  status: 'running',
  ports: [3000],
  env: [],
  createdAt: 0,
  lastActiveAt: 0,
  limits: { cpu: 1, memory: 1 },
  publicPorts: [3000],
};

const info: PreviewRequestInfo = { userId: null, port: 3000, path: '/x', prefix: '/preview/ses_1', origin: 'http://edge.test', cookieName: 'c' };

function setup() {
  const events: Array<{ event: string; data: Record<string, unknown> }> = [];
  const frames: BinaryFrame[] = [];
  const sink = {
    sendBinary: (b: Uint8Array) => (frames.push(decodeBinaryFrame(b.slice())), true),
    sendEvent: (event: string, data: unknown) => (events.push({ event, data: data as Record<string, unknown> }), true),
  };
  const streams = new EdgeByteStreams(() => sink);
  const link: AgentLink = { request: async () => ({}), sendBinary: sink.sendBinary, sendEvent: sink.sendEvent };
  let next = 10;
  const relay = new PreviewRelay({
    agent: async () => link,
    streams,
    nextStreamIds: (n) => ((next += n), next - n),
    record: () => record,
    saveRecord: async () => undefined,
    publicOrigin: () => 'http://edge.test',
    domain: 'preview.test',
    acceptPreviewSocket: () => undefined,
    previewSockets: () => [],
    broadcast: () => undefined,
  });
  const head = (streamBase: number, status: number, headers: Array<[string, string]>, body?: Uint8Array, flags: number = FrameFlag.End) => {
    const frame = { kind: FrameKind.HttpHead, flags, streamId: streamBase + 1, offset: 0, payload: encodeHttpHead({ status, headers }, body) } as BinaryFrame;
    if (!relay.onBinary(frame)) throw new Error('not taken');
  };
  return { relay, streams, events, frames, head };
}

describe('PreviewRelay › http', () => {
  it('sends http.request as an event and answers with an inline body in one frame', async () => {
    const t = setup();
    const res = t.relay.http(new Request('http://edge.test/preview/ses_1/x'), info);
    await until(() => t.events.length === 1, 'the http.request event');
    expect(t.events[0]).toMatchObject({ event: 'http.request', data: { streamBase: 10, port: 3000, method: 'GET', path: '/x', hasBody: false } });
    t.head(10, 200, [['content-type', 'text/plain'], ['location', '/next']], new TextEncoder().encode('hi'));
    const r = await res;
    expect(r.status).toBe(200);
    expect(r.headers.get('location')).toBe('/preview/ses_1/next');
    expect(await r.text()).toBe('hi');
  });

  it('turns http.error into the agent\'s error', async () => {
    const t = setup();
    const res = t.relay.http(new Request('http://edge.test/preview/ses_1/x'), info);
    await until(() => t.events.length === 1, 'the http.request event');
    expect(t.relay.onEvent({ event: 'http.error', data: { streamBase: 10, error: { code: 'agent_unavailable', message: 'nothing is listening' } } })).toBe(true);
    await expect(res).rejects.toMatchObject({ code: 'agent_unavailable', message: 'nothing is listening' });
  });

  it('stops sending an upload the agent refused', async () => {
    const t = setup();
    const body = new ReadableStream<Uint8Array>({ pull: (c) => c.enqueue(new Uint8Array(64 * 1024)) });
    const res = t.relay.http(new Request('http://edge.test/preview/ses_1/x', { method: 'POST', body, duplex: 'half' } as RequestInit), info);
    // The body goes out until the window is full: no acks come.
    await until(() => t.frames.length > 0, 'the first body frame');
    const sentBytes = () => t.frames.reduce((n, f) => n + f.payload.byteLength, 0);
    await until(() => sentBytes() >= 4 * 1024 * 1024, 'a full window of body frames');
    expect(t.streams.onAck(10, 0)).toBe(true); // the sender waits for acks: the window is full
    t.relay.onEvent({ event: 'http.error', data: { streamBase: 10, error: { code: 'agent_unavailable', message: 'refused' } } });
    await expect(res).rejects.toMatchObject({ code: 'agent_unavailable' });
    // The sender stopped and let go of the stream; it does not wait for acks that cannot come.
    await until(() => !t.streams.onAck(10, 0), 'the sender to let go of the stream');
    const sent = t.frames.length;
    await new Promise((r) => setTimeout(r, 50));
    expect(t.frames.length).toBe(sent);
  });

  it('streams a body of known length with its Content-Length, acking as it is read', async () => {
    const t = setup();
    const res = t.relay.http(new Request('http://edge.test/preview/ses_1/big'), info);
    await until(() => t.events.length === 1, 'the http.request event');
    const total = 600 * 1024;
    t.head(10, 200, [['content-length', String(total)]], undefined, 0);
    const r = await res;
    expect(r.headers.get('content-length')).toBe(String(total));
    const reading = r.arrayBuffer();
    const first = 300 * 1024;
    t.streams.onBinary({ kind: FrameKind.HttpBody, flags: 0, streamId: 11, offset: 0, payload: new Uint8Array(first).fill(1) });
    // Acked once the reader took it, not on arrival.
    await until(() => t.events.some((e) => e.event === 'ack' && e.data.streamId === 11 && e.data.offset === first), 'the ack of the first part');
    t.streams.onBinary({ kind: FrameKind.HttpBody, flags: FrameFlag.End, streamId: 11, offset: first, payload: new Uint8Array(total - first).fill(2) });
    expect((await reading).byteLength).toBe(total);
  });

  it('errors a body the agent gave up on, and tells the agent when the reader leaves', async () => {
    const t = setup();
    const cut = t.relay.http(new Request('http://edge.test/preview/ses_1/a'), info);
    await until(() => t.events.length === 1, 'the http.request event');
    t.head(10, 200, [['content-length', '1000']], undefined, 0);
    const r = await cut;
    const reading = r.arrayBuffer();
    t.streams.onBinary({ kind: FrameKind.HttpBody, flags: 0, streamId: 11, offset: 0, payload: new Uint8Array(100) });
    expect(t.streams.abortIncoming(11)).toBe(true);
    await expect(reading).rejects.toBeTruthy();
    expect(t.events.filter((e) => e.event === 'stream.abort')).toEqual([]);

    const left = t.relay.http(new Request('http://edge.test/preview/ses_1/b'), info);
    await until(() => t.events.filter((e) => e.event === 'http.request').length === 2, 'the second http.request event');
    t.head(12, 200, [['content-type', 'text/event-stream']], undefined, 0);
    await (await left).body!.cancel();
    expect(t.events.filter((e) => e.event === 'stream.abort')).toEqual([{ event: 'stream.abort', data: { streamId: 13 } }]);
  });
});
