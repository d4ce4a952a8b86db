import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NEVER_SKIP, skipBelowFloor } from '../../src/slots/save-skip.js';
import { SEED } from '../support/seed-plan.js';
import { planSlot, unsavedBigContent } from '../../src/slots/slot-planner.js';
import type { DiskMatch, SlotContent, SlotRequest, SlotState } from '../../src/slots/slot-state.js';
import { slot, held } from '../support/slot-fixtures.js';

function content(key: string, blocks: string[], over: Partial<SlotContent> = {}): SlotContent {
  return { key, model: 'm', blocks, prefixLen: 10, big: true, saved: true, ...over };
}

const bigRequest: SlotRequest = { model: 'm', key: 'k-new', blocks: ['a', 'b', 'c', 'd'], big: true };
const smallRequest: SlotRequest = { model: 'm', key: 'k-small', blocks: ['x'], big: false };
const noDisk = () => undefined;

describe('planSlot', () => {
  it('waits (undefined) when every slot is busy or disabled', () => {
    const plan = planSlot({
      ...SEED,
      request: bigRequest,
      candidates: [slot(0, { busy: true }), slot(1, { disabled: true })],
      diskMatch: noDisk,
      lcpTh: 0.6,
    });
    assert.equal(plan, undefined);
  });

  it('takes an empty slot before the least recently used one', () => {
    const candidates = [slot(0, { lastUsed: 1, content: content('old', ['q']) }), slot(1, { lastUsed: 5 })];
    assert.equal(planSlot({ ...SEED, request: smallRequest, candidates, diskMatch: noDisk, lcpTh: 0.6 })?.slot.id, 1);
  });

  it('takes the least recently used slot when none is empty', () => {
    const candidates = [
      slot(0, { lastUsed: 9, content: content('a', ['q']) }),
      slot(1, { lastUsed: 3, content: content('b', ['r']) }),
    ];
    assert.equal(planSlot({ ...SEED, request: smallRequest, candidates, diskMatch: noDisk, lcpTh: 0.6 })?.slot.id, 1);
  });

  it('a small request avoids a slot with unsaved big content while a saved one is idle', () => {
    const candidates = [
      slot(0, { lastUsed: 1, content: content('unsaved', ['q'], { saved: false }) }),
      slot(1, { lastUsed: 8, content: content('saved', ['r']) }),
    ];
    const plan = planSlot({ ...SEED, request: smallRequest, candidates, diskMatch: noDisk, lcpTh: 0.6 });
    assert.equal(plan?.slot.id, 1);
    assert.equal(plan?.saveFirst, undefined);
  });

  it('asks to save unsaved big content first when it is the only idle slot', () => {
    const unsaved = content('unsaved', ['q'], { saved: false });
    const candidates = [slot(0, { content: unsaved }), slot(1, { busy: true })];
    const plan = planSlot({ ...SEED, request: smallRequest, candidates, diskMatch: noDisk, lcpTh: 0.6 });
    assert.equal(plan?.slot.id, 0);
    assert.equal(plan?.saveFirst, unsaved);
  });

  it('sends a continuing conversation back to the slot that holds it, without a restore', () => {
    const candidates = [
      slot(0, { content: content('other', ['z', 'y']) }),
      slot(1, { lastUsed: 0, content: content('prev', ['a', 'b', 'c']) }),
    ];
    const disk: DiskMatch = { key: 'prev', backend: 0, lcp: 3, ratio: 1, blockCount: 3 };
    const plan = planSlot({ ...SEED, request: bigRequest, candidates, diskMatch: () => disk, lcpTh: 0.6 });
    assert.equal(plan?.slot.id, 1);
    assert.equal(plan?.restore, undefined);
    assert.deepEqual(plan?.resident, { lcp: 3, ratio: 1 });
  });

  it('restores when the disk holds a longer prefix than any slot', () => {
    const candidates = [
      slot(0, { lastUsed: 2, content: content('other', ['z']) }),
      slot(1, { lastUsed: 1, content: content('x', ['a', 'q']) }),
    ];
    const disk: DiskMatch = { key: 'prev', backend: 0, lcp: 3, ratio: 1, blockCount: 3 };
    const plan = planSlot({ ...SEED, request: bigRequest, candidates, diskMatch: () => disk, lcpTh: 0.6 });
    assert.equal(plan?.restore, disk);
    assert.equal(plan?.slot.id, 1, 'least recently used slot receives the restore');
  });

  it('restores only on the backend whose disk holds the file', () => {
    const candidates = [slot(0, { backend: 0 }), slot(0, { backend: 1 })];
    const disk: DiskMatch = { key: 'prev', backend: 1, lcp: 2, ratio: 1, blockCount: 2 };
    const plan = planSlot({
      ...SEED,
      request: bigRequest,
      candidates,
      diskMatch: (b) => (b === 1 ? disk : undefined),
      lcpTh: 0.6,
    });
    assert.equal(plan?.slot.backend, 1);
    assert.equal(plan?.restore, disk);
  });

  it('ignores a resident slot below LCP_TH', () => {
    const candidates = [slot(0, { content: content('p', ['a', 'x', 'y', 'z']) })];
    const plan = planSlot({ ...SEED, request: bigRequest, candidates, diskMatch: noDisk, lcpTh: 0.6 });
    assert.equal(plan?.resident, undefined);
  });
});

