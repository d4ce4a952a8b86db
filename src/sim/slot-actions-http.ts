/**
 * `POST /slots/{id}?action=save|restore|erase` with llama-server's validation order and error texts:
 * no --slot-save-path → 501; non-numeric id → 400 `Invalid slot ID`; unknown action → 400 `Invalid action`;
 * unparsable body or no `filename` → 500 with nlohmann's exception text; bad filename → 400 `Invalid filename`.
 */
import {
  isObject,
  missingKeyMessage,
  parseJsonBody,
  sendError,
  sendJson,
  wrongTypeMessage,
  type Exchange,
} from './http-io.js';
import type { ModelInstance } from './model-instance.js';
import { isValidFilename } from './save-file.js';
import { eraseSlot, restoreSlot, saveSlot, type ActionResult } from './slot-actions.js';

/** Parses a slot id like std::stoi: leading digits count ("6abc" is 6), no digits or out of int range fails. */
export function parseSlotId(text: string): number | undefined {
  const m = /^\s*([+-]?\d+)/.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]);
  return n >= -2147483648 && n <= 2147483647 ? n : undefined;
}

/** The `filename` of a save/restore body, or the error llama-server answers for it. */
function filenameOf(ex: Exchange): { filename: string } | { status: number; message: string; type?: string } {
  const parsed = parseJsonBody(ex.req.body);
  if (!parsed.ok) return { status: 500, message: parsed.message, type: 'server_error' };
  const body = parsed.value;
  if (!isObject(body)) {
    const kind = Array.isArray(body) ? 'array' : body === null ? 'null' : typeof body;
    return {
      status: 500,
      message: `[json.exception.type_error.304] cannot use at() with ${kind}`,
      type: 'server_error',
    };
  }
  if (!('filename' in body)) return { status: 500, message: missingKeyMessage('filename'), type: 'server_error' };
  const filename = body.filename;
  if (typeof filename !== 'string') return { status: 500, message: wrongTypeMessage(filename), type: 'server_error' };
  if (!isValidFilename(filename)) return { status: 400, message: 'Invalid filename' };
  return { filename };
}

/** Handles one slot action for `inst`; `idText` is the raw `{id}` path segment. */
export async function handleSlotAction(inst: ModelInstance, ex: Exchange, idText: string): Promise<void> {
  if (!inst.config.slotSavePath) {
    return sendError(
      ex,
      501,
      'This server does not support slots action. Start it with --slot-save-path',
      'not_supported_error',
    );
  }
  const id = parseSlotId(idText);
  if (id === undefined) return sendError(ex, 400, 'Invalid slot ID');
  const action = ex.req.query.get('action');
  if (action !== 'save' && action !== 'restore' && action !== 'erase') return sendError(ex, 400, 'Invalid action');

  let result: ActionResult;
  const tracked = inst.track(ex);
  try {
    if (action === 'erase') {
      result = await eraseSlot(inst, id);
    } else {
      const f = filenameOf(ex);
      if (!('filename' in f)) return sendError(ex, f.status, f.message, f.type);
      result = action === 'save' ? await saveSlot(inst, id, f.filename) : await restoreSlot(inst, id, f.filename);
    }
  } finally {
    tracked.done();
  }
  if (result.ok) sendJson(ex, 200, result.body);
  else sendError(ex, result.status, result.message, result.type);
}
