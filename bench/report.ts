/** The bench's table and its checks against the targets of the cache-policy issue (ratios, never absolute times). */
import type { BenchResults } from './run.js';

const COLUMNS: Array<[string, (m: any, w: any) => string]> = [
  ['config', () => ''],
  ['prefill', (m) => String(m.prefill_tokens)],
  ['×ideal', (m, w) => ratio(m.prefill_tokens, w.ideal_prefill_tokens)],
  ['reused', (m) => String(m.reused_tokens)],
  ['ttft mean s', (m) => seconds(m.ttft_mean_ms)],
  ['p50 s', (m) => seconds(m.ttft_p50_ms)],
  ['p95 s', (m) => seconds(m.ttft_p95_ms)],
  ['wall s', (m) => seconds(m.wall_ms)],
  ['saves', (m) => String(m.saves)],
  ['restores', (m) => String(m.restores)],
  ['written GB', (m) => gb(m.bytes_written)],
  ['disk GB', (m) => gb(m.disk_bytes_final)],
  ['cpu s', (m) => String(m.proxy_cpu_s)],
  ['rss MB', (m) => String(Math.round(m.proxy_rss_mb))],
];

export function printTable(results: BenchResults, print: (line: string) => void): void {
  for (const [name, w] of Object.entries(results.workloads)) {
    print(
      `\n${name}: ${w.description} (ideal prefill ${w.ideal_prefill_tokens} tokens, live cache ${gb(w.live_cache_bytes)} GB)`,
    );
    const rows = Object.entries(w.configs).map(([config, m]) =>
      COLUMNS.map(([, f], i) => (i === 0 ? config : f(m, w))).concat(title(m)),
    );
    const header = COLUMNS.map(([heading]) => heading).concat(
      name === 'overhead' ? 'p50 latency ms / stream tok/s' : '',
    );
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const fmt = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
    print(fmt(header));
    for (const r of rows) print(fmt(r));
    if (Object.values(w.configs).some((m: any) => m.agents)) printAgents(w.configs, print);
  }
}

/** The agents workload's own table: the main conversations against their ideal, and what side requests displaced. */
function printAgents(configs: Record<string, any>, print: (line: string) => void): void {
  const header = [
    'config',
    'main prefill',
    'ideal',
    '×ideal',
    'main turns displaced',
    'by a side request',
    'side evictions of a live conversation',
    'unmatched',
  ];
  const rows = Object.entries(configs)
    .filter(([, m]) => m.agents)
    .map(([config, m]) => {
      const a = m.agents;
      return [
        config,
        String(a.main_prefill_tokens),
        String(a.ideal_main_prefill_tokens),
        ratio(a.main_prefill_tokens, a.ideal_main_prefill_tokens),
        String(a.main_turns_displaced),
        String(a.displaced_by_side),
        String(a.side_evictions),
        String(a.unmatched),
      ];
    });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  print('  main conversations and side requests (title, memory extraction, infill):');
  print(fmt(header));
  for (const r of rows) print(fmt(r));
}

function title(m: any): string {
  return m.latency_p50_ms === undefined ? '' : `${m.latency_p50_ms} / ${m.stream_tokens_per_s}`;
}