describe('planSlot, smart policy', () => {
  it('does not restore when the receiving slot already shares as much of the prompt', () => {
    const candidates = [slot(0, { content: content('partial', ['a', 'b', 'c', 'q', 'r', 's']) })];
    const disk: DiskMatch = { key: 'older', backend: 0, lcp: 3, ratio: 1, blockCount: 3 };
    const plan = planSlot({
      ...SEED,
      request: bigRequest,
      candidates,
      diskMatch: () => disk,
      lcpTh: 0.6,
      restoreWorthIt: (m, slotLcp) => m.lcp > slotLcp,
    });
    assert.equal(plan?.restore, undefined);
  });

  it('does not restore when the restore costs more than the prefill it avoids', () => {
    const candidates = [slot(0)];
    const disk: DiskMatch = { key: 'k', backend: 0, lcp: 3, ratio: 1, blockCount: 3 };
    const plan = planSlot({
      ...SEED,
      request: bigRequest,
      candidates,
      diskMatch: () => disk,
      lcpTh: 0.6,
      restoreWorthIt: () => false,
    });
    assert.equal(plan?.restore, undefined);
    assert.equal(plan?.slot.id, 0);
  });

  it('skips the eviction save of content that grew by less than SAVE_MIN_NEW_TOKENS since its entry on disk', () => {
    const skipSave = skipBelowFloor({ minNewTokens: 256, onDisk: () => true });
    const grownLittle = content('turn2', ['q'], {
      saved: false,
      parentKey: 'turn1',
      parentTokens: 1000,
      nTokens: 1100,
    });
    const plan = planSlot({
      ...SEED,
      request: smallRequest,
      candidates: [slot(0, { content: grownLittle })],
      diskMatch: noDisk,
      lcpTh: 0.6,
      skipSave,
    });
    assert.equal(plan?.saveFirst, undefined);
    assert.deepEqual(plan?.skippedSave, { content: grownLittle, reason: 'below SAVE_MIN_NEW_TOKENS' });
    const grownMuch = content('turn3', ['q'], { saved: false, parentKey: 'turn1', parentTokens: 1000, nTokens: 1300 });
    const plan2 = planSlot({
      ...SEED,
      request: smallRequest,
      candidates: [slot(0, { content: grownMuch })],
      diskMatch: noDisk,
      lcpTh: 0.6,
      skipSave,
    });
    assert.equal(plan2?.saveFirst, grownMuch);
    assert.equal(plan2?.skippedSave, undefined);
  });

  it('lets go of the content skipSave names, says why, and ranks its slot with the cheap ones', () => {
    const letGo = content('grown', ['q'], { saved: false, parentKey: 'older', parentTokens: 1000, nTokens: 2000 });
    const mustSave = content('fresh', ['r'], { saved: false });
    const candidates = [slot(0, { lastUsed: 5, content: letGo }), slot(1, { lastUsed: 1, content: mustSave })];
    const skipSave = (c: SlotContent) => (c === letGo ? ('cheaper to prefill' as const) : undefined);

    const plan = planSlot({ ...SEED, request: smallRequest, candidates, diskMatch: noDisk, lcpTh: 0.6, skipSave });
    assert.equal(plan?.slot.id, 0, 'the let-go slot wins over the less recently used one that needs a save');
    assert.equal(plan?.saveFirst, undefined);
    assert.deepEqual(plan?.skippedSave, { content: letGo, reason: 'cheaper to prefill' });

    const seed = planSlot({ ...SEED, request: smallRequest, candidates, diskMatch: noDisk, lcpTh: 0.6 });
    assert.equal(seed?.slot.id, 1, 'without skipSave both need a save, and the least recently used one goes');
    assert.equal(seed?.saveFirst, mustSave);
  });

  it("lets go of the receiving slot's content before a restore too", () => {
    const letGo = content('grown', ['q'], { saved: false, parentKey: 'older', parentTokens: 1000, nTokens: 2000 });
    const disk: DiskMatch = { key: 'prev', backend: 0, lcp: 3, ratio: 1, blockCount: 3 };
    const plan = planSlot({
      ...SEED,
      request: bigRequest,
      candidates: [slot(0, { content: letGo })],
      diskMatch: () => disk,
      lcpTh: 0.6,
      skipSave: () => 'cheaper to prefill',
    });
    assert.equal(plan?.restore, disk);
    assert.equal(plan?.saveFirst, undefined);
    assert.equal(plan?.skippedSave?.content, letGo);
  });
});

