/**
 * Which TCP ports listen inside a session: Linux lists the sockets of a
 * network namespace in /proc/net/tcp and /proc/net/tcp6, one per line, with
 * the local address as hex `ADDR:PORT` and the state as hex (0A = LISTEN).
 * Reading them through an exec runs inside the container's namespace, so the
 * list is the container's own (on the local runtime it is the host's).
 */
import { endianness } from 'node:os';
import { AppError, ErrorCode } from '../../../shared/errors';
import type { Runtime } from '../../runtime/runtime';

const LISTEN = '0A';

export interface ParseProcNetOptions {
  /**
   * Keep sockets bound only to a loopback address (127.0.0.0/8, ::1). They
   * cannot be reached through the container's own address, so a caller that
   * connects to that address leaves them out. Default true.
   */
  includeLoopback?: boolean;
}

/** Local ports of LISTEN sockets in the text of /proc/net/tcp{,6} (any number of tables), unique and ascending. */
export function parseProcNetTcp(text: string, opts: ParseProcNetOptions = {}): number[] {
  const includeLoopback = opts.includeLoopback ?? true;
  const ports = new Set<number>();
  for (const line of text.split('\n')) {
    // "  0: 0100007F:1F90 00000000:0000 0A ..." — the header line fails the match.
    const m = /^\s*\d+:\s+([0-9A-Fa-f]+):([0-9A-Fa-f]{4})\s+[0-9A-Fa-f]+:[0-9A-Fa-f]{4}\s+([0-9A-Fa-f]{2})\s/.exec(line);
    if (!m || m[3]!.toUpperCase() !== LISTEN) continue;
    const port = parseInt(m[2]!, 16);
    if (port === 0) continue;
    if (!includeLoopback && isLoopbackHex(m[1]!)) continue;
    ports.add(port);
  }
  return [...ports].sort((a, b) => a - b);
}

/**
 * The kernel prints an address as 32-bit words in host byte order, so on a
 * little-endian machine 127.0.0.1 reads `0100007F`.
 */
function addressBytes(hex: string): number[] | null {
  if (hex.length !== 8 && hex.length !== 32) return null;
  const bytes: number[] = [];
  const little = endianness() === 'LE';
  for (let w = 0; w < hex.length; w += 8) {
    const word = [0, 2, 4, 6].map((i) => parseInt(hex.slice(w + i, w + i + 2), 16));
    bytes.push(...(little ? word.reverse() : word));
  }
  return bytes;
}

function isLoopbackHex(hex: string): boolean {
  const b = addressBytes(hex);
  if (!b) return false;
  if (b.length === 4) return b[0] === 127;
  const zeros = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  if (zeros(0, 15) && b[15] === 1) return true; // ::1
  return zeros(0, 10) && b[10] === 0xff && b[11] === 0xff && b[12] === 127; // ::ffff:127.x.x.x
}

export interface ExecListListeningOptions extends ParseProcNetOptions {
  /** Longest an exec may take before it is killed and the poll fails (default 5 s). */
  timeoutMs?: number;
  /** Most output read from the exec (default 4 MiB, about 25,000 sockets). */
  maxBytes?: number;
}

/**
 * A `listListening` for PreviewService built on Runtime.exec: it runs
 * `cat /proc/net/tcp /proc/net/tcp6` in the session and parses the result.
 * One exec per poll (about 40 ms with Docker). Pass
 * `includeLoopback: runtime.mode === 'local'`: in a container, a server bound
 * to 127.0.0.1 is not reachable at the container's address.
 */
export function execListListening(runtime: Runtime, sessionId: string, opts: ExecListListeningOptions = {}): () => Promise<number[]> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const maxBytes = opts.maxBytes ?? 4 * 1024 * 1024;
  return async () => {
    const proc = await runtime.exec(sessionId, { command: ['sh', '-c', 'cat /proc/net/tcp /proc/net/tcp6 2>/dev/null'], tty: false });
    const chunks: Buffer[] = [];
    let size = 0;
    proc.stdout.on('data', (chunk: Buffer) => {
      if (size >= maxBytes) return;
      chunks.push(chunk);
      size += chunk.byteLength;
    });
    proc.stderr?.resume();
    const ended = new Promise<void>((resolve) => {
      proc.stdout.once('end', resolve);
      proc.stdout.once('close', resolve);
      proc.stdout.once('error', () => resolve());
    });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    try {
      const outcome = await Promise.race([Promise.all([proc.exited, ended]), timedOut]);
      if (outcome === 'timeout') {
        void proc.kill('SIGKILL').catch(() => undefined);
        throw new AppError(ErrorCode.Timeout, `listing listening ports took longer than ${timeoutMs} ms`);
      }
      // 126/127: the shell found no `cat`. Any other status still leaves the tables cat could read
      // (a kernel without IPv6 has no /proc/net/tcp6).
      const [exit] = outcome;
      if (exit.exitCode === 126 || exit.exitCode === 127) {
        throw new AppError(ErrorCode.BadRequest, 'the session image has no `cat`: listening ports cannot be detected');
      }
    } finally {
      clearTimeout(timer);
    }
    return parseProcNetTcp(Buffer.concat(chunks).toString('latin1'), opts);
  };
}
