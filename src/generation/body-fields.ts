/** Checks shared by the adapters' validation: a JSON object body, and the common optional fields. */
import { badRequest } from '../errors.js';
import { pyStrip } from '../prompt/python-compat.js';

/** The body as an object, or a 400. */
export function objectBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw badRequest('request body must be a JSON object');
  return body as Record<string, unknown>;
}

/** `model` and `stream` as every API has them: a string and a boolean when present. */
export function commonFields(body: Record<string, unknown>): { model: string | undefined; stream: boolean } {
  const { model, stream } = body;
  if (stream !== undefined && typeof stream !== 'boolean') throw badRequest("'stream' must be a boolean", 'stream');
  if (model !== undefined && typeof model !== 'string') throw badRequest("'model' must be a string", 'model');
  return { model, stream: stream === true };
}

/**
 * What llama-server's own fields in a body tell the flow (GenerationRequest): the client's `cache_prompt: false`, and
 * whether it set the sampling `seed` (its task then carries no mark of the proxy's: see task-mark.ts).
 */
export function llamaFields(body: Record<string, unknown>): { cachePromptOff: boolean; seeded?: true } {
  return { cachePromptOff: body.cache_prompt === false, ...(body.seed !== undefined && { seeded: true as const }) };
}

/** An optional string field, or a 400 naming it. */
export function optionalString(body: Record<string, unknown>, name: string, where = name): string | undefined {
  const value = body[name];
  if (value !== undefined && typeof value !== 'string') throw badRequest(`'${where}' must be a string`, where);
  return value;
}

/** A required string field, or a 400 naming it. */
export function requiredString(body: Record<string, unknown>, name: string, where = name): string {
  if (body[name] === undefined) throw badRequest(`'${where}' is required`, where);
  return optionalString(body, name, where)!;
}

/** Canonical parts from texts: each stripped (Python `str.strip`), empty ones left out. */
export function partsOf(texts: ReadonlyArray<string | undefined>): string[] {
  return texts.map((t) => (t === undefined ? '' : pyStrip(t))).filter((t) => t !== '');
}
