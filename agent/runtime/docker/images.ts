/**
 * Images: present locally, or pulled within a bounded time, or a clear
 * `image_not_found`. A create never hangs on a registry that does not answer.
 */
import type Docker from 'dockerode';
import { z } from 'zod';
import { jsonText } from '../../../shared/json-text';
import { AppError, ErrorCode } from '../../../shared/errors';
import type { Logger } from '../../logger';
import { dockerMessage, dockerStatus, isNotFound } from './docker-errors';

/** A line of the engine's pull progress; one with `error` says the pull failed. */
const PullLine = jsonText(z.object({ error: z.string().optional() }));

export interface LocalImage {
  id: string;
  /** The image's configured USER ('' when unset). */
  user: string;
}

export interface ImageStoreOptions {
  docker: Docker;
  logger: Logger;
  /** Longest a pull may take before the create fails (ms). */
  pullTimeoutMs: number;
}

export class ImageStore {
  /** One pull per reference at a time: concurrent creates of the same image share it. */
  private readonly pulls = new Map<string, Promise<void>>();

  constructor(private readonly opts: ImageStoreOptions) {}

  async ensure(ref: string): Promise<LocalImage> {
    // The characters a reference may hold; the engine checks the grammar (400 below).
    if (!/^[A-Za-z0-9][A-Za-z0-9._\-/:@+]{0,254}$/.test(ref)) {
      throw new AppError(ErrorCode.ValidationFailed, `"${ref.slice(0, 100)}" is not a valid image reference`);
    }
    const local = await this.inspect(ref);
    if (local) return local;
    let pull = this.pulls.get(ref);
    if (!pull) {
      pull = this.pull(ref).finally(() => this.pulls.delete(ref));
      this.pulls.set(ref, pull);
    }
    await pull;
    const pulled = await this.inspect(ref);
    if (!pulled) throw notFound(ref, 'the pull finished but the engine does not list it');
    return pulled;
  }

  private async inspect(ref: string): Promise<LocalImage | undefined> {
    try {
      const info = await this.opts.docker.getImage(ref).inspect();
      return { id: info.Id, user: info.Config?.User ?? '' };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      if (dockerStatus(err) === 400) throw new AppError(ErrorCode.ValidationFailed, `"${ref}" is not a valid image reference`);
      throw err;
    }
  }

  private async pull(ref: string): Promise<void> {
    const { docker, logger, pullTimeoutMs } = this.opts;
    const started = Date.now();
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), pullTimeoutMs);
    logger.info('pulling image', { image: ref, timeoutMs: pullTimeoutMs });
    try {
      const stream = (await docker.pull(ref, { abortSignal: abort.signal })) as NodeJS.ReadableStream;
      await readPullProgress(stream);
      logger.info('pulled image', { image: ref, ms: Date.now() - started });
    } catch (err) {
      const reason = abort.signal.aborted ? `the pull did not finish within ${Math.round(pullTimeoutMs / 1000)} s` : dockerMessage(err);
      logger.warn('image pull failed', { image: ref, reason, ms: Date.now() - started });
      throw notFound(ref, reason);
    } finally {
      clearTimeout(timer);
    }
  }
}

function notFound(ref: string, reason: string): AppError {
  return new AppError(
    ErrorCode.ImageNotFound,
    `Image "${ref}" is not on this host and could not be pulled: ${reason}`,
    { image: ref },
  );
}

/** Resolves when the engine's progress stream ends; rejects on the first `{error}` line. */
function readPullProgress(stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    let pending = '';
    let failed = false;
    const fail = (err: Error) => {
      if (failed) return;
      failed = true;
      reject(err);
    };
    stream.on('data', (chunk: Buffer | string) => {
      pending += chunk.toString();
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl).trim();
        pending = pending.slice(nl + 1);
        if (!line) continue;
        // Progress lines that are not JSON, or carry no error, tell nothing we need.
        const msg = PullLine.safeParse(line);
        if (msg.success && msg.data.error) fail(new Error(msg.data.error));
      }
    });
    stream.on('error', (err: Error) => fail(err));
    stream.on('end', () => (failed ? undefined : resolve()));
  });
}
