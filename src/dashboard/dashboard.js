// The proxycache dashboard: polls the status API every POLL_MS and renders backends and slots, the last requests,
// the cache entries and the tokens-avoided chart. Read-only; every server string is shown as text (see dom.js).

import { chartSvg, binHistory } from './chart.js';
import { h, show } from './dom.js';
import * as f from './format.js';

const POLL_MS = 2000;
const FETCH_TIMEOUT_MS = 5000;
const REQUESTS_SHOWN = 50;
const ENTRIES_SHOWN = 200;

const $ = (id) => document.getElementById(id);

/** ADMIN_TOKEN from the page address: #token=… (never sent to any server) or ?token=…. */
function readToken() {
  return (
    new URLSearchParams(location.hash.slice(1)).get('token') || new URLSearchParams(location.search).get('token') || ''
  );
}

class HttpError extends Error {
  constructor(path, status, message) {
    super(`${path}: ${status} ${message}`);
    this.status = status;
  }
}

async function getJson(path) {
  const token = readToken();
  const res = await fetch(path, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
    cache: 'no-store',
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
  });
  if (!res.ok) {
    const body = await res.json().catch(() => null);
    throw new HttpError(path, res.status, body?.error?.message ?? res.statusText);
  }
  return res.json();
}

// ---- rendering -------------------------------------------------------------------------------------------------

const decisionPill = (decision) =>
  h(
    'span',
    { class: `pill decision-${String(decision).replace(/[^a-z_]/g, '')}` },
    String(decision ?? '–').replace(/_/g, ' '),
  );
const keyCell = (key) => h('td', { class: 'key', title: key ?? '' }, f.shortKey(key));
const num = (text, attrs = {}) => h('td', { class: 'num', ...attrs }, text);

function renderAbout(status) {
  $('about').textContent =
    `v${status.version ?? '?'} · up ${f.span(status.uptime_s)} · ${status.policy ?? '?'} save policy`;
}

/** "resident 3 · restore 1 · cold 2" from totals.decisions. */
function decisionCounts(decisions = {}) {
  return Object.entries(decisions)
    .filter(([, n]) => n > 0)
    .map(([d, n]) => `${d.replace(/_/g, ' ')} ${f.count(n)}`)
    .join(' · ');
}

function renderTotals(totals = {}) {
  const card = (label, value, hint) =>
    h(
      'div',
      { class: 'card', title: hint },
      h('div', { class: 'card-value' }, value),
      h('div', { class: 'card-label' }, label),
    );
  show($('totals'), JSON.stringify(totals), () => [
    card(
      'requests',
      f.count(totals.requests),
      'Generation requests (chat, completions, infill, Responses, Messages) since the proxy started',
    ),
    card(
      'hit rate',
      f.percent(totals.hit_rate),
      `Share of big requests that found their conversation resident or restored it. ${decisionCounts(totals.decisions)}`,
    ),
    card('tokens reused', f.count(totals.tokens_reused), 'Prompt tokens the backend did not have to prefill'),
    card('tokens prefilled', f.count(totals.tokens_prefilled), 'Prompt tokens the backend prefilled'),
    card('prefill time saved', f.seconds(totals.prefill_seconds_saved), 'Estimated from the learned prefill speed'),
  ]);
}

function slotRow(slot, now) {
  const c = slot.content;
  const state = slot.disabled ? 'disabled' : slot.busy ? 'busy' : 'idle';
  return h(
    'tr',
    { 'data-slot': slot.id },
    h('td', {}, `slot ${slot.id}`),
    h('td', {}, h('span', { class: `pill state-${state}` }, state)),
    c ? keyCell(c.key) : h('td', { class: 'muted' }, 'empty'),
    num(c ? f.count(c.tokens) : ''),
    h(
      'td',
      {},
      c ? h('span', { class: `pill ${c.saved ? 'saved' : 'unsaved'}` }, c.saved ? 'saved' : 'unsaved') : '',
      c && !c.big ? h('span', { class: 'muted' }, ' small') : '',
    ),
    h('td', { class: 'muted' }, slot.last_used ? f.ago(slot.last_used, now) : 'never'),
    // A plain llama-server's slots form one group (model null): the content still knows its model.
    h('td', {}, slot.model ?? c?.model ?? '–'),
  );
}

