/**
 * `spawn` for the WebContainer facade. Every process runs in a PTY, as in
 * WebContainers: `output` is the terminal's text (stdout and stderr
 * together), `input` its keyboard. `jsh` (`jsh`, `/bin/jsh`), WebContainers'
 * shell, starts the image's interactive shell: bash where the image has it,
 * else sh. With `--osc` it prints jsh's OSC 654 markers, from the shell
 * itself (a bash rc file read from an environment variable):
 *
 *   ESC ] 654 ; interactive BEL      once, when the shell first takes input
 *   ESC ] 654 ; prompt BEL           before every prompt
 *   ESC ] 654 ; exit=<pid>:<code> BEL after every command line that ran a command
 *
 * `exit=` carries the exit code second, the way bolt.new, bolt.diy and
 * TutorialKit read it (`/\x1b\]654;([^\x07=]+)=?((-?\d+):(\d+))?\x07/`, code =
 * the last group); the first number is the shell's pid. busybox sh has no
 * PROMPT_COMMAND or DEBUG trap: there the markers come from `PS1` (prompt
 * only, plus `interactive` once), and no `exit=` is printed.
 */
import type { SessionConnection } from '../connection';
import type { ProcessExit, ProcessHandle } from '../process';
import { containerPath } from './fs';
import type { SpawnOptions, WebContainerProcess } from './types';

const ESC = '\x1b]654;';
const BEL = '\x07';

/** The bash rc of `jsh --osc`: the user's ~/.bashrc, then the markers. */
export const JSH_BASH_RC = [
  '[ -f ~/.bashrc ] && . ~/.bashrc',
  '__mominai_ran=',
  '__mominai_started=',
  // DEBUG runs before each simple command; the prompt hook itself does not count as one.
  '__mominai_preexec() { [ "$BASH_COMMAND" = __mominai_prompt ] || __mominai_ran=1; }',
  "trap '__mominai_preexec' DEBUG",
  '__mominai_prompt() {',
  '  local code=$?',
  `  if [ -z "$__mominai_started" ]; then __mominai_started=1; printf '\\033]654;interactive\\007';`,
  `  elif [ -n "$__mominai_ran" ]; then printf '\\033]654;exit=%s:%s\\007' "$$" "$code"; fi`,
  '  __mominai_ran=',
  `  printf '\\033]654;prompt\\007'`,
  '}',
  'PROMPT_COMMAND=__mominai_prompt',
].join('\n');

/** Runs in `sh -c`: bash with the rc above when the image has bash, else sh with markers in PS1. */
const JSH_LAUNCH_OSC = [
  'if command -v bash >/dev/null 2>&1; then exec bash -c "$MOMINAI_JSH_BASH"; fi',
  `printf '\\033]654;interactive\\007'`,
  'exec sh -i',
].join('\n');
const JSH_LAUNCH = 'if command -v bash >/dev/null 2>&1; then exec bash -i; else exec sh -i; fi';
/** Only bash parses `<(…)`, so it travels in a variable sh never evaluates. */
const JSH_BASH = 'exec bash --rcfile <(printf "%s" "$MOMINAI_JSH_RC") -i';

export const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGUSR1: 10, SIGUSR2: 12, SIGTERM: 15 };

/** WebContainers' exit number: the code, or 128 + the signal's number for a killed process. */
export function exitNumber(e: ProcessExit): number {
  if (e.exitCode !== null) return e.exitCode;
  return 128 + (SIGNALS[e.signal ?? ''] ?? 9);
}

export async function spawnProcess(conn: SessionConnection, command: string, args: string[], opts: SpawnOptions, shown?: string): Promise<WebContainerProcess & { processId: string; handle: ProcessHandle }> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.env ?? {})) env[k] = String(v);
  env.TERM ??= 'xterm-256color';
  const cols = opts.terminal?.cols ?? 80;
  const rows = opts.terminal?.rows ?? 24;
  const cwd = opts.cwd === undefined ? undefined : containerPath(opts.cwd, shown);
  let argv: string[];
  if (command === 'jsh' || command === '/bin/jsh') {
    const osc = args.includes('--osc');
    const rest = args.filter((a) => a !== '--osc');
    if (rest[0] === '-c' && rest.length > 1) {
      // `jsh -c "line"`: the line in the image's shell.
      argv = ['sh', '-c', `if command -v bash >/dev/null 2>&1; then exec bash -c "$0"; else exec sh -c "$0"; fi`, rest.slice(1).join(' ')];
    } else if (osc) {
      env.MOMINAI_JSH_RC = JSH_BASH_RC;
      env.MOMINAI_JSH_BASH = JSH_BASH;
      env.PS1 ??= `${ESC}prompt${BEL}$ `;
      argv = ['sh', '-c', JSH_LAUNCH_OSC];
    } else {
      argv = ['sh', '-c', JSH_LAUNCH];
    }
  } else {
    argv = [command, ...args];
  }
  const handle = await conn.exec(argv[0]!, argv.slice(1), { tty: true, cols, rows, env, ...(cwd ? { cwd } : {}) });
  let output: ReadableStream<string>;
  if (opts.output === false) {
    handle.discard();
    output = new ReadableStream<string>({ start: (c) => c.close() });
  } else {
    output = handle.text;
  }
  const input = new WritableStream<string>({ write: (chunk) => handle.write(chunk) });
  return {
    processId: handle.processId,
    handle,
    output,
    input,
    exit: handle.exit.then(exitNumber),
    kill: () => {
      // A terminal's shell ignores SIGTERM; hang it up as a closed terminal would, then make sure.
      handle.kill('SIGHUP').catch(() => undefined);
      const timer = setTimeout(() => handle.kill('SIGKILL').catch(() => undefined), 2_000);
      void handle.exit.then(() => clearTimeout(timer));
    },
    resize: ({ cols: c, rows: r }) => void handle.resize(c, r).catch(() => undefined),
  };
}
