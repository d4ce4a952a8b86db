/**
 * Which client requests the passthrough refuses. The proxy owns the slots and decides when models may be unloaded:
 * a slot action, the slot list or a model unload sent behind its back would make its record of the slots wrong or
 * throw away KV caches it was about to save. Everything else is passed through.
 *
 * The decision is made on every way a server down the line could read the path, not on the raw URL:
 * llama-server's HTTP library percent-decodes paths (`/%73lots/0`, `/slots%2F0`), llama-swap forwards
 * `/upstream/{model}/…` with model names that may contain `/`, and other servers collapse `//` or resolve `..`.
 * A path is refused when any of those readings names a managed route, for every backend kind alike.
 */

/** Why a path is refused; undefined when it may be passed through. */
export type Refusal = 'slots_managed_by_proxy' | 'models_managed_by_proxy';

/** How often a path is percent-decoded at most: a chain of servers may each decode once. */
const MAX_DECODE_ROUNDS = 4;

/** The refusal for a request target (`/path?query`), or undefined when it may be passed through. */
export function refusedRoute(target: string): Refusal | undefined {
  for (const segments of pathReadings(target)) {
    const lower = segments.map(asciiLower);
    // `/slots`, `/slots/{id}` and the same behind `/upstream/{model…}/` or any other prefix: the slot API.
    if (lower.includes('slots')) return 'slots_managed_by_proxy';
    if (unloadsModels(lower)) return 'models_managed_by_proxy';
  }
  return undefined;
}

/**
 * llama-swap `GET /unload` and `POST /api/models/unload[/{model}]`; router mode `POST /models/load` and
 * `/models/unload` (a load beyond `--models-max` unloads another model).
 */
function unloadsModels(segments: readonly string[]): boolean {
  if (segments[0] === 'unload') return true;
  for (let i = 0; i + 1 < segments.length; i++) {
    if (segments[i] === 'models' && (segments[i + 1] === 'unload' || segments[i + 1] === 'load')) return true;
  }
  return false;
}

/**
 * The path's segments as each reader may see them: the raw path and each further percent-decoding of it, each with
 * empty segments dropped (`//` collapsed), both as is and with dot segments resolved. `\` counts as `/` too.
 */
function pathReadings(target: string): string[][] {
  const query = target.indexOf('?');
  let path = query === -1 ? target : target.slice(0, query);
  const readings: string[][] = [];
  for (let round = 0; round <= MAX_DECODE_ROUNDS; round++) {
    const segments = path.split(/[/\\]+/).filter((s) => s !== '');
    readings.push(segments, resolveDots(segments));
    const decoded = percentDecode(path);
    if (decoded === path) break;
    path = decoded;
  }
  return readings;
}

/** Resolve `.` and `..` segments (RFC 3986 remove_dot_segments; `..` never climbs above the root). */
function resolveDots(segments: readonly string[]): string[] {
  const out: string[] = [];
  for (const s of segments) {
    if (s === '.') continue;
    if (s === '..') out.pop();
    else out.push(s);
  }
  return out;
}

/**
 * Decode every valid `%XX` escape and leave invalid ones as they are, the way a lenient server does. Bytes are
 * read as Latin-1: only ASCII names are compared, and a decoder must never throw on a client's path.
 */
function percentDecode(path: string): string {
  return path.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** Lower-case ASCII letters only (Unicode case folding would map other characters onto `s` or `k`). */
function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}
