/**
 * What the kernel says about a process (Linux /proc): resident memory from /proc/<pid>/status, open file
 * descriptors from /proc/<pid>/fd (sockets counted apart, since a leaked connection shows there first).
 */
import { readdir, readFile, readlink } from 'node:fs/promises';

export interface ProcSnapshot {
  /** VmRSS, MiB. */
  rssMb: number;
  /** VmHWM (peak RSS so far), MiB. */
  peakRssMb: number;
  fds: number;
  sockets: number;
}

export async function procSnapshot(pid: number): Promise<ProcSnapshot> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  const names = await readdir(`/proc/${pid}/fd`);
  // An fd may close between readdir and readlink; it then counts as neither.
  const targets = await Promise.all(names.map((n) => readlink(`/proc/${pid}/fd/${n}`).catch(() => '')));
  return {
    rssMb: round1(kb('VmRSS') / 1024),
    peakRssMb: round1(kb('VmHWM') / 1024),
    fds: targets.filter((t) => t !== '').length,
    sockets: targets.filter((t) => t.startsWith('socket:')).length,
  };
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
