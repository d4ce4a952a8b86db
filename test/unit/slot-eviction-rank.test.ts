/**
 * Side requests don't evict the work (issue 8, item 4): which idle slot a request overwrites. One-off content (no
 * later request continued it) goes before a conversation that has been continued; content that must be saved first
 * goes last; least recently used within a rank.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { recordSlotContent } from '../../src/generation/after-answer.js';
import type { ForwardOutcome } from '../../src/generation/forward.js';
import type { GenerationDeps } from '../../src/generation/deps.js';
import type { PromptAnalysis } from '../../src/prompt/prompt-analysis.js';
import { NEVER_SKIP } from '../../src/slots/save-skip.js';
import type { SkipSave } from '../../src/slots/save-skip.js';
import { evictionRank, planSlot } from '../../src/slots/slot-planner.js';
import { SlotPool } from '../../src/slots/slot-pool.js';
import { SEED } from '../support/seed-plan.js';
import type { SlotContent, SlotPlan, SlotRequest, SlotState } from '../../src/slots/slot-state.js';
import { slot } from '../support/slot-fixtures.js';

function content(key: string, over: Partial<SlotContent> = {}): SlotContent {
  return { key, model: 'm', blocks: [key], prefixLen: 10, big: true, saved: false, ...over };
}

const live = (key: string, over: Partial<SlotContent> = {}) => content(key, { turns: 3, ...over });
const oneOff = (key: string, over: Partial<SlotContent> = {}) => content(key, { turns: 1, ...over });
/** A big request sharing no prefix with anything (Qwen Code's memory extraction). */
const sideRequest: SlotRequest = { model: 'm', key: 'memory', blocks: ['z1', 'z2', 'z3'], big: true };
const noDisk = () => undefined;
const victim = (candidates: SlotState[], skipSave: SkipSave = NEVER_SKIP) =>
  planSlot({ ...SEED, request: sideRequest, candidates, diskMatch: noDisk, lcpTh: 0.6, skipSave });

describe('evictionRank', () => {
  it('orders empty, small, one-off, conversation; needing a save demotes each big kind below those that need none', () => {
    const ranks = [
      slot(0),
      slot(0, { content: content('s', { big: false }) }),
      slot(0, { content: oneOff('o', { saved: true }) }),
      slot(0, { content: live('l', { saved: true }) }),
      slot(0, { content: oneOff('o2') }),
      slot(0, { content: live('l2') }),
    ].map((s) => evictionRank(s, NEVER_SKIP));
    assert.deepEqual(ranks, [0, 1, 2, 3, 4, 5]);
  });

  it('takes content without a turn count (put there by a restore) for a conversation', () => {
    assert.equal(
      evictionRank(slot(0, { content: content('restored', { saved: true, restored: true }) }), NEVER_SKIP),
      3,
    );
  });

  it('ranks content the policy lets go as needing no save', () => {
    assert.equal(
      evictionRank(slot(0, { content: live('grown') }), () => 'cheaper to prefill'),
      3,
    );
    assert.equal(
      evictionRank(slot(0, { content: oneOff('grown') }), () => 'cheaper to prefill'),
      2,
    );
  });
});

