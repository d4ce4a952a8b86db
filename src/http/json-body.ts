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
 * Parse `application/json` bodies with plain `JSON.parse` and remember their bytes. (Fastify's default parser also
 * scans for `__proto__` keys; the proxy never merges a body into another object, so such a key is just data.)
 */
export function registerJsonBodyParser(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, raw, done) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse((raw as Buffer).toString('utf8'));
    } catch (err) {
      done(new ProxyError(400, 'invalid_json', `invalid JSON body: ${(err as Error).message}`), undefined);
      return;
    }
    if (typeof parsed === 'object' && parsed !== null) rawBodies.set(parsed, raw as Buffer);
    done(null, parsed);
  });
}

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
