/**
 * BACKEND_API_KEY on a backend call (llama-server started with `--api-key`, llama-swap's `apiKeys`): the call
 * carries `Authorization: Bearer <key>`, and any credential already in its headers (a client's own, on a
 * passed-through request) is dropped, so the backend judges the proxy's key and nothing else. Pure.
 */

/** Header names that carry a credential to llama-server and llama-swap (lower case: Node's and undici's form). */
const CREDENTIAL_HEADERS = ['authorization', 'x-api-key'];

/** `headers` for a backend call: with the key set, its credential replaces any other; without, unchanged. */
export function withBackendKey(
  headers: Record<string, string> | undefined,
  key: string | null,
): Record<string, string> | undefined {
  if (key === null) return headers;
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (!CREDENTIAL_HEADERS.includes(name.toLowerCase())) out[name] = value;
  }
  out.authorization = `Bearer ${key}`;
  return out;
}
