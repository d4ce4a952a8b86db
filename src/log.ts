/**
 * The process logger: pino, one JSON object per line (LOG_FORMAT=json, for machines), or one coloured readable line
 * per event (LOG_FORMAT=pretty, for a terminal, through pino-pretty in the same process). Either way to stdout
 * unless a destination is given (tests).
 */
import { createRequire } from 'node:module';
import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';
import type PinoPrettyModule from 'pino-pretty';
import type { LogFormat, LogLevel } from './config/index.js';

export type { Logger };

/**
 * A logger at `level` (trace … fatal, or silent). JSON lines carry `level` as its name ("info"), an ISO `time` and
 * `msg`; pass `destination` (any stream with `write(line)`) to capture them. Pretty lines put the time, level and
 * message first, then the fields on the same line (a request's `chat` line shows its decision right after "chat").
 */
export function createLogger(level: LogLevel, destination?: DestinationStream, format: LogFormat = 'json'): Logger {
  if (format === 'pretty') {
    // Loaded only when asked for: JSON logging (the default, and production) does not carry it.
    const { PinoPretty } = createRequire(import.meta.url)('pino-pretty') as typeof PinoPrettyModule;
    const pretty = PinoPretty({
      sync: true,
      singleLine: true,
      colorize: destination === undefined && process.stdout.isTTY === true,
      translateTime: 'SYS:HH:MM:ss.l',
      messageFormat: '{msg}{if decision} {decision}{end}',
      ...(destination !== undefined && { destination }),
    });
    // Numeric levels and epoch times: what pino-pretty reads.
    return pino({ level, base: undefined }, pretty);
  }
  const options = {
    level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}
