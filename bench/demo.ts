#!/usr/bin/env node
/**
 * `npm run demo`: shows proxycache's disk tier at work against a running proxy (and whatever backend is behind it).
 *
 * 1. Conversation A sends a long prompt (cold prefill; the proxy saves the slot to disk afterwards).
 * 2. As many other long conversations as the backend has slots take every slot, so A's KV is overwritten.
 * 3. A continues: the proxy restores A's cache file into a slot first, so the backend reports a large `cache_n`
 *    and a small `prompt_n` instead of prefilling the whole conversation again.
 *
 * Per step it prints the `timings` the backend reported. Plain `fetch`, no SDK: the script runs from dist/ with
 * only the production dependencies installed.
 */
import { parseArgs } from 'node:util';

const HELP = `Usage: npm run demo -- [options]

  --url URL       the proxy                                   (default http://127.0.0.1:8081)
  --others N      conversations that push A out of the slots  (default: the backend's total_slots, else 4)
  --words N       words per long prompt (> BIG_THRESHOLD_WORDS) (default 1200)
  --model ID      model to ask for                            (default: the first of GET /v1/models)
  --max-tokens N  reply length                                (default 16)
  -h, --help      show this help
`;

const REQUEST_TIMEOUT_MS = 300_000;
const READY_TIMEOUT_MS = 120_000;
const PROXY_WAIT_MS = 30_000;

interface Message {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

interface Timings {
  cache_n?: number;
  prompt_n?: number;
  prompt_ms?: number;
}

interface Step {
  label: string;
  words: number;
  timings: Timings;
  wallMs: number;
  reply: string;
}

// A small vocabulary; each conversation draws from it with its own seed, so their word blocks differ from the first.
const VOCABULARY = (
  'service request cache token slot model prompt reply server client module budget disk memory restore save ' +
  'session context prefix block hash index entry file queue worker thread socket stream buffer latency retry ' +
  'timeout config schema field value default limit policy metric log trace event handler route path header ' +
  'body status error code test case fixture mock stub report build deploy release branch commit review merge ' +
  'user account order invoice payment product price stock warehouse shipment address customer ticket issue ' +
  'the a of to and in for with on by from after before while until because when where which that this'
).split(' ');

/** Deterministic pseudo-random text of `words` words (mulberry32), readable enough to look like a document. */
function longText(seed: number, words: number, title: string): string {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out: string[] = [`${title}.`];
  let sentence: string[] = [];
  for (let i = out[0]!.split(' ').length; i < words; i++) {
    sentence.push(VOCABULARY[Math.floor(next() * VOCABULARY.length)]!);
    if (sentence.length >= 8 + Math.floor(next() * 8) || i === words - 1) {
      out.push(sentence.join(' ') + '.');
      sentence = [];
    }
  }
  return out.join(' ');
}

function wordCount(messages: readonly Message[]): number {
  return messages.reduce((n, m) => n + (m.content.toLowerCase().match(/[\p{L}\p{N}_]+/gu)?.length ?? 0), 0);
}

async function getJson(url: string): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return res.ok ? res.json() : undefined;
}

