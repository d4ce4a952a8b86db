/**
 * Header hygiene for relayed requests and answers: hop-by-hop headers belong to one connection and are never
 * forwarded. Those are the fixed list below plus every header that the message's own `Connection` header names
 * (RFC 9110 §7.6.1).
 */

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
]);

type Headers = Record<string, string | string[] | undefined>;

/**
 * Headers of a client request to send upstream. Besides the hop-by-hop ones, `accept-encoding` is dropped (bytes
 * are relayed as they come) and so is `expect`: Node has already answered the client's `100-continue`, and the
 * upstream client (undici) refuses the header.
 */
export function requestHeadersForUpstream(headers: Headers): Record<string, string> {
  const drop = connectionNamed(headers);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (
      value === undefined ||
      HOP_BY_HOP.has(name) ||
      drop.has(name) ||
      name === 'accept-encoding' ||
      name === 'expect'
    )
      continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** Headers of an upstream answer to send to the client. */
export function responseHeadersForClient(headers: Headers): Record<string, string | string[]> {
  const drop = connectionNamed(headers);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || drop.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** The header names listed in `Connection` (lower case; `close` and `keep-alive` are options, harmless here). */
function connectionNamed(headers: Headers): Set<string> {
  const value = headers.connection;
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  return new Set(
    text
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter((t) => t !== ''),
  );
}
