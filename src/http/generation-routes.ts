/**
 * The managed generation routes: each client API's paths, handled by the shared flow with that API's adapter. A
 * route's errors (bad input included) are rendered in its API's shape (`renderError` in the route's config). A
 * route matches whatever its query string (Claude Code's `/v1/messages?beta=true`).
 */
import type { FastifyInstance } from 'fastify';
import type { GenerationAdapter } from '../generation/adapter.js';
import { chatAdapter } from '../generation/adapters/chat.js';
import { completionAdapter } from '../generation/adapters/completion.js';
import { infillAdapter } from '../generation/adapters/infill.js';
import { messagesAdapter } from '../generation/adapters/messages.js';
import { responsesAdapter } from '../generation/adapters/responses.js';
import type { GenerationDeps } from '../generation/deps.js';
import { handleGeneration } from '../generation/flow.js';
import type { ErrorShapeConfig } from './error-handler.js';
import type { ApiLabelConfig } from './metrics-route.js';
import { track } from './inflight.js';
import type { Inflight } from './inflight.js';

/** Every managed route: its paths and its adapter. */
const GENERATION_ROUTES: ReadonlyArray<{ paths: readonly string[]; adapter: GenerationAdapter }> = [
  { paths: ['/v1/chat/completions', '/chat/completions'], adapter: chatAdapter },
  ...['/v1/completions', '/completions', '/completion'].map((path) => ({
    paths: [path],
    adapter: completionAdapter(path),
  })),
  { paths: ['/infill'], adapter: infillAdapter },
  { paths: ['/v1/responses', '/responses'], adapter: responsesAdapter },
  // llama-server serves Messages only under /v1 (and /v1/messages/count_tokens, passed through).
  { paths: ['/v1/messages'], adapter: messagesAdapter },
];

export function registerGenerationRoutes(app: FastifyInstance, deps: GenerationDeps, inflight: Inflight): void {
  for (const { paths, adapter } of GENERATION_ROUTES) {
    const config: ErrorShapeConfig & ApiLabelConfig = {
      api: adapter.api,
      ...(adapter.renderError && { renderError: adapter.renderError }),
    };
    for (const path of paths) {
      app.post(path, { config }, (request, reply) => track(inflight, handleGeneration(deps, adapter, request, reply)));
    }
  }
}
