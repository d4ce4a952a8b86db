import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  commonPrefixLength,
  contentText,
  renderChat,
  TemplateError,
  tokenize,
  Vocabulary,
} from '../../src/sim/tokenizer.js';

describe('sim tokenizer', () => {
  it('renders the chat template exactly like /apply-template in tokenize_template.txt', () => {
    const prompt = renderChat([
      { role: 'system', content: 'S' },
      { role: 'user', content: 'Hi' },
    ]);
    assert.equal(prompt, '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  });

  it('accepts text parts and null content, refuses images like a text-only server', () => {
    assert.equal(
      contentText([
        { type: 'text', text: 'a' },
        { type: 'text', text: 'b' },
      ]),
      'ab',
    );
    assert.equal(contentText(null), '');
    assert.throws(() => contentText([{ type: 'image_url', image_url: { url: 'x' } }]), TemplateError);
    assert.throws(() => contentText(42), TemplateError);
  });

  it('tokenizes losslessly: the pieces join back to the text', () => {
    const text = 'Hello, world!  Ünïcode 123_abc\n\n\tend <|im_start|>';
    const pieces = tokenize(text);
    assert.equal(pieces.join(''), text);
    assert.ok(pieces.includes(' world'));
  });

  it('tokenizes a 100k-token prompt quickly', () => {
    const text = 'lorem ipsum dolor sit amet, '.repeat(17_000);
    const t0 = performance.now();
    const pieces = tokenize(text);
    const ms = performance.now() - t0;
    assert.ok(pieces.length >= 100_000, `got ${pieces.length} tokens`);
    assert.ok(ms < 1000, `took ${ms} ms`);
  });

  it('measures common prefixes', () => {
    assert.equal(commonPrefixLength(['a', 'b', 'c'], ['a', 'b', 'd']), 2);
    assert.equal(commonPrefixLength([], ['a']), 0);
    assert.equal(commonPrefixLength(['a'], ['a']), 1);
  });

  it('hands out stable ids with BOS at 1', () => {
    const v = new Vocabulary();
    const id = v.idOf(' Hello');
    assert.equal(v.idOf(' Hello'), id);
    assert.equal(v.pieceOf(id), ' Hello');
    assert.equal(v.pieceOf(1), '<s>');
    assert.equal(v.pieceOf(999_999), undefined);
  });
});

describe('tokenizeChat', () => {
  it('equals tokenizing the rendered chat, message by message (cached), for arbitrary contents', async () => {
    const { tokenizeChat, tokenize, renderChat } = await import('../../src/sim/tokenizer.js');
    const contents = [
      'Hello world',
      '  leading spaces\nand lines\n\n',
      'tail space ',
      'ünïcödé, punctuation!? 123',
      '',
      'x',
    ];
    for (let i = 0; i < 20; i++) {
      const messages = Array.from({ length: 1 + (i % 5) }, (_, j) => ({
        role: j % 2 ? 'assistant' : 'user',
        content: contents[(i + j) % contents.length]!,
      }));
      assert.deepEqual(tokenizeChat(messages), tokenize(renderChat(messages)));
    }
  });
});
