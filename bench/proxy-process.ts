/**
 * The proxy as a child process, as users run it: started with an environment, its listening address read from
 * its first log lines, its CPU time and peak RSS read from /proc before it is stopped with SIGTERM.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { SlotActionCounts } from './backend.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const CLOCK_TICKS_PER_SECOND = 100;

export interface ProxyProcess {
  url: string;
  pid: number;
  /** False once the process has exited (a crash shows here). */
  alive(): boolean;
  /** CPU seconds (user + system) used so far. */
  cpuSeconds(): Promise<number>;
  /** Peak resident set size in MiB. */
  peakRssMb(): Promise<number>;
  /** Successful saves and restores, and their bytes, as the proxy logged them. */
  slotActions(): SlotActionCounts;
  stop(): Promise<void>;
}

export interface ProxyProcessOptions {
  /** Node flags before the script (the soak preloads its event-loop probe with `--import`). */
  nodeArgs?: string[];
  /** Every parsed log line, as it arrives. */
  onLog?: (entry: Record<string, unknown>) => void;
}

export async function startProxyProcess(env: Record<string, string>, options: ProxyProcessOptions = {}): Promise<ProxyProcess> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const counts: SlotActionCounts = { saves: 0, restores: 0, bytesWritten: 0, bytesRead: 0 };
  const url = await listeningUrl(child, (entry) => {
    countSlotActions(entry, counts);
    options.onLog?.(entry);
  });
  // 'close', not 'exit': the last log lines (saves on shutdown) are read by then.
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    url,
    pid: child.pid!,
    alive: () => child.exitCode === null && child.signalCode === null,
    async cpuSeconds() {
      const stat = await readFile(`/proc/${child.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
    },
    async peakRssMb() {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      return kb / 1024;
    },
    slotActions: () => ({ ...counts }),
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

interface CacheOp {
  ok?: boolean;
  bytes?: number;
}

/** Log messages that carry a save result besides the per-request `chat` line. */
const SAVE_MESSAGES = new Set(['saved after answer', 'saved before model swap', 'saved on shutdown']);

function countSlotActions(entry: Record<string, unknown>, counts: SlotActionCounts): void {
  const saves: unknown[] = [];
  const restores: unknown[] = [];
  if (entry.msg === 'chat') {
    saves.push(entry.evict_save, entry.save);
    restores.push(entry.restore);
  } else if (typeof entry.msg === 'string' && SAVE_MESSAGES.has(entry.msg)) {
    saves.push(entry.save);
  }
  for (const op of saves as Array<CacheOp | undefined>) {
    if (!op?.ok) continue;
    counts.saves++;
    counts.bytesWritten += op.bytes ?? 0;
  }
  for (const op of restores as Array<CacheOp | undefined>) {
    if (!op?.ok) continue;
    counts.restores++;
    counts.bytesRead += op.bytes ?? 0;
  }
}

/** Resolves with the address from the proxy's start-up line; every parsed log line goes to `onEntry`. */
function listeningUrl(child: ChildProcess, onEntry: (entry: Record<string, unknown>) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        onEntry(entry);
        if (entry.msg === 'proxycache listening' && typeof entry.address === 'string') resolve(entry.address);
      } catch {
        // not a log line
      }
    });
    child.once('exit', (code) => reject(new Error(`proxy exited with ${code} before listening: ${stderr.trim()}`)));
  });
}