async function chat(
  base: string,
  model: string | undefined,
  messages: Message[],
  maxTokens: number,
  label: string,
): Promise<Step> {
  const started = performance.now();
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...(model && { model }), messages, max_tokens: maxTokens, stream: false }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${label}: HTTP ${res.status} ${text.slice(0, 300)}`);
  const body = JSON.parse(text) as { timings?: Timings; choices?: Array<{ message?: { content?: string } }> };
  return {
    label,
    words: wordCount(messages),
    timings: body.timings ?? {},
    wallMs: performance.now() - started,
    reply: body.choices?.[0]?.message?.content ?? '',
  };
}

interface Health {
  cache_entries?: number;
  backends?: Array<{ url?: string; status?: number }>;
}

/**
 * The proxy's /health once every backend answers its own /health with 200. Waits while the proxy is not listening
 * yet (it probes its backends first) or a backend is still loading its model.
 */
async function waitForBackends(base: string): Promise<Health> {
  const started = Date.now();
  let said = false;
  for (;;) {
    let health: Health | undefined;
    let problem: string;
    try {
      const res = await fetch(`${base}/health`, { signal: AbortSignal.timeout(10_000) });
      health = (await res.json().catch(() => ({}))) as Health;
      const backends = health.backends ?? [];
      if (res.ok && backends.every((b) => b.status === 200)) return health;
      problem = `backends not ready: ${JSON.stringify(backends)}`;
    } catch (err) {
      if (Date.now() - started > PROXY_WAIT_MS) {
        throw new Error(
          `no proxy at ${base} (${(err as Error).message}); start it first (README: "Try it without a GPU")`,
        );
      }
      problem = `no proxy at ${base} yet`;
    }
    if (Date.now() - started > READY_TIMEOUT_MS)
      throw new Error(`gave up after ${READY_TIMEOUT_MS / 1000} s: ${problem}`);
    if (!said) console.log(`waiting for the proxy and its backend (${problem})…`);
    said = true;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function row(cells: Array<string | number>): string {
  const widths = [4, 22, 7, 9, 9, 10, 9];
  return cells.map((c, i) => (i < 2 ? String(c).padEnd(widths[i]!) : String(c).padStart(widths[i]!))).join(' ');
}

function printStep(n: number, step: Step): void {
  const t = step.timings;
  const ms = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(1));
  console.log(
    row([n, step.label, step.words, t.cache_n ?? '-', t.prompt_n ?? '-', ms(t.prompt_ms), step.wallMs.toFixed(0)]),
  );
}

function positive(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`--${flag} must be an integer >= 1, got '${value}'`);
  return n;
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      others: { type: 'string' },
      words: { type: 'string' },
      model: { type: 'string' },
      'max-tokens': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const base = (values.url ?? 'http://127.0.0.1:8081').replace(/\/+$/, '');
  const words = positive(values.words, 'words') ?? 1200;
  const maxTokens = positive(values['max-tokens'], 'max-tokens') ?? 16;

  const health = await waitForBackends(base);
  const models = (await getJson(`${base}/v1/models`).catch(() => undefined)) as
    { data?: Array<{ id?: string }> } | undefined;
  const model = values.model ?? models?.data?.[0]?.id;
  // /props is passed through to the (first) backend; llama-swap has none without a model, hence the fallback.
  const props = (await getJson(`${base}/props`).catch(() => undefined)) as { total_slots?: number } | undefined;
  const others = positive(values.others, 'others') ?? props?.total_slots ?? 4;

  console.log(
    `proxycache demo: ${base}, model ${model ?? '(proxy default)'}, ${others} other conversations, ` +
      `${words} words each; cache entries before: ${health.cache_entries ?? '?'}`,
  );
  console.log(row(['step', 'conversation', 'words', 'cache_n', 'prompt_n', 'prompt_ms', 'wall_ms']));

  // Different seeds per run, so a second run does not just find the first run's files.
  const runSeed = Date.now() % 1_000_000;
  const system: Message = { role: 'system', content: 'You are a careful reviewer. Answer briefly.' };
  const a: Message[] = [system, { role: 'user', content: longText(runSeed, words, `Conversation A, run ${runSeed}`) }];
  let n = 0;
  const first = await chat(base, model, a, maxTokens, 'A (first turn)');
  printStep(++n, first);

  for (let i = 1; i <= others; i++) {
    const other = [
      system,
      { role: 'user' as const, content: longText(runSeed + i * 7919, words, `Conversation ${i}, run ${runSeed}`) },
    ];
    printStep(++n, await chat(base, model, other, maxTokens, `other ${i} (takes a slot)`));
  }

  a.push(
    { role: 'assistant', content: first.reply },
    { role: 'user', content: 'Now list the three most important points.' },
  );
  const cont = await chat(base, model, a, maxTokens, 'A (continued)');
  printStep(++n, cont);

  const firstPrompt = (first.timings.cache_n ?? 0) + (first.timings.prompt_n ?? 0);
  const reused = cont.timings.cache_n;
  if (reused === undefined || firstPrompt === 0) {
    console.log('The backend reported no timings (not llama.cpp?): cannot tell whether A reused its cache.');
    return 1;
  }
  const total = reused + (cont.timings.prompt_n ?? 0);
  if (reused >= firstPrompt / 2) {
    console.log(
      `A's continuation REUSED its cache after ${others} other conversations had taken the slots: ` +
        `cache_n ${reused} of ${total} prompt tokens, only ${cont.timings.prompt_n ?? '?'} prefilled ` +
        `(the first turn prefilled ${first.timings.prompt_n}). The proxy's log line for it says "decision":"restore".`,
    );
    return 0;
  }
  console.log(
    `A's continuation did NOT reuse its cache: cache_n ${reused} of ${total} prompt tokens ` +
      '(is the backend started with --slot-save-path, and the prompt above BIG_THRESHOLD_WORDS?).',
  );
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
