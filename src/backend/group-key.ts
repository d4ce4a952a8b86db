/**
 * The one key format for "a model on a backend": slot groups (by backend index) and the server that wrote a cache
 * file (by backend URL, in cleanup) are kept per (backend, model). NUL occurs in neither an index, a URL nor a model
 * name, so the key is unambiguous.
 */
export function groupKey(backend: number | string, model: string): string {
  return `${backend}\u0000${model}`;
}