/** Shown where leaving answers to the server's RAM cache stopped paying: the proxy saves them instead. */
function ramTierBadge(tier) {
  if (!tier || tier.leaves_answers !== false) return null;
  const title =
    `${f.count(tier.rescued)} of ${f.count(tier.answers_left)} answers left to the RAM cache needed a rescue ` +
    `(${f.count(tier.rescue_ms)} ms each, against ${f.count(tier.save_ms)} ms for a save)`;
  return h('span', { class: 'pill warn ram-tier', title }, 'saves answers: RAM tier does not pay');
}

/** Shown where rescues replay prompts without the answers' text, which did not bring the replies back. */
function replayBadge(tier) {
  const models = tier?.replays_without_text ?? [];
  if (models.length === 0) return null;
  const title =
    `Replayed with its text, an answer of ${models.join(', ')} did not come back from the RAM cache ` +
    '(the text tokenizes differently from what the model generated): rescues replay the prompt alone, ' +
    "and the conversation's next turn prefills the reply";
  return h('span', { class: 'pill replays', title }, `rescues replay prompts alone: ${models.join(', ')}`);
}

/** The server's RAM cache as the proxy models it: declared (SERVER_CACHE_RAM_MIB, cache_ram_mib), or lowered by a miss. */
function ramCacheText(mib) {
  if (mib === undefined || mib === null) return '';
  if (mib < 0) return ' · RAM cache: no limit';
  return mib === 0 ? ' · no RAM cache' : ` · RAM cache ${f.count(mib)} MiB`;
}

function backendCard(backend, slots, now) {
  const badges = [
    h('span', { class: 'pill' }, backend.kind ?? 'unknown'),
    h('span', { class: `pill ${backend.reachable ? 'ok' : 'bad'}` }, backend.reachable ? 'reachable' : 'unreachable'),
    backend.clears_idle_slots
      ? h(
          'span',
          { class: 'pill warn', title: 'llama-server clears idle slots itself (--cache-idle-slots)' },
          'clears idle slots',
        )
      : null,
    ramTierBadge(backend.ram_tier),
    replayBadge(backend.ram_tier),
  ];
  const models = backend.loaded_models?.length ? `loaded: ${backend.loaded_models.join(', ')} · ` : '';
  const ram = ramCacheText(backend.ram_cache_mib);
  return h(
    'article',
    { class: 'backend', 'data-backend': backend.index },
    h('header', {}, h('h3', {}, `#${backend.index} `, h('span', { class: 'url' }, backend.url ?? '')), ...badges),
    h(
      'p',
      { class: 'muted' },
      `${models}${f.count(backend.slot_count)} slot${backend.slot_count === 1 ? '' : 's'}${ram}`,
    ),
    h(
      'div',
      { class: 'scroll' },
      h(
        'table',
        { class: 'slots' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Slot', 'State', 'Holds', 'Tokens', 'On disk', 'Last used', 'Model'].map((t) =>
              h('th', t === 'Tokens' ? { class: 'num' } : {}, t),
            ),
          ),
        ),
        h(
          'tbody',
          {},
          slots.length
            ? slots.map((slot) => slotRow(slot, now))
            : h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'no slots known yet')),
        ),
      ),
    ),
  );
}

function renderBackends(status) {
  const now = Date.now();
  const backends = status.backends ?? [];
  const slots = status.slots ?? [];
  show($('backends'), JSON.stringify([backends, slots, Math.floor(now / 1000)]), () =>
    backends.length
      ? backends.map((b) =>
          backendCard(
            b,
            slots.filter((s) => s.backend === b.index || s.backend === b.url),
            now,
          ),
        )
      : h('p', { class: 'muted' }, 'no backends'),
  );
}

/** Backends by URL, from the last status: requests name their backend by URL, the slot cards by index. */
let backendIndexByUrl = new Map();

function backendLabel(backend) {
  const index = backendIndexByUrl.get(backend) ?? (typeof backend === 'number' ? backend : undefined);
  return index === undefined ? String(backend ?? '?') : `#${index}`;
}

function cacheWork(r) {
  const parts = [
    ['restore', r.restore_ms],
    ['save', r.save_ms],
    ['evict save', r.evict_save_ms],
  ]
    .filter(([, v]) => typeof v === 'number')
    .map(([label, v]) => `${label} ${f.ms(v)}`);
  return parts.length ? parts.join(', ') : '';
}

