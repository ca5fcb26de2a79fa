/** A client's JSON frames: which of them count as activity that postpones the idle stop. */
import { describe, expect, it } from 'vitest';
import { handleClientMessage, type ClientFrameRoutes } from '../../../edge/session/client-frames';
import { FakeSocket } from '../../helpers/memory-stores';

function routes(): { routes: ClientFrameRoutes; activity: string[]; owned: string[] } {
  const activity: string[] = [];
  const owned: string[] = [];
  return {
    activity,
    owned,
    routes: {
      send: (ws, frame) => ws.send(JSON.stringify(frame)),
      processes: async (_ws, type) => {
        if (type !== 'ack' && type !== 'list_processes') return false;
        owned.push(type);
        return true;
      },
      files: async () => false,
      startPreview: async (port) => ({ port, url: `http://${port}.example`, pathUrl: `/p/${port}` }),
      session: () => ({ id: 'ses_0000000a' }),
      activity: async () => {
        activity.push('touched');
      },
    },
  };
}

describe('handleClientMessage', () => {
  describe('activity', () => {
    it('does not count a ping (a tab that merely stays open) and still answers it', async () => {
      const r = routes();
      const ws = new FakeSocket();
      await handleClientMessage(ws.ws, JSON.stringify({ type: 'ping', id: 7 }), r.routes);
      expect(r.activity).toEqual([]);
      expect(ws.frames().map((f) => [f.type, f.id])).toEqual([['pong', 7]]);
    });

    it('counts an ack (a client reading output), and hands it to the process relay', async () => {
      const r = routes();
      const ws = new FakeSocket();
      await handleClientMessage(ws.ws, JSON.stringify({ type: 'ack', payload: { processId: 'p', stream: 'stdout', offset: 10 } }), r.routes);
      expect(r.activity).toEqual(['touched']);
      expect(r.owned).toEqual(['ack']);
    });

    it('counts a request the user made (get_session, list_processes) once each', async () => {
      const r = routes();
      const ws = new FakeSocket();
      await handleClientMessage(ws.ws, JSON.stringify({ type: 'get_session', id: 1 }), r.routes);
      await handleClientMessage(ws.ws, JSON.stringify({ type: 'list_processes', id: 2 }), r.routes);
      expect(r.activity).toEqual(['touched', 'touched']);
      expect(ws.frames().map((f) => f.type)).toEqual(['session']);
    });

    it('does not count a frame that fails to decode', async () => {
      const r = routes();
      const ws = new FakeSocket();
      await handleClientMessage(ws.ws, '{"type":', r.routes);
      expect(r.activity).toEqual([]);
      expect(ws.frames().map((f) => f.type)).toEqual(['error']);
    });
  });
});
