/** The public types of a session connection (./connection.ts). */
import type { BackoffOptions } from '../../shared/backoff';
import type { SessionView } from '../../shared/api/containers';
import type { StreamName } from '../../shared/protocol/session-data';
import type { MominaiError } from './errors';
import type { FileChange } from './connection-files';
import type { GapInfo, PortInfo } from './protocol';
import type { PreviewMessagePayload } from '../../shared/protocol/preview-script';

/** The parts of a WebSocket the SDK uses (the browser's, or `ws` in Node). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface ConnectOptions {
  /** `binary` (default): output as binary frames, no UTF-8 decoding on the way. */
  output?: 'binary' | 'text';
  backoff?: BackoffOptions;
  /** Time limit for one request (ms, default 30 s). */
  requestTimeoutMs?: number;
  /** Ping interval; two intervals without any frame replace the socket (ms, default 15 s). */
  heartbeatMs?: number;
}

export type ConnectionState = 'connecting' | 'open' | 'offline' | 'closed';

export interface ConnectionEvents {
  /** The edge said `ready` (first connect and after every reconnect). */
  open: [{ session: SessionView; reconnect: boolean }];
  /** The socket closed; the connection redials unless closed or offline. */
  close: [{ code: number; reason: string }];
  status: [{ status: SessionView['status']; session?: SessionView; reason?: string }];
  'idle-warning': [{ stopAt: string; inMs: number }];
  port: [PortInfo];
  'server-ready': [{ port: number; url: string }];
  gap: [GapInfo];
  'flow-paused': [{ processId: string; stream: StreamName; offset: number }];
  'file-change': [FileChange];
  /** The edge's change journal no longer reaches back to the last version seen: re-read what you show. */
  resync: [];
  /** A preview page of this session reported an error (its reporter is on: `setPreviewScript({forwardErrors})`). */
  'preview-message': [PreviewMessagePayload];
  /** A protocol error frame that answered no request. */
  error: [MominaiError];
}
