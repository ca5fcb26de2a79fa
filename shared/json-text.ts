/**
 * JSON text decoded as zod: the text parsed, then checked against `schema`,
 * so a value read from storage, a socket, a file or a child's output reaches
 * the code typed only when it is what was written. A text that is not JSON
 * fails the parse like a value of the wrong shape does.
 */
import { z } from 'zod';

export function jsonText<S extends z.ZodType>(schema: S) {
  return z
    .string()
    .transform((text, ctx): unknown => {
      try {
        return JSON.parse(text);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'not JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);
}
