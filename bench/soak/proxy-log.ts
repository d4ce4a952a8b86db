/**
 * What the proxy's own log lines say about a soak: requests by decision and outcome, saves and restores (and
 * failed ones), 5xx answers it logged as failures, and every warning or error by message, so that a failure seen by
 * a client can be matched with the proxy's account of it.
 */

export interface ProxyLogSummary {
  chats: number;
  decisions: Record<string, number>;
  /** By the status the chat line records; 'client_gone' when the client left first. */
  outcomes: Record<string, number>;
  saves: { ok: number; failed: number };
  restores: { ok: number; failed: number };
  /** 'request failed' lines by status. */
  failedByStatus: Record<string, number>;
  /** Warnings and errors by message (with the first error text seen for each). */
  warnings: Record<string, { count: number; example?: string }>;
}

const SAVE_LINES = new Set(['saved idle slot', 'saved before model swap', 'saved on shutdown']);

export function emptyLogSummary(): ProxyLogSummary {
  return {
    chats: 0,
    decisions: {},
    outcomes: {},
    saves: { ok: 0, failed: 0 },
    restores: { ok: 0, failed: 0 },
    failedByStatus: {},
    warnings: {},
  };
}

/** Fold one parsed log line into the summary. */
export function noteLogLine(summary: ProxyLogSummary, entry: Record<string, unknown>): void {
  const msg = String(entry.msg ?? '');
  if (msg === 'chat') {
    summary.chats++;
    bump(summary.decisions, String(entry.decision ?? 'none'));
    bump(summary.outcomes, entry.client_gone ? 'client_gone' : String(entry.outcome ?? entry.status ?? 'none'));
    countOp(summary.saves, entry.evict_save);
    countOp(summary.saves, entry.save);
    countOp(summary.restores, entry.restore);
  } else if (SAVE_LINES.has(msg)) {
    countOp(summary.saves, entry.save);
  }
  if (msg === 'request failed') bump(summary.failedByStatus, String(entry.status));
  if (entry.level === 'warn' || entry.level === 'error' || entry.level === 'fatal') {
    const w = (summary.warnings[msg] ??= { count: 0 });
    w.count++;
    w.example ??=
      typeof entry.err === 'string'
        ? entry.err.slice(0, 200)
        : typeof entry.url === 'string'
          ? entry.url.slice(0, 120)
          : undefined;
  }
}

function countOp(counts: { ok: number; failed: number }, op: unknown): void {
  if (op === null || typeof op !== 'object') return;
  if ((op as { ok?: unknown }).ok === true) counts.ok++;
  else counts.failed++;
}

function bump(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}
