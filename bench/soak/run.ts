#!/usr/bin/env node
/**
 * `npm run soak`: the soak and fault run (loopback only, bounded, stops by itself). Prints the summary, writes the
 * JSON report, and exits 1 when a check failed.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { formatReport } from './report.js';
import { runSoak } from './soak.js';
import type { SoakOptions } from './soak.js';

const HELP = `Usage: npm run soak -- [options]     (after npm run build)

Runs the simulator and the proxy as child processes on loopback, then chat clients, a fuzzer and a backend
restart against the proxy for a fixed time; checks that nothing was lost and that the proxy came back to its
baseline. Exits 1 when a check fails.

  --duration S       seconds of load                                   (default 60)
  --clients N        concurrent chat clients; one in ten cuts its streams (default 200)
  --slots N          backend slots                                     (default 4)
  --restart-at S     seconds into the load when the backend is killed  (default: half the duration; 0 = never)
  --down-ms MS       how long the backend stays down                   (default 1500)
  --deadline-ms MS   a request without an answer after this long is lost (default 60000)
  --time-scale X     the simulator's wall ms per model ms              (default 0.1)
  --seed N                                                             (default 1)
  --skip-fuzz A,B    fuzz cases to leave out (names as in the table)
  --out FILE         JSON report                                       (default bench/results/soak-latest.json)
  -h, --help
`;

function parse(argv: string[]): { options: Omit<SoakOptions, 'log'>; out: string } | 'help' {
  const { values: v } = parseArgs({
    args: argv,
    options: Object.fromEntries([
      ...[
        'duration',
        'clients',
        'slots',
        'restart-at',
        'down-ms',
        'deadline-ms',
        'time-scale',
        'seed',
        'skip-fuzz',
        'out',
      ].map((k) => [k, { type: 'string' as const }]),
      ['help', { type: 'boolean' as const, short: 'h' }],
    ]),
    strict: true,
  }) as { values: Record<string, string | boolean | undefined> };
  if (v.help) return 'help';
  const num = (key: string, fallback: number): number => {
    const raw = v[key] as string | undefined;
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n) || n < 0)
      throw new RangeError(`--${key} must be a number >= 0, got '${raw}'`);
    return n;
  };
  const durationS = num('duration', 60);
  const restartAtS = num('restart-at', durationS / 2);
  return {
    options: {
      durationS,
      clients: Math.max(1, Math.round(num('clients', 200))),
      slots: Math.max(1, Math.round(num('slots', 4))),
      restartAtS: restartAtS > 0 && restartAtS < durationS ? restartAtS : undefined,
      downMs: num('down-ms', 1500),
      deadlineMs: num('deadline-ms', 60_000),
      bigWords: { min: 600, max: 1500 },
      timeScale: num('time-scale', 0.1),
      seed: Math.round(num('seed', 1)),
      skipFuzz: new Set(
        String(v['skip-fuzz'] ?? '')
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      ),
    },
    out: String(v.out ?? 'bench/results/soak-latest.json'),
  };
}

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parse(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`soak: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (parsed === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  const report = await runSoak({ ...parsed.options, log: (line) => process.stdout.write(`${line}\n`) });
  process.stdout.write(`\n${formatReport(report)}\n`);
  await mkdir(dirname(parsed.out), { recursive: true });
  await writeFile(parsed.out, JSON.stringify(report, null, 2) + '\n');
  process.stdout.write(`report written to ${parsed.out}\n`);
  return report.passed ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
