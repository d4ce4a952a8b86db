import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blockHashes, promptWords } from '../../src/prompt/prompt-analysis.js';
import { WordBlockHasher } from '../../src/prompt/word-blocks.js';
import type { WordBlocks } from '../../src/prompt/word-blocks.js';

/** Word count and block hashes of one text, fed at once. */
function hashWordBlocks(text: string, wordsPerBlock: number): WordBlocks {
  const hasher = new WordBlockHasher(wordsPerBlock);
  hasher.feed(text);
  return hasher.result();
}
import { PIECES, prng, randomText } from '../support/unicode-text.js';

test('hashWordBlocks equals promptWords + blockHashes on random Unicode text', () => {
  const rand = prng(42);
  for (let round = 0; round < 2000; round++) {
    const text = randomText(rand, Math.floor(rand() * 60));
    const wpb = 1 + Math.floor(rand() * 5);
    const words = promptWords(text);
    assert.deepEqual(
      hashWordBlocks(text, wpb),
      { wordCount: words.length, blocks: blockHashes(words, wpb) },
      JSON.stringify(text),
    );
  }
});

test('hashWordBlocks equals the reference on ASCII-only text (the fast path)', () => {
  const rand = prng(7);
  // eslint-disable-next-line no-control-regex -- the ASCII range starts at NUL on purpose
  const ascii = PIECES.filter((p) => /^[\x00-\x7f]+$/.test(p));
  for (let round = 0; round < 1000; round++) {
    let text = '';
    for (let i = Math.floor(rand() * 80); i > 0; i--) text += ascii[Math.floor(rand() * ascii.length)];
    const words = promptWords(text);
    assert.deepEqual(hashWordBlocks(text, 3), { wordCount: words.length, blocks: blockHashes(words, 3) });
  }
});

test('hashWordBlocks: empty and separator-only text have no words', () => {
  assert.deepEqual(hashWordBlocks('', 100), { wordCount: 0, blocks: [] });
  assert.deepEqual(hashWordBlocks(' \n—😀 ', 100), { wordCount: 0, blocks: [] });
  assert.throws(() => hashWordBlocks('a', 0), RangeError);
});

test('WordBlockHasher: texts fed one by one hash like one text with a separator between them', () => {
  const rand = prng(11);
  for (let round = 0; round < 1000; round++) {
    const texts = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => randomText(rand, Math.floor(rand() * 30)));
    const wpb = 1 + Math.floor(rand() * 4);
    const hasher = new WordBlockHasher(wpb);
    const forks: WordBlockHasher[] = [];
    for (const text of texts) {
      hasher.feed(text);
      forks.push(hasher.fork());
    }
    const whole = texts.join('\n\n');
    assert.deepEqual(hasher.result(), hashWordBlocks(whole, wpb), JSON.stringify(texts));
    // A fork is a snapshot: feeding the original afterwards did not change it.
    assert.deepEqual(forks[0]!.result(), hashWordBlocks(texts[0]!, wpb));
  }
});
