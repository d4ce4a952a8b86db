/**
 * The bench's real llama-server, on top of the shared launcher (test/support/real-server.ts, which finds, starts,
 * restarts and kills it): the bench's error when there is none, the flags of one configuration, and the bytes the
 * server wrote, read from /proc (Linux) and summed over restarts, as a cross-check of what the proxy logs.
 */
import { readFile } from 'node:fs/promises';
import { DEFAULT_LLAMA_SERVER_BIN, launchLlamaServer, locateLlamaServer } from '../test/support/real-server.js';

export interface LlamaServerBinary {
  bin: string;
  /** LLAMA_MODEL, else tiny-chat.gguf beside the binary. */
  model: string;
}

/** The binary and model to run (found as the test:real suite finds them), or why there are none. */
export function findLlamaServer(
  env: NodeJS.ProcessEnv = process.env,
  defaultBin = DEFAULT_LLAMA_SERVER_BIN,
): LlamaServerBinary | { missing: string } {
  const where = locateLlamaServer(env, defaultBin);
  if (!('skip' in where)) return where;
  if (where.absent === 'binary' && !where.explicit)
    return { missing: `no llama-server: set LLAMA_SERVER_BIN or put one at ${defaultBin}` };
  return { missing: where.skip };
}

export interface BenchServer {
  url: string;
  /**
   * Kill the server (SIGKILL: a crash, so a save it is writing dies with it) and start it again with the same flags on
   * the same port; resolves when /health is 200.
   */
  restart(): Promise<void>;
  /** Bytes the server processes wrote (`wchar` of /proc/PID/io: files, sockets and logs), summed over restarts. */
  writtenChars(): Promise<number>;
  stop(): Promise<void>;
}

/** Start llama-server with `args` (besides model, alias, --slot-save-path and --jinja) and wait until it is healthy. */
export async function startBenchServer(
  binary: LlamaServerBinary,
  saveDir: string,
  args: readonly string[],
): Promise<BenchServer> {
  // Flash attention stays at llama-server's default (auto, on for the CPU): with -fa off, the default configuration's
  // unified KV buffer makes every token attend over all slots' cells, several times slower with this small model.
  const server = await launchLlamaServer({
    bin: binary.bin,
    args: ['-m', binary.model, '-a', 'tiny-chat', '--slot-save-path', saveDir, '--jinja', ...args],
    stopSignal: 'SIGKILL',
  });
  let retiredChars = 0;
  // The last count read from the running server: /proc/PID/io is gone once it exited.
  let lastChars = 0;
  const currentChars = async () => {
    const pid = server.pid();
    if (pid === undefined) return lastChars;
    const io = await readFile(`/proc/${pid}/io`, 'utf8').catch(() => '');
    lastChars = Number(/wchar:\s+(\d+)/.exec(io)?.[1] ?? lastChars);
    return lastChars;
  };
  return {
    url: server.url,
    async restart() {
      retiredChars += await currentChars();
      lastChars = 0;
      await server.restart();
    },
    writtenChars: async () => retiredChars + (await currentChars()),
    stop: () => server.stop(),
  };
}
