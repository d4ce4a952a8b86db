import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  analyzePrompt,
  blockHashes,
  cacheKey,
  canonicalPromptText,
  promptWords,
} from '../../src/prompt/prompt-analysis.js';
import { codePointLength, isPySpace, pyStrip } from '../../src/prompt/python-compat.js';

// Expected values were computed with CPython 3.11 running the seed's hashing.py functions verbatim
// (raw_prefix, re.findall(r"\w+", text.lower()), sha256 of " ".join(block), sha256(model + "\n" + text)).
const SEED_MESSAGES: unknown[] = [
  { role: 'system', content: '  You are a helpful assistant.\x1c\n' },
  { role: 'user', content: 'Grüße aus München! Straße, ÄÖÜ; naïve café (e\u0301 combining) — snake_case_name x2 3.14' },
  { role: 'assistant', content: '   \n\t ' },
  { role: 'user', content: 'Привет, мир! ΟΔΥΣΣΕΥΣ İstanbul 東京タワー 123 😀 emoji\u2028line\u00a0nbsp' },
  { role: 'assistant' },
  { role: 'assistant', content: null },
  { role: 'user', content: '\ufeffBOM stays in Python (not whitespace)\x85' },
];

const SEED_TEXT =
  'You are a helpful assistant.\n\nGrüße aus München! Straße, ÄÖÜ; naïve café (e\u0301 combining) — snake_case_name x2 3.14' +
  '\n\nПривет, мир! ΟΔΥΣΣΕΥΣ İstanbul 東京タワー 123 😀 emoji\u2028line\u00a0nbsp\n\nNone\n\n\ufeffBOM stays in Python (not whitespace)';

const SEED_WORDS = [
  'you',
  'are',
  'a',
  'helpful',
  'assistant',
  'grüße',
  'aus',
  'münchen',
  'straße',
  'äöü',
  'naïve',
  'café',
  'e',
  'combining',
  'snake_case_name',
  'x2',
  '3',
  '14',
  'привет',
  'мир',
  'οδυσσευς',
  'i',
  'stanbul',
  '東京タワー',
  '123',
  'emoji',
  'line',
  'nbsp',
  'none',
  'bom',
  'stays',
  'in',
  'python',
  'not',
  'whitespace',
];

const SEED_BLOCKS_3 = [
  '290b5d3844ffb15cc9c010a79dcf557c21a541a5bb8fe51b06f45af18df1b3c0',
  'abd8eeee8c33f28c9f742c1b648aa203157faf61d04d8bb43ea507718af123de',
  '00199dae6ecd9a80f07d0a992a3986cc3631c0df305c6c6e9e175265a048fde1',
  '095389ea5fef861ce43f6cbd60d436b8c6eee176153f500e809a9379ce9eb7cf',
  'e926d49b8718f01f11c438ab76e98bcfa1e335f08462690d0e8c18a7b02ea411',
  'b667b08687dc5b053c8d158c5a534d6aa9afdf125b3902503c2a604ba2c7bc2e',
  'ca371cdf86e9947281cebb095cdff95cf800efda8bc779fd82f58bc1733c2f0f',
  'f4730582741788875bbf8824bed353a951af70f98c33e9786498c032cb5f7b57',
  '0dfeda5c449999d6e6cb92c060bc677c32d1968fdf8688954f51a1c7588d3760',
  'e21542fc5b3581992d51202f652485c67564ee33fbcbada6c97a9210be731a05',
  'bdc465104dab292b0a727dd14687411d8a1b9b256658de609a5306809fe61a8e',
  '8281b342e8ddb56b730814aa1f278ebf6d92fd0283d18ce43c47c118413f990e',
];

test('canonical text equals the seed raw_prefix (Python strip set, None, empty and missing content)', () => {
  assert.equal(canonicalPromptText(SEED_MESSAGES), SEED_TEXT);
  assert.equal(codePointLength(SEED_TEXT), 218); // Python len(text); the emoji is one code point
});

test('words equal Python re.findall(r"\\w+", text.lower())', () => {
  assert.deepEqual(promptWords(SEED_TEXT), SEED_WORDS);
});

test('block hashes and key equal the seed hashes', () => {
  assert.deepEqual(blockHashes(SEED_WORDS, 3), SEED_BLOCKS_3);
  assert.deepEqual(blockHashes(SEED_WORDS, 100), ['96e599283d2467cc793bbd97eb1a5b0580c3a2a1583166b72988d578c3b1df29']);
  assert.equal(cacheKey('qwen3-coder', SEED_TEXT), 'cbadb3de4664b8d3ee7872f662ebe1a0187d98da0cc2682495a5e8ce910ac685');
  assert.equal(cacheKey('m', ''), '01a60e35df88d8b49546cb3f8f4ba4f406870f9b8e1f394c9d48ab73548d748d');
});

