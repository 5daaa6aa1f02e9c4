// Structured logging. One logger per daemon; parts take a child logger with their own `component`
// field so a line always says where it came from. Lines go to stderr, one per record:
//   text: `2026-12-07T03:00:00.000Z INFO [component] message {"other":"fields"}`
//   json: `{"level":"info","message":"...","component":"...",...,"timestamp":"..."}`
// (the formats winston produced before; winston and the ~15 packages it pulls in cost berthd ~3 MB
// of RSS for what is a few lines here).

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export type LogFormat = 'text' | 'json';
export type LogMeta = Record<string, unknown>;

export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

const RANK: Record<string, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** One record as a line (without the newline). Pure; exported for tests. */
export function formatRecord(
  format: LogFormat,
  timestamp: string,
  level: string,
  message: string,
  meta: LogMeta,
): string {
  if (format === 'json') return safeJson({ level, message, ...meta, timestamp });
  const { component, ...rest } = meta;
  const extra = Object.keys(rest).length ? ' ' + safeJson(rest) : '';
  return `${timestamp} ${level.toUpperCase()} ${component ? `[${String(component)}] ` : ''}${message}${extra}`;
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
  } catch {
    return '"[unserializable]"';
  }
}

interface Sink {
  level: number;
  format: LogFormat;
  silent: boolean;
  write(line: string): void;
}

export class Logger {
  constructor(
    private readonly sink: Sink,
    private readonly meta: LogMeta = {},
  ) {}

  /** A logger whose records also carry `meta` (a child's fields win over its parent's). */
  child(meta: LogMeta): Logger {
    return new Logger(this.sink, { ...this.meta, ...meta });
  }

  isLevelEnabled(level: string): boolean {
    return !this.sink.silent && (RANK[level] ?? RANK.debug) <= this.sink.level;
  }

  log(level: string, message: string, meta?: LogMeta): void {
    if (!this.isLevelEnabled(level)) return;
    const fields = meta ? { ...this.meta, ...meta } : this.meta;
    this.sink.write(formatRecord(this.sink.format, new Date().toISOString(), level, message, fields) + '\n');
  }

  error(message: string, meta?: LogMeta): void {
    this.log('error', message, meta);
  }

  warn(message: string, meta?: LogMeta): void {
    this.log('warn', message, meta);
  }

  info(message: string, meta?: LogMeta): void {
    this.log('info', message, meta);
  }

  debug(message: string, meta?: LogMeta): void {
    this.log('debug', message, meta);
  }
}

export function createLogger(
  level: LogLevel = 'info',
  format: LogFormat = 'text',
  write: (line: string) => void = (line) => void process.stderr.write(line),
): Logger {
  return new Logger({ level: RANK[level] ?? RANK.info, format, silent: false, write });
}

/** A logger that drops everything; for unit tests of parts that take a Logger. */
export function silentLogger(): Logger {
  return new Logger({ level: -1, format: 'text', silent: true, write: () => undefined });
}
