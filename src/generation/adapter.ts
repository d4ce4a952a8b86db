/**
 * What one client API contributes to the generation flow (see flow.ts). The flow is the same for every API: analyse
 * the canonical prompt, plan a slot (resident, restore or cold), carry the plan out, forward pinned with `id_slot`,
 * record what the slot now holds, save per policy. An adapter only says how its API's requests and answers look:
 *
 * - `read`: validate the client's body (a 400 ProxyError naming the field, rendered by `renderError`) and return a
 *   {@link GenerationRequest}: the model, the canonical prompt parts, whether it streams, the session hint and how to
 *   build the backend call once the slot is known;
 * - `renderError`: the API's own error body (the OpenAI envelope when absent);
 * - the request's optional `answer`: how the backend's answer becomes the client's (absent: relayed byte for byte).
 *
 * Whatever the API, the backend speaks llama-server's own formats, so the flow reads `timings` (or, failing that,
 * `usage`) from the backend's answer itself: from the JSON body, or from the stream's final or usage event.
 */
import type { BackendCall } from '../backend/llama-client.js';
import type { ProxyError } from '../errors.js';
import type { AnswerShape } from './answer-text.js';

/** The parts of the client's HTTP request an adapter may read besides the body. */
export interface HttpInfo {
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The parsed query string. */
  query: Readonly<Record<string, unknown>>;
}

/** The slot the flow pinned the request to, and whether the server must keep the prompt's cache. */
export interface Pin {
  id_slot: number;
  /** `true` for a big request (its cache is worth keeping); undefined leaves the client's own value. */
  cache_prompt?: true;
  /** A replay of the request (RamRescues): nothing to generate, and one JSON answer. */
  n_predict?: 0;
  /** A task sent without a pin, marked so `GET /slots` shows its slot (see task-mark.ts); never the client's seed. */
  seed?: number;
  stream?: false;
}

/**
 * A replay of the request (RamRescues) with the answer's text as a last assistant message, which llama-server
 * continues (its assistant prefill, on by default): the slot then holds the reply too.
 */
export interface ReplayWithReply {
  /** The shape the backend's answer has, to read its text from (see AnswerText). */
  answerShape: AnswerShape;
  /** The backend call with `reply` as the last assistant message. */
  call(pin: Pin, reply: string): BackendCall;
}

/** A validated request, described for the flow. */
export interface GenerationRequest {
  /** The model asked for; undefined or '' means MODEL_ID. */
  model: string | undefined;
  /**
   * The canonical prompt text, in parts (one per message or prompt segment), each stripped and non-empty (see
   * prompt-analysis.canonicalParts). Key and blocks are computed over them, so two requests whose rendered prompts
   * are the same must give the same parts whatever API they came through: only the text that reaches the prompt
   * counts, never markers that change between requests (Anthropic `cache_control`, billing headers…).
   */
  parts: readonly string[];
  /** The client asked for an SSE answer. */
  stream: boolean;
  /** The client's `cache_prompt: false`: the server neither reuses nor keeps the cache, so nothing is saved. */
  cachePromptOff: boolean;
  /** The client set the sampling `seed`: its task is not marked with one of the proxy's (see task-mark.ts). */
  seeded?: true;
  /** A session id from the body (`prompt_cache_key`, Anthropic `metadata.user_id`…); headers are read by the flow. */
  session?: string;
  /** The backend call for this request, pinned. */
  backendCall(pin: Pin): BackendCall;
  /** How the request is replayed with its answer's text (the chat and Responses routes). */
  replayWithReply?: ReplayWithReply;
  /** How the backend's answer is turned into this API's answer; absent: relayed as it came. */
  answer?: AnswerConversion;
}

/**
 * Turns the backend's answer into the API's. The flow reads `timings` from the backend's bytes before conversion.
 */
export interface AnswerConversion {
  /** A whole answer (JSON, or any error status): what the client gets. */
  whole(answer: { status: number; body: Buffer; contentType: string }): {
    status: number;
    body: Buffer | string;
    contentType: string;
  };
  /** A stream: a fresh converter per answer. */
  stream(): StreamConversion;
}

/** Converts one SSE stream chunk by chunk (frames may be split across chunks). */
export interface StreamConversion {
  /** The content type the client gets (`text/event-stream`). */
  readonly contentType: string;
  /** The backend's next bytes; returns what to write to the client now ('' for nothing yet). */
  push(chunk: Buffer): string | Buffer;
  /** The backend's stream ended; the rest to write. */
  end(): string | Buffer;
  /** The backend's stream broke after the headers went out: the event that ends the client's stream. */
  error(message: string): string;
}

/** One client API. */
export interface GenerationAdapter {
  /** Short name for the log line's `api` field (`chat`, `completion`, `infill`, `responses`, `messages`). */
  readonly api: string;
  /** Validate the body and describe the request. Throws a 400 ProxyError (with `param`) for bad input. */
  read(body: unknown, http: HttpInfo): GenerationRequest;
  /** The API's error body for any failure of this route (absent: the OpenAI envelope `err.toJSON()`). */
  renderError?(err: ProxyError): unknown;
}
