/**
 * `POST /tokenize`, `/detokenize`, `/apply-template` and `/v1/chat/completions/input_tokens`, shaped like
 * tokenize_template.txt. Ids come from the instance's vocabulary; `add_special` prepends BOS `<s>` (id 1).
 */
import { parseMessages } from './chat-request.js';
import { parseChatTools } from './chat-tools.js';
import { isObject, parseJsonBody, sendError, sendJson, wrongTypeMessage, type Exchange } from './http-io.js';
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

/** The ids of a `/detokenize` body, or nlohmann's text (a 500) for a value of another type. */
function tokenIdsOf(body: Record<string, unknown>): number[] | string {
  const ids = 'tokens' in body ? body.tokens : [];
  if (!Array.isArray(ids)) return wrongTypeMessage(ids, 'array');
  const notNumber: unknown = ids.find((id) => typeof id !== 'number');
  return notNumber === undefined ? (ids as number[]) : wrongTypeMessage(notNumber, 'number');
}

/** Handles the text endpoints; returns false when `path` is not one of them. */
export function handleTextEndpoint(inst: ModelInstance, ex: Exchange, path: string): boolean {
  switch (path) {
    case '/tokenize': {
      const body = jsonBody(ex);
      if (!body) return true;
      const content = 'content' in body ? body.content : '';
      // A list of strings is read as one prompt; any other type is nlohmann's 500.
      const text = Array.isArray(content) && content.every((c) => typeof c === 'string') ? content.join('') : content;
      if (typeof text !== 'string') {
        sendError(ex, 500, wrongTypeMessage(body.content));
        return true;
      }
      const pieces = tokenize(text);
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
      const ids = tokenIdsOf(body);
      if (typeof ids === 'string') {
        sendError(ex, 500, ids);
        return true;
      }
      const content = ids.map((id) => inst.vocab.pieceOf(Math.trunc(id)) ?? '').join('');
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
