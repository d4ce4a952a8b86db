/**
 * The simulator as a child process (`dist/src/sim/cli.js`), so that the soak can kill it with SIGKILL, as a crashed
 * llama-server dies, and start it again on the same port with the same --slot-save-path.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const SIM_CLI = fileURLToPath(new URL('../../src/sim/cli.js', import.meta.url));
const START_DEADLINE_MS = 15_000;

export interface SimProcess {
  readonly url: string;
  readonly port: number;
  /** SIGKILL, then wait for the process to be gone (its port is free again). */
  kill(): Promise<void>;
  /** Start again on the same port with the same flags; resolves once it listens and its model is loaded. */
  start(): Promise<void>;
  /** Stop for good (SIGKILL when it is running). */
  close(): Promise<void>;
}

/** Start `npm run sim` with these flags (`--port` is added: 0 the first time, then the port it got). */
export async function startSimProcess(flags: string[]): Promise<SimProcess> {
  let child: ChildProcess | undefined;
  let url = '';
  let port = 0;

  async function start(): Promise<void> {
    const started = spawnSim([...flags, '--port', String(port)]);
    child = started.child;
    url = await started.url;
    port = Number(new URL(url).port);
  }

  async function kill(): Promise<void> {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    running.kill('SIGKILL');
    await gone;
  }

  await start();
  return {
    get url() {
      return url;
    },
    get port() {
      return port;
    },
    kill,
    start,
    close: kill,
  };
}

function spawnSim(args: string[]): { child: ChildProcess; url: Promise<string> } {
  const child = spawn(process.execPath, [SIM_CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const url = new Promise<string>((resolve, reject) => {
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the simulator did not listen within ${START_DEADLINE_MS} ms: ${stderr.trim()}`));
    }, START_DEADLINE_MS);
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /listening on (http:\/\/\S+)/.exec(line);
      if (!m) return;
      clearTimeout(timer);
      resolve(m[1]!);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the simulator exited (${code ?? signal}) before listening: ${stderr.trim()}`));
    });
  });
  return { child, url };
}
