/** A Backend for the unit tests of the slot logic, in front of a stand-in client (no server behind it). */
import pino from 'pino';
import { Backend } from '../../src/backend/backend.js';
import type { LlamaClient } from '../../src/backend/llama-client.js';
import type { SlotPool } from '../../src/slots/slot-pool.js';

/**
 * Backend 0 of `pool`, with `nSlots` slots, llama-server's default 8 GiB RAM cache and `modelId` for requests without
 * a model; its client has the URL http://backend and whatever `client` gives (its kind, a `slots` answer).
 */
export function unitBackend(
  pool: SlotPool,
  nSlots: number,
  client: { kind: LlamaClient['kind'] } & Partial<Record<keyof LlamaClient, unknown>>,
  modelId = 'm',
): Backend {
  return new Backend({
    index: 0,
    client: { url: 'http://backend', ...client } as unknown as LlamaClient,
    settings: { nSlots, nSlotsConfigured: false, serverCacheRamMib: 8192 },
    modelId,
    pool,
    log: pino({ level: 'silent' }),
  });
}
