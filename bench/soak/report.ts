/** The soak's printed summary: a few small tables and one PASS / FAIL line per check. */
import type { SoakReport } from './checks.js';

export function formatReport(r: SoakReport): string {
  const o = r.options as { clients?: number; slots?: number };
  const out: string[] = [];
  const restart = r.restart
    ? `backend killed at ${r.restart.killAtS} s, listening again ${r.restart.downMs} ms later`
    : 'no backend restart';
  out.push(`soak: ${o.clients} clients on ${o.slots} slots for ${r.loadSeconds} s; ${restart}`, '');

  const c = r.chats;
  out.push(
    table(
      [
        'chats',
        'total',
        'answered',
        'disconnected',
        'failed',
        'lost',
        'p50 ms',
        'p99 ms',
        'max ms',
        'ttft p50',
        'ttft p99',
      ],
      [
        [
          '',
          c.total,
          c.answered,
          c.disconnected,
          c.failed,
          c.lost,
          c.latencyMs.p50,
          c.latencyMs.p99,
          c.latencyMs.max,
          c.ttftMs.p50,
          c.ttftMs.p99,
        ],
      ],
    ),
  );
  const failed = Object.entries(c.failedBy).map(([k, v]) => `${k}: ${v.count} (${v.explained} in the restart window)`);
  out.push(`failed by status: ${failed.length ? failed.join('; ') : 'none'}`, '');

  const rows = Object.entries(r.fuzz.cases)
    .filter(([, s]) => s.sent > 0)
    .map(([name, s]) => [
      name,
      s.sent,
      Object.entries(s.statuses)
        .map(([k, v]) => `${k}×${v}`)
        .join(' '),
      s.expect.join('/'),
      s.mismatches ? 'MISS' : 'ok',
    ]);
  out.push(table(['fuzz case', 'sent', 'statuses', 'expected', ''], rows), '');

  const l = r.lag;
  out.push(
    table(
      ['event-loop lag ms', 'p50', 'p99', 'max'],
      [
        ['proxy, in process (perf_hooks)', l.inProcessMs.p50, l.inProcessMs.p99, l.inProcessMs.max],
        ['probe from outside (400 answer)', l.probeMs.p50, l.probeMs.p99, l.probeMs.max],
        ['load generator itself', l.driverMs.p50, l.driverMs.p99, l.driverMs.max],
      ],
    ),
    `in process, per half second: median p50 ${l.inProcessMs.p50} ms, median p99 ${l.inProcessMs.p99Median} ms; the p99 above is the worst half second's`,
    `proxy heap used: ${l.heapUsedMb.start} MB at the start of the load, ${l.heapUsedMb.max} MB at most, ${l.heapUsedMb.end} MB at the end`,
    '',
  );

  const p = r.proc;
  out.push(
    table(
      [
        'proxy process',
        'rss MiB',
        'after GC: rss MiB',
        'heap used MB',
        'heap committed MB',
        'external MB',
        'fds',
        'sockets',
      ],
      [
        [
          'baseline (after warm-up)',
          p.baseline.rssBeforeGcMb,
          p.baseline.rssMb,
          p.baseline.heapMb,
          p.baseline.heapCommittedMb,
          p.baseline.externalMb,
          p.baseline.fds,
          p.baseline.sockets,
        ],
        ['peak during the load', p.maxRssMb, '', '', '', '', p.maxFds, ''],
        [
          'after the load',
          p.after.rssBeforeGcMb,
          p.after.rssMb,
          p.after.heapMb,
          p.after.heapCommittedMb,
          p.after.externalMb,
          p.after.fds,
          p.after.sockets,
        ],
      ],
    ),
    '',
  );

  const log = r.proxyLog;
  const cs = r.consistency;
  out.push(
    `proxy log: ${log.chats} chat lines; decisions ${fmt(log.decisions)}; statuses ${fmt(log.outcomes)}`,
    `cache: saves ${log.saves.ok} ok / ${log.saves.failed} failed, restores ${log.restores.ok} ok / ${log.restores.failed} failed; ` +
      `at the end ${cs.metas} metas, ${cs.cacheFiles} files, ${cs.orphanFiles.length} files without a meta`,
    `proxy warnings: ${
      Object.entries(log.warnings)
        .map(([m, w]) => `${m} ×${w.count}${w.example ? ` (${w.example})` : ''}`)
        .join('; ') || 'none'
    }`,
    `graceful shutdown: ${r.shutdownMs} ms`,
    '',
  );
  for (const check of r.checks) out.push(`  ${check.ok ? 'PASS' : 'FAIL'}  ${check.name}: ${check.detail}`);
  if (c.unexplained.length) {
    out.push('', 'unexplained failures (first ones):');
    for (const u of c.unexplained.slice(0, 5)) out.push(`  ${JSON.stringify(u)}`);
  }
  out.push('', r.passed ? 'soak PASSED' : 'soak FAILED');
  return out.join('\n');
}

function fmt(counts: Record<string, number>): string {
  return (
    Object.entries(counts)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || 'none'
  );
}

function table(header: string[], rows: Array<Array<string | number>>): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) => r.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  '))
    .join('\n');
}
