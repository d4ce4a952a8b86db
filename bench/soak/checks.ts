/**
 * The soak's verdict, from its measurements alone (pure): counts and latencies, every client failure explained
 * or not, the fuzz cases against their expected statuses, the proxy's memory and descriptors against the
 * baseline, and the pass criteria. Each check says what it compared; a fuzz check names the issue
 * item whose fix it guards.
 */
import { percentile } from '../metrics.js';
import type { ChatOutcome } from './chat-clients.js';
import { isConsistent } from './consistency.js';
import type { Consistency } from './consistency.js';
import { BACKEND_DOWN_STATUSES, FIXES, FUZZ_CASES, FUZZ_FILE_PREFIX } from './fuzz-cases.js';
import type { FuzzOutcome } from './fuzzer.js';
import type { LagSample } from './lag-probe.js';
import type { ProcSnapshot } from './proc-stats.js';
import type { RestingState } from './settle.js';
import type { ProxyLogSummary } from './proxy-log.js';

/**
 * Open descriptors the proxy may hold after the load beyond its baseline: keep-alive connections of its backend
 * pool that a health check, an idle save or a cleanup has just used (the backend closes them after 5 s idle).
 * Every client socket, stream and aborted upstream request must be gone.
 */
export const FD_TOLERANCE = 4;
/**
 * Memory the proxy may keep after the load, all measured after a full garbage collection (so garbage V8 has not
 * collected yet does not count), in three views:
 * - live heap, the leak detector for what the proxy's code holds: what it keeps by design may grow it, the prompt
 *   analyser's trie (up to 16 MiB of message text plus each message's hashing state) and the index entries of the
 *   files saved; 32 MB is above that and far below what 10 kB per request would add over a run's thousands;
 * - external (Buffers, outside the V8 heap): request and answer bodies must all be released; 16 MB;
 * - RSS, the kernel's view, only a guard against gross growth: V8 keeps the heap it grew committed (its young
 *   generation at its maximum, old-space pages: "heap committed"), and the C allocator keeps much of what the
 *   largest requests used mapped (the 30 MB body is held as bytes, text and parsed object at once; the 20,001-message
 *   body; 200 concurrent answers). Measured on the development machine: 40 to 100 MiB above the baseline, with the
 *   live heap 5 to 12 MB and external memory under 1 MB above theirs. 160 MiB.
 */
export const HEAP_TOLERANCE_MB = 32;
export const EXTERNAL_TOLERANCE_MB = 16;
export const RSS_TOLERANCE_MB = 160;
/** Requests that overlap the backend's restart may fail for this long after it listens again (re-probe, reconnect). */
export const RESTART_GRACE_MS = 1000;

