/**
 * Preloaded into the proxy process by the soak (`node --import …/lag-probe.js dist/src/cli.js`), so the proxy itself
 * exposes nothing new: every PERIOD_MS it appends one JSON line to the file named by SOAK_LAG_FILE with the
 * event-loop lag the process saw in that period (perf_hooks' delay histogram, in ms beyond the sampling interval)
 * and its heap use. Without
 * SOAK_LAG_FILE it does nothing.
 */
import { openSync, writeSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';

const PERIOD_MS = 500;
const RESOLUTION_MS = 10;

/** One line of the lag file. */
export interface LagSample {
  /** Epoch ms at the end of the period. */
  t: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
  heapUsedMb: number;
  /** This line follows a full garbage collection asked for with SIGUSR2. */
  gc?: true;
  /** gc lines: heap memory V8 keeps committed (used or not), MB. */
  heapCommittedMb?: number;
  /** gc lines: memory of Buffers and other objects outside the V8 heap, MB. */
  externalMb?: number;
}

const file = process.env.SOAK_LAG_FILE;
if (file) {
  // Opened once: the fd is there at the baseline and at the end alike, so it does not skew the fd count.
  const fd = openSync(file, 'a');
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  histogram.enable();
  // The histogram records the whole interval between two ticks of its RESOLUTION_MS timer; the lag is the excess.
  const ms = (ns: number) => Math.max(0, Math.round(ns / 1e4 - RESOLUTION_MS * 100) / 100);
  const timer = setInterval(() => {
    const sample: LagSample = {
      t: Date.now(),
      p50: ms(histogram.percentile(50)),
      p99: ms(histogram.percentile(99)),
      max: ms(histogram.max),
      mean: ms(histogram.mean),
      heapUsedMb: heapMb(),
    };
    histogram.reset();
    writeSync(fd, JSON.stringify(sample) + '\n');
  }, PERIOD_MS);
  timer.unref();
  const gc = (globalThis as { gc?: () => void }).gc;
  process.on('SIGUSR2', () => {
    if (!gc) return;
    gc();
    gc();
    writeSync(
      fd,
      JSON.stringify({
        t: Date.now(),
        p50: 0,
        p99: 0,
        max: 0,
        mean: 0,
        heapUsedMb: heapMb(),
        gc: true,
        heapCommittedMb: mb(getHeapStatistics().total_heap_size),
        externalMb: mb(process.memoryUsage().external),
      }) + '\n',
    );
  });
}

function heapMb(): number {
  return mb(getHeapStatistics().used_heap_size);
}

function mb(bytes: number): number {
  return Math.round(bytes / 1e5) / 10;
}
