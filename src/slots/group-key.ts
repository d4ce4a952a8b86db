/**
 * The one key format for "a model on a backend": slot groups, slot-count checks and model identities are all
 * kept per (backend, model). NUL cannot occur in a backend index or a model name, so the key is unambiguous.
 */
export function groupKey(backend: number, model: string): string {
  return `${backend}\u0000${model}`;
}
