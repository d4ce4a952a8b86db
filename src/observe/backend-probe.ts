/**
 * Whether each backend answers, and what it has loaded, for the status API and the metrics. Asked only when one of
 * them is read (never on the request path), at most once per `maxAgeMs`: a dashboard polling every second and a
 * Prometheus scrape share one probe, and the backends see a few cheap GETs, not one per reader.
 */
import type { LlamaClient } from '../backend/llama-client.js';

export interface BackendReport {
  reachable: boolean;
  /** llama-swap and router mode: the models loaded now; null on a plain llama-server or when unknown. */
  loadedModels: string[] | null;
}

const PROBE_TIMEOUT_MS = 1500;
const DEFAULT_MAX_AGE_MS = 2000;

export class BackendProbe {
  private last?: { at: number; reports: Promise<BackendReport[]> };

  constructor(
    private readonly clients: readonly LlamaClient[],
    private readonly maxAgeMs = DEFAULT_MAX_AGE_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** The latest reports, probing again when they are older than `maxAgeMs`. Never rejects. */
  reports(): Promise<BackendReport[]> {
    const now = this.now();
    if (!this.last || now - this.last.at >= this.maxAgeMs) {
      this.last = { at: now, reports: Promise.all(this.clients.map((client) => probe(client))) };
    }
    return this.last.reports;
  }
}

async function probe(client: LlamaClient): Promise<BackendReport> {
  let reachable = false;
  try {
    const res = await client.forward({
      method: 'GET',
      path: '/health',
      headers: {},
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    });
    res.body.resume();
    // Any answer, even 503 "loading model", means the server is there.
    reachable = true;
  } catch {
    return { reachable: false, loadedModels: null };
  }
  if (client.kind !== 'llama-swap' && client.kind !== 'router') return { reachable, loadedModels: null };
  const loaded = await within(client.loadedModels(), PROBE_TIMEOUT_MS).catch(() => undefined);
  return { reachable, loadedModels: loaded ? [...loaded].sort() : null };
}

/** The promise's value, or undefined once `ms` have passed (the request itself is left to its own timeout). */
function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
    timer.unref();
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
