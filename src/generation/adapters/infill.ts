/**
 * `POST /infill` (llama.vscode and other IDE completion): `input_prefix` and `input_suffix` (required strings),
 * `input_extra` (optional list of `{filename, text}` chunks from other files) and `prompt` (optional, appended to
 * the prefix). All of them reach the prompt, so all are in the key, in the order llama-server renders them: the
 * extra chunks (`filename` and `text`), the prefix, the prompt, the suffix.
 */
import { badRequest } from '../../errors.js';
import { upstreamBody } from '../../http/json-body.js';
import type { GenerationAdapter } from '../adapter.js';
import { commonFields, llamaFields, objectBody, optionalString, partsOf, requiredString } from '../body-fields.js';

export const infillAdapter: GenerationAdapter = {
  api: 'infill',
  read(raw) {
    const body = objectBody(raw);
    const { model, stream } = commonFields(body);
    const prefix = requiredString(body, 'input_prefix');
    const suffix = requiredString(body, 'input_suffix');
    const prompt = optionalString(body, 'prompt');
    return {
      model,
      parts: partsOf([...extraTexts(body.input_extra), prefix, prompt, suffix]),
      stream,
      ...llamaFields(body),
      backendCall: (pin) => ({ path: '/infill', body: upstreamBody(body, { ...pin }) }),
    };
  },
};

/** Each extra chunk as `filename\ntext`, or a 400 naming the bad chunk. */
function extraTexts(extra: unknown): string[] {
  if (extra === undefined) return [];
  if (!Array.isArray(extra))
    throw badRequest('\'input_extra\' must be an array of {"filename": string, "text": string}', 'input_extra');
  return extra.map((chunk, i) => {
    const where = `input_extra[${i}]`;
    if (typeof chunk !== 'object' || chunk === null || Array.isArray(chunk))
      throw badRequest(`'${where}' must be an object`, where);
    const c = chunk as Record<string, unknown>;
    const text = requiredString(c, 'text', `${where}.text`);
    const filename = optionalString(c, 'filename', `${where}.filename`);
    return filename === undefined ? text : `${filename}\n${text}`;
  });
}
