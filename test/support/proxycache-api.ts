/** GET/POST/DELETE helpers for the proxy's own API under /proxycache/ (status, admin), with the body parsed. */

export interface ApiAnswer {
  status: number;
  body: any;
  headers: Headers;
}

/** One request to the proxy's API; `token` adds `Authorization: Bearer`. */
export async function api(baseUrl: string, method: string, path: string, opts: { token?: string; headers?: Record<string, string> } = {}): Promise<ApiAnswer> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  const res = await fetch(`${baseUrl}${path}`, { method, headers, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text (metrics)
  }
  return { status: res.status, body, headers: res.headers };
}