describe('unsavedBigContent', () => {
  it('is the content to save first: big, not on disk, and not let go', () => {
    const unsaved = content('u', ['q'], { saved: false });
    assert.equal(unsavedBigContent(slot(0, { content: unsaved }), NEVER_SKIP), unsaved);
    assert.equal(
      unsavedBigContent(slot(0, { content: unsaved }), () => 'cheaper to prefill'),
      undefined,
    );
    assert.equal(
      unsavedBigContent(slot(0, { content: content('s', ['q']) }), NEVER_SKIP),
      undefined,
      'already on disk',
    );
    assert.equal(
      unsavedBigContent(slot(0, { content: content('small', ['q'], { saved: false, big: false }) }), NEVER_SKIP),
      undefined,
      'small',
    );
    assert.equal(unsavedBigContent(slot(0), NEVER_SKIP), undefined, 'empty');
  });
});

describe('planSlot patient', () => {
  const request: SlotRequest = { model: 'm', key: 'k-next', blocks: ['a', 'b', 'c'], big: true };
  const own = () => slot(0, { busy: true, content: held(700, { blocks: ['a', 'b'] }) });

  it('waits for the busy slot whose content this request continues, rather than starting cold', () => {
    const plan = planSlot({
      ...SEED,
      request,
      candidates: [own(), slot(1)],
      diskMatch: () => undefined,
      lcpTh: 0.6,
      patient: true,
    });
    assert.equal(plan, undefined);
  });

  it('goes elsewhere once patience ran out, or when the busy slot holds a copy of the same prompt', () => {
    assert.equal(
      planSlot({ ...SEED, request, candidates: [own(), slot(1)], diskMatch: () => undefined, lcpTh: 0.6 })?.slot.id,
      1,
    );
    const copy = slot(0, { busy: true, content: held(700, { key: 'k-next', blocks: ['a', 'b', 'c'] }) });
    assert.equal(
      planSlot({
        ...SEED,
        request,
        candidates: [copy, slot(1)],
        diskMatch: () => undefined,
        lcpTh: 0.6,
        patient: true,
      })?.slot.id,
      1,
    );
  });

  it('waits for its own slot being saved in the background even where disk holds it as far (the file being written)', () => {
    const saving = slot(0, { busy: true, background: true, content: held(700, { key: 'k', blocks: ['a', 'b'] }) });
    // The other slot holds a first turn not on disk yet: a save before the restore, with no cheaper save to wait for.
    const other = slot(1, { content: held(700, { key: 'other', blocks: ['o', 'p'], turns: 1 }) });
    const disk = { backend: 0, key: 'k', lcp: 2, ratio: 2 / 3, tokens: 700, blockCount: 2 };
    const input = { ...SEED, request, candidates: [saving, other], diskMatch: () => disk, lcpTh: 0.6 };
    assert.equal(planSlot({ ...input, patient: true }), undefined);
    // Not for a task still running there (its end may be far), nor once patience ran out: the restore goes ahead.
    const running = slot(0, { busy: true, content: held(700, { key: 'k', blocks: ['a', 'b'] }) });
    assert.equal(planSlot({ ...input, candidates: [running, other], patient: true })?.restore?.key, 'k');
    assert.equal(planSlot(input)?.restore?.key, 'k');
  });

  it('does not wait for a busy slot that shares only a common prefix (another conversation)', () => {
    const sibling = slot(0, { busy: true, content: held(700, { blocks: ['a', 'x', 'y'] }) });
    assert.equal(
      planSlot({
        ...SEED,
        request,
        candidates: [sibling, slot(1)],
        diskMatch: () => undefined,
        lcpTh: 0.6,
        patient: true,
      })?.slot.id,
      1,
    );
  });
});

