import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { noteSkipped, skipBelowFloor, skipSummary, skipWhenCheaperToPrefill } from '../../src/slots/save-skip.js';
import { ResaveRent } from '../../src/slots/resave-rent.js';
import type { SlotContent } from '../../src/slots/slot-state.js';

function content(over: Partial<SlotContent> = {}): SlotContent {
  return { key: 'k2', model: 'm', blocks: ['a'], prefixLen: 10, big: true, saved: false, ...over };
}

/** Economics that always prefer prefilling later, and record what they were asked. */
function neverResave() {
  const asked: Array<[string, number, number]> = [];
  return {
    asked,
    resaveWorthIt(model: string, total: number, unsaved: number) {
      asked.push([model, total, unsaved]);
      return false;
    },
  };
}

const grown = { parentKey: 'k1', parentTokens: 10_000, nTokens: 11_000 };
/** No rent paid over any entry yet. */
const noRent = { paidOver: () => 0 };

describe('skipWhenCheaperToPrefill and skipBelowFloor', () => {
  it('always saves content with no entry on disk behind it, whatever the costs', () => {
    const economics = neverResave();
    const skip = skipWhenCheaperToPrefill({ minNewTokens: 256, onDisk: () => true, economics, rent: noRent });
    assert.equal(skip(content()), undefined, 'no parent');
    assert.equal(skip(content({ ...grown, parentTokens: undefined })), undefined, "parent's tokens unknown");
    assert.equal(skip(content({ ...grown, nTokens: undefined })), undefined, 'own tokens unknown');
    assert.equal(
      skipWhenCheaperToPrefill({ minNewTokens: 256, onDisk: () => false, economics, rent: noRent })(content(grown)),
      undefined,
      'parent no longer on disk',
    );
    assert.deepEqual(economics.asked, [], 'the costs are not even asked');
  });

  it('lets growth below SAVE_MIN_NEW_TOKENS go without asking the costs', () => {
    const economics = neverResave();
    const skip = skipWhenCheaperToPrefill({
      minNewTokens: 256,
      onDisk: (key: string) => key === 'k1',
      economics,
      rent: noRent,
    });
    assert.equal(skip(content({ ...grown, nTokens: 10_255 })), 'below SAVE_MIN_NEW_TOKENS');
    assert.deepEqual(economics.asked, []);
  });

  it('above the floor, lets the growth go when the costs say prefilling it again is cheaper', () => {
    const economics = neverResave();
    const skip = skipWhenCheaperToPrefill({ minNewTokens: 256, onDisk: () => true, economics, rent: noRent });
    assert.equal(skip(content(grown)), 'cheaper to prefill');
    assert.deepEqual(economics.asked, [['m', 11_000, 1000]], 'asked with the whole slot and its growth');
    const worthIt = skipWhenCheaperToPrefill({
      minNewTokens: 256,
      onDisk: () => true,
      economics: { resaveWorthIt: () => true },
      rent: noRent,
    });
    assert.equal(worthIt(content(grown)), undefined);
  });

  it('the floor alone (idle time, shutdown: nobody waits for the save)', () => {
    const skip = skipBelowFloor({ minNewTokens: 256, onDisk: () => true });
    assert.equal(skip(content(grown)), undefined);
    assert.equal(skip(content({ ...grown, nTokens: 10_100 })), 'below SAVE_MIN_NEW_TOKENS');
  });
});

describe('skipSummary', () => {
  it('gives the tokens given up, of how many, and why', () => {
    assert.deepEqual(skipSummary({ content: content(grown), reason: 'cheaper to prefill' }), {
      unsaved_tokens: 1000,
      tokens: 11_000,
      reason: 'cheaper to prefill',
    });
  });
});

describe('resave rent (ski rental over repeated evictions)', () => {
  it("counts the growth each skipped eviction gave up, and saves once the total reaches one save's cost", () => {
    // Saving the whole 10,000-token slot costs as much as prefilling 2,000 tokens (0.05 vs 0.25 ms per token).
    const economics = { resaveWorthIt: (_m: string, total: number, lost: number) => lost * 0.25 >= total * 0.05 };
    const rent = new ResaveRent();
    const skip = skipWhenCheaperToPrefill({ minNewTokens: 0, onDisk: () => true, economics, rent });
    const evict = (nTokens: number) => {
      const c = content({ parentKey: 'k1', parentTokens: 10_000, nTokens });
      const reason = skip(c);
      if (reason) noteSkipped(rent, { content: c });
      return reason;
    };
    // Each comeback re-prefills the growth over k1 again: 800 tokens are given up first...
    assert.equal(evict(10_800), 'cheaper to prefill');
    assert.equal(rent.paidOver('k1'), 800);
    // ...and 800 already paid + 1,500 at stake reach the save's worth: saved, though 1,500 alone would be skipped.
    assert.equal(evict(11_500), undefined);
    assert.equal(
      skipWhenCheaperToPrefill({ minNewTokens: 0, onDisk: () => true, economics, rent: noRent })(
        content({ parentKey: 'k1', parentTokens: 10_000, nTokens: 11_500 }),
      ),
      'cheaper to prefill',
    );
  });

  it('keeps a bounded ledger: the oldest entries are forgotten first', () => {
    const rent = new ResaveRent();
    for (let i = 0; i < 10_001; i++) rent.note(`k${i}`, 1);
    assert.equal(rent.paidOver('k0'), 0);
    assert.equal(rent.paidOver('k10000'), 1);
  });
});
