import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  analyzePrompt,
  blockHashes,
  cacheKey,
  canonicalPromptText,
  promptWords,
} from '../../src/prompt/prompt-analysis.js';
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
  const messages = [
    { role: 'user', content: 'one two three four' },
    { role: 'assistant', content: 'five six' },
  ];
  analyzer.analyze({ messages });
  assert.deepEqual(analyzer.size(), { models: 1, nodes: 2, chars: 'one two three four'.length + 'five six'.length });
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
    const body = {
      messages: [
        { role: 'user', content: `conversation ${i} ${randomText(rand, 10)}` },
        { role: 'user', content: 'next' },
      ],
    };
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

test('PromptAnalyzer prunes a conversation thousands of messages deep without overflowing the stack (issue 9.1)', () => {
  const analyzer = new PromptAnalyzer(OPTS, { maxNodes: 9_000, maxChars: 10_000_000 });
  const messages: unknown[] = [];
  for (let turn = 0; turn < 12; turn++) {
    for (let i = 0; i < 1_000; i++) messages.push({ role: i % 2 ? 'assistant' : 'user', content: `m${turn} ${i} w` });
    const body = { messages: [...messages] };
    assert.deepEqual(analyzer.analyze(body), reference(body));
    assert.ok(analyzer.size().nodes <= 9_000, `nodes ${analyzer.size().nodes} after turn ${turn}`);
  }
  // And it keeps working for everything after.
  const after = { messages: [{ role: 'user', content: 'a later, ordinary request with a few words' }] };
  assert.deepEqual(analyzer.analyze(after), reference(after));
});

test('PromptAnalyzer: one request with more messages than the memo holds is analysed exactly and leaves it bounded', () => {
  const analyzer = new PromptAnalyzer(OPTS, { maxNodes: 2_000, maxChars: 10_000_000 });
  const kept = { messages: [{ role: 'user', content: 'a conversation that should stay memoised' }] };
  analyzer.analyze(kept);
  const huge = { messages: Array.from({ length: 20_001 }, (_, i) => ({ role: 'user', content: `short ${i}` })) };
  assert.deepEqual(analyzer.analyze(huge), reference(huge));
  assert.deepEqual(analyzer.size(), { models: 1, nodes: 1, chars: 'a conversation that should stay memoised'.length });
  assert.deepEqual(analyzer.analyze(kept), reference(kept));
});

test('PromptAnalyzer: distinct model names do not pile up once their conversations are pruned', () => {
  const analyzer = new PromptAnalyzer(OPTS, { maxNodes: 100, maxChars: 10_000_000 });
  for (let i = 0; i < 1_000; i++)
    analyzer.analyze({ model: `model-${i}`, messages: [{ role: 'user', content: 'hi' }] });
  assert.ok(analyzer.size().nodes <= 100);
  assert.ok(analyzer.size().models <= 100, `models ${analyzer.size().models}`);
});
