/**
 * The proxy as a child process, as users run it: started with an environment, its listening address read from
 * its first log lines, its CPU time and peak RSS read from /proc before it is stopped with SIGTERM.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
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
  /** How the proxy placed its requests, from its `chat` log lines: resident, restore or cold, and how many. */
  decisions(): Record<string, number>;
  stop(): Promise<void>;
}

export interface ProxyProcessOptions {
  /** Node flags before the script (the soak preloads its event-loop probe with `--import`). */
  nodeArgs?: string[];
  /** Every parsed log line, as it arrives. */
  onLog?: (entry: Record<string, unknown>) => void;
  /** Every line the proxy logs is also appended to this file. */
  logFile?: string;
}

export async function startProxyProcess(
  env: Record<string, string>,
  options: ProxyProcessOptions = {},
): Promise<ProxyProcess> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // A bench cut short (a test's deadline, an error) must not leave proxies behind.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('close', () => process.removeListener('exit', killOnExit));
  const counts: SlotActionCounts = {
    saves: 0,
    restores: 0,
    bytesWritten: 0,
    bytesRead: 0,
    failedSaves: 0,
    failedRestores: 0,
  };
  const decisions: Record<string, number> = {};
  const log = options.logFile ? createWriteStream(options.logFile, { flags: 'a' }) : undefined;
  if (log) child.stdout!.pipe(log);
  const url = await listeningUrl(child, (entry) => {
    countSlotActions(entry, counts);
    if (entry.msg === 'chat' && typeof entry.decision === 'string')
      decisions[entry.decision] = (decisions[entry.decision] ?? 0) + 1;
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
    decisions: () => ({ ...decisions }),
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The line of a rescue from the server's RAM cache (ram-rescue-launch.ts), with its replay's `prompt_n`. */
const RESCUE_MESSAGE = "saved from the server's RAM cache";

interface CacheOp {
  ok?: boolean;
  bytes?: number;
  tokens?: number;
}

/**
 * Every log line that reports a slot action carries its result as `save` / `evict_save` or `restore` with `ok` and
 * `bytes` (the per-request `chat` line, idle and write-behind saves, saves before a swap or on shutdown): count
 * them by field, not by message, so that a new kind of save is counted too. A rescue's replay is prefill no client
 * sees: counted from its line.
 */
export function countSlotActions(entry: Record<string, unknown>, counts: SlotActionCounts): void {
  const skipped = (entry.evict_skip as { unsaved_tokens?: unknown } | undefined)?.unsaved_tokens;
  if (typeof skipped === 'number') counts.skippedGrowthTokens = (counts.skippedGrowthTokens ?? 0) + skipped;
  if (entry.msg === RESCUE_MESSAGE && typeof entry.prompt_n === 'number')
    counts.replayPrefillTokens = (counts.replayPrefillTokens ?? 0) + entry.prompt_n;
  const saves = [entry.evict_save, entry.save, ...(Array.isArray(entry.clearing_saves) ? entry.clearing_saves : [])];
  const restores = [entry.restore];
  for (const op of saves as Array<CacheOp | undefined>) {
    if (op?.ok === false) counts.failedSaves = (counts.failedSaves ?? 0) + 1;
    if (!op?.ok) continue;
    counts.saves++;
    counts.bytesWritten += op.bytes ?? 0;
    // NaN once a save did not say its tokens: nothing is then computed from them.
    counts.tokensWritten = (counts.tokensWritten ?? 0) + (op.tokens ?? NaN);
  }
  for (const op of restores as Array<CacheOp | undefined>) {
    if (op?.ok === false) counts.failedRestores = (counts.failedRestores ?? 0) + 1;
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