export interface Measurements {
  options: Record<string, unknown>;
  loadStart: number;
  loadEnd: number;
  restart: { killAt: number; readyAt: number } | undefined;
  chats: ChatOutcome[];
  fuzz: FuzzOutcome[];
  probeMs: number[];
  driverLagMs: { p50: number; p99: number; max: number };
  lag: LagSample[];
  proc: { baseline: RestingState; after: RestingState; timeline: Array<ProcSnapshot & { t: number }> };
  drained: boolean;
  finalHealth: number;
  finalChat: { ok: boolean; ms: number; error?: string };
  indexMatches: boolean;
  alive: boolean;
  shutdown: { ok: boolean; ms: number };
  consistency: Consistency;
  proxyLog: ProxyLogSummary;
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface FuzzCaseSummary {
  sent: number;
  statuses: Record<string, number>;
  expect: number[];
  mismatches: number;
  /** Error answers that did not come in the OpenAI error envelope. */
  noEnvelope: number;
  fix?: string;
}

export interface SoakReport {
  options: Record<string, unknown>;
  loadSeconds: number;
  restart?: { killAtS: number; readyAtS: number; downMs: number };
  chats: {
    total: number;
    answered: number;
    disconnected: number;
    failed: number;
    lost: number;
    /** Failures by 'status code', with how many of them the backend restart explains. */
    failedBy: Record<string, { count: number; explained: number }>;
    /** A sample of the failures nothing explains. */
    unexplained: ChatOutcome[];
    latencyMs: { p50: number; p99: number; max: number };
    ttftMs: { p50: number; p99: number };
    answeredAfterRestart: number;
  };
  fuzz: { total: number; lost: number; cases: Record<string, FuzzCaseSummary> };
  lag: {
    /**
     * In the proxy process (perf_hooks), per half second of the load: the median period's p50 and p99, the worst
     * period's p99, the max.
     */
    inProcessMs: { p50: number; p99Median: number; p99: number; max: number };
    /** Outside: latency of a request the proxy answers itself. */
    probeMs: { p50: number; p99: number; max: number };
    /** The load generator's own event-loop lag, which the probe includes. */
    driverMs: { p50: number; p99: number; max: number };
    heapUsedMb: { start: number; end: number; max: number };
  };
  proc: { baseline: RestingState; after: RestingState; maxFds: number; maxRssMb: number };
  /** Every half second of the load, seconds from its start: the proxy's event-loop lag, heap, RSS and fds. */
  timeline: Array<{ s: number; lagP99?: number; lagMax?: number; heapMb?: number; rssMb?: number; fds?: number }>;
  proxyLog: ProxyLogSummary;
  consistency: Consistency;
  shutdownMs: number;
  checks: Check[];
  passed: boolean;
}

export function evaluate(m: Measurements): SoakReport {
  const window = m.restart && { from: m.restart.killAt, to: m.restart.readyAt + RESTART_GRACE_MS };
  const inWindow = (o: { startedAt: number; endedAt: number }) =>
    window !== undefined && o.startedAt <= window.to && o.endedAt >= window.from;
  const chats = summariseChats(m.chats, inWindow, m.restart?.readyAt);
  const fuzz = summariseFuzz(m.fuzz, inWindow);
  const lagInLoad = m.lag.filter((s) => !s.gc && s.t >= m.loadStart && s.t <= m.loadEnd + 500);
  const report: Omit<SoakReport, 'checks' | 'passed'> = {
    options: m.options,
    loadSeconds: round((m.loadEnd - m.loadStart) / 1000),
    ...(m.restart && {
      restart: {
        killAtS: round((m.restart.killAt - m.loadStart) / 1000),
        readyAtS: round((m.restart.readyAt - m.loadStart) / 1000),
        downMs: m.restart.readyAt - m.restart.killAt,
      },
    }),
    chats,
    fuzz,
    lag: {
      inProcessMs: {
        p50: percentile(
          lagInLoad.map((s) => s.p50),
          50,
        ),
        p99Median: percentile(
          lagInLoad.map((s) => s.p99),
          50,
        ),
        p99: Math.max(0, ...lagInLoad.map((s) => s.p99)),
        max: Math.max(0, ...lagInLoad.map((s) => s.max)),
      },
      probeMs: spread(m.probeMs),
      driverMs: m.driverLagMs,
      heapUsedMb: {
        start: lagInLoad[0]?.heapUsedMb ?? 0,
        end: m.lag.at(-1)?.heapUsedMb ?? 0,
        max: Math.max(0, ...m.lag.map((s) => s.heapUsedMb)),
      },
    },
    proc: {
      baseline: m.proc.baseline,
      after: m.proc.after,
      maxFds: Math.max(m.proc.after.fds, ...m.proc.timeline.map((s) => s.fds)),
      maxRssMb: Math.max(m.proc.after.peakRssMb, ...m.proc.timeline.map((s) => s.rssMb)),
    },
    timeline: timeline(m),
    proxyLog: m.proxyLog,
    consistency: m.consistency,
    shutdownMs: m.shutdown.ms,
  };
  const checks = criteria(m, report);
  return { ...report, checks, passed: checks.every((c) => c.ok) };
}

function summariseChats(
  outcomes: ChatOutcome[],
  inWindow: (o: ChatOutcome) => boolean,
  readyAt: number | undefined,
): SoakReport['chats'] {
  const failedBy: SoakReport['chats']['failedBy'] = {};
  const unexplained: ChatOutcome[] = [];
  for (const o of outcomes.filter((x) => x.result === 'failed')) {
    const key = `${o.status} ${o.code ?? ''}`.trim();
    const entry = (failedBy[key] ??= { count: 0, explained: 0 });
    entry.count++;
    if (inWindow(o)) entry.explained++;
    else if (unexplained.length < 20) unexplained.push(o);
  }
  const answered = outcomes.filter((o) => o.result === 'answered');
  const latencies = answered.map((o) => o.endedAt - o.startedAt);
  const ttfts = outcomes.flatMap((o) => (o.ttftMs === undefined ? [] : [o.ttftMs]));
  return {
    total: outcomes.length,
    answered: answered.length,
    disconnected: outcomes.filter((o) => o.result === 'disconnected').length,
    failed: outcomes.filter((o) => o.result === 'failed').length,
    lost: outcomes.filter((o) => o.result === 'lost').length,
    failedBy,
    unexplained,
    latencyMs: spread(latencies),
    ttftMs: { p50: percentile(ttfts, 50), p99: percentile(ttfts, 99) },
    answeredAfterRestart: readyAt === undefined ? 0 : answered.filter((o) => o.startedAt > readyAt).length,
  };
}

function summariseFuzz(outcomes: FuzzOutcome[], inWindow: (o: FuzzOutcome) => boolean): SoakReport['fuzz'] {
  const cases: Record<string, FuzzCaseSummary> = {};
  for (const c of FUZZ_CASES)
    cases[c.name] = {
      sent: 0,
      statuses: {},
      expect: c.expect,
      mismatches: 0,
      noEnvelope: 0,
      ...(c.fix && { fix: c.fix }),
    };
  const byName = new Map(FUZZ_CASES.map((c) => [c.name, c]));
  for (const o of outcomes) {
    const c = byName.get(o.name)!;
    const s = cases[o.name]!;
    s.sent++;
    s.statuses[String(o.status)] = (s.statuses[String(o.status)] ?? 0) + 1;
    const expected = typeof o.status === 'number' && c.expect.includes(o.status);
    const backendDown =
      !c.local && typeof o.status === 'number' && BACKEND_DOWN_STATUSES.includes(o.status) && inWindow(o);
    if (!o.envelope) s.noEnvelope++;
    if ((!expected && !backendDown) || !o.envelope) s.mismatches++;
  }
  return { total: outcomes.length, lost: outcomes.filter((o) => o.status === 'lost').length, cases };
}

function criteria(m: Measurements, r: Omit<SoakReport, 'checks' | 'passed'>): Check[] {
  const { chats, fuzz, proc, consistency: c } = r;
  const explainedFailures = Object.values(chats.failedBy).reduce((n, f) => n + f.explained, 0);
  const fuzzMisses = Object.entries(fuzz.cases).filter(([, s]) => s.mismatches > 0);
  const foreign = c.foreignFiles.filter((f) => f.startsWith(FUZZ_FILE_PREFIX));
  const rssLimit = round(proc.baseline.rssMb + RSS_TOLERANCE_MB);
  const heapLimit = round(proc.baseline.heapMb + HEAP_TOLERANCE_MB);
  const externalLimit = round(proc.baseline.externalMb + EXTERNAL_TOLERANCE_MB);
  const checks: Check[] = [
    check(
      'nothing lost',
      chats.lost === 0 && fuzz.lost === 0,
      `${chats.lost} chats and ${fuzz.lost} fuzz requests had no answer within their deadline${describeLostFuzz(fuzz)}`,
    ),
    check(
      'every failure explained',
      chats.failed === explainedFailures,
      `${chats.failed} failed, ${explainedFailures} during the backend restart window, ${chats.failed - explainedFailures} unexplained`,
    ),
    check(
      'the proxy kept running',
      m.alive,
      m.alive ? 'the process was alive at the end of the load' : 'the proxy process exited during the soak',
    ),
    check(
      'slots all free after the load',
      m.drained,
      m.drained ? '/health reported 0 busy slots' : 'slots stayed busy after the load (leaked slot or deadlock)',
    ),
    check(
      'final health and chat',
      m.finalHealth === 200 && m.finalChat.ok,
      `/health ${m.finalHealth}, chat ${m.finalChat.ok ? 'answered' : m.finalChat.error} in ${m.finalChat.ms} ms`,
    ),
    check(
      'fds back near baseline',
      proc.after.fds <= proc.baseline.fds + FD_TOLERANCE,
      `${proc.baseline.fds} before, ${proc.after.fds} after (peak ${proc.maxFds}; tolerance +${FD_TOLERANCE})`,
    ),
    check(
      'RSS back near baseline',
      proc.after.rssMb <= rssLimit,
      `after a full GC ${proc.baseline.rssMb} MiB before, ${proc.after.rssMb} MiB after (${proc.after.rssBeforeGcMb} before that GC, peak ${proc.maxRssMb}; limit ${rssLimit} = baseline + ${RSS_TOLERANCE_MB})`,
    ),
    check(
      'live heap back near baseline',
      proc.after.heapMb <= heapLimit,
      `after a full GC ${proc.baseline.heapMb} MB before, ${proc.after.heapMb} MB after (limit ${heapLimit} = baseline + ${HEAP_TOLERANCE_MB})`,
    ),
    check(
      'external memory back near baseline',
      proc.after.externalMb <= externalLimit,
      `after a full GC ${proc.baseline.externalMb} MB before, ${proc.after.externalMb} MB after (limit ${externalLimit} = baseline + ${EXTERNAL_TOLERANCE_MB})`,
    ),
    check(
      'index equals META_DIR',
      m.indexMatches,
      m.indexMatches
        ? "/health's cache_entries equals the meta files on disk"
        : "/health's cache_entries never matched the meta files on disk",
    ),
    check('META_DIR and CACHE_DIR consistent after shutdown', isConsistent(c), describeConsistency(c)),
    check(
      'orphan files explained by failed saves',
      c.orphanFiles.length <= m.proxyLog.saves.failed,
      `${c.orphanFiles.length} cache files without a meta, ${m.proxyLog.saves.failed} failed saves`,
    ),
    check(
      'no slot action reached the backend',
      foreign.length === 0,
      foreign.length === 0
        ? 'no file with a client-chosen name in CACHE_DIR'
        : `files written through a bypass: ${foreign.join(', ')}; a regression of ${FIXES.guard}`,
    ),
    check('graceful shutdown in time', m.shutdown.ok, `SIGTERM to exit: ${m.shutdown.ms} ms`),
    check(
      'the cache was exercised',
      m.proxyLog.saves.ok > 0 && m.proxyLog.restores.ok > 0,
      `${m.proxyLog.saves.ok} saves and ${m.proxyLog.restores.ok} restores succeeded`,
    ),
    check(
      'clients disconnected mid-stream',
      chats.disconnected > 0,
      `${chats.disconnected} streams cut by their client`,
    ),
  ];
  if (r.restart) {
    checks.push(
      check(
        'answers after the backend restart',
        chats.answeredAfterRestart > 0,
        `${chats.answeredAfterRestart} chats answered after the backend listened again`,
      ),
    );
  }
  for (const [name, s] of fuzzMisses) {
    checks.push(
      check(
        `fuzz ${name}`,
        false,
        `expected ${s.expect.join('/')} in the OpenAI error envelope, got ${JSON.stringify(s.statuses)}${s.noEnvelope ? ` (${s.noEnvelope} without the envelope)` : ''}${s.fix ? `; guards ${s.fix}` : ''}`,
      ),
    );
  }
  if (fuzzMisses.length === 0)
    checks.push(
      check(
        'fuzz cases answered as expected',
        fuzz.total > 0,
        `${fuzz.total} requests over ${Object.values(fuzz.cases).filter((s) => s.sent > 0).length} cases`,
      ),
    );
  return checks;
}

function timeline(m: Measurements): SoakReport['timeline'] {
  const rows = new Map<number, SoakReport['timeline'][number]>();
  const row = (t: number) => {
    const s = Math.round((t - m.loadStart) / 500) / 2;
    let r = rows.get(s);
    if (!r) rows.set(s, (r = { s }));
    return r;
  };
  for (const l of m.lag) {
    if (l.gc || l.t < m.loadStart || l.t > m.loadEnd + 500) continue;
    Object.assign(row(l.t), { lagP99: l.p99, lagMax: l.max, heapMb: l.heapUsedMb });
  }
  for (const p of m.proc.timeline) Object.assign(row(p.t), { rssMb: p.rssMb, fds: p.fds });
  return [...rows.values()].sort((a, b) => a.s - b.s);
}

/** The fuzz cases that had lost requests, and the fix each guards. */
function describeLostFuzz(fuzz: SoakReport['fuzz']): string {
  const lost = Object.entries(fuzz.cases).filter(([, s]) => (s.statuses.lost ?? 0) > 0);
  return lost.length === 0
    ? ''
    : ` (${lost.map(([name, s]) => `${name}${s.fix ? `, guards ${s.fix}` : ''}`).join('; ')})`;
}

function describeConsistency(c: Consistency): string {
  const problems = [
    c.missingFiles.length && `${c.missingFiles.length} metas without their file`,
    c.sizeMismatches.length && `${c.sizeMismatches.length} metas with another size than their file`,
    c.badMetas.length && `${c.badMetas.length} unreadable metas`,
    c.otherMetaDirFiles.length && `stray files in META_DIR: ${c.otherMetaDirFiles.slice(0, 5).join(', ')}`,
  ].filter(Boolean);
  return `${c.metas} metas, ${c.cacheFiles} cache files${problems.length ? '; ' + problems.join('; ') : ', every meta has its whole file'}`;
}

function check(name: string, ok: boolean, detail: string): Check {
  return { name, ok, detail };
}

function spread(values: number[]): { p50: number; p99: number; max: number } {
  return { p50: round(percentile(values, 50)), p99: round(percentile(values, 99)), max: round(Math.max(0, ...values)) };
}

function round(n: number): number {
  return Number.isFinite(n) ? Math.round(n * 10) / 10 : n;
}
