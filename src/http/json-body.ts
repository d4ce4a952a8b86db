/**
 * JSON request bodies, parsed once and forwarded without serialising them again. A long conversation's body is
 * hundreds of kB; `JSON.stringify` of it and the string's re-encoding cost about a millisecond and a half on every
 * request. The chat route only adds `id_slot` (and `cache_prompt`), so the upstream body is the client's own bytes
 * with those members spliced in before the closing brace.
 */
import type { FastifyInstance } from 'fastify';
import { ProxyError } from '../errors.js';

/** The bytes each parsed body object came from. */
const rawBodies = new WeakMap<object, Buffer>();

/**
 * Nesting deeper than this is refused (400 invalid_json). Real requests nest a few dozen levels (JSON schemas of
 * tools); a 100,000-deep body parses, but any recursive walk over it (the prompt analysis, a backend's JSON library)
 * overflows its stack.
 */
export const MAX_JSON_DEPTH = 512;

/**
 * Parse `application/json` bodies with plain `JSON.parse` and remember their bytes. `text/plain` bodies are parsed
 * as JSON too, as llama-server does (some clients send JSON without a JSON content type). (Fastify's default parser
 * also scans for `__proto__` keys; the proxy never merges a body into another object, so such a key is just data.)
 */
export function registerJsonBodyParser(app: FastifyInstance): void {
  app.removeContentTypeParser(['application/json', 'text/plain']);
  for (const type of ['application/json', 'text/plain']) {
    app.addContentTypeParser(type, { parseAs: 'buffer' }, (_request, raw, done) => {
      try {
        done(null, parseJsonBody(raw as Buffer));
      } catch (err) {
        done(err as Error, undefined);
      }
    });
  }
}

/** The parsed body, its bytes remembered; a ProxyError 400 `invalid_json` for malformed or too deeply nested JSON. */
function parseJsonBody(raw: Buffer): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new ProxyError(400, 'invalid_json', `invalid JSON body: ${(err as Error).message}`);
  }
  if (nestingExceeds(raw, MAX_JSON_DEPTH)) {
    throw new ProxyError(400, 'invalid_json', `invalid JSON body: nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
  if (typeof parsed === 'object' && parsed !== null) rawBodies.set(parsed, raw);
  return parsed;
}

/** Whether valid JSON `buf` nests arrays and objects deeper than `max` (brackets inside strings do not count). */
export function nestingExceeds(buf: Buffer, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i]!;
    if (c === QUOTE) {
      i = closingQuote(buf, i);
      if (i === -1) return false;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > max) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

/** The index of the quote that closes the string opened at `open` (a native search: prompts are long strings). */
function closingQuote(buf: Buffer, open: number): number {
  let j = open;
  for (;;) {
    j = buf.indexOf(QUOTE, j + 1);
    if (j === -1) return -1;
    let backslashes = 0;
    while (buf[j - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return j;
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;

/**
 * The body to send upstream: `body` with `fields` set; an undefined field is not set, so the client's own value of
 * it stays. The client's bytes with the fields spliced in when none of them is in the body already (a duplicate key
 * would leave the winner to the backend's parser); otherwise, or for a body that did not come through the parser, a
 * fresh serialisation.
 */
export function upstreamBody(body: Record<string, unknown>, fields: Record<string, unknown>): Buffer | string {
  const raw = rawBodies.get(body);
  const names = Object.keys(fields).filter((name) => fields[name] !== undefined);
  const set = Object.fromEntries(names.map((name) => [name, fields[name]]));
  if (raw && names.every((name) => !Object.hasOwn(body, name))) {
    const close = lastNonSpace(raw);
    if (close >= 0 && raw[close] === CLOSE_BRACE) {
      const members = names.map((name) => `${JSON.stringify(name)}:${JSON.stringify(set[name])}`).join(',');
      const empty = Object.keys(body).length === 0;
      return Buffer.concat([raw.subarray(0, close), Buffer.from(`${empty ? '' : ','}${members}`), raw.subarray(close)]);
    }
  }
  return JSON.stringify({ ...body, ...set });
}

const CLOSE_BRACE = 0x7d;

/** Index of the last byte that is not JSON whitespace, or -1. */
function lastNonSpace(buf: Buffer): number {
  let i = buf.length - 1;
  while (i >= 0 && (buf[i] === 0x20 || buf[i] === 0x0a || buf[i] === 0x0d || buf[i] === 0x09)) i--;
  return i;
}