test('array content: text parts joined with a newline, other parts ignored', () => {
  const messages = [
    {
      role: 'user',
      content: [
        { type: 'text', text: 'Look at this:' },
        { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
        { type: 'text', text: 'first part  ' },
      ],
    },
    { role: 'user', content: 'Second\tmessage' },
  ];
  const a = analyzePrompt({ messages, model: 'm' }, { modelId: 'x', wordsPerBlock: 2, bigThresholdWords: 10 });
  assert.equal(canonicalPromptText(messages), 'Look at this:\nfirst part\n\nSecond\tmessage');
  assert.equal(a.prefixLen, 'Look at this:\nfirst part\n\nSecond\tmessage'.length);
  assert.equal(a.key, 'c88e634e4fc8ca0eb85f05933343347412e7a09dc3498e4abf833ef24086085b');
  assert.deepEqual(a.blocks, [
    '2cc56642d9a6a07288b198b0e9961007e75d268746d420a08df4921f60c478ce',
    '97323027fd70545541da537c80ae36cb9f46483e56e2f9cb39a775dee3b2863a',
    'bff79b7e9ec0cf5e6d28b1023e2edb4aa072d75fc616a676cbb7d96861e196c8',
    'ab530a13e45914982b79f9b7e3fba994cfd1f3fb22f71cea1afbf02b460c6d1d',
  ]);
});

test('no messages: empty text, no words, no blocks', () => {
  const a = analyzePrompt({ messages: [] }, { modelId: 'm', wordsPerBlock: 100, bigThresholdWords: 0 });
  assert.deepEqual(
    { prefixLen: a.prefixLen, wordCount: a.wordCount, blocks: a.blocks, big: a.big },
    {
      prefixLen: 0,
      wordCount: 0,
      blocks: [],
      big: false,
    },
  );
  assert.equal(a.key, '01a60e35df88d8b49546cb3f8f4ba4f406870f9b8e1f394c9d48ab73548d748d');
});

test('non-object messages are skipped, non-array messages count as empty', () => {
  assert.equal(canonicalPromptText(['hi', 42, null, { content: 'ok' }]), 'ok');
  assert.equal(canonicalPromptText('nope' as unknown as unknown[]), '');
});

test('pyStrip keeps the BOM and strips NEL and the separators U+001C..U+001F', () => {
  assert.equal(pyStrip('\u001c\u001f\u0085 a \u3000'), 'a');
  assert.equal(pyStrip('\ufeffa\ufeff'), '\ufeffa\ufeff');
  assert.equal(pyStrip(' \t\n '), '');
  assert.equal(pyStrip('a  b'), 'a  b');
});

// CPython 3.11: [c for c in range(0x110000) if chr(c).isspace()]
const PY_SPACES = new Set([
  0x9, 0xa, 0xb, 0xc, 0xd, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
  0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

test('isPySpace is exactly Python str.isspace() (all of them are in the BMP)', () => {
  for (let c = 0; c <= 0xffff; c++) assert.equal(isPySpace(c), PY_SPACES.has(c), `U+${c.toString(16)}`);
});

test('model: body.model when a non-empty string, else modelId; it changes the key, not the blocks', () => {
  const opts = { modelId: 'default', wordsPerBlock: 100, bigThresholdWords: 500 };
  const messages = [{ role: 'user', content: 'hello world' }];
  const a = analyzePrompt({ messages, model: 'other' }, opts);
  const b = analyzePrompt({ messages, model: '' }, opts);
  const c = analyzePrompt({ messages, model: 7 }, opts);
  assert.equal(a.model, 'other');
  assert.equal(b.model, 'default');
  assert.equal(c.model, 'default');
  assert.notEqual(a.key, b.key);
  assert.equal(b.key, cacheKey('default', 'hello world'));
  assert.deepEqual(a.blocks, b.blocks);
});

test('big is wordCount > bigThresholdWords (boundary), last block may be shorter', () => {
  const text = Array.from({ length: 250 }, (_, i) => `w${i}`).join(' ');
  const messages = [{ role: 'user', content: text }];
  const at = analyzePrompt({ messages }, { modelId: 'm', wordsPerBlock: 100, bigThresholdWords: 250 });
  const below = analyzePrompt({ messages }, { modelId: 'm', wordsPerBlock: 100, bigThresholdWords: 249 });
  assert.equal(at.wordCount, 250);
  assert.equal(at.big, false);
  assert.equal(below.big, true);
  assert.deepEqual(at.blocks, [
    '38372d0249815e9479b2467d73ad5967bb26790dc05287626d7c76910405dd5e',
    '3b3324004a811423f2dcfa40bec8a0f6302dbaa6c45993fde2fb3209e72a1bc1',
    '8691ad3839cecebd6900b27e143f0dfc1f22aae5e2d3ba3c25954f4408d73a75',
  ]);
});

test('wordsPerBlock must be a positive integer', () => {
  assert.throws(() => blockHashes(['a'], 0), RangeError);
  assert.throws(() => blockHashes(['a'], 1.5), RangeError);
});

test('a 100k-word prompt is analysed quickly', () => {
  const vocab = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta'];
  const content = Array.from({ length: 100_000 }, (_, i) => vocab[i % vocab.length] + (i % 97)).join(' ');
  const messages = [{ role: 'user', content }];
  const opts = { modelId: 'm', wordsPerBlock: 100, bigThresholdWords: 500 };
  analyzePrompt({ messages }, opts); // warm up the regex and crypto paths
  const t0 = performance.now();
  const a = analyzePrompt({ messages }, opts);
  const ms = performance.now() - t0;
  assert.equal(a.wordCount, 100_000);
  assert.equal(a.blocks.length, 1000);
  // Typically 5–10 ms (the regex path takes ~30 ms); the loose bound catches an accidental quadratic path
  // without flaking on a busy CI box.
  assert.ok(ms < 500, `took ${ms.toFixed(1)} ms`);
});
