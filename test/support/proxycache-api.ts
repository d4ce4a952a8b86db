/** GET/POST/DELETE helpers for the proxy's own API under /proxycache/ (status, admin), with the body parsed. */

export interface ApiAnswer {
  status: number;
  body: any;
  headers: Headers;
}

/** One request to the proxy's API; `token` adds `Authorization: Bearer`. */
export async function api(
  baseUrl: string,
  method: string,
  path: string,
  opts: { token?: string; headers?: Record<string, string> } = {},
): Promise<ApiAnswer> {
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

/**
 * A request whose path and headers are sent exactly as given (fetch would resolve `..` and `%2E%2E` segments first,
 * and never sends a Host header of our choosing).
 */
export async function rawApi(
  baseUrl: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<ApiAnswer> {
  const { request } = await import('node:http');
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path, headers, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // keep text
        }
        resolve({ status: res.statusCode ?? 0, body, headers: new Headers(res.headers as Record<string, string>) });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}
