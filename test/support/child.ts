/** Run the built CLI as a child process, with a deadline on everything. */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { withDeadline } from './deadline.js';

/** dist/src/cli.js, found from dist/test/support. */
export const CLI_PATH = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

/** An environment with nothing of the runner's own configuration in it (no stray PORT or LLAMA_URL). */
export function cleanEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '', ...vars };
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliProcess {
  child: ChildProcess;
  /** Output so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Resolve with the exit code and all output; rejects when the child has not exited within `ms`. */
  exit(ms: number): Promise<CliRun>;
  /** Resolve with the first complete stdout line matching `predicate`, within `ms`. */
  line(predicate: (line: string) => boolean, ms: number, what: string): Promise<string>;
}

/** Spawn `node dist/src/cli.js ...args` with piped output. */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv): CliProcess {
  const child = spawn(process.execPath, [CLI_PATH, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    for (const l of listeners) l();
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<CliRun>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    exit: (ms) => withDeadline(exited, ms, 'the proxycache process to exit'),
    line(predicate, ms, what) {
      const found = () => stdout.split('\n').slice(0, -1).find(predicate);
      return withDeadline(
        new Promise<string>((resolve) => {
          const check = () => {
            const hit = found();
            if (hit === undefined) return;
            listeners.delete(check);
            resolve(hit);
          };
          listeners.add(check);
          check();
        }),
        ms,
        what,
      );
    },
  };
}

/** Spawn the CLI, wait for it to exit by itself within `ms` (killed if it does not), return code and output. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv, ms = 5000): Promise<CliRun> {
  const proc = spawnCli(args, env);
  try {
    return await proc.exit(ms);
  } finally {
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
  }
}
