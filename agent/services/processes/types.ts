/**
 * Seams and settings of the per-session process manager: the data socket it
 * writes to (owned by the session link), its options, and what `list()` shows.
 */
import type { ExitInfo, Runtime } from '../../runtime/runtime';
import type { Logger } from '../../logger';
import type { StreamName } from '../../../shared/protocol/session-data';

/** One live data socket to the Session DO. The manager holds at most one at a time. */
export interface DataSink {
  /** False when the socket is not open; the frame was not queued. */
  sendBinary(bytes: Uint8Array): boolean;
  sendEvent(event: string, data: unknown): boolean;
  /** Bytes queued in the socket not yet written to the network. */
  readonly bufferedAmount: number;
}

export interface ProcessManagerOptions {
  runtime: Runtime;
  sessionId: string;
  logger: Logger;
  /** Each stream keeps at least this many of its most recent bytes for replay (default AGENT_RING_BYTES). */
  ringBytes?: number;
  /** Bytes a stream may send past the last ack (default STREAM_WINDOW_BYTES). */
  windowBytes?: number;
  /** Longest wait before output produced under load is sent (default 5 ms). */
  batchMs?: number;
  /** Largest payload of one Output frame (default 64 KiB; at most 1 MiB). */
  chunkBytes?: number;
  /** Exited processes kept for replay (default 50); the oldest fully acked go first. */
  maxExited?: number;
  /** Processes running at once (MAX_PROCESSES_PER_SESSION, default 64); more are refused with limit_exceeded. */
  maxRunning?: number;
  /** After the process exits, how long its output pipes may stay open (held by a child it left behind). */
  exitGraceMs?: number;
  /** Socket queue above which the manager stops handing frames to the sink (default 1 MiB). */
  maxSocketBufferedBytes?: number;
  /** Clock in ms (default Date.now); used for idle detection and timestamps. */
  now?: () => number;
}

export type StreamOffsets = Record<StreamName, number>;

export interface ProcessSummary {
  processId: string;
  streamBase: number;
  command: string[];
  tty: boolean;
  running: boolean;
  startedAt: number;
  endedAt?: number;
  exitCode?: number | null;
  signal?: string;
  reason?: ExitInfo['reason'];
  /** Bytes produced so far on each stream (final once `running` is false). */
  endOffsets: StreamOffsets;
}

export const DEFAULT_BATCH_MS = 5;
export const DEFAULT_CHUNK_BYTES = 1024 * 1024;
export const DEFAULT_MAX_EXITED = 50;
export const DEFAULT_EXIT_GRACE_MS = 1_000;
export const DEFAULT_MAX_SOCKET_BUFFERED = 1024 * 1024;
/** How long to wait before trying again when the socket's queue is full. */
export const SOCKET_RETRY_MS = 10;
