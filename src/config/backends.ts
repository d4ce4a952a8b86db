/**
 * The `BACKENDS` variable: a JSON list `[{"url": "...", "n_slots": N, "type": "...", "cache_ram_mib": M}]`.
 * All but `url` are optional here; the schema fills them from N_SLOTS, BACKEND_TYPE and SERVER_CACHE_RAM_MIB.
 */
import { z } from 'zod';
import { normalizeBaseUrl } from './values.js';

export const BACKEND_TYPES = ['auto', 'llama-server', 'llama-swap', 'router'] as const;
/** How slot calls are addressed on a backend; `auto` means "probe it at start-up". */
export type BackendType = (typeof BACKEND_TYPES)[number];

/** One entry of BACKENDS as written, with the URL already normalised. */
export interface BackendEntry {
  url: string;
  nSlots?: number;
  type?: BackendType;
  /** That server's `--cache-ram` in MiB (-1: no limit, 0: off), where it differs from SERVER_CACHE_RAM_MIB. */
  cacheRamMib?: number;
}

const ENTRY_KEYS = new Set(['url', 'n_slots', 'type', 'cache_ram_mib']);

function parseEntry(value: unknown): BackendEntry | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'expected an object';
  const obj = value as Record<string, unknown>;
  // A typo such as "nslots" would otherwise silently fall back to the default.
  const unknown = Object.keys(obj).find((k) => !ENTRY_KEYS.has(k));
  if (unknown !== undefined) return `unknown key "${unknown}" (allowed: url, n_slots, type, cache_ram_mib)`;
  if (typeof obj.url !== 'string') return 'url: expected a string';
  const url = normalizeBaseUrl(obj.url);
  if ('reason' in url) return `url: ${url.reason}`;
  const entry: BackendEntry = { url: url.url };
  if (obj.n_slots !== undefined) {
    const n = typeof obj.n_slots === 'string' && /^\s*\d+\s*$/.test(obj.n_slots) ? Number(obj.n_slots) : obj.n_slots;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) return 'n_slots: expected an integer >= 1';
    entry.nSlots = n;
  }
  if (obj.type !== undefined) {
    const type = BACKEND_TYPES.find((t) => typeof obj.type === 'string' && t === obj.type.toLowerCase());
    if (type === undefined) return `type: expected one of ${BACKEND_TYPES.join(', ')}`;
    entry.type = type;
  }
  if (obj.cache_ram_mib !== undefined) {
    const mib = obj.cache_ram_mib;
    if (typeof mib !== 'number' || !Number.isSafeInteger(mib) || mib < -1)
      return 'cache_ram_mib: expected an integer >= -1';
    entry.cacheRamMib = mib;
  }
  return entry;
}

/** Parse the JSON text of BACKENDS into entries, or a one-line reason naming the failing entry. */
function parseBackendsJson(text: string): BackendEntry[] | string {
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch {
    return 'expected a JSON list like [{"url":"http://127.0.0.1:8000","n_slots":2}]';
  }
  if (!Array.isArray(list) || list.length === 0) return 'expected a non-empty JSON list of {"url", "n_slots"} objects';
  const entries: BackendEntry[] = [];
  const seen = new Set<string>();
  for (const [i, value] of list.entries()) {
    const entry = parseEntry(value);
    if (typeof entry === 'string') return `entry ${i}: ${entry}`;
    if (seen.has(entry.url)) return `entry ${i}: duplicate url ${entry.url}`;
    seen.add(entry.url);
    entries.push(entry);
  }
  return entries;
}

/** Zod schema for BACKENDS: absent or blank means unset (null). */
export function backendsList() {
  return z
    .string()
    .optional()
    .transform((raw, ctx): BackendEntry[] | null => {
      if (raw === undefined || raw.trim() === '') return null;
      const result = parseBackendsJson(raw);
      if (typeof result !== 'string') return result;
      ctx.addIssue({ code: 'custom', message: result });
      return z.NEVER;
    });
}
