/**
 * Routes `req` frames from the edge to handlers. Each method declares a zod
 * schema for its params; the dispatcher validates (never casts), runs the
 * handler and answers with exactly one `res` frame, ok or error.
 */
import type { z } from 'zod';
import { decodeSessionParams, type SessionMethod, type SessionParamsDecoded, type SessionResultOut } from '../../shared/protocol/session-channel';
import { AppError, ErrorCode, fromUnknown } from '../../shared/errors';
import { summariseIssues, type RequestFrame, type ResponseFrame } from '../../shared/protocol/tunnel';
import type { Logger } from '../logger';

type Handler = (params: unknown) => Promise<unknown>;

export class Dispatcher {
  private readonly handlers = new Map<string, Handler>();

  constructor(private readonly logger: Logger) {}

  on<S extends z.ZodType>(method: string, schema: S, handler: (params: z.infer<S>) => Promise<unknown>): this {
    this.handlers.set(method, async (raw) => {
      const parsed = schema.safeParse(raw);
      if (!parsed.success) {
        throw new AppError(ErrorCode.ValidationFailed, `invalid params for ${method}`, { issues: summariseIssues(parsed.error) });
      }
      return handler(parsed.data);
    });
    return this;
  }

  /** A session-channel method (../../shared/protocol/session-channel.ts): params decoded by the channel's own schema, the result typed. */
  method<M extends SessionMethod>(method: M, handler: (params: SessionParamsDecoded<M>) => Promise<SessionResultOut<M>>): this {
    this.handlers.set(method, async (raw) => handler(decodeSessionParams(method, raw)));
    return this;
  }

  async handle(frame: RequestFrame): Promise<ResponseFrame> {
    const handler = this.handlers.get(frame.method);
    if (!handler) {
      return { type: 'res', id: frame.id, ok: false, error: { code: ErrorCode.NotFound, message: `unknown method "${frame.method}"` } };
    }
    try {
      const result = await handler(frame.params);
      return { type: 'res', id: frame.id, ok: true, result: result ?? null };
    } catch (err) {
      const e = fromUnknown(err);
      if (e.code === ErrorCode.Internal) this.logger.error('request failed', { method: frame.method, error: err });
      return { type: 'res', id: frame.id, ok: false, error: e.toBody() };
    }
  }
}
