/**
 * The real bench's tables and its checks against issue 7's targets. Every check is a ratio within one run
 * (configs of the same workload and server mode, or against the ideal), never an absolute time.
 */
import type { RealConfigMetrics, RealResults, RealWorkloadResults } from './real-run.js';

type Column = [string, (m: RealConfigMetrics) => string];

const COLUMNS: Column[] = [
  ['prefill', (m) => String(m.prefill_tokens)],
  ['×ideal', (m) => ratio(m.prefill_tokens, m.ideal_prefill_tokens)],
  ['reused', (m) => String(m.reused_tokens)],
  ['ttft mean ms', (m) => String(Math.round(m.ttft_mean_ms))],
  ['p50', (m) => String(Math.round(m.ttft_p50_ms))],
  ['p95', (m) => String(Math.round(m.ttft_p95_ms))],
  ['turns', (m) => String(Math.round(m.ttft_turn_mean_ms))],
  ['small', (m) => (m.ttft_small_mean_ms === undefined ? '' : String(Math.round(m.ttft_small_mean_ms)))],
  ['wall s', (m) => (m.wall_ms / 1000).toFixed(1)],
  ['saves', (m) => `${m.saves}${m.failed_saves ? ` (+${m.failed_saves} failed)` : ''}`],
  ['restores', (m) => `${m.restores}${m.failed_restores ? ` (+${m.failed_restores} failed)` : ''}`],
  ['written MB', (m) => mb(m.bytes_written)],
  ['disk MB', (m) => mb(m.disk_bytes_final)],
  ['server wrote MB', (m) => mb(m.server_write_bytes)],
  [
    'placements',
    (m) =>
      Object.entries(m.decisions)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
  ],
];

export function printRealTables(results: RealResults, print: (line: string) => void): void {
  const c = results.calibration;
  if (c)
    print(
      `\ncalibration: prefill ${c.prefill_tokens_per_s} tok/s, decode ${c.decode_ms_per_token} ms/token, KV ${c.kv_bytes_per_token} B/token, save ${c.save_ms_per_token} ms/token, restore ${c.restore_ms_per_token} ms/token (restore/prefill ${c.restore_to_prefill_ratio}, save/prefill ${c.save_to_prefill_ratio})`,
    );
  for (const [mode, m] of Object.entries(results.modes)) {
    print(`\n=== llama-server ${mode}: ${m.description}`);
    for (const [name, w] of Object.entries(m.workloads)) {
      print(
        `\n${name}: ${w.description} (ideal ${w.ideal_prefill_tokens} tokens, text-level ideal ${w.text_ideal_prefill_tokens}, live ${mb(w.live_cache_bytes)} MB, small RAM cache ${w.small_cache_mib} MiB)`,
      );
      const extra = name === 'overhead' ? ['p50 latency ms / stream tok/s'] : [];
      const header = ['config', ...COLUMNS.map(([h]) => h), ...extra];
      const rows = Object.entries(w.configs).map(([config, cm]) => [
        config,
        ...COLUMNS.map(([, f]) => f(cm)),
        ...(extra.length ? [`${cm.latency_p50_ms} / ${cm.stream_tokens_per_s}`] : []),
      ]);
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
      const fmt = (cells: string[]) =>
        cells
          .map((cell, i) =>
            i === cells.length - 1 && !extra.length ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!),
          )
          .join('  ');
      print(fmt(header));
      for (const r of rows) print(fmt(r));
    }
  }
}

/** Workloads where slots are contended: the time-to-first-token targets apply there. */
const CONTENTION = ['roundrobin', 'bursty'];

