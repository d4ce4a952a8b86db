/**
 * The first phase of closing the app: while the answers in progress finish, the proxy keeps listening and answers
 * every new request with 503 `shutting_down` and a `Retry-After`, instead of refusing connections, so clients and
 * load balancers see why. Once nothing is in flight (or `graceMs` has passed) Fastify stops listening.
 */
import type { FastifyInstance } from 'fastify';
import { ProxyError } from '../errors.js';

/** Seconds a client is told to wait before retrying (a restart takes about that long). */
const RETRY_AFTER_SECONDS = 5;

/**
 * Register the drain on `app`, which must be built with `return503OnClosing: false` (this hook answers instead, in
 * the OpenAI error shape). `inflight` holds the handlers still running.
 */
export function registerShutdownDrain(
  app: FastifyInstance,
  inflight: ReadonlySet<Promise<unknown>>,
  graceMs: number,
): void {
  let draining = false;
  app.addHook('onRequest', async (_request, reply) => {
    if (!draining) return;
    const error = new ProxyError(503, 'shutting_down', 'proxycache is shutting down; retry shortly');
    return reply
      .code(503)
      .header('retry-after', String(RETRY_AFTER_SECONDS))
      .header('connection', 'close')
      .send(error.toJSON());
  });
  app.addHook('preClose', async () => {
    draining = true;
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    let over = false;
    void graceOver.then(() => (over = true));
    // Handlers that passed the hook just before draining began may join the set: wait until it is empty.
    while (inflight.size > 0 && !over) await Promise.race([Promise.allSettled([...inflight]), graceOver]);
    clearTimeout(timer);
  });
}
