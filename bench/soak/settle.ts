/**
 * The proxy's resources at rest, before and after the load: open descriptors once they stopped falling, and memory
 * after a full garbage collection (asked of the preloaded probe with SIGUSR2), so that the comparison is between
 * what the process holds, not between amounts of garbage V8 had not collected yet.
 */
import { readFile } from 'node:fs/promises';
import type { LagSample } from './lag-probe.js';
import { procSnapshot } from './proc-stats.js';
import type { ProcSnapshot } from './proc-stats.js';

export interface RestingState extends ProcSnapshot {
  /** V8 heap in use after a full garbage collection, MB. */
  heapMb: number;
  /** V8 heap committed after that collection (in use or kept for later), MB. */
  heapCommittedMb: number;
  /** Buffers and other memory outside the V8 heap after that collection, MB. */
  externalMb: number;
  /** Resident memory before that collection, MiB. */
  rssBeforeGcMb: number;
}

const GC_DEADLINE_MS = 5000;

/** Baseline: once the fd count has stopped falling after the warm-up. */
export async function restingBaseline(pid: number, lagFile: string): Promise<RestingState> {
  let last = await procSnapshot(pid);
  for (let i = 0; i < 20; i++) {
    await sleep(250);
    const now = await procSnapshot(pid);
    if (now.fds >= last.fds) break;
    last = now;
  }
  return atRest(pid, lagFile);
}

/**
 * After the load: wait until the fds are back at the baseline (idle backend connections close after the
 * backend's keep-alive timeout) or `deadlineMs` passed, then measure.
 */
export async function restingAfter(
  pid: number,
  lagFile: string,
  baselineFds: number,
  deadlineMs: number,
): Promise<RestingState> {
  const end = Date.now() + deadlineMs;
  while ((await procSnapshot(pid)).fds > baselineFds && Date.now() < end) await sleep(100);
  return atRest(pid, lagFile);
}

async function atRest(pid: number, lagFile: string): Promise<RestingState> {
  const before = await procSnapshot(pid);
  const heap = await collectGarbage(pid, lagFile);
  const after = await procSnapshot(pid);
  return {
    ...after,
    heapMb: heap?.heapUsedMb ?? NaN,
    heapCommittedMb: heap?.heapCommittedMb ?? NaN,
    externalMb: heap?.externalMb ?? NaN,
    rssBeforeGcMb: before.rssMb,
  };
}

/** SIGUSR2 to the probe, then its `gc` line (undefined when none came within the deadline). */
async function collectGarbage(pid: number, lagFile: string): Promise<LagSample | undefined> {
  const seen = (await gcLines(lagFile)).length;
  process.kill(pid, 'SIGUSR2');
  const end = Date.now() + GC_DEADLINE_MS;
  while (Date.now() < end) {
    const lines = await gcLines(lagFile);
    if (lines.length > seen) return lines.at(-1);
    await sleep(50);
  }
  return undefined;
}

async function gcLines(file: string): Promise<LagSample[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LagSample)
    .filter((s) => s.gc);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
