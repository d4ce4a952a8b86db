/**
 * Prompt analysis: request body → canonical text, words, block hashes, cache key. Pure functions, the same rules as
 * the seed's hashing.py, so keys and block hashes equal those in meta files the Python proxy wrote.
 */
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { codePointLength, pyScalarStr, pyStrip } from './python-compat.js';
import { WordBlockHasher } from './word-blocks.js';

/** What the rest of the proxy needs to know about one chat request's prompt. */
export interface PromptAnalysis {
  /** `body.model` when it is a non-empty string, else the configured model id. Part of the key. */
  model: string;
  /** Length of the canonical prompt text (see {@link canonicalPromptText}) in code points: the meta's `prefix_len`. */
  prefixLen: number;
  wordCount: number;
  /** SHA-256 hex per block of `wordsPerBlock` words (see {@link blockHashes}). */
  blocks: string[];
  /** SHA-256 hex of `model + "\n" + text`; also the cache file's basename. */
  key: string;
  /** `wordCount > bigThresholdWords`: only big prompts are cached on disk. */
  big: boolean;
}

export interface PromptAnalysisOptions {
  modelId: string;
  wordsPerBlock: number;
  bigThresholdWords: number;
}

// Python's \w on str: letters, numbers and underscore. Combining marks (Mn/Mc) are not word characters in
// either engine, so "é" written as e + U+0301 splits into "e" and the rest, exactly as in Python.
const WORD = /[\p{L}\p{N}_]+/gu;

/** The separator between two messages' texts in the canonical text. It holds no word character. */
const PART_SEPARATOR = '\n\n';

/**
 * The seed's `raw_prefix`: each message's content, stripped (Python `str.strip`), empty ones dropped, joined with
 * a blank line, stripped again. Roles are ignored. Entries that are not objects are skipped.
 *
 * Content that is not a string: an array of parts gives the `text` of its text parts joined with "\n" (image and
 * other parts are ignored); `null`/booleans/numbers give Python's `str()` ("None", "True", …) as the seed does;
 * other objects give `JSON.stringify`. For arrays and objects the seed used Python's `str()` repr instead
 * (`[{'type': 'text', …}]`), so hashes of such prompts differ from seed-written metas — on purpose: the repr
 * would put quoting and base64 image data into the words.
 */
export function canonicalPromptText(messages: unknown[]): string {
  return canonicalParts(messages).join(PART_SEPARATOR);
}

/**
 * The canonical text's parts: each message's content, stripped, empty ones left out. Joined with
 * {@link PART_SEPARATOR} they are the canonical text (already stripped: each part starts and ends with a non-space).
 */
export function canonicalParts(messages: unknown[]): string[] {
  const parts: string[] = [];
  for (const message of Array.isArray(messages) ? messages : []) {
    if (typeof message !== 'object' || message === null) continue;
    const content = contentText((message as { content?: unknown }).content);
    if (content !== '') parts.push(content);
  }
  return parts;
}

function contentText(content: unknown): string {
  // A missing key is "" in the seed (msg.get("content", "")), while an explicit null is str(None).
  if (content === undefined) return '';
  if (typeof content === 'string') return pyStrip(content);
  if (content === null || typeof content === 'boolean' || typeof content === 'number') {
    return pyStrip(pyScalarStr(content));
  }
  if (Array.isArray(content))
    return pyStrip(
      content
        .map(partText)
        .filter((t) => t !== undefined)
        .join('\n'),
    );
  return pyStrip(JSON.stringify(content) ?? '');
}

function partText(part: unknown): string | undefined {
  if (typeof part === 'string') return part;
  if (typeof part !== 'object' || part === null) return undefined;
  const { type, text } = part as { type?: unknown; text?: unknown };
  return (type === undefined || type === 'text') && typeof text === 'string' ? text : undefined;
}

/**
 * The seed's words: `re.findall(r"\w+", text.lower())`. The reference definition; `analyzePrompt` uses the
 * equivalent allocation-free `hashWordBlocks`.
 */
