import winston from 'winston';

/**
 * Logging for a daemon whose output goes to journald. Under systemd (JOURNAL_STREAM set) each line
 * carries a `<N>` syslog priority prefix and no timestamp, because journald adds both the time and
 * the priority field from it; elsewhere lines are plain and timestamped for a human.
 */

export type LogLevel = 'error' | 'warning' | 'notice' | 'info' | 'debug';

const syslogLevels = winston.config.syslog.levels;

export interface Logger {
  error(message: string): void;
  warning(message: string): void;
  notice(message: string): void;
  info(message: string): void;
  debug(message: string | (() => string)): void;
  setLevel(level: LogLevel): void;
  close(): Promise<void>;
}

export function journalFormat(level: string, message: string): string {
  const priority = syslogLevels[level] ?? syslogLevels.info;
  return message
    .split('\n')
    .map((line) => `<${priority}>${line}`)
    .join('\n');
}

export function plainFormat(level: string, message: string, timestamp: string): string {
  return `${timestamp} ${level.toUpperCase().padEnd(7)} ${message}`;
}

export interface LoggerOptions {
  level: LogLevel;
  /** Defaults to whether the process's output is connected to journald. */
  journal?: boolean;
  stream?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const journal = options.journal ?? Boolean(process.env.JOURNAL_STREAM);
  const format = journal
    ? winston.format.printf((info) => journalFormat(info.level, String(info.message)))
    : winston.format.combine(
        winston.format.timestamp(),
        winston.format.printf((info) => plainFormat(info.level, String(info.message), String(info.timestamp))),
      );
  const transport = options.stream
    ? new winston.transports.Stream({ stream: options.stream })
    : new winston.transports.Console({ stderrLevels: [] });
  const inner = winston.createLogger({ levels: syslogLevels, level: options.level, format, transports: [transport] });
  let level = options.level;
  return {
    error: (m) => inner.log('error', m),
    warning: (m) => inner.log('warning', m),
    notice: (m) => inner.log('notice', m),
    info: (m) => inner.log('info', m),
    debug: (m) => {
      // Debug messages can be costly to build; skip the work unless they are shown.
      if (level !== 'debug') return;
      inner.log('debug', typeof m === 'function' ? m() : m);
    },
    setLevel: (next) => {
      level = next;
      inner.level = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        inner.on('finish', () => resolve());
        inner.end();
        setTimeout(resolve, 500).unref();
      }),
  };
}

/** Formats `KEY=value` fields; values with spaces or quotes are quoted so a grep stays reliable. */
export function fields(values: Record<string, string | number | undefined>): string {
  return Object.entries(values)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${quoteValue(String(v))}`)
    .join(' ');
}

function quoteValue(value: string): string {
  if (/^[^\s"=]+$/.test(value)) return value;
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}