function renderRequests(list) {
  const rows = list.slice(0, REQUESTS_SHOWN);
  show($('requests').tBodies[0], JSON.stringify(rows), () =>
    rows.length
      ? rows.map((r) =>
          h(
            'tr',
            { 'data-decision': r.decision },
            h('td', {}, f.clock(r.at)),
            h('td', { class: 'api' }, r.api ?? '–'),
            h('td', {}, decisionPill(r.decision)),
            keyCell(r.key),
            h('td', {}, r.model ?? '–'),
            h(
              'td',
              { title: r.backend ?? '' },
              r.slot === undefined || r.slot === null ? '–' : `${backendLabel(r.backend)} slot ${r.slot}`,
            ),
            h('td', { class: r.status >= 400 ? 'bad-text' : '' }, String(r.status ?? '–')),
            num(`${f.count(r.cache_n)} / ${f.count(r.prompt_n)}`),
            num(f.ms(r.wait_ms)),
            num(f.ms(r.total_ms)),
            h('td', { class: 'muted' }, cacheWork(r)),
          ),
        )
      : h('tr', {}, h('td', { colspan: 11, class: 'muted' }, 'no requests yet')),
  );
}

function renderCacheSummary(cache = {}) {
  const used = cache.budget_bytes
    ? `${f.bytes(cache.bytes)} of ${f.bytes(cache.budget_bytes)}`
    : `${f.bytes(cache.bytes)} (no size limit)`;
  // The exact ratio where both sizes are known: a few MiB of a 50 GiB budget should read "<1%", not "0%".
  const use =
    cache.budget_bytes > 0 && typeof cache.bytes === 'number'
      ? cache.bytes / cache.budget_bytes
      : typeof cache.use === 'number'
        ? cache.use
        : null;
  const oldest = cache.oldest_entry;
  const oldestText = oldest === null || oldest === undefined ? null : `oldest written ${f.ago(oldest)}`;
  // Answers left to a server's RAM cache reach the disk within the loss window: until then a restart loses them.
  const ramOnly = cache.in_ram_cache_only > 0 ? cache.in_ram_cache_only : 0;
  show($('cache-summary'), JSON.stringify([cache, Math.floor(Date.now() / 10_000)]), () => [
    h('span', {}, `${f.count(cache.entries)} entries · ${used}`),
    use === null
      ? null
      : h('span', { class: 'use' }, h('meter', { min: 0, max: 1, value: Math.min(1, use) }), ` ${f.percent(use)} used`),
    oldestText ? h('span', { class: 'muted' }, oldestText) : null,
    ramOnly
      ? h(
          'span',
          {
            class: 'ram-only',
            title:
              "Saved to disk from the server's RAM cache within IDLE_SAVE_SECONDS; a restart before then loses them",
          },
          `${f.count(ramOnly)} ${ramOnly === 1 ? 'conversation' : 'conversations'} only in the server's RAM cache`,
        )
      : null,
    cache.dir ? h('span', { class: 'muted url' }, cache.dir) : h('span', { class: 'muted' }, 'no CACHE_DIR'),
  ]);
}

function renderEntries(list) {
  const rows = list.slice(0, ENTRIES_SHOWN);
  show($('entries').tBodies[0], JSON.stringify(list.length > ENTRIES_SHOWN ? [rows, list.length] : rows), () => [
    ...rows.map((e) =>
      h(
        'tr',
        { 'data-key': e.key },
        keyCell(e.key),
        h('td', {}, e.model ?? '–'),
        num(f.count(e.tokens)),
        num(f.bytes(e.bytes)),
        num(f.span(e.age_s)),
        h('td', { class: 'url' }, e.backend ?? '–'),
      ),
    ),
    list.length === 0 ? h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'nothing cached yet')) : null,
    list.length > ENTRIES_SHOWN
      ? h('tr', {}, h('td', { colspan: 6, class: 'muted' }, `… and ${f.count(list.length - ENTRIES_SHOWN)} more`))
      : null,
  ]);
}

