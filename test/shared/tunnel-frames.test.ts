import { describe, expect, it } from 'vitest';
import { AgentToEdgeFrame, EdgeToAgentFrame, parseFrame } from '../../shared/protocol/tunnel';
import { ErrorCode } from '../../shared/errors';

const system = { hostname: 'h', platform: 'linux', arch: 'x64', cpus: 2, loadavg: [0, 0, 0], memTotal: 1, memFree: 1, uptime: 1 };
const hello = {
  type: 'hello',
  protocolVersion: 1,
  agent: { name: 'a', version: '0.1.0', mode: 'docker', capacity: { maxSessions: 5 }, docker: { available: true, version: '20.10' }, system },
  sessions: [{ sessionId: 'ses_1', userId: 'usr_1', containerId: 'abc', state: 'running' }],
};

const agentFrames: Record<string, unknown> = {
  hello,
  heartbeat: { type: 'heartbeat', seq: 3, system, activeSessions: 0 },
  req: { type: 'req', id: 'r1', method: 'x.y', params: { a: 1 } },
  'res ok': { type: 'res', id: 'r1', ok: true, result: [1] },
  'res error': { type: 'res', id: 'r1', ok: false, error: { code: 'not_found', message: 'no' } },
  event: { type: 'event', event: 'port', data: { port: 3000 } },
  error: { type: 'error', id: 'r9', error: { code: 'protocol_error', message: 'bad' } },
};
const edgeFrames: Record<string, unknown> = {
  welcome: { type: 'welcome', protocolVersion: 1, agentId: 'agt_1', heartbeatIntervalMs: 5000 },
  heartbeat_ack: { type: 'heartbeat_ack', seq: 3 },
  req: agentFrames.req,
  'res ok': agentFrames['res ok'],
  'res error': agentFrames['res error'],
  event: agentFrames.event,
  error: agentFrames.error,
};

describe('tunnel control frames', () => {
  describe('agent → edge', () => {
    it.each(Object.entries(agentFrames))('round-trips %s', (_name, frame) => {
      const r = parseFrame(AgentToEdgeFrame, JSON.stringify(frame));
      expect(r.ok).toBe(true);
      if (r.ok) expect(r.frame).toEqual(frame);
    });
    it('refuses an edge-only frame', () => {
      const r = parseFrame(AgentToEdgeFrame, JSON.stringify(edgeFrames.welcome));
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.code).toBe(ErrorCode.ProtocolError);
    });
  });

  describe('edge → agent', () => {
    it.each(Object.entries(edgeFrames))('round-trips %s', (_name, frame) => {
      const r = parseFrame(EdgeToAgentFrame, JSON.stringify(frame));
      expect(r.ok).toBe(true);
      if (r.ok) expect(r.frame).toEqual(frame);
    });
    it('refuses an agent-only frame', () => {
      expect(parseFrame(EdgeToAgentFrame, JSON.stringify(hello)).ok).toBe(false);
    });
  });

  describe('rejections', () => {
    it.each([
      ['not JSON', '{nope', ErrorCode.InvalidJson],
      ['a JSON string', '"hello"', ErrorCode.ProtocolError],
      ['null', 'null', ErrorCode.ProtocolError],
      ['an array', '[1,2]', ErrorCode.ProtocolError],
      ['no type', '{"id":"x"}', ErrorCode.ProtocolError],
      ['an unknown type', '{"type":"launch_missiles"}', ErrorCode.ProtocolError],
      ['hello without agent', '{"type":"hello","protocolVersion":1,"sessions":[]}', ErrorCode.ProtocolError],
      ['hello with a bad mode', JSON.stringify({ ...hello, agent: { ...hello.agent, mode: 'vm' } }), ErrorCode.ProtocolError],
      ['a heartbeat with a negative seq', JSON.stringify({ type: 'heartbeat', seq: -1, system, activeSessions: 0 }), ErrorCode.ProtocolError],
      ['a req without id', '{"type":"req","method":"m","params":{}}', ErrorCode.ProtocolError],
      ['a req with an empty id', '{"type":"req","id":"","method":"m","params":{}}', ErrorCode.ProtocolError],
      ['a res with ok=false and no error', '{"type":"res","id":"a","ok":false}', ErrorCode.ProtocolError],
      ['a frame over 1 MiB', JSON.stringify({ type: 'event', event: 'x', data: 'a'.repeat(1024 * 1024) }), ErrorCode.PayloadTooLarge],
    ])('%s', (_name, text, code) => {
      const r = parseFrame(AgentToEdgeFrame, text);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.code).toBe(code);
    });

    it('echoes the id of an invalid frame that has one', () => {
      const r = parseFrame(AgentToEdgeFrame, '{"type":"req","id":"abc","method":7}');
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.id).toBe('abc');
    });
  });

  it('never throws on garbage (fuzz: 10,000 mutated frames)', () => {
    let seed = 99;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const samples = [...Object.values(agentFrames), ...Object.values(edgeFrames)].map((f) => JSON.stringify(f));
    const junk = ['{', '}', '"', ':', ',', 'null', '1e999', '[]', '\\u0000', 'true', '-', '"type"', '"hello"'];
    let rejected = 0;
    for (let i = 0; i < 10_000; i++) {
      let text = samples[Math.floor(rand() * samples.length)]!;
      const edits = 1 + Math.floor(rand() * 4);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(rand() * text.length);
        text = rand() < 0.5 ? text.slice(0, at) + junk[Math.floor(rand() * junk.length)] + text.slice(at + 1) : text.slice(0, at) + text.slice(at + 2);
      }
      for (const schema of [AgentToEdgeFrame, EdgeToAgentFrame]) {
        const r = parseFrame(schema, text);
        if (!r.ok) rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(10_000);
  });
});
