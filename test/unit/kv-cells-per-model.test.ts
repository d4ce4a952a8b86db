/**
 * The size of a KV buffer as `GET /slots` shows it belongs to the model it was looked at for: in router mode (and
 * behind llama-swap) every model is a server of its own, started with its own `-c`. What the proxy decides from that
 * size (whether an answer may be left to the server's RAM cache: a rescue must load it back beside what the other
 * slots hold) must not take one model's buffer for another's.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lookAtSlots } from '../../src/generation/slot-truth.js';
import { leavesToServerRam } from '../../src/generation/server-ram-tier.js';
import type { SlotTruthDeps } from '../../src/generation/slot-truth.js';
import { SlotPool } from '../../src/slots/slot-pool.js';
import { unitBackend } from '../support/unit-backend.js';

const SLOTS = 4;
/** Each model's `-c`: `tight` holds one 300-token conversation at a time, `roomy` one in every slot. */
const CELLS = { tight: 560, roomy: 16384 } as const;
const TOKENS = 300;
const BYTES_PER_TOKEN = 4112;

/** A backend of `kind` whose `GET /slots` answers for each model show that model's buffer. */
function backendOf(kind: 'router' | 'llama-server') {
  const pool = new SlotPool([{ nSlots: SLOTS, sharedAcrossModels: () => kind === 'llama-server' }]);
  const slotsAnswer = (model: string) =>
    Array.from({ length: SLOTS }, (_, id) => ({
      id,
      n_ctx: CELLS[model as keyof typeof CELLS],
      is_processing: false,
      id_task: id,
      n_prompt_tokens: 0,
    }));
  const slots = (model: string) => Promise.resolve(slotsAnswer(model));
  const backend = unitBackend(pool, SLOTS, { kind, slots }, 'tight');
  backend.noteClearsIdleSlots('slots check');
  for (const model of Object.keys(CELLS)) backend.ramCache.learnTokenSize(model, TOKENS, TOKENS * BYTES_PER_TOKEN);
  const deps = {
    backends: { at: () => backend },
    pool,
    rescues: { enabled: true, leaveNext: () => true },
  } as unknown as SlotTruthDeps;
  const leftToRam = (model: string) => leavesToServerRam(deps, 0, { model, tokens: TOKENS });
  return { backend, leftToRam };
}

describe("a KV buffer's size, per model", () => {
  it("router mode: each model's answers are judged by its own buffer, whichever model was looked at last", async () => {
    const { backend, leftToRam } = backendOf('router');
    await lookAtSlots(backend, 'tight', 1000);
    await lookAtSlots(backend, 'roomy', 1000);
    assert.equal(backend.kvCells('tight'), CELLS.tight);
    assert.equal(backend.kvCells('roomy'), CELLS.roomy);
    assert.equal(leftToRam('tight'), false, 'four 300-token conversations do not fit 560 cells');
    assert.equal(leftToRam('roomy'), true);
  });

  it('a plain llama-server has one buffer whatever model name a request uses', async () => {
    const { backend } = backendOf('llama-server');
    await lookAtSlots(backend, 'tight', 1000);
    assert.equal(backend.kvCells('any-name'), CELLS.tight);
  });

  it('a backend forgotten (restarted, unreachable) forgets its buffers: it may come back with another -c', async () => {
    const { backend } = backendOf('router');
    await lookAtSlots(backend, 'tight', 1000);
    backend.forget();
    assert.equal(backend.kvCells('tight'), undefined);
  });
});
