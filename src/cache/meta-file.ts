/**
 * The meta file format: `{META_DIR}/{key}.meta.json`, one per saved KV cache file, in the seed's JSON shape so
 * both proxies can read each other's files. Parsing, validation, serialisation and file naming; no disk access.
 */
/**
 * One saved prompt prefix. The first six fields are the seed's; the optional ones are ours and absent from
 * seed-written metas. Fields we do not know are kept at run time (and written back) but are not typed.
 */
export interface CacheMeta {
  key: string;
  model_id: string;
  /** Length of the canonical prompt text in Unicode code points (Python `len`). */
  prefix_len: number;
  /** Words per block the `blocks` were computed with. */
  wpb: number;
  blocks: string[];
  /** Seconds since the epoch, fractional (Python `time.time()`). */
  timestamp: number;
  /** URL of the backend whose disk holds the cache file; absent in seed-written metas. */
  backend?: string;
  n_tokens?: number;
  file_bytes?: number;
  fingerprint?: string;
}

/** A meta that fails validation; `field` names the offending field. */
export class MetaFormatError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`invalid meta: ${message}`);
    this.name = 'MetaFormatError';
    this.field = field;
  }
}

export const META_SUFFIX = '.meta.json';

// Keys become file names in two directories and a llama-server request; an allow-list (seed keys are 64 hex
// digits) rules out path separators, "..", NUL, leading dots and anything a shell or URL would mangle.
const SAFE_KEY = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;

/** True when `key` may be used as a file basename: 1–200 chars of `[A-Za-z0-9._-]`, no leading dot, no "..". */
export function isSafeKey(key: unknown): key is string {
  return typeof key === 'string' && SAFE_KEY.test(key) && !key.includes('..');
}

/** Returns `key` if it is a safe basename, else throws a MetaFormatError. Call before touching the disk. */
export function assertSafeKey(key: unknown): string {
  if (!isSafeKey(key)) throw new MetaFormatError('key', `key ${JSON.stringify(key)} is not a safe file name`);
  return key;
}

/** `{key}.meta.json`; throws for an unsafe key. */
export function metaFileName(key: string): string {
  return assertSafeKey(key) + META_SUFFIX;
}

/** The key of a `{key}.meta.json` file name, or undefined for any other name (or an unsafe key). */
export function keyFromMetaFileName(name: string): string | undefined {
  if (!name.endsWith(META_SUFFIX)) return undefined;
  const key = name.slice(0, -META_SUFFIX.length);
  return isSafeKey(key) ? key : undefined;
}

/**
 * Validates a parsed meta JSON value and returns it as a CacheMeta (a shallow copy, extra fields kept).
 * Throws a MetaFormatError naming the first bad field.
 */
export function parseMeta(json: unknown): CacheMeta {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new MetaFormatError('', 'expected a JSON object');
  }
  const m = json as Record<string, unknown>;
  assertSafeKey(m.key);
  if (typeof m.model_id !== 'string') throw bad('model_id', 'a string', m.model_id);
  if (!isCount(m.prefix_len)) throw bad('prefix_len', 'a non-negative integer', m.prefix_len);
  if (!isCount(m.wpb) || m.wpb < 1) throw bad('wpb', 'a positive integer', m.wpb);
  if (!Array.isArray(m.blocks) || !m.blocks.every((b) => typeof b === 'string' && b !== '')) {
    throw bad('blocks', 'an array of non-empty strings', m.blocks);
  }
  if (typeof m.timestamp !== 'number' || !Number.isFinite(m.timestamp)) {
    throw bad('timestamp', 'a finite number', m.timestamp);
  }
  for (const f of ['backend', 'fingerprint'] as const) {
    if (m[f] !== undefined && typeof m[f] !== 'string') throw bad(f, 'a string', m[f]);
  }
  for (const f of ['n_tokens', 'file_bytes'] as const) {
    if (m[f] !== undefined && !isCount(m[f])) throw bad(f, 'a non-negative integer', m[f]);
  }
  return { ...m } as unknown as CacheMeta;
}

/**
 * The file content, byte-compatible with the seed's `json.dump(meta, f, indent=2, ensure_ascii=False)`: 2-space
 * indent, `": "` and `","` separators, non-ASCII written as is, no trailing newline. Seed fields come first in
 * the seed's order, then ours and any extras.
 */
export function serializeMeta(meta: CacheMeta): string {
  const { key, model_id, prefix_len, wpb, blocks, timestamp, ...rest } = meta;
  return JSON.stringify({ key, model_id, prefix_len, wpb, blocks, timestamp, ...rest }, null, 2);
}

/** First 16 hex digits of a cache key: enough to follow one conversation through the log and the status API. */
export function shortKey(key: string): string {
  return key.slice(0, 16);
}

/**
 * The meta of a prompt prefix just saved: the seed's fields in the seed's order, then ours where known (an
 * undefined one is left out, as the seed's metas lack them). `timestamp` defaults to now.
 */
export function buildMeta(input: {
  key: string;
  model: string;
  /** Length of the canonical prompt text in code points (PromptAnalysis.prefixLen). */
  prefixLen: number;
  blocks: readonly string[];
  wpb: number;
  timestamp?: number;
  backend?: string | undefined;
  n_tokens?: number | undefined;
  file_bytes?: number | undefined;
  fingerprint?: string | undefined;
}): CacheMeta {
  const { key, model, prefixLen, blocks, wpb, timestamp = Date.now() / 1000, ...ours } = input;
  const known = Object.fromEntries(Object.entries(ours).filter(([, v]) => v !== undefined));
  return { key, model_id: model, prefix_len: prefixLen, wpb, blocks: [...blocks], timestamp, ...known };
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function bad(field: string, expected: string, got: unknown): MetaFormatError {
  const shown = JSON.stringify(got) ?? String(got);
  return new MetaFormatError(
    field,
    `${field} must be ${expected}, got ${shown.length > 60 ? shown.slice(0, 60) + '…' : shown}`,
  );
}
