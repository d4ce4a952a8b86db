import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cacheUpdateWanted } from '../../src/sim/prompt-cache-policy.js';
import { RamPromptCache } from '../../src/sim/ram-cache.js';

const toks = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe('sim RAM prompt cache', () => {
  it('hands over the entry that covers more of the prompt, and forgets it (the slot holds it now)', () => {
    const ram = new RamPromptCache(1000, 1);
    const a = toks('a', 10);
    const b = toks('b', 10);
    ram.put(a);
    ram.put(b);
    assert.deepEqual(ram.take([...a.slice(0, 7), 'x'], []), { tokens: a, lcp: 7 });
    assert.equal(ram.size, 1);
    assert.equal(ram.take([...a.slice(0, 7), 'x'], []), undefined);
    assert.equal(ram.take(['zzz'], []), undefined);
  });

  it('loads nothing that would keep less than a quarter of it, nor what the slot already beats', () => {
    const ram = new RamPromptCache(1000, 1);
    const a = toks('a', 40);
    ram.put(a);
    assert.equal(ram.take([...a.slice(0, 9), 'x'], []), undefined); // 9/40 < 0.25
    assert.equal(ram.take([...a.slice(0, 20), 'x'], a.slice(0, 20)), undefined); // the slot keeps 100 %
    assert.equal(lcpOf(ram.take([...a.slice(0, 20), 'x'], [])), 20);
  });

  it('leaves an entry that does not fit the slot in the cache (no room), and loads it once it fits', () => {
    const ram = new RamPromptCache(1000, 1);
    const a = toks('a', 40);
    ram.put(a);
    assert.equal(
      ram.take(a, [], () => false),
      'no room',
    );
    assert.equal(ram.size, 1);
    assert.equal(lcpOf(ram.take(a, [], (tokens) => tokens.length <= 40)), 40);
    assert.equal(ram.size, 0);
  });

  it('evicts the oldest entries beyond the limit (FIFO, like the real server)', () => {
    const ram = new RamPromptCache(25, 1);
    const [a, b, c] = [toks('a', 10), toks('b', 10), toks('c', 10)];
    ram.put(a);
    ram.put(b);
    ram.put(a); // already held: not stored again, not refreshed either
    ram.put(c);
    assert.equal(ram.size, 2);
    assert.equal(ram.take(a, []), undefined);
    assert.equal(lcpOf(ram.take(b, [])), 10);
    assert.equal(lcpOf(ram.take(c, [])), 10);
  });

  it('does not keep states larger than the whole budget, nor anything when off', () => {
    const small = new RamPromptCache(5, 1);
    small.put(toks('a', 6));
    assert.equal(small.size, 0);
    const off = new RamPromptCache(0, 1);
    off.put(toks('a', 1));
    assert.equal(off.enabled, false);
    assert.equal(off.size, 0);
  });

  it('keeps one entry for a growing conversation', () => {
    const ram = new RamPromptCache(1000, 1);
    const turn1 = toks('t', 10);
    const turn2 = [...turn1, 'more', 'tokens'];
    ram.put(turn1);
    ram.put(turn2);
    ram.put(turn1); // already covered by turn2
    assert.equal(ram.size, 1);
    assert.equal(ram.bytes, 12);
  });
});

describe('sim prompt-cache update decision (get_available_slot)', () => {
  const a = toks('a', 100);
  const b = toks('b', 100);
  it('always updates for a slot picked by LRU', () => {
    assert.equal(cacheUpdateWanted('lru', [], a, 0.1), true);
    assert.equal(cacheUpdateWanted('lru', a, a, 0.1), true);
  });
  it('never updates for a pinned empty slot (f_keep = 0/0), nor for any pinned slot without similarity', () => {
    assert.equal(cacheUpdateWanted('pinned', [], a, 0.1), false);
    assert.equal(cacheUpdateWanted('pinned', b, a, 0), false);
  });
  it('updates a pinned or similar slot when the prompt keeps less than half of it', () => {
    assert.equal(cacheUpdateWanted('pinned', b, a, 0.1), true);
    assert.equal(cacheUpdateWanted('pinned', a.slice(0, 60), a, 0.1), false);
    assert.equal(cacheUpdateWanted('similarity', [...a.slice(0, 20), ...b], a, 0.1), true);
    assert.equal(cacheUpdateWanted('similarity', [...a.slice(0, 20), ...b.slice(0, 10)], a, 0.1), false);
  });
});

/** The prefix a take loaded, or what it answered instead. */
function lcpOf(match: ReturnType<RamPromptCache['take']>): number | string | undefined {
  return typeof match === 'object' ? match.lcp : match;
}