/** One line per target: PASS/MISS with the measured ratio. Targets whose configs were not run are skipped. */
export function targetChecks(results: BenchResults): string[] {
  const lines: string[] = ['', 'targets:'];
  const w = results.workloads;
  const check = (label: string, value: number | undefined, limit: number, higherIsBetter = false) => {
    if (value === undefined || !Number.isFinite(value)) return;
    const ok = higherIsBetter ? value >= limit : value <= limit;
    lines.push(`  ${ok ? 'PASS' : 'MISS'}  ${label}: ${value.toFixed(3)} (${higherIsBetter ? '≥' : '≤'} ${limit})`);
  };
  const cfg = (name: string, config: string) => w[name]?.configs[config];
  const prefillRatio = (name: string) =>
    cfg(name, 'smart') && cfg(name, 'smart')!.prefill_tokens / w[name]!.ideal_prefill_tokens;
  const div = (a?: number, b?: number) => (a === undefined || b === undefined || b === 0 ? undefined : a / b);

  // The targets of the cache-policy issue were set on the default cost model (restore/prefill 0.2); issue 7 adds
  // its own at a GPU's ratio (~0.1), and at every ratio the policy must not lose to the Python proxy's.
  const r = results.cost_ratio?.restore_to_prefill;
  const near = (x: number) => r === undefined || Math.abs(r - x) < 0.01;
  const ttft = (name: string, against: string) =>
    div(cfg(name, 'smart')?.ttft_mean_ms, cfg(name, against)?.ttft_mean_ms);
  const bytes = (name: string) => div(cfg(name, 'smart')?.bytes_written, cfg(name, 'seed')?.bytes_written);
  const at = r === undefined ? '' : ` [ratio ${results.cost_ratio!.name}]`;
  check('contention: smart prefill / ideal', prefillRatio('contention'), 1.1);
  check('roundrobin: smart prefill / ideal', prefillRatio('roundrobin'), 1.1);
  for (const name of ['contention', 'roundrobin']) {
    check(`${name}: smart ttft mean / seed${at}`, ttft(name, 'seed'), 1.0);
    check(`${name}: smart bytes written / seed${at}`, bytes(name), 1.0);
  }
  if (near(0.2)) {
    check(`contention: smart ttft mean / seed${at}`, ttft('contention', 'seed'), 0.5);
    check(`contention: smart ttft mean / direct${at}`, ttft('contention', 'direct'), 0.5);
    check(`contention: smart bytes written / seed${at}`, bytes('contention'), 0.35);
  }
  if (r !== undefined && near(0.1)) {
    for (const name of ['contention', 'roundrobin']) {
      check(`${name}: smart ttft mean / seed${at} (issue 7)`, ttft(name, 'seed'), 0.6);
      check(`${name}: smart bytes written / seed${at} (issue 7)`, bytes(name), 0.35);
    }
  }
  check('swap: smart prefill / ideal', prefillRatio('swap'), 1.1);
  check('restart: smart prefill / ideal', prefillRatio('restart'), 1.1);
  const noise = cfg('noise', 'smart');
  check(
    'noise: smart conversation prefill / ideal',
    noise && div(noise.conversation_prefill_tokens, w.noise!.ideal_conversation_prefill_tokens),
    1.1,
  );
  // Issue 8, item 9: the main conversations within 5 % of their ideal under the default policy; direct at least twice.
  const agents = (config: string) => cfg('agents', config)?.agents;
  check(
    'agents: smart main-conversation prefill / ideal',
    div(agents('smart')?.main_prefill_tokens, agents('smart')?.ideal_main_prefill_tokens),
    1.05,
  );
  check(
    'agents: direct main-conversation prefill / smart',
    div(agents('direct')?.main_prefill_tokens, agents('smart')?.main_prefill_tokens),
    2,
    true,
  );
  // Item 4: with a cheaper slot idle, no side request takes the live conversation's.
  check('sidecheap: smart side evictions of a live conversation', cfg('sidecheap', 'smart')?.agents?.side_evictions, 0);
  const oSmart = cfg('overhead', 'smart');
  const oDirect = cfg('overhead', 'direct');
  if (oSmart && oDirect) {
    lines.push(
      `  ${oSmart.latency_p50_ms! - oDirect.latency_p50_ms! <= 2 ? 'PASS' : 'MISS'}  overhead: smart added p50 latency ${(oSmart.latency_p50_ms! - oDirect.latency_p50_ms!).toFixed(2)} ms (≤ 2 ms)`,
    );
    check(
      'overhead: smart stream throughput / direct',
      div(oSmart.stream_tokens_per_s, oDirect.stream_tokens_per_s),
      0.95,
      true,
    );
  }
  for (const [name, wl] of Object.entries(w)) {
    const smart = wl.configs.smart;
    if (smart && wl.live_cache_bytes > 0 && name !== 'overhead')
      check(`${name}: smart disk final / live cache`, smart.disk_bytes_final / wl.live_cache_bytes, 1.2);
  }
  return lines;
}

function ratio(a: number, b: number): string {
  return b ? (a / b).toFixed(2) : '-';
}
function seconds(ms: number): string {
  return (ms / 1000).toFixed(2);
}
function gb(bytes: number): string {
  return (bytes / 1e9).toFixed(2);
}
