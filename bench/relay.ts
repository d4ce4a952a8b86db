/**
 * A bare HTTP relay for the real bench's `relay-8g` config: every request piped to llama-server and every answer
 * piped back, byte for byte, by a process of its own, as the proxy runs. No cache, no parsing, no decision: what
 * standing between clients and the server costs by itself on the bench's machine (a second hop for every streamed
 * token, CPU that a CPU-only server shares), so that a gap between `proxycache-8g` and `direct-8g` can be split into
 * that and what the proxy's own work adds.
 *
 * `node dist/bench/relay.js TARGET_URL` listens on a free loopback port and prints `listening PORT`.
 */
import { spawn } from 'node:child_process';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface RelayProcess {
  url: string;
  stop(): Promise<void>;
}

/** Start the relay as a child process in front of `target`; resolves once it listens. */
export async function startRelayProcess(target: string): Promise<RelayProcess> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), target], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = new Promise<void>((resolve) =>
    child.once('close', () => {
      process.removeListener('exit', killOnExit);
      resolve();
    }),
  );
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      const match = /^listening (\d+)$/.exec(line);
      if (match) resolve(Number(match[1]));
      else reject(new Error(`the relay said ${JSON.stringify(line)}`));
    });
    child.once('close', (code) => reject(new Error(`the relay exited (${code}) before it listened`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function relay(target: URL): void {
  const server = createServer((req, res) => {
    const upstream = request(
      { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', (err) => res.destroy(err));
    req.pipe(upstream);
  });
  server.listen(0, '127.0.0.1', () => console.log(`listening ${(server.address() as AddressInfo).port}`));
  process.once('SIGTERM', () => {
    server.close();
    server.closeAllConnections();
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) relay(new URL(process.argv[2]!));