describe('a big side request among idle slots', () => {
  it('overwrites a previous one-off, not the less recently used live conversation (both on disk)', () => {
    const plan = victim([
      slot(0, { lastUsed: 1, content: live('agent', { saved: true }) }),
      slot(1, { lastUsed: 9, content: oneOff('title', { saved: true }) }),
    ]);
    assert.equal(plan?.slot.id, 1);
    assert.equal(plan?.saveFirst, undefined);
  });

  it('between a conversation on disk and a one-off to save first, moves fewer blocks (a restore later or a save now)', () => {
    const conversation = live('agent', { saved: true, blocks: ['a1', 'a2', 'a3', 'a4'] });
    const smallOneOff = oneOff('infill', { blocks: ['i1'] });
    let plan = victim([
      slot(0, { lastUsed: 1, content: conversation }),
      slot(1, { lastUsed: 9, content: smallOneOff }),
    ]);
    assert.equal(plan?.slot.id, 1, 'saving a 1-block one-off now is cheaper than restoring a 4-block conversation');
    assert.equal(plan?.saveFirst, smallOneOff);
    const bigOneOff = oneOff('memory', { blocks: ['m1', 'm2', 'm3', 'm4', 'm5'] });
    plan = victim([slot(0, { lastUsed: 9, content: conversation }), slot(1, { lastUsed: 1, content: bigOneOff })]);
    assert.equal(plan?.slot.id, 0, 'a 4-block restore later is cheaper than a 5-block save now');
    const sameSize = oneOff('memory-1', { blocks: ['m1', 'm2', 'm3', 'm4'] });
    plan = victim([slot(0, { lastUsed: 9, content: conversation }), slot(1, { lastUsed: 0, content: sameSize })]);
    assert.equal(plan?.slot.id, 0, 'on a tie, the conversation on disk (a restore later, nothing paid now)');
  });

  it('with both unsaved (the smart policy between saves), saves and overwrites the one-off, not the conversation', () => {
    const agent = live('agent');
    const memory = oneOff('memory-1');
    const plan = victim([slot(0, { lastUsed: 1, content: agent }), slot(1, { lastUsed: 9, content: memory })]);
    assert.equal(plan?.slot.id, 1);
    assert.equal(plan?.saveFirst, memory);
  });

  it('takes the least recently used of two live conversations when nothing cheaper is idle', () => {
    const plan = victim([slot(0, { lastUsed: 5, content: live('a') }), slot(1, { lastUsed: 2, content: live('b') })]);
    assert.equal(plan?.slot.id, 1);
  });

  it('prefers small content to a one-off and an empty slot to both', () => {
    assert.equal(
      victim([
        slot(0, { lastUsed: 1, content: oneOff('o', { saved: true }) }),
        slot(1, { lastUsed: 9, content: content('s', { big: false }) }),
      ])?.slot.id,
      1,
    );
    assert.equal(
      victim([slot(0, { lastUsed: 1, content: content('s', { big: false }) }), slot(1, { lastUsed: 9 })])?.slot.id,
      1,
    );
  });

  it("a conversation coming back from disk is restored into the one-off's slot too", () => {
    const disk = { key: 'agent-2', backend: 0, lcp: 2, ratio: 1, blockCount: 2 };
    const request: SlotRequest = { model: 'm', key: 'agent-3', blocks: ['c1', 'c2', 'c3'], big: true };
    const plan = planSlot({
      ...SEED,
      request,
      candidates: [
        slot(0, { lastUsed: 1, content: live('other', { saved: true }) }),
        slot(1, { lastUsed: 9, content: oneOff('memory', { saved: true }) }),
      ],
      diskMatch: () => disk,
      lcpTh: 0.6,
    });
    assert.equal(plan?.slot.id, 1);
    assert.equal(plan?.restore, disk);
  });
});

describe('recordSlotContent counts the turns of a conversation in its slot', () => {
  const pool = () => new SlotPool([{ nSlots: 1, sharedAcrossModels: () => true }]);
  const depsOf = (p: SlotPool) =>
    ({ pool: p, backends: { at: () => ({ knownFingerprint: () => undefined }) } }) as unknown as Pick<
      GenerationDeps,
      'pool' | 'backends'
    >;
  const outcome = {
    completed: true,
    status: 200,
    clientGone: false,
    timings: { cache_n: 0, prompt_n: 100, predicted_n: 8 },
  } as unknown as ForwardOutcome;
  const analysis = (key: string, blocks: string[]) =>
    ({ key, model: 'm', blocks, prefixLen: 100, big: true }) as unknown as PromptAnalysis;
  const record = (p: SlotPool, s: SlotState, a: PromptAnalysis) =>
    recordSlotContent(depsOf(p), { slot: s } as SlotPlan, a, outcome, undefined);

  it('1 for a prompt that does not extend the slot, +1 for each that does, 1 again after a different prompt', () => {
    const p = pool();
    const s = p.group(0, 'm')[0]!;
    record(p, s, analysis('t1', ['a', 'b']));
    assert.equal(s.content?.turns, 1);
    record(p, s, analysis('t2', ['a', 'b', 'c']));
    assert.equal(s.content?.turns, 2);
    record(p, s, analysis('t3', ['a', 'b', 'c', 'd']));
    assert.equal(s.content?.turns, 3);
    record(p, s, analysis('memory', ['x', 'y']));
    assert.equal(s.content?.turns, 1, 'a side request sharing no prefix is a one-off');
  });

  it('continues a restored entry (no count) as its second turn', () => {
    const p = pool();
    const s = p.group(0, 'm')[0]!;
    p.fill(s, content('entry', { blocks: ['a', 'b'], saved: true, restored: true }));
    record(p, s, analysis('next', ['a', 'b', 'c']));
    assert.equal(s.content?.turns, 2);
  });
});
