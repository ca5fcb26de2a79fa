/**
 * The agent's data socket of one session, at the edge: finding it (after a
 * wake too: the runtime keeps the socket, tagged `agent`), waiting a while
 * for it while the agent (re)connects, requests over it (`req` frames settled
 * through PendingRequests), and routing what the agent sends to the relays.
 */
import { AppError, ErrorCode } from '../../shared/errors';
import { decodeBinaryFrame, FrameDecodeError, FrameKind, type BinaryFrame } from '../../shared/protocol/binary';
import { AgentToEdgeFrame, parseFrame } from '../../shared/protocol/tunnel';
import { log } from '../log';
import { PendingRequests } from '../relay/pending';
import { socketLink, waitOrTimeout } from '../relay/socket-link';
import type { AgentLink } from './process-relay';

/** How long a client request waits for the agent's data socket to (re)appear. */
const AGENT_WAIT_MS = 15_000;

/** Where the agent's frames go. */
export interface AgentFrameRoutes {
  /** Process output (FrameKind.Output). */
  output(frame: BinaryFrame): void;
  /** Any other binary frame; false when nobody took it. */
  binary(frame: BinaryFrame): void;
  event(event: string, data: unknown): void;
  /** Something arrived from the agent (activity). */
  activity(): Promise<void>;
}

export class AgentChannel {
  readonly pending = new PendingRequests();
  private waiters: Array<() => void> = [];

  constructor(private readonly sockets: () => WebSocket[]) {}

  socket(): WebSocket | undefined {
    return this.sockets().find((ws) => ws.readyState === WebSocket.READY_STATE_OPEN);
  }

  /** The data socket as a link; waits a while for it when the agent is (re)connecting. */
  async link(): Promise<AgentLink> {
    let ws = this.socket();
    if (!ws) {
      await waitOrTimeout(this.waiters, AGENT_WAIT_MS);
      ws = this.socket();
    }
    if (!ws) throw new AppError(ErrorCode.AgentUnavailable, "the session's agent is not connected");
    return socketLink(ws, this.pending);
  }

  /** A new data socket was accepted: whoever waits for one may go on (once the socket has finished opening). */
  attached(): void {
    const waiters = this.waiters;
    this.waiters = [];
    setTimeout(() => waiters.forEach((w) => w()), 0);
  }

  /** The data socket went away: if no other is open, everything waiting on the agent fails. */
  gone(): boolean {
    if (this.socket()) return false;
    this.pending.failOwner('agent', new AppError(ErrorCode.AgentUnavailable, "the agent's data socket closed"));
    return true;
  }

  async onMessage(message: string | ArrayBuffer, routes: AgentFrameRoutes): Promise<void> {
    if (typeof message !== 'string') {
      let frame: BinaryFrame;
      try {
        frame = decodeBinaryFrame(message);
      } catch (err) {
        if (!(err instanceof FrameDecodeError)) throw err;
        return log('warn', 'bad binary frame from agent', { error: err.message });
      }
      if (frame.kind === FrameKind.Output) routes.output(frame);
      else routes.binary(frame);
      return routes.activity();
    }
    const parsed = parseFrame(AgentToEdgeFrame, message);
    if (!parsed.ok) return log('warn', 'bad frame from agent', { code: parsed.error.code, message: parsed.error.message });
    const f = parsed.frame;
    if (f.type === 'res') this.pending.settle(f);
    else if (f.type === 'event') routes.event(f.event, f.data);
    else if (f.type === 'error') log('warn', 'agent reported an error', { error: f.error });
  }
}
