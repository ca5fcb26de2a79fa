/**
 * The operator's command-line scripts (scripts/agent-token.ts,
 * scripts/agent-revoke.ts …) run against a test stack, as an operator runs them.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../../scripts/lib/stack';
import type { TestStack } from './stack';

const run = promisify(execFile);

/** Runs `scripts/<file>` with `args` against the stack's edge; rejects when it exits non-zero. */
export async function runOperatorScript(stack: TestStack, file: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts', file), ...args], {
    cwd: ROOT,
    timeout: 60_000,
    env: { ...process.env, EDGE_URL: stack.wsUrl, OPERATOR_TOKEN: stack.secrets.OPERATOR_TOKEN, STATE_DIR: stack.stateDir },
  });
}