function renderEconomics(economics = {}, policy) {
  const models = Object.entries(economics);
  const speed = (v) => (typeof v === 'number' ? v.toFixed(3) : 'not measured');
  const none = policy === 'smart' ? 'nothing measured yet' : 'learned only under SAVE_POLICY=smart';
  show($('economics').tBodies[0], JSON.stringify([economics, policy]), () =>
    models.length
      ? models.map(([model, e]) =>
          h(
            'tr',
            {},
            h(
              'td',
              {},
              model,
              e.restores_enabled === false
                ? h(
                    'span',
                    {
                      class: 'pill warn',
                      title: 'Restores reused almost nothing twice in a row (a sliding-window or hybrid model?)',
                    },
                    'restores off',
                  )
                : null,
            ),
            num(speed(e.prefill_ms_per_token)),
            num(speed(e.save_ms_per_token)),
            num(speed(e.restore_ms_per_token)),
          ),
        )
      : h('tr', {}, h('td', { colspan: 4, class: 'muted' }, none)),
  );
}

const chartState = { windowS: 3600, history: null };

function renderChart() {
  const { history, windowS } = chartState;
  if (!history) return;
  const el = $('chart');
  const width = Math.max(280, el.clientWidth);
  const binned = binHistory(history, windowS, Date.now() / 1000);
  show(el, JSON.stringify([history, windowS, width, Math.floor(binned.end)]), () => chartSvg(binned, width));
  const sum = (k) => binned.bars.reduce((acc, b) => acc + b[k], 0);
  const reused = sum('reused');
  const prefilled = sum('prefilled');
  $('chart-summary').textContent =
    reused + prefilled === 0
      ? `No prompt tokens in the last ${f.span(windowS)}.`
      : `Last ${f.span(windowS)}: ${f.count(reused)} tokens reused, ${f.count(prefilled)} prefilled (${f.percent(reused / (reused + prefilled))} avoided), about ${f.seconds(sum('saved'))} of prefill saved.`;
}

// ---- polling ---------------------------------------------------------------------------------------------------

function renderState(errors) {
  const live = $('live');
  const alert = $('alert');
  if (errors.length === 0) {
    live.textContent = `live · ${f.clock(Date.now())}`;
    live.className = 'live ok';
    alert.hidden = true;
    return;
  }
  live.textContent = `not updating · ${f.clock(Date.now())}`;
  live.className = 'live bad';
  const denied = errors.find((e) => e.status === 401 || e.status === 403);
  alert.textContent = denied
    ? `The status API refused this page (${denied.message}). With ADMIN_TOKEN set, open the dashboard as /proxycache/#token=YOUR_TOKEN.`
    : errors.map((e) => e.message).join(' · ');
  alert.hidden = false;
}

async function refresh() {
  const [status, requests, entries, history] = await Promise.allSettled([
    getJson('status'),
    getJson(`requests?limit=${REQUESTS_SHOWN}`),
    getJson('entries'),
    getJson(`history?minutes=${chartState.windowS / 60}`),
  ]);
  if (status.status === 'fulfilled') {
    backendIndexByUrl = new Map((status.value.backends ?? []).map((b) => [b.url, b.index]));
    renderAbout(status.value);
    renderTotals(status.value.totals);
    renderBackends(status.value);
    renderCacheSummary(status.value.cache);
    renderEconomics(status.value.economics, status.value.policy);
  }
  if (requests.status === 'fulfilled') renderRequests(requests.value.requests ?? []);
  if (entries.status === 'fulfilled') renderEntries(entries.value.entries ?? []);
  if (history.status === 'fulfilled') {
    chartState.history = history.value;
    renderChart();
  }
  const errors = [status, requests, entries, history].filter((r) => r.status === 'rejected').map((r) => r.reason);
  renderState(
    errors.map((e) => (e instanceof HttpError ? e : { message: `cannot reach the proxy (${e?.message ?? e})` })),
  );
  document.body.dataset.updated = String(Date.now());
}

let running = null;
function refreshOnce() {
  running ??= refresh()
    .catch((err) => console.error(err))
    .finally(() => {
      running = null;
    });
  return running;
}

async function loop() {
  if (!document.hidden) await refreshOnce();
  setTimeout(loop, POLL_MS);
}

for (const button of document.querySelectorAll('#chart-window button')) {
  button.addEventListener('click', () => {
    chartState.windowS = Number(button.dataset.window);
    for (const b of document.querySelectorAll('#chart-window button'))
      b.setAttribute('aria-pressed', String(b === button));
    renderChart();
    void refreshOnce();
  });
}
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) void refreshOnce();
});
new ResizeObserver(() => renderChart()).observe($('chart'));
void loop();
