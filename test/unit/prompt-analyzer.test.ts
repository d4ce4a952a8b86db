import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzePrompt, blockHashes, cacheKey, canonicalPromptText, promptWords } from '../../src/prompt/prompt-analysis.js';
import { PromptAnalyzer } from '../../src/prompt/prompt-analyzer.js';
import { codePointLength } from '../../src/prompt/python-compat.js';
import { prng, randomText } from '../support/unicode-text.js';

const OPTS = { modelId: 'default', wordsPerBlock: 3, bigThresholdWords: 8 };

/** The analysis from the reference definitions, one step at a time. */
function reference(body: { messages: unknown[]; model?: string }) {
  const text = canonicalPromptText(body.messages);
  const words = promptWords(text);
  const model = body.model || OPTS.modelId;
  return {
    model,
    prefixLen: codePointLength(text),
    wordCount: words.length,
    blocks: blockHashes(words, OPTS.wordsPerBlock),
    key: cacheKey(model, text),
    big: words.length > OPTS.bigThresholdWords,
  };
}

function randomMessage(rand: () => number): unknown {
  const r = rand();
  if (r < 0.05) return { role: 'user', content: '   ' }; // stripped to nothing: left out of the text
  if (r < 0.1) return { role: 'user', content: [{ type: 'text', text: randomText(rand, 8) }, { type: 'image_url' }] };
  if (r < 0.12) return { role: 'user', content: null };
  return { role: rand() < 0.5 ? 'user' : 'assistant', content: randomText(rand, Math.floor(rand() * 25)) };
}

test('PromptAnalyzer equals the reference analysis on growing, branching and repeated conversations', () => {
  const rand = prng(5);
  const analyzer = new PromptAnalyzer(OPTS);
  const conversations: unknown[][] = [];
  for (let round = 0; round < 1500; round++) {
    const pick = rand();
    let messages: unknown[];
    if (conversations.length === 0 || pick < 0.2) {
      messages = [randomMessage(rand)]; // a new conversation
    } else {
      const base = conversations[Math.floor(rand() * conversations.length)]!;
      // Continue it (the common case), branch off an earlier message (an edit), or repeat it as it is.
      const keep = pick < 0.7 ? base.length : Math.floor(rand() * (base.length + 1));
      messages = [...base.slice(0, keep), ...Array.from({ length: Math.floor(rand() * 3) }, () => randomMessage(rand))];
    }
    conversations.push(messages);
    const body = { messages, ...(rand() < 0.3 && { model: 'other' }) };
    assert.deepEqual(analyzer.analyze(body), reference(body), JSON.stringify(body));
  }
});

test('PromptAnalyzer: a repeated conversation is not stored twice, a continued one adds only its new messages', () => {
  const analyzer = new PromptAnalyzer(OPTS);
  const messages = [{ role: 'user', content: 'one two three four' }, { role: 'assistant', content: 'five six' }];
  analyzer.analyze({ messages });
  assert.deepEqual(analyzer.size(), { nodes: 2, chars: 'one two three four'.length + 'five six'.length });
  analyzer.analyze({ messages });
  assert.equal(analyzer.size().nodes, 2);
  analyzer.analyze({ messages: [...messages, { role: 'user', content: 'seven' }] });
  assert.equal(analyzer.size().nodes, 3);
  // Another model starts its own trie: the key depends on the model.
  analyzer.analyze({ messages, model: 'other' });
  assert.equal(analyzer.size().nodes, 5);
});

test('PromptAnalyzer stays within its limits, drops the least recently used conversations, and stays exact', () => {
  const rand = prng(9);
  const analyzer = new PromptAnalyzer(OPTS, { maxNodes: 40, maxChars: 100_000 });
  const hot = [{ role: 'user', content: 'hot conversation kept in use' }];
  for (let i = 0; i < 200; i++) {
    const body = { messages: [{ role: 'user', content: `conversation ${i} ${randomText(rand, 10)}` }, { role: 'user', content: 'next' }] };
    assert.deepEqual(analyzer.analyze(body), analyzePrompt(body, OPTS));
    analyzer.analyze({ messages: hot });
    assert.ok(analyzer.size().nodes <= 40, `nodes ${analyzer.size().nodes}`);
  }
  // The conversation used all along survived every pruning: analysing it again adds nothing.
  const before = analyzer.size().nodes;
  analyzer.analyze({ messages: hot });
  assert.equal(analyzer.size().nodes, before);

  const byChars = new PromptAnalyzer(OPTS, { maxNodes: 1000, maxChars: 200 });
  for (let i = 0; i < 50; i++) byChars.analyze({ messages: [{ role: 'user', content: `${i} ${'x'.repeat(30)}` }] });
  assert.ok(byChars.size().chars <= 200, `chars ${byChars.size().chars}`);
});
