import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RamPromptCache } from '../../src/sim/ram-cache.js';

const toks = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe('sim RAM prompt cache', () => {
  it('returns the entry with the longest common prefix', () => {
    const ram = new RamPromptCache(1000, 1);
    const a = toks('a', 10);
    const b = toks('b', 10);
    ram.put(a);
    ram.put(b);
    assert.deepEqual(ram.best([...a.slice(0, 7), 'x']), { tokens: a, lcp: 7 });
    assert.equal(ram.best(['zzz']), undefined);
  });

  it('evicts the least recently used entries beyond the limit', () => {
    const ram = new RamPromptCache(25, 1);
    const a = toks('a', 10);
    const b = toks('b', 10);
    const c = toks('c', 10);
    ram.put(a);
    ram.put(b);
    ram.best(a); // a is now more recent than b
    ram.put(c);
    assert.equal(ram.size, 2);
    assert.equal(ram.best(b), undefined);
    assert.equal(ram.best(a)?.lcp, 10);
    assert.equal(ram.best(c)?.lcp, 10);
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
