/**
 * Setup file (vitest.config.ts): when a test fails while real stacks run, the
 * warnings and errors their edge and agents logged are printed with it, so a
 * failure seen only in CI (where nobody can look at the processes) says what
 * the stack saw: a lapsed heartbeat, a reset Durable Object, a refused frame.
 */
import { afterEach } from 'vitest';
import { liveStacks } from './stack';

afterEach((ctx) => {
  if (ctx.task.result?.state !== 'fail' || liveStacks.size === 0) return;
  for (const stack of liveStacks) process.stderr.write(`\n[failure digest] ${ctx.task.name}\n${stack.digest()}\n`);
});