export function promptWords(text: string): string[] {
  return text.toLowerCase().match(WORD) ?? [];
}

/**
 * SHA-256 hex (of the UTF-8 bytes) of each run of `wordsPerBlock` words joined by single spaces; the last block
 * may be shorter. No words → no blocks. Throws a RangeError unless `wordsPerBlock` is a positive integer.
 */
export function blockHashes(words: readonly string[], wordsPerBlock: number): string[] {
  if (!Number.isInteger(wordsPerBlock) || wordsPerBlock < 1) {
    throw new RangeError(`wordsPerBlock must be a positive integer, got ${wordsPerBlock}`);
  }
  const hashes: string[] = [];
  for (let i = 0; i < words.length; i += wordsPerBlock) {
    hashes.push(sha256Hex(words.slice(i, i + wordsPerBlock).join(' ')));
  }
  return hashes;
}

/**
 * The cache key: SHA-256 hex of `modelId + "\n" + text`. Always 64 lowercase hex digits, a safe file name. The
 * reference definition (as `promptWords` is for words); `PromptState` computes the same key incrementally.
 */
export function cacheKey(modelId: string, text: string): string {
  return sha256Hex(`${modelId}\n${text}`);
}

/**
 * Runs the whole analysis for one chat request body (a few ms for 100k words; `PromptAnalyzer` remembers earlier
 * requests and only analyses what a conversation added). `body.messages` that is not an array counts as empty.
 * Throws a RangeError unless `wordsPerBlock` is a positive integer.
 */
export function analyzePrompt(
  body: { messages: unknown[]; model?: unknown },
  opts: PromptAnalysisOptions,
): PromptAnalysis {
  return analyzeParts(requestModel(body, opts.modelId), canonicalParts(body.messages), opts);
}

/** The analysis of canonical parts (see {@link canonicalParts}; empty parts are skipped) for `model`. */
export function analyzeParts(model: string, parts: readonly string[], opts: PromptAnalysisOptions): PromptAnalysis {
  const state = PromptState.start(model, opts.wordsPerBlock);
  for (const part of parts) if (part !== '') state.add(part);
  return state.finish(model, opts.bigThresholdWords);
}

/** `body.model` when it is a non-empty string, else the configured model id. */
export function requestModel(body: { model?: unknown }, modelId: string): string {
  return typeof body.model === 'string' && body.model !== '' ? body.model : modelId;
}

/**
 * The analysis of a prompt's first parts, ready to take the next one. `fork` gives an independent copy, so the
 * state after a message can be kept and continued by a later request that repeats the same messages.
 */
export class PromptState {
  private constructor(
    private readonly words: WordBlockHasher,
    /** SHA-256 of `model + "\n" + the text so far`: the cache key once finished. */
    private readonly keyHash: Hash,
    private parts: number,
    private codePoints: number,
  ) {}

  static start(model: string, wordsPerBlock: number): PromptState {
    return new PromptState(new WordBlockHasher(wordsPerBlock), createHash('sha256').update(`${model}\n`, 'utf8'), 0, 0);
  }

  /** Adds one non-empty part of the canonical text (see {@link canonicalParts}). */
  add(part: string): void {
    if (this.parts > 0) {
      this.keyHash.update(PART_SEPARATOR, 'utf8');
      this.codePoints += PART_SEPARATOR.length;
    }
    this.keyHash.update(part, 'utf8');
    this.words.feed(part);
    this.codePoints += codePointLength(part);
    this.parts++;
  }

  fork(): PromptState {
    return new PromptState(this.words.fork(), this.keyHash.copy(), this.parts, this.codePoints);
  }

  /** The analysis of the parts added so far. Leaves the state as it was. */
  finish(model: string, bigThresholdWords: number): PromptAnalysis {
    const { wordCount, blocks } = this.words.result();
    const key = this.keyHash.copy().digest('hex');
    return { model, prefixLen: this.codePoints, wordCount, blocks, key, big: wordCount > bigThresholdWords };
  }
}

function sha256Hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}
