/**
 * The configured backends, in BACKENDS order. Slots, plans and meta files name a backend by its index (and its
 * URL on disk); this is where an index or a URL becomes the `Backend` that knows about it.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { SlotPool } from '../slots/slot-pool.js';
import { Backend } from './backend.js';
import { createLlamaClient } from './llama-client.js';
import type { LlamaClient } from './llama-client.js';

export class Backends {
  private readonly byUrl: ReadonlyMap<string, number>;
  /** Every backend's client, in order (for what talks to them all alike: probes, metrics, passthrough). */
  readonly clients: readonly LlamaClient[];

  constructor(readonly all: readonly Backend[]) {
    this.byUrl = new Map(all.map((b) => [b.url, b.index]));
    this.clients = all.map((b) => b.client);
  }

  /** The backend at this index of BACKENDS. */
  at(index: number): Backend {
    const backend = this.all[index];
    if (!backend) throw new RangeError(`no backend ${index}`);
    return backend;
  }

  /** The index of the backend with this URL (as a meta file names it), if one is configured. */
  indexOf(url: string): number | undefined {
    return this.byUrl.get(url);
  }

  /** Make sure every backend's kind, slot count and idle-slot behaviour are known (see Backend.ensureReady). */
  async ensureReady(): Promise<void> {
    await Promise.all(this.all.map((b) => b.ensureReady()));
  }
}

/**
 * The backends of BACKENDS with their clients, and the slot pool of all of them: a backend's slots are shared by
 * every model name on a plain llama-server (and before its kind is known), per model behind llama-swap and router.
 */
export function createBackends(config: Config, log: Logger): { backends: Backends; pool: SlotPool } {
  const clients = config.backends.map((b) =>
    createLlamaClient({
      url: b.url,
      kind: b.type === 'auto' ? undefined : b.type,
      connectTimeoutMs: config.connectTimeout * 1000,
      requestTimeoutMs: config.requestTimeout * 1000,
      apiKey: config.backendApiKey,
    }),
  );
  const pool = new SlotPool(
    config.backends.map((b, i) => ({
      nSlots: b.nSlots,
      sharedAcrossModels: () => (clients[i]!.kind ?? 'llama-server') === 'llama-server',
    })),
  );
  const backends = new Backends(
    clients.map(
      (client, index) =>
        new Backend({
          index,
          client,
          settings: config.backends[index]!,
          modelId: config.modelId,
          pool,
          log,
        }),
    ),
  );
  return { backends, pool };
}
