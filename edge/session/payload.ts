/** Client frame payloads and internal bodies through their zod schema: the typed value, or one `validation_failed` error listing the problems. */
import type { z } from 'zod';
import { AppError, ErrorCode } from '../../shared/errors';
import { summariseIssues } from '../../shared/protocol/tunnel';

export function parsePayload<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  throw new AppError(ErrorCode.ValidationFailed, 'invalid payload', { issues: summariseIssues(r.error) });
}
