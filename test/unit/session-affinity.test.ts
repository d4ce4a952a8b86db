/** Session affinity: among slots holding equally long prefixes, a request takes the one its own session filled. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SEED } from '../support/seed-plan.js';
import { planSlot } from '../../src/slots/slot-planner.js';
import type { SlotContent, SlotRequest, SlotState } from '../../src/slots/slot-state.js';
import { sessionOf } from '../../src/generation/session.js';

function slot(id: number, lastUsed: number, content: SlotContent): SlotState {
  return { backend: 0, model: '', id, busy: false, disabled: false, lastUsed, content };
}

// Two sessions of one agent: the same long system prompt and tools (blocks a, b), each its own first turn, too short
// to add a block of its own. Both slots match the next turn equally well.
const shared = (key: string, session: string): SlotContent => ({
  key,
  model: 'm',
  blocks: ['a', 'b'],
  prefixLen: 10,
  big: true,
  saved: true,
  session,
});
const candidates = () => [slot(0, 9, shared('k0', 'alpha')), slot(1, 3, shared('k1', 'beta'))];
const request = (session?: string): SlotRequest => ({
  model: 'm',
  key: 'k-next',
  blocks: ['a', 'b', 'c'],
  big: true,
  ...(session && { session }),
});

describe('session affinity in the planner', () => {
  it('prefers the slot its session filled when matches tie, though another was used more recently', () => {
    assert.equal(
      planSlot({ ...SEED, request: request('beta'), candidates: candidates(), diskMatch: () => undefined, lcpTh: 0.6 })
        ?.slot.id,
      1,
    );
    assert.equal(
      planSlot({ ...SEED, request: request('alpha'), candidates: candidates(), diskMatch: () => undefined, lcpTh: 0.6 })
        ?.slot.id,
      0,
    );
  });

  it('without a session (or with one no slot knows), the most recently used of the tied slots, as before', () => {
    assert.equal(
      planSlot({ ...SEED, request: request(), candidates: candidates(), diskMatch: () => undefined, lcpTh: 0.6 })?.slot
        .id,
      0,
    );
    assert.equal(
      planSlot({ ...SEED, request: request('gamma'), candidates: candidates(), diskMatch: () => undefined, lcpTh: 0.6 })
        ?.slot.id,
      0,
    );
  });

  it('a longer match wins over the session', () => {
    const c = [slot(0, 9, { ...shared('k0', 'alpha'), blocks: ['a', 'b', 'c'] }), slot(1, 3, shared('k1', 'beta'))];
    assert.equal(
      planSlot({ ...SEED, request: request('beta'), candidates: c, diskMatch: () => undefined, lcpTh: 0.6 })?.slot.id,
      0,
    );
  });
});

describe('sessionOf', () => {
  const http = (headers: Record<string, string>) => ({ headers, query: {} });
  it('takes the body hint first, then x-session-id, then x-claude-code-session-id; bounded in length', () => {
    assert.equal(sessionOf('from-body', http({ 'x-session-id': 'h' })), 'from-body');
    assert.equal(
      sessionOf(undefined, http({ 'x-session-id': 'opencode', 'x-claude-code-session-id': 'claude' })),
      'opencode',
    );
    assert.equal(sessionOf(undefined, http({ 'x-claude-code-session-id': 'claude' })), 'claude');
    assert.equal(sessionOf(undefined, http({})), undefined);
    assert.equal(sessionOf('x'.repeat(1000), http({}))?.length, 128);
  });
});
