/**
 * Structured logs: one JSON object a line on stderr, with a level.
 * LOG_LEVEL=debug (or DEBUG=* / DEBUG=mominai*) turns on detail.
 */
import { z } from 'zod';
import { jsonText } from '../shared/json-text';

const LevelName = z.enum(['debug', 'info', 'warn', 'error']);
export type Level = z.infer<typeof LevelName>;
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  level?: Level;
  base?: Record<string, unknown>;
  write?: (line: string) => void;
  now?: () => Date;
}

export function levelFromEnv(env: NodeJS.ProcessEnv): Level {
  const debug = env.DEBUG ?? '';
  if (debug === '*' || /(^|,)mominai/.test(debug)) return 'debug';
  const level = LevelName.safeParse((env.LOG_LEVEL ?? 'info').toLowerCase());
  return level.success ? level.data : 'info';
}

export function createLogger({
  level = 'info',
  base = {},
  write = (line) => process.stderr.write(line + '\n'),
  now = () => new Date(),
}: LoggerOptions = {}): Logger {
  const emit = (lvl: Level, msg: string, fields?: Record<string, unknown>) => {
    if (order[lvl] < order[level]) return;
    write(JSON.stringify({ time: now().toISOString(), level: lvl, ...base, msg, ...fields }, errorReplacer));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ level, base: { ...base, ...fields }, write, now }),
  };
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message };
  return value;
}

/** One line as the logger writes it: a JSON object. */
const LogLine = jsonText(z.record(z.string(), z.unknown()));

/** A logger that keeps lines in memory, for tests. */
export function memoryLogger(level: Level = 'debug'): Logger & { lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({ level, write: (l) => lines.push(LogLine.parse(l)) });
  return Object.assign(logger, { lines });
}
