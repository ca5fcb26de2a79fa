/**
 * Killing everything an exec started, from inside the container.
 *
 * Every exec runs with `MOMINAI_EXEC=<id>` in its environment, which its
 * children inherit, and runc makes every exec the leader of a new session
 * (and process group). The kill runs a second, short exec that
 *   1. finds the marked processes (`grep -z` over /proc/<pid>/environ) and
 *      every process whose group or session one of them leads, which catches
 *      children that cleared their environment and an interactive bash's
 *      jobs (own process groups, same session);
 *   2. freezes them with SIGSTOP and looks again, so nothing forked in
 *      between escapes;
 *   3. sends the signal(s), then SIGCONT, so a stopped process handles them.
 * It needs only `sh`, `grep` and /proc, which busybox and every dev image
 * have. It runs as the container's user, which owns the processes; a process
 * that both clears its environment and starts its own session escapes.
 */
import { shellSignal } from '../signals';

export const EXEC_MARKER = 'MOMINAI_EXEC';

const KILL_SCRIPT = `
id=$1 sigs=$2
targets() {
  t=" "
  for f in $(grep -lzx "${EXEC_MARKER}=$id" /proc/[0-9]*/environ 2>/dev/null); do
    f=\${f#/proc/}; t="$t\${f%/environ} "
  done
  [ "$t" = " " ] && return
  for f in /proc/[0-9]*/stat; do
    read -r s 2>/dev/null <"$f" || continue
    p=\${s%% *}; s=\${s##*") "}; set -- $s
    case "$t" in *" $p "*) continue;; esac
    case "$t" in *" $3 "*|*" $4 "*) t="$t$p ";; esac
  done
  echo $t
}
first=$(targets)
[ -n "$first" ] || exit 0
kill -STOP $first 2>/dev/null
all=$(targets)
kill -STOP $all 2>/dev/null
for sig in $sigs; do kill -s "$sig" $all 2>/dev/null; done
kill -CONT $all 2>/dev/null
echo $all
`;

/** argv for the killing exec; the signals are sent in order. */
export function killCommand(execId: string, signals: NodeJS.Signals[]): string[] {
  return ['sh', '-c', KILL_SCRIPT, 'mominai-kill', execId, signals.map(shellSignal).join(' ')];
}
