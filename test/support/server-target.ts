/**
 * A server for the real suite's fact checks: the real llama-server binary or the simulator, started the same way
 * (one model named `tiny`, a fresh save directory), so that one request can be put to both.
 */
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimulator } from '../../src/sim/index.js';
import { locateLlamaServer, startRealServer } from './real-server.js';

/** A server under test. */
export interface Target {
  url: string;
  saveDir: string;
  close(): Promise<void>;
}

export type TargetKind = 'llama-server' | 'simulator';

/** `router`: router mode over the one model. The real kind throws when the binary is not there. */
export async function startTarget(kind: TargetKind, slots: number | 'auto', router = false): Promise<Target> {
  const saveDir = await mkdtemp(join(tmpdir(), 'proxycache-facts-'));
  if (kind === 'simulator') {
    const sim = await startSimulator({
      mode: router ? 'router' : 'llama-server',
      models: [{ id: 'tiny', ...(slots !== 'auto' && { nSlots: slots }) }],
      slotSavePath: saveDir,
      cost: { timeScale: 0 },
    });
    return target(sim.url, saveDir, () => sim.close());
  }
  const where = locateLlamaServer();
  if ('skip' in where) throw new Error(where.skip);
  let modelsDir: string | undefined;
  if (router) {
    modelsDir = join(saveDir, 'models');
    await mkdir(modelsDir);
    await symlink(where.model, join(modelsDir, 'tiny.gguf'));
  }
  const server = await startRealServer({ bin: where.bin, model: where.model, slots, saveDir, modelsDir });
  return target(server.url, saveDir, () => server.stop());
}

/** A started server as a Target: closing it stops the server, then removes its save directory. */
function target(url: string, saveDir: string, stop: () => Promise<void>): Target {
  return {
    url,
    saveDir,
    close: async () => {
      await stop();
      await rm(saveDir, { recursive: true, force: true });
    },
  };
}
