import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { movesIntoRam } from '../../src/generation/pinned-ram-tier.js';
import { leavesToServerRam } from '../../src/generation/server-ram-tier.js';
import type { SlotTruthDeps } from '../../src/generation/slot-truth.js';
import { SlotPool } from '../../src/slots/slot-pool.js';
import type { SlotContent } from '../../src/slots/slot-state.js';
import { unitBackend } from '../support/unit-backend.js';

const held = (blocks: string[], nTokens?: number): SlotContent => ({
  key: 'k',
  model: 'm',
  blocks,
  prefixLen: blocks.length * 100,
  big: true,
  saved: false,
  ...(nTokens !== undefined && { nTokens }),
});

describe('movesIntoRam: whether a task pinned to a slot moves what the slot holds into the RAM cache', () => {
  it('another conversation (no block shared: at most a chat template prefix) moves it', () => {
    assert.equal(movesIntoRam(held(['a', 'b', 'c'], 300), ['x', 'y']), true);
  });

  it('a prompt that keeps well under half of it moves it; one that keeps half or more does not', () => {
    const slot = held(['s', 'y', 's', 'a', 'b', 'c', 'd', 'e', 'f', 'g'], 1000);
    assert.equal(movesIntoRam(slot, ['s', 'y', 's', 'x']), true); // a shared system prompt: 3 of 10 blocks
    assert.equal(movesIntoRam(slot, ['s', 'y', 's', 'a', 'x']), false); // 4 of 10: too close to half to count on
    assert.equal(movesIntoRam(slot, ['s', 'y', 's', 'a', 'b', 'c', 'x']), false);
  });

  it('an empty slot moves nothing (the server skips its RAM cache for a pin there)', () => {
    assert.equal(movesIntoRam(held([], 0), ['x']), false);
  });
});

/** A backend of `kind` seen keeping its idle slots, whose token size the proxy knows. */
function keepingBackend(kind: 'llama-server' | 'llama-swap' | 'router') {
  const pool = new SlotPool([{ nSlots: 2, sharedAcrossModels: () => kind === 'llama-server' }]);
  const backend = unitBackend(pool, 2, { kind });
  backend.behaviour.noteKeepsIdleSlots();
  backend.ramCache.learnTokenSize('m', 100, 100 * 4112);
  const deps = {
    backends: { at: () => backend },
    pool,
    rescues: { enabled: true, leaveNext: () => true },
  } as unknown as SlotTruthDeps;
  return leavesToServerRam(deps, 0, { model: 'm', tokens: 3000 });
}

describe('answers left to the RAM cache of a server that keeps idle slots', () => {
  it('on a plain llama-server', () => {
    assert.equal(keepingBackend('llama-server'), true);
  });

  it('not behind llama-swap or in router mode, where an unload takes the RAM cache along', () => {
    assert.equal(keepingBackend('llama-swap'), false);
    assert.equal(keepingBackend('router'), false);
  });
});
