/**
 * llama-server's `--api-key` (a comma list of keys), as the real binary behaves: every request needs one of the
 * keys, as `Authorization: Bearer <key>`, a bare `Authorization: <key>` or `X-Api-Key: <key>`, else
 * 401 `{"error":{"code":401,"message":"Invalid API Key","type":"authentication_error"}}`. Open without a key:
 * `/health`, `/v1/health`, `/` (the web UI) and CORS preflights (`OPTIONS`). While the model loads, the 503 comes
 * first.
 */
import type { SimRequest } from './http-io.js';

const PUBLIC_PATHS = new Set(['/health', '/v1/health', '/']);

/** The keys of `--api-key`; an empty list turns the check off. */
export function parseApiKeys(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '');
}

/** Whether llama-server would answer this request with 401. */
export function refusedForKey(keys: readonly string[], req: Pick<SimRequest, 'method' | 'path' | 'headers'>): boolean {
  if (keys.length === 0 || req.method === 'OPTIONS' || PUBLIC_PATHS.has(req.path)) return false;
  const auth = req.headers.authorization ?? '';
  const presented = auth !== '' ? auth.replace(/^Bearer /, '') : req.headers['x-api-key'];
  return typeof presented !== 'string' || !keys.includes(presented);
}
