/**
 * The observation side of the proxy built in one place: the request observer (status API, dashboard), the
 * Prometheus metrics fed by it and by the slot cache and cleanup hooks, and the backend probe both read.
 */
import type { BackendKind } from '../backend/backend-kind.js';
import type { CacheMeta } from '../cache/meta-file.js';
import type { SlotState } from '../slots/slot-state.js';
import { packageVersion } from '../version.js';
import { BackendProbe } from './backend-probe.js';
import { createMetrics } from './metrics.js';
import type { ProxyMetrics } from './metrics.js';
import { Observer } from './observer.js';

export interface Observation {
  observer: Observer;
  metrics: ProxyMetrics;
  probe: BackendProbe;
  /** Milliseconds since the epoch when the proxy was created. */
  startedAt: number;
}

export interface ObservationDeps {
  clients: ReadonlyArray<{ readonly url: string; readonly kind: BackendKind | undefined }> &
    ConstructorParameters<typeof BackendProbe>[0];
  slots: () => readonly SlotState[];
  entries: () => Iterable<CacheMeta>;
  entryCount: () => number;
  unsaved: (slot: SlotState) => boolean;
  /** Requests waiting for a slot now. */
  waitingForSlot: () => number;
  /** Answers left unsaved to the servers' RAM caches, waiting for their rescue. */
  inRamCacheOnly: () => number;
  prefillMsPerToken: (model: string) => number | undefined;
}

export function createObservation(deps: ObservationDeps): Observation {
  const probe = new BackendProbe(deps.clients);
  const observer = new Observer({ prefillMsPerToken: deps.prefillMsPerToken });
  const metrics = createMetrics({
    version: packageVersion(),
    clients: deps.clients,
    slots: deps.slots,
    entries: deps.entries,
    entryCount: deps.entryCount,
    unsaved: deps.unsaved,
    waitingForSlot: deps.waitingForSlot,
    inRamCacheOnly: deps.inRamCacheOnly,
    backendReports: () => probe.reports(),
  });
  observer.onRecord((record, saved) => metrics.noteRequest(record, saved));
  return { observer, metrics, probe, startedAt: Date.now() };
}
