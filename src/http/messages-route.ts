/**
 * The Anthropic Messages API for Claude Code and the Anthropic SDKs: `POST /v1/messages` (also `?beta=true`) through
 * the generation flow, pinned and cached like chat completions (the adapter converts to and from chat completions),
 * every error in Anthropic's shape; and `HEAD /`, which Claude Code sends first to see that the server is there.
 * `POST /v1/messages/count_tokens` is not generation: the passthrough sends it to the backend.
 */
import type { FastifyInstance } from 'fastify';
import { anthropicAdapter } from '../api/anthropic/adapter.js';
import { renderAnthropicError } from '../api/anthropic/errors.js';
import { handleChat } from './chat-route.js';
import type { ProxyContext } from './context.js';
import { errorHandler } from './error-handler.js';
import { track } from './inflight.js';

export function registerMessagesRoutes(scope: FastifyInstance, ctx: ProxyContext, onInternalError: (err: unknown) => void): void {
  scope.setErrorHandler(errorHandler(ctx.log, ctx.config, onInternalError, renderAnthropicError));
  scope.post('/v1/messages', (request, reply) => track(ctx, handleChat(ctx, request, reply, anthropicAdapter)));
}

/** Claude Code's connectivity probe; llama-server itself answers it with 404. */
export function registerRootProbe(app: FastifyInstance): void {
  app.head('/', async (_request, reply) => reply.code(200).send());
}
