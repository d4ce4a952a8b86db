/**
 * Zod schemas that turn one raw configuration string (from the environment or a flag) into a typed value.
 * Every failure carries a short human reason ("expected an integer >= 1"); the loader adds the variable name
 * and the raw value, so reasons never repeat them.
 */
import { z } from 'zod';

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

type Ctx = z.RefinementCtx;

function fail(ctx: Ctx, message: string): never {
  ctx.addIssue({ code: 'custom', message });
  return z.NEVER;
}

function rangeText(kind: string, min: number, max: number, minExclusive: boolean): string {
  if (max !== Infinity) return `expected ${kind} between ${min} and ${max}`;
  return `expected ${kind} ${minExclusive ? '>' : '>='} ${min}`;
}

/** A plain base-10 integer (no exponent, no fraction) within [min, max]. */
export function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  const reason = rangeText('an integer', min, max === Number.MAX_SAFE_INTEGER ? Infinity : max, false);
  return z.string().transform((raw, ctx) => {
    const text = raw.trim();
    const n = Number(text);
    if (!INTEGER.test(text) || !Number.isSafeInteger(n) || n < min || n > max) return fail(ctx, reason);
    return n;
  });
}

/** A finite decimal number (exponent allowed) >= min (or > min when minExclusive) and <= max. */
export function decimal(min: number, opts: { max?: number; minExclusive?: boolean } = {}) {
  const max = opts.max ?? Infinity;
  const minExclusive = opts.minExclusive ?? false;
  const reason = rangeText('a number', min, max, minExclusive);
  return z.string().transform((raw, ctx) => {
    const text = raw.trim();
    const n = Number(text);
    const tooLow = minExclusive ? n <= min : n < min;
    if (!DECIMAL.test(text) || !Number.isFinite(n) || tooLow || n > max) return fail(ctx, reason);
    return n;
  });
}

/** One of `choices`, compared case-insensitively; `aliases` maps extra spellings (lower case) to a choice. */
export function oneOf<const T extends string>(choices: readonly T[], aliases: Readonly<Record<string, T>> = {}) {
  const reason = `expected one of ${choices.join(', ')}`;
  return z.string().transform((raw, ctx): T => {
    const text = raw.trim().toLowerCase();
    const hit = choices.find((c) => c === text) ?? aliases[text];
    return hit ?? fail(ctx, reason);
  });
}

/** Any string that is not empty after trimming; the trimmed value is kept. */
export function nonEmpty() {
  return z.string().transform((raw, ctx) => raw.trim() || fail(ctx, 'expected a non-empty value'));
}

/** An optional string: absent or blank means "unset" (null). */
export function optionalText() {
  return z
    .string()
    .optional()
    .transform((raw) => raw?.trim() || null);
}

/**
 * Normalise an http(s) base URL: host lower-cased, default port dropped, trailing slashes removed.
 * Returns a reason instead when the URL is unusable as a base (other scheme, credentials, query or fragment).
 */
export function normalizeBaseUrl(raw: string): { url: string } | { reason: string } {
  const reason = 'expected an http(s) URL such as http://127.0.0.1:8000 (no credentials, query or fragment)';
  let parsed: URL;
  try {
    parsed = new URL(raw.trim());
  } catch {
    return { reason };
  }
  const usable =
    (parsed.protocol === 'http:' || parsed.protocol === 'https:') &&
    !parsed.username &&
    !parsed.password &&
    !parsed.search &&
    !parsed.hash &&
    !raw.trim().endsWith('?') &&
    !raw.trim().endsWith('#');
  if (!usable) return { reason };
  return { url: parsed.origin + parsed.pathname.replace(/\/+$/, '') };
}

/** A backend base URL, normalised by {@link normalizeBaseUrl}. */
export function httpUrl() {
  return z.string().transform((raw, ctx) => {
    const result = normalizeBaseUrl(raw);
    return 'url' in result ? result.url : fail(ctx, result.reason);
  });
}
