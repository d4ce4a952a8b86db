/** What every generating endpoint of the simulator reads from a request body the same way llama-server does. */
import { samplingParams } from './llama-shapes.js';

/** An integer field of the body, or undefined when absent or not an integer. */
export function intField(body: Record<string, unknown>, key: string): number | undefined {
  const v = body[key];
  return typeof v === 'number' && Number.isInteger(v) ? v : undefined;
}

/** The reply length a body asks for (the first of `fields` present); `limited` false means "until EOS". */
export function replyLength(
  body: Record<string, unknown>,
  fields: readonly string[],
  fallback: number,
): { nPredict: number; limited: boolean } {
  const requested = fields.map((f) => intField(body, f)).find((v) => v !== undefined);
  const limited = requested !== undefined && requested >= 0;
  return { nPredict: limited ? requested : fallback, limited };
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
