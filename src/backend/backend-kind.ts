/**
 * What kind of server a backend URL points at, and how slot actions are addressed on each kind.
 *
 * - plain llama-server: `/slots/{id}?action=…`
 * - llama-swap: `/upstream/{url-encoded model}/slots/{id}?action=…` (that path loads the model if it is not running,
 *   so callers check `/running` first when a load would be an accident)
 * - router mode: `/slots/{id}?action=…&autoload=false` with `"model"` in the JSON body
 */

export type BackendKind = 'llama-server' | 'llama-swap' | 'router';
export type SlotAction = 'save' | 'restore' | 'erase';

/** The request path and JSON body for one slot action. */
export function slotActionRequest(
  kind: BackendKind,
  model: string,
  slotId: number,
  action: SlotAction,
  filename?: string,
): { path: string; body: Record<string, string> } {
  const body: Record<string, string> = filename === undefined ? {} : { filename };
  switch (kind) {
    case 'llama-swap':
      return { path: `/upstream/${encodeURIComponent(model)}/slots/${slotId}?action=${action}`, body };
    case 'router':
      // autoload=false: a slot action must never be the thing that loads a model.
      return { path: `/slots/${slotId}?action=${action}&autoload=false`, body: { ...body, model } };
    default:
      return { path: `/slots/${slotId}?action=${action}`, body };
  }
}

/** The path of a per-model GET endpoint (`/props`, `/slots`) on each kind. */
export function modelScopedPath(kind: BackendKind, model: string, path: string): string {
  switch (kind) {
    case 'llama-swap':
      return `/upstream/${encodeURIComponent(model)}${path}`;
    case 'router':
      return `${path}?model=${encodeURIComponent(model)}&autoload=false`;
    default:
      return path;
  }
}

/**
 * Decide the kind from the answers of the probe requests. `running` is the body of `GET /running` when it answered
 * 200 (only llama-swap has it); `models` is the body of `GET /models` (router mode lists models with a `status`).
 */
export function classifyBackend(probe: { running?: unknown; models?: unknown }): BackendKind {
  if (isObject(probe.running) && Array.isArray(probe.running.running)) return 'llama-swap';
  const data = isObject(probe.models) ? probe.models.data : undefined;
  if (Array.isArray(data) && data.some((m) => isObject(m) && isObject(m.status))) return 'router';
  return 'llama-server';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
