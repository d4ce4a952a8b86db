/** The process logger: pino, one JSON object per line, to stdout unless a destination is given (tests). */
import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';
import type { LogLevel } from './config/index.js';

export type { Logger };

/**
 * A logger at `level` (trace … fatal, or silent). Lines carry `level` as its name ("info"), an ISO `time` and `msg`;
 * pass `destination` (any stream with `write(line)`) to capture them.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}
