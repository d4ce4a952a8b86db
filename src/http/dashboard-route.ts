/**
 * The dashboard at `/proxycache/`: one HTML page, its ES modules and its stylesheet, shipped as plain files in
 * `src/dashboard/` (no build step) and read once when the app is built. The page holds no data: it fetches the
 * status API (`/proxycache/status`, `requests`, `entries`, `history`) itself, with the token from its address,
 * so the files are served to anyone who can reach the proxy.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { ProxyError } from '../errors.js';
import type { Logger } from '../log.js';

/** Every file the page needs, by the name it is requested under. Nothing else is served from the directory. */
const ASSETS: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'dashboard.js': 'text/javascript; charset=utf-8',
  'chart.js': 'text/javascript; charset=utf-8',
  'dom.js': 'text/javascript; charset=utf-8',
  'format.js': 'text/javascript; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
};

/** The page builds its DOM from text nodes; this policy is the second line: no inline or foreign script at all. */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

const here = dirname(fileURLToPath(import.meta.url));
/** Run from source (`src/http/`) or compiled (`dist/src/http/`): the files stay in the repository's src/dashboard. */
const ASSET_DIRS = [join(here, '..', 'dashboard'), join(here, '..', '..', '..', 'src', 'dashboard')];

/** The asset directory, or undefined when neither candidate holds the page. */
function findDashboardDir(dirs: readonly string[] = ASSET_DIRS): string | undefined {
  return dirs.find((dir) => existsSync(join(dir, 'index.html')));
}

function loadAssets(dir: string): Map<string, Buffer> {
  return new Map(Object.keys(ASSETS).map((name) => [name, readFileSync(join(dir, name))]));
}

export function registerDashboardRoute(app: FastifyInstance, log: Logger): void {
  const dir = findDashboardDir();
  let assets: Map<string, Buffer> | undefined;
  try {
    assets = dir ? loadAssets(dir) : undefined;
  } catch (err) {
    log.warn({ dir, err: (err as Error).message }, 'dashboard files unreadable; /proxycache/ answers 404');
  }
  if (!dir) log.warn({ looked_in: ASSET_DIRS }, 'dashboard files not found; /proxycache/ answers 404');

  // Relative links in the page need the trailing slash; a relative Location keeps a reverse proxy's prefix.
  app.get('/proxycache', (request, reply) => {
    const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
    void reply.code(308).header('location', `proxycache/${query}`).send();
  });
  for (const name of Object.keys(ASSETS)) {
    const path = name === 'index.html' ? '/proxycache/' : `/proxycache/${name}`;
    app.get(path, (_request, reply) => {
      const body = assets?.get(name);
      if (!body)
        throw new ProxyError(404, 'not_found', 'the dashboard files are not installed (see the log at start-up)');
      return reply
        .code(200)
        .headers({ ...SECURITY_HEADERS, 'content-type': ASSETS[name]! })
        .send(body);
    });
  }
}
