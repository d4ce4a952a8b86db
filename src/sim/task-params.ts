/** What every generating endpoint of the simulator reads from a request body the same way llama-server does. */
import { wrongTypeMessage } from './http-io.js';
import { samplingParams } from './llama-shapes.js';

/** An integer field of the body, or undefined when absent or not an integer. */
export function intField(body: Record<string, unknown>, key: string): number | undefined {
  const v = body[key];
  return typeof v === 'number' && Number.isInteger(v) ? v : undefined;
}

// Fields llama-server reads with nlohmann's typed get (params_from_json_cmpl): a value of another JSON type is a 400
// (a boolean reads as a number, null as absent; `id_slot` is read leniently).
const NUMBER_FIELDS = [
  'n_predict',
  'max_tokens',
  'max_completion_tokens',
  'seed',
  'temperature',
  'top_k',
  'top_p',
  'min_p',
  'n_keep',
];
const BOOLEAN_FIELDS = ['stream', 'cache_prompt'];
/** Counts where -1 means "no limit" and anything below it is refused. */
const COUNT_FIELDS = ['n_predict', 'max_tokens', 'max_completion_tokens', 'n_keep'];

/** The 400 message llama-server answers for a sampling field of the wrong JSON type, or undefined. */
export function fieldTypeError(body: Record<string, unknown>): string | undefined {
  const fields = [
    ...NUMBER_FIELDS.map((key) => [key, 'number'] as const),
    ...BOOLEAN_FIELDS.map((key) => [key, 'boolean'] as const),
  ];
  for (const [key, want] of fields) {
    const v = body[key];
    if (v === undefined || v === null || typeof v === 'boolean' || typeof v === 'number') continue;
    return `Field '${key}': ${wrongTypeMessage(v, want)}`;
  }
  for (const key of COUNT_FIELDS) {
    const v = body[key];
    if (typeof v === 'number' && v < -1)
      return `Field '${key}': Value must be between -1 <= value <= 2147483647, but got ${Math.trunc(v)}`;
  }
  return undefined;
}

/** The reply length a body asks for (the first of `fields` present); `limited` false means "until EOS". */
export function replyLength(
  body: Record<string, unknown>,
  fields: readonly string[],
  fallback: number,
): { nPredict: number; limited: boolean } {
  // A fractional count is truncated, as nlohmann's get<int> does (checked: `max_tokens: 2.5` generates 2).
  const requested = fields.map((f) => body[f]).find((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (requested !== undefined && requested >= 0) return { nPredict: Math.trunc(requested), limited: true };
  return { nPredict: fallback, limited: false };
}

/** The task's sampling parameters as `GET /slots` shows them, from the body's fields plus endpoint specifics. */
export function bodySampling(
  body: Record<string, unknown>,
  reply: { nPredict: number; limited: boolean },
  stream: boolean,
  extra: Record<string, unknown>,
): Record<string, unknown> {
  const num = (key: string) => (typeof body[key] === 'number' ? body[key] : undefined);
  return samplingParams({
    seed: intField(body, 'seed'),
    temperature: num('temperature'),
    top_k: intField(body, 'top_k'),
    top_p: num('top_p'),
    min_p: num('min_p'),
    n_keep: intField(body, 'n_keep'),
    max_tokens: reply.limited ? reply.nPredict : -1,
    n_predict: reply.limited ? reply.nPredict : -1,
    stream,
    ...extra,
  });
}
