/** The handlers shutdown waits for: answers in progress get a grace period before their connections are cut. */
import type { ProxyContext } from './context.js';

/** Keep `handling` in `ctx.inflight` until it settles (including work after the reply, such as saves). */
export function track<T>(ctx: Pick<ProxyContext, 'inflight'>, handling: Promise<T>): Promise<T> {
  const tracked = handling.catch(() => undefined).finally(() => ctx.inflight.delete(tracked));
  ctx.inflight.add(tracked);
  return handling;
}
