/** Signal names the runtimes accept, and what a kill sends. */
import os from 'node:os';
import { AppError, ErrorCode } from '../../shared/errors';

/** 'SIGTERM' → 'TERM', refusing names the kernel does not know. */
export function shellSignal(signal: string): string {
  if (!(signal in os.constants.signals)) throw new AppError(ErrorCode.ValidationFailed, `unknown signal "${signal}"`);
  return signal.replace(/^SIG/, '');
}

/**
 * What a kill sends. An interactive shell ignores SIGTERM, so on a terminal
 * SIGTERM comes after SIGHUP, which is what closing a terminal sends.
 */
export function signalsFor(signal: NodeJS.Signals, tty: boolean): NodeJS.Signals[] {
  return tty && signal === 'SIGTERM' ? ['SIGHUP', 'SIGTERM'] : [signal];
}
