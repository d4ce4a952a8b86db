import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { RestoreEconomics } from '../../src/slots/restore-economics.js';
import { ResaveRent } from '../../src/slots/resave-rent.js';
import { createSavePolicy } from '../../src/slots/save-policy.js';
import type { SavePolicyDeps } from '../../src/slots/save-policy.js';
import { NO_ANSWER_SAVER, WriteBehindSaver } from '../../src/slots/write-behind.js';
import type { DiskMatch, SlotContent } from '../../src/slots/slot-state.js';

function deps(over: Partial<SavePolicyDeps> = {}): SavePolicyDeps {
  return {
    minNewTokens: 256,
    wordsPerBlock: 100,
    cacheDir: '/cache',
    economics: new RestoreEconomics(),
    rent: new ResaveRent(),
    onDisk: () => true,
    log: pino({ enabled: false }),
    ...over,
  };
}

const match: DiskMatch = { key: 'k', backend: 0, lcp: 4, ratio: 1, tokens: 400, blockCount: 4 };
/** Unsaved content that grew 100 tokens over an entry on disk. */
const grown: SlotContent = {
  key: 'k2',
  model: 'm',
  blocks: ['a'],
  prefixLen: 1,
  big: true,
  saved: false,
  parentKey: 'k1',
  parentTokens: 1000,
  nTokens: 1100,
};

describe('SavePolicy', () => {
  it('always: the seed, whatever it is asked', () => {
    const policy = createSavePolicy('always', deps());
    assert.equal(policy.name, 'always');
    assert.equal(policy.skipSave(grown), undefined, 'every unsaved big content is saved first');
    assert.equal(policy.restoreWorthIt('m', match, 4), true, 'restores even without a gain');
    assert.equal(policy.prefer, 'ratio');
    assert.equal(policy.restoresEnabled('m'), true);
    let asked = false;
    assert.equal(
      policy.savesAfterAnswer(() => (asked = true)),
      true,
    );
    assert.equal(asked, false, 'saves after every answer without asking about swaps');
    assert.equal(policy.retiresParents, false);
    assert.equal(policy.createAnswerSaver({} as never), NO_ANSWER_SAVER);
  });

  it('smart: lets small growth go, restores only a gain, saves after an answer only before a swap', () => {
    const economics = new RestoreEconomics();
    const policy = createSavePolicy('smart', deps({ economics }));
    assert.equal(policy.name, 'smart');
    assert.equal(policy.skipSave(grown), 'below SAVE_MIN_NEW_TOKENS');
    assert.equal(policy.restoreWorthIt('m', match, 4), false, 'no longer prefix than the slot has');
    assert.equal(policy.restoreWorthIt('m', match, 2), true, 'speeds not measured yet: assumed worth it');
    assert.equal(policy.prefer, 'lcp');
    assert.equal(
      policy.savesAfterAnswer(() => false),
      false,
    );
    assert.equal(
      policy.savesAfterAnswer(() => true),
      true,
    );
    assert.equal(policy.speeds, economics, 'the slot cache teaches the economics');
    assert.equal(policy.retiresParents, true);
    assert.ok(
      policy.createAnswerSaver({
        pool: {} as never,
        slotCache: {} as never,
        log: pino({ enabled: false }),
        windowMs: 0,
        describeBackend: String,
      }) instanceof WriteBehindSaver,
    );
  });

  it('smart: lineage needs CACHE_DIR', () => {
    assert.equal(createSavePolicy('smart', deps({ cacheDir: null })).retiresParents, false);
  });

  it('smart: two restores that brought no reuse turn restores of the model off', () => {
    const policy = createSavePolicy('smart', deps());
    const useless = {
      timings: { prompt_n: 1000, prompt_ms: 100, cache_n: 0 },
      restore: { ok: true, ms: 1, tokens: 900 },
      shared: false,
    };
    policy.learnFromAnswer('m', useless);
    assert.equal(policy.restoresEnabled('m'), true);
    policy.learnFromAnswer('m', useless);
    assert.equal(policy.restoresEnabled('m'), false);
    assert.equal(policy.restoresEnabled('other'), true);
  });
});
