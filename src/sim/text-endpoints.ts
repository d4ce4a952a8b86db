/**
 * `POST /tokenize`, `/detokenize`, `/apply-template` and `/v1/chat/completions/input_tokens`, shaped like
 * tokenize_template.txt. Ids come from the instance's vocabulary; `add_special` prepends BOS `<s>` (id 1).
 */
import { parseMessages } from './chat-request.js';
import { parseChatTools } from './chat-tools.js';
import { isObject, parseJsonBody, sendError, sendJson, type Exchange } from './http-io.js';
import type { ModelInstance } from './model-instance.js';
import { renderChat, TemplateError, tokenize, Vocabulary } from './tokenizer.js';

function jsonBody(ex: Exchange): Record<string, unknown> | undefined {
  const parsed = parseJsonBody(ex.req.body);
  if (!parsed.ok) {
    sendError(ex, 400, parsed.message);
    return undefined;
  }
  return isObject(parsed.value) ? parsed.value : {};
}

/** The rendered chat of a body with `messages`, or undefined after answering the 400. */
function renderedChat(ex: Exchange): string | undefined {
  const parsed = parseJsonBody(ex.req.body);
  const messages = parsed.ok ? parseMessages(parsed.value) : parsed.message;
  if (typeof messages === 'string') {
    sendError(ex, 400, messages);
    return undefined;
  }
  const tools = parseChatTools((parsed.ok && isObject(parsed.value) ? parsed.value : {}).tools);
  if (typeof tools === 'string') {
    sendError(ex, 500, tools);
    return undefined;
  }
  try {
    return renderChat(messages, tools);
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    sendError(ex, err.status, err.message);
    return undefined;
  }
}

/** Handles the text endpoints; returns false when `path` is not one of them. */
export function handleTextEndpoint(inst: ModelInstance, ex: Exchange, path: string): boolean {
  switch (path) {
    case '/tokenize': {
      const body = jsonBody(ex);
      if (!body) return true;
      const pieces = tokenize(typeof body.content === 'string' ? body.content : '');
      const withBos = body.add_special === true ? [Vocabulary.BOS.piece, ...pieces] : pieces;
      const tokens = withBos.map((piece) =>
        body.with_pieces === true ? { id: inst.vocab.idOf(piece), piece } : inst.vocab.idOf(piece),
      );
      sendJson(ex, 200, { tokens });
      return true;
    }
    case '/detokenize': {
      const body = jsonBody(ex);
      if (!body) return true;
      const ids = Array.isArray(body.tokens) ? body.tokens : [];
      const content = ids.map((id) => (typeof id === 'number' ? (inst.vocab.pieceOf(id) ?? '') : '')).join('');
      sendJson(ex, 200, { content });
      return true;
    }
    case '/apply-template':
    case '/v1/chat/completions/input_tokens': {
      const prompt = renderedChat(ex);
      if (prompt === undefined) return true;
      if (path === '/apply-template') sendJson(ex, 200, { prompt });
      else sendJson(ex, 200, { input_tokens: tokenize(prompt).length, object: 'response.input_tokens' });
      return true;
    }
    default:
      return false;
  }
}
