/**
 * Slot save files as the simulator writes them: a small real header (magic, model fingerprint, the token list)
 * and then the file is extended with ftruncate to the size a real KV dump would have, 48 + n_tokens × KV bytes
 * per token (real: an empty slot gives 48 bytes, 1029 tokens of a ~8.2 KB/token model 8,446,280). The extension
 * is sparse, so disk budgets and `stat().size` behave like multi-GB files while using almost no disk.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';

/** First bytes of every simulator save file. */
export const SAVE_MAGIC = 'PCSIMKV1';
/** Size of the save of an empty slot (as measured on llama-server). */
export const EMPTY_SAVE_BYTES = 48;

const PREFIX_BYTES = SAVE_MAGIC.length + 4;

/** The modelled size of a save of `nTokens` tokens. */
export function modelledSaveSize(nTokens: number, kvBytesPerToken: number): number {
  return EMPTY_SAVE_BYTES + nTokens * kvBytesPerToken;
}

/** Identifies the model that wrote a file: a save restores only into the same model (path + alias). */
export function modelFingerprint(modelPath: string, alias: string | undefined): string {
  return createHash('sha256')
    .update(`${modelPath}\n${alias ?? ''}`)
    .digest('hex')
    .slice(0, 16);
}

/**
 * llama-server's filename check (fs_validate_filename, simplified): no path separators, no `..`, not empty,
 * no control or reserved characters, no leading/trailing space, no trailing dot, at most 255 bytes.
 */
export function isValidFilename(name: string): boolean {
  if (name.length === 0 || Buffer.byteLength(name) > 255) return false;
  if (name.includes('/') || name.includes('\\') || name.includes('..')) return false;
  // eslint-disable-next-line no-control-regex -- control characters are exactly what the real server refuses
  if (/[\u0000-\u001f\u007f:*?"<>|]/.test(name)) return false;
  return !(name.startsWith(' ') || name.endsWith(' ') || name.endsWith('.'));
}

/** Writes a save file and returns its size in bytes (the `n_written` of the answer). */
export async function writeSaveFile(
  file: string,
  fingerprint: string,
  tokens: readonly string[],
  kvBytesPerToken: number,
): Promise<number> {
  const json = Buffer.from(JSON.stringify({ fp: fingerprint, t: tokens }), 'utf8');
  const head = Buffer.alloc(PREFIX_BYTES);
  head.write(SAVE_MAGIC, 0, 'latin1');
  head.writeUInt32LE(json.length, SAVE_MAGIC.length);
  const size = Math.max(modelledSaveSize(tokens.length, kvBytesPerToken), PREFIX_BYTES + json.length);
  const fh = await open(file, 'w');
  try {
    await fh.write(head, 0, head.length, 0);
    await fh.write(json, 0, json.length, PREFIX_BYTES);
    await fh.truncate(size);
  } finally {
    await fh.close();
  }
  return size;
}

/** A save file's content once read back. */
export interface SaveFileContent {
  tokens: string[];
  bytes: number;
}

/**
 * Reads a save file back. Returns undefined for a missing file, a file of another model, a foreign or corrupt
 * file, or one whose size does not match its header (truncated by someone): llama-server refuses all of these
 * with the same 400.
 */
export async function readSaveFile(
  file: string,
  fingerprint: string,
  kvBytesPerToken: number,
): Promise<SaveFileContent | undefined> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const { size } = await fh.stat();
    if (size < PREFIX_BYTES) return undefined;
    const head = Buffer.alloc(PREFIX_BYTES);
    await fh.read(head, 0, PREFIX_BYTES, 0);
    if (head.toString('latin1', 0, SAVE_MAGIC.length) !== SAVE_MAGIC) return undefined;
    const len = head.readUInt32LE(SAVE_MAGIC.length);
    if (PREFIX_BYTES + len > size) return undefined;
    const json = Buffer.alloc(len);
    await fh.read(json, 0, len, PREFIX_BYTES);
    const parsed = JSON.parse(json.toString('utf8')) as { fp?: unknown; t?: unknown };
    if (parsed.fp !== fingerprint || !Array.isArray(parsed.t)) return undefined;
    if (!parsed.t.every((x): x is string => typeof x === 'string')) return undefined;
    const tokens = parsed.t;
    if (size !== Math.max(modelledSaveSize(tokens.length, kvBytesPerToken), PREFIX_BYTES + len)) return undefined;
    return { tokens, bytes: size };
  } catch {
    return undefined;
  } finally {
    await fh.close();
  }
}