describe('planSlot patient: a background save that ends with a cheaper victim', () => {
  const completion: SlotRequest = { model: 'm', key: 'k-fim', blocks: ['f', 'g'], big: true };
  const conversation = (over: Partial<SlotContent> = {}) => held(30_000, { blocks: ['a', 'b'], turns: 3, ...over });
  const plan = (candidates: SlotState[], patient = true, keepsIdleSlots = () => true) =>
    planSlot({
      ...SEED,
      request: completion,
      candidates,
      diskMatch: () => undefined,
      lcpTh: 0.6,
      patient,
      keepsIdleSlots,
    });

  it("waits for the one-off being saved rather than push out the agent's conversation", () => {
    const saving = slot(1, { busy: true, background: true, content: held(11_000, { blocks: ['m'], turns: 1 }) });
    assert.equal(plan([slot(0, { content: conversation() }), saving]), undefined);
    assert.equal(plan([slot(0, { content: conversation() }), saving], false)?.slot.id, 0, 'patience ran out');
  });

  it('waits for a conversation being saved when the idle one would have to be saved first', () => {
    const saving = slot(1, { busy: true, background: true, content: conversation({ key: 'other', blocks: ['o'] }) });
    assert.equal(plan([slot(0, { content: conversation() }), saving]), undefined);
    const onDisk = slot(0, { content: conversation({ saved: true }) });
    assert.equal(plan([onDisk, saving])?.slot.id, 0, 'the idle conversation is on disk: no cheaper once saved');
  });

  it('does not wait on a server that clears idle slots: this launch clears the conversation anyway', () => {
    const saving = slot(1, { busy: true, background: true, content: held(11_000, { blocks: ['m'], turns: 1 }) });
    const clearing = plan([slot(0, { content: conversation() }), saving], true, () => false);
    assert.equal(clearing?.slot.id, 0);
  });

  it('does not wait for a slot busy with a request, nor when the idle slot holds no conversation', () => {
    const answering = slot(1, { busy: true, content: held(11_000, { blocks: ['m'], turns: 1 }) });
    assert.equal(plan([slot(0, { content: conversation() }), answering])?.slot.id, 0);
    const saving = slot(1, { busy: true, background: true, content: held(11_000, { blocks: ['m'], turns: 1 }) });
    assert.equal(plan([slot(0, { content: held(900, { blocks: ['t'], turns: 1 }) }), saving])?.slot.id, 0);
  });
});

describe("planSlot: a prefill's place in the server's batches (llama-server fills them in slot-id order)", () => {
  const busyPrefilling = (id: number) => slot(id, { busy: true });
  const prefilling = (s: SlotState) => s.busy;

  it('a big prompt goes above the prefills running, so that the one sent first is not held back by it', () => {
    const candidates = [
      slot(0, { lastUsed: 1 }),
      slot(1, { lastUsed: 2 }),
      busyPrefilling(2),
      slot(3, { lastUsed: 9 }),
    ];
    const plan = planSlot({ ...SEED, request: bigRequest, candidates, diskMatch: noDisk, lcpTh: 0.6, prefilling });
    assert.equal(plan?.slot.id, 3, 'slot 3, though slots 0 and 1 were used longer ago');
  });

  it('a small prompt goes below them: its few tokens go into the next batch', () => {
    const candidates = [slot(0, { lastUsed: 9 }), busyPrefilling(1), slot(2, { lastUsed: 1 })];
    const plan = planSlot({ ...SEED, request: smallRequest, candidates, diskMatch: noDisk, lcpTh: 0.6, prefilling });
    assert.equal(plan?.slot.id, 0);
  });

  it('a slot busy decoding (its prefill over) does not count', () => {
    const candidates = [slot(0, { lastUsed: 1 }), slot(1, { busy: true }), slot(2, { lastUsed: 5 })];
    const plan = planSlot({
      ...SEED,
      request: bigRequest,
      candidates,
      diskMatch: noDisk,
      lcpTh: 0.6,
      prefilling: () => false,
    });
    assert.equal(plan?.slot.id, 0, 'the least recently used, as before');
  });

  it('what a slot holds still comes first: no conversation is pushed out for a better place', () => {
    const unsaved = content('live', ['q'], { saved: false });
    const candidates = [slot(0, { lastUsed: 1 }), busyPrefilling(1), slot(2, { lastUsed: 2, content: unsaved })];
    const plan = planSlot({ ...SEED, request: bigRequest, candidates, diskMatch: noDisk, lcpTh: 0.6, prefilling });
    assert.equal(plan?.slot.id, 0);
    assert.equal(plan?.saveFirst, undefined);
  });
});