/** PASS/MISS per target and server mode; checks whose configs did not run are left out. */
export function realTargetChecks(results: RealResults, policy = 'proxycache'): string[] {
  const lines = ['', `targets (issue 7, item 7; "${policy}" is the proxy with its defaults):`];
  const check = (label: string, value: number | undefined, limit: number, digits = 3) => {
    if (value === undefined || !Number.isFinite(value)) return;
    lines.push(`  ${value <= limit ? 'PASS' : 'MISS'}  ${label}: ${value.toFixed(digits)} (≤ ${limit})`);
  };
  for (const [mode, m] of Object.entries(results.modes)) {
    for (const [name, w] of Object.entries(m.workloads)) {
      const at = `[${mode}] ${name}`;
      const p = w.configs[policy];
      if (p && name !== 'overhead') {
        check(`${at}: prefill / ideal`, p.prefill_tokens / p.ideal_prefill_tokens, 1.03);
        if (CONTENTION.includes(name)) {
          check(`${at}: ttft mean / always`, div(p.ttft_mean_ms, w.configs.always?.ttft_mean_ms), 1.0);
          check(`${at}: ttft mean / direct-8g`, div(p.ttft_mean_ms, w.configs['direct-8g']?.ttft_mean_ms), 1.05);
        }
        const always = w.configs.always;
        check(
          `${at}: bytes written / saving after every answer, on this run's answers`,
          div(p.bytes_written, p.after_every_answer_bytes),
          1.0,
          5,
        );
        if (always?.bytes_written)
          lines.push(
            `  info  ${at}: bytes written / always ${ratio(p.bytes_written, always.bytes_written, 5)} (other runs' replies differ by a token now and then); always / saving after every answer ${ratio(always.bytes_written, always.after_every_answer_bytes, 5)}`,
          );
        check(`${at}: disk at the end / live conversations`, div(p.disk_bytes_final, p.live_cache_bytes), 1.2);
      }
      lines.push(...sameServerChecks(at, name, w, policy));
    }
  }
  return lines;
}

/**
 * Item 6: never more prefill, never a later first token than the same server (same RAM cache) without the proxy:
 * the proxy on the small RAM cache against `direct-small`, and on the default 8 GiB one against `direct-8g`.
 */
function sameServerChecks(at: string, name: string, w: RealWorkloadResults, policy: string): string[] {
  if (name === 'overhead') return [];
  const lines: string[] = [];
  for (const [proxied, direct] of [
    [policy, 'direct-small'],
    [`${policy}-8g`, 'direct-8g'],
  ] as const) {
    const p = w.configs[proxied];
    const d = w.configs[direct];
    if (!p || !d) continue;
    const prefill = div(p.prefill_tokens, d.prefill_tokens);
    const ttft = div(p.ttft_mean_ms, d.ttft_mean_ms);
    const item6 = `${at}: ${proxied === policy ? '' : `${proxied} `}`;
    if (prefill !== undefined)
      lines.push(
        `  ${prefill <= 1 ? 'PASS' : 'MISS'}  ${item6}prefill / ${direct} (item 6): ${prefill.toFixed(3)} (≤ 1)`,
      );
    if (ttft !== undefined)
      lines.push(`  ${ttft <= 1 ? 'PASS' : 'MISS'}  ${item6}ttft mean / ${direct} (item 6): ${ttft.toFixed(3)} (≤ 1)`);
  }
  return [...lines, ...hopShares(at, w, policy)];
}

/**
 * Not a target: of `proxycache-8g`'s time to first token against `direct-8g`, what a bare relay's hop costs on this
 * machine (`relay-8g`) and what the proxy adds beyond it.
 */
function hopShares(at: string, w: RealWorkloadResults, policy: string): string[] {
  const direct = w.configs['direct-8g']?.ttft_mean_ms;
  const relay = w.configs['relay-8g']?.ttft_mean_ms;
  const proxied = w.configs[`${policy}-8g`]?.ttft_mean_ms;
  const hop = div(relay, direct);
  if (hop === undefined) return [];
  const beyond = div(proxied, relay);
  const rest = beyond === undefined ? '' : `, ${policy}-8g / relay-8g ${beyond.toFixed(3)}`;
  return [`  info  ${at}: ttft mean relay-8g / direct-8g ${hop.toFixed(3)} (the hop alone)${rest}`];
}

function div(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined || b === 0 ? undefined : a / b;
}
function ratio(a: number, b: number | undefined, digits = 3): string {
  return b ? (a / b).toFixed(digits) : '-';
}
function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}
