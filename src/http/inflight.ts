/** The handlers shutdown waits for: answers in progress get a grace period before their connections are cut. */

/** Handlers still running, including their work after the reply (saves); shutdown waits for them. */
export type Inflight = Set<Promise<unknown>>;

/** Keep `handling` in `inflight` until it settles (including work after the reply, such as saves). */
export function track<T>(inflight: Inflight, handling: Promise<T>): Promise<T> {
  const tracked = handling.catch(() => undefined).finally(() => inflight.delete(tracked));
  inflight.add(tracked);
  return handling;
}
