/**
 * The proxy's own health, next to its backends': whether requests keep failing inside the proxy. One odd request
 * that hits a bug is logged and counted; when the last few requests that reached a handler all failed inside the
 * proxy and none was served since, `/health` says so (and answers 503), instead of "ok" while every chat fails.
 */

/** Internal failures in a row, with no answer served between them, that make the proxy report itself failing. */
const FAILING_AFTER = 3;

export interface ProxyHealthReport {
  status: 'ok' | 'failing';
  internal_errors_total: number;
  last_internal_error?: { at: string; message: string };
}

export class ProxyHealth {
  private total = 0;
  private inARow = 0;
  private last?: { at: string; message: string };

  noteInternalError(err: unknown): void {
    this.total++;
    this.inARow++;
    this.last = { at: new Date().toISOString(), message: err instanceof Error ? err.message : String(err) };
  }

  /** A request was answered without an internal failure (a backend's own error still counts as served). */
  noteServed(): void {
    this.inARow = 0;
  }

  report(): ProxyHealthReport {
    return {
      status: this.inARow >= FAILING_AFTER ? 'failing' : 'ok',
      internal_errors_total: this.total,
      ...(this.last && { last_internal_error: this.last }),
    };
  }
}
