/**
 * Secrets in the configuration: `API_KEYS` (the keys clients must present) and `BACKEND_API_KEY` (the key the
 * proxy presents to its backends). Either is given inline or as `@/path/to/file`, so a key need not sit in the
 * environment or on the command line (a systemd credential file, a mounted secret). Files are read once at start-up.
 * Reasons never repeat a key.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** Characters an HTTP header value carries unchanged (visible ASCII): a key with others could never match. */
const KEY_CHARS = /^[\x21-\x7e]+$/;

function fail(ctx: z.RefinementCtx, message: string): never {
  ctx.addIssue({ code: 'custom', message });
  return z.NEVER;
}

/** The lines of `@path` without blank lines and `#` comments, or the reason the file is unusable. */
function fileLines(path: string): string[] | { reason: string } {
  if (path === '') return { reason: 'expected a file path after @' };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return { reason: `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})` };
  }
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** The keys named by one raw value: `@file` → its lines, else the comma-separated list. */
function keysOf(raw: string): string[] | { reason: string } {
  const text = raw.trim();
  if (text.startsWith('@')) return fileLines(text.slice(1).trim());
  return text
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '');
}

/** The reason `keys` cannot be used, or undefined when they can. */
function problemOf(keys: string[] | { reason: string }, where: string): string | undefined {
  if (!Array.isArray(keys)) return keys.reason;
  if (keys.length === 0) return `expected at least one key ${where}`;
  const bad = keys.findIndex((k) => !KEY_CHARS.test(k));
  if (bad >= 0)
    return `key ${bad + 1} holds a space or a character other than visible ASCII, which a header cannot carry`;
  return undefined;
}

/** API_KEYS: `key1,key2` or `@/path` (one key per line; blank lines and `#` comments ignored). Unset: null. */
export function apiKeyList() {
  return z
    .string()
    .optional()
    .transform((raw, ctx): readonly string[] | null => {
      if (raw === undefined || raw.trim() === '') return null;
      const keys = keysOf(raw);
      const problem = problemOf(keys, '(a comma list, or @file with one key per line)');
      if (problem !== undefined || !Array.isArray(keys)) return fail(ctx, problem ?? '');
      return Object.freeze([...new Set(keys)]);
    });
}

/** BACKEND_API_KEY: one key, or `@/path` to a file holding one key (blank lines and `#` comments ignored). Unset: null. */
export function singleApiKey() {
  return z
    .string()
    .optional()
    .transform((raw, ctx): string | null => {
      if (raw === undefined || raw.trim() === '') return null;
      const text = raw.trim();
      const keys = text.startsWith('@') ? keysOf(text) : [text];
      const problem = problemOf(keys, 'in the file');
      if (problem !== undefined || !Array.isArray(keys)) return fail(ctx, problem ?? '');
      return keys.length === 1 ? keys[0]! : fail(ctx, `expected one key, the file holds ${keys.length} lines`);
    });
}

/** Whether a raw value may be shown in an error message (a file path may; an inline key never). */
export function showableKeyValue(raw: string | undefined): boolean {
  return raw !== undefined && raw.trim().startsWith('@');
}
