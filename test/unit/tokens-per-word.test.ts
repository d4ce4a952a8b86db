/** TokensPerWord: 2 tokens a word until a model's answers show more, then the most they showed. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TokensPerWord } from '../../src/backend/tokens-per-word.js';

describe('TokensPerWord', () => {
  it('estimates 2 tokens a word until an answer shows more, then the most any answer of that model showed', () => {
    const perWord = new TokensPerWord();
    assert.equal(perWord.estimate('m', 100), 200);
    perWord.learn('m', 100, 130); // English prose: below the bound, which stays
    assert.equal(perWord.estimate('m', 100), 200);
    perWord.learn('m', 100, 480); // numbers and identifiers
    perWord.learn('m', 100, 300);
    assert.equal(perWord.estimate('m', 100), 480);
    assert.equal(perWord.estimate('other', 100), 200, 'per model');
    perWord.learn('m', 0, 50);
    assert.equal(perWord.estimate('m', 10), 48, 'nothing learnt from an empty prompt');
  });
});
