/**
 * The dashboard in a real headless Chromium, against the simulator and the real proxy: what a person sees after
 * a conversation was evicted from every slot and restored from disk. Saves screenshots to test-artifacts/.
 * Skips with one line when no Chromium is installed (see test/support/browser.ts).
 */
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chat, continued, keyOf, logLineAfter, opening } from '../support/cache.js';
import { IDLE_CLEARING_FOUND } from '../../src/backend/backend.js';
import type { ChatResult, Message } from '../support/cache.js';
import { artifactPath, launchChromium, noBrowserReason, watchPage } from '../support/browser.js';
import { postJson, startStack } from '../support/stack.js';
import type { Stack, StackOptions } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';

const WAIT_MS = 10_000;
const short = (key: string) => key.slice(0, 16);
const count = (n: number) => n.toLocaleString('en-US');

/** The size as the page should write it, computed here independently: binary units, one decimal. */
function binarySize(bytes: number): string {
  const units = ['KiB', 'MiB', 'GiB'];
  if (bytes < 1024) return `${bytes} B`;
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** A simulator stack (made `ready` by the given step) and a browser for one describe block, closed after it. */
function stackAndBrowser(
  options: StackOptions,
  ready?: (stack: Stack) => Promise<unknown>,
): { readonly stack: Stack; readonly browser: Browser } {
  let stack: Stack | undefined;
  let browser: Browser | undefined;
  before(async () => {
    stack = await startStack(options);
    await ready?.(stack);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    if (stack) await closeStack(stack);
  });
  return {
    get stack() {
      return stack!;
    },
    get browser() {
      return browser!;
    },
  };
}

async function openDashboard(context: BrowserContext, url: string): Promise<{ page: Page; problems: string[] }> {
  const page = await context.newPage();
  const problems = watchPage(page);
  await page.goto(url, { timeout: WAIT_MS });
  return { page, problems };
}

describe('the dashboard in a browser', { skip: noBrowserReason(), timeout: 90_000 }, () => {
  let stack: Stack;
  let browser: Browser;
  let context: BrowserContext;
  before(async () => {
    stack = await startStack();
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US' });
  });
  after(async () => {
    await browser?.close();
    if (stack) await closeStack(stack);
  });

  let a: Message[];
  let aNext: Message[];
  let first: ChatResult;
  let next: ChatResult;

  it('shows a restore in the request list, the restored conversation in its slot, and its entry with the size on disk', async () => {
    const { page, problems } = await openDashboard(context, `${stack.url}/proxycache/`);
    await page.locator('#live.ok').waitFor({ timeout: WAIT_MS });
    await page.getByText('no requests yet').waitFor({ timeout: WAIT_MS });

    // Conversation A, then two others take both slots (A is saved before its slot goes), then A continues.
    a = opening(301);
    first = await chat(stack, a);
    await chat(stack, opening(311));
    await chat(stack, opening(312));
    aNext = continued(a, first.content, 302);
    next = await chat(stack, aNext, { stream: true });
    assert.equal(next.line.decision, 'restore', 'the scenario itself restored A (precondition)');

    const restoreRow = page
      .locator('#requests tbody tr', { hasText: short(keyOf(aNext)) })
      .filter({ hasText: 'restore' });
    await restoreRow.waitFor({ timeout: WAIT_MS });
    const rowText = await restoreRow.innerText();
    assert.match(
      rowText,
      new RegExp(`${count(next.timings.cache_n)} / ${count(next.timings.prompt_n)}`),
      `reused / prefilled tokens in: ${rowText}`,
    );
    assert.match(rowText, /restore \d/, `the restore's duration in: ${rowText}`);
    assert.equal(await restoreRow.locator('td.api').innerText(), 'chat');
    assert.equal(await page.locator('#requests tbody tr').count(), 4, 'one row per request');

    const slotRow = page.locator('#backends tr[data-slot]', { hasText: short(keyOf(aNext)) });
    await slotRow.waitFor({ timeout: WAIT_MS });
    const slotText = await slotRow.innerText();
    assert.match(slotText, /idle/, `the slot is idle again: ${slotText}`);
    assert.match(slotText, /\bsaved\b/, `SAVE_POLICY=always saved it: ${slotText}`);
    const tokens = Number((await slotRow.locator('td.num').innerText()).replace(/,/g, ''));
    assert.ok(
      tokens >= next.timings.cache_n + next.timings.prompt_n,
      `the slot holds the whole prompt (${tokens} tokens)`,
    );

    const size = (await stat(join(stack.cacheDir, keyOf(a)))).size;
    const entryRow = page.locator('#entries tbody tr', { hasText: short(keyOf(a)) });
    await entryRow.waitFor({ timeout: WAIT_MS });
    const entryText = await entryRow.innerText();
    assert.ok(
      entryText.includes(binarySize(size)),
      `the entry shows its file's size ${binarySize(size)}: ${entryText}`,
    );

    // The chart counts the tokens the restore avoided.
    await page.locator('#chart svg rect.bar-reused[height]:not([height="0"])').first().waitFor({ timeout: WAIT_MS });
    const summary = await page.locator('#chart-summary').innerText();
    const reused = Number(/([\d,]+) tokens reused/.exec(summary)?.[1]?.replace(/,/g, '') ?? NaN);
    assert.ok(
      reused >= next.timings.cache_n,
      `the chart counts at least the restore's ${next.timings.cache_n} reused tokens: ${summary}`,
    );

    await page.screenshot({ path: artifactPath('dashboard.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 1400 });
    // The chart redraws to the narrower width.
    await page.waitForFunction("Number(document.querySelector('#chart svg')?.getAttribute('width')) <= 390", null, {
      timeout: WAIT_MS,
    });
    await page.screenshot({ path: artifactPath('dashboard-narrow.png') });
    assert.deepEqual(problems, [], 'no errors in the page');
    await page.close();
  });

  it('shows a client-chosen model name as text, never as markup', async () => {
    const { page, problems } = await openDashboard(context, `${stack.url}/proxycache/`);
    const evil = '<img src=x onerror=alert(1)>';
    const res = await postJson(stack.url, '/v1/chat/completions', {
      model: evil,
      max_tokens: 2,
      messages: [{ role: 'user', content: 'hello' }],
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    await page.locator('#requests tbody tr', { hasText: evil }).first().waitFor({ timeout: WAIT_MS });
    assert.equal(await page.locator('main img').count(), 0, 'no element was made from the name');
    assert.deepEqual(problems, [], 'no script ran and nothing failed');
    await page.close();
  });

  it('with ADMIN_TOKEN, says how to open it without the token and shows the data with #token=…', async () => {
    await stack.restartProxy({ ADMIN_TOKEN: 'dashboard-secret' });
    const refused = await openDashboard(context, `${stack.url}/proxycache/`);
    const alert = refused.page.locator('#alert');
    await alert.waitFor({ state: 'visible', timeout: WAIT_MS });
    assert.match(await alert.innerText(), /ADMIN_TOKEN.*#token=/);
    assert.match(await refused.page.locator('#live').innerText(), /not updating/);
    await refused.page.close();

    const allowed = await openDashboard(context, `${stack.url}/proxycache/#token=dashboard-secret`);
    await allowed.page.locator('#live.ok').waitFor({ timeout: WAIT_MS });
    await allowed.page.locator('#backends tr[data-slot]').first().waitFor({ timeout: WAIT_MS });
    assert.equal(await allowed.page.locator('#alert').isVisible(), false);
    assert.deepEqual(allowed.problems, [], 'every call of the page was answered');
    await allowed.page.close();
  });
});

describe(
  "the dashboard shows what only a server's RAM cache holds",
  { skip: noBrowserReason(), timeout: 90_000 },
  () => {
    // llama-server's defaults: idle slots cleared into an 8 GiB RAM cache; a loss window long enough to look.
    const held = stackAndBrowser(
      {
        sim: { models: [{ id: 'tiny' }], cacheRamMiB: 8192 },
        env: { SAVE_POLICY: 'smart', N_SLOTS: '4', IDLE_SAVE_SECONDS: '600' },
      },
      (stack) => logLineAfter(stack.logs, 0, IDLE_CLEARING_FOUND),
    );

    it('counts an answer left there unsaved, until POST /proxycache/save brings it to disk', async () => {
      const { stack, browser } = held;
      const first = await chat(stack, opening(9101));
      // Its save after the answer tells the proxy the size of a token's state (nothing is left to RAM before).
      await logLineAfter(stack.logs, 0, 'saved after answer', (l) => l.key === short(keyOf(opening(9101))));
      assert.equal(first.line.status, 200);
      await chat(stack, opening(9102));
      await chat(stack, opening(9103)); // its launch moves the one before into the RAM cache, unsaved

      const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US' });
      const { page, problems } = await openDashboard(context, `${stack.url}/proxycache/`);
      const ramOnly = page.locator('#cache-summary .ram-only');
      await ramOnly.waitFor({ timeout: WAIT_MS });
      assert.equal(await ramOnly.innerText(), "1 conversation only in the server's RAM cache");
      // The backend's card names the RAM cache the proxy works with (SERVER_CACHE_RAM_MIB here).
      assert.match(await page.locator('article.backend p.muted').first().innerText(), /· RAM cache 8,192 MiB$/);
      await page.screenshot({ path: artifactPath('dashboard-ram-only.png'), fullPage: true });

      const saved = await postJson(stack.url, '/proxycache/save', {});
      assert.deepEqual(saved.body.from_ram_cache, { saved: 1, not_saved: 0 }, JSON.stringify(saved.body));
      await ramOnly.waitFor({ state: 'detached', timeout: WAIT_MS });
      assert.deepEqual(problems, [], 'no errors in the page');
      await context.close();
    });
  },
);

describe(
  "the dashboard says where leaving answers to the server's RAM cache does not pay",
  { skip: noBrowserReason(), timeout: 90_000 },
  () => {
    // A server that keeps its idle slots (2) with llama-server's default RAM cache, and a short loss window.
    const held = stackAndBrowser({
      sim: { models: [{ id: 'tiny', nSlots: 2 }], cacheRamMiB: 8192 },
      env: { SAVE_POLICY: 'smart', IDLE_SAVE_SECONDS: '1' },
    });

    it('shows the backend saving answers, with the rescues and times the verdict rests on', async () => {
      const { stack, browser } = held;
      await chat(stack, opening(9201));
      await logLineAfter(stack.logs, 0, 'saved after answer');
      // Each pushes out the one two before it, which nothing brings back: rescued within the loss window.
      for (let i = 1; i <= 6; i++) await chat(stack, opening(9201 + i));
      // Past every loss window: the rescues are over, and the verdict stays as the page shows it.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US' });
      const { page, problems } = await openDashboard(context, `${stack.url}/proxycache/`);
      const badge = page.locator('[data-backend="0"] .ram-tier');
      await badge.waitFor({ timeout: WAIT_MS });
      assert.equal(await badge.innerText(), 'saves answers: RAM tier does not pay');
      const status = (await (await fetch(`${stack.url}/proxycache/status`)).json()) as {
        backends: Array<{ ram_tier: { rescued: number; answers_left: number; rescue_ms: number; save_ms: number } }>;
      };
      const tier = status.backends[0]!.ram_tier;
      assert.equal(
        await badge.getAttribute('title'),
        `${count(tier.rescued)} of ${count(tier.answers_left)} answers left to the RAM cache needed a rescue ` +
          `(${count(tier.rescue_ms)} ms each, against ${count(tier.save_ms)} ms for a save)`,
      );
      await page.screenshot({ path: artifactPath('dashboard-ram-tier.png'), fullPage: true });
      assert.deepEqual(problems, [], 'no errors in the page');
      await context.close();
    });
  },
);

describe(
  "the dashboard names the models whose rescues replay the prompt without the answer's text",
  { skip: noBrowserReason(), timeout: 90_000 },
  () => {
    // A model whose replies' text does not tokenize back to the tokens generated (the real bench's model does that).
    const held = stackAndBrowser({
      sim: { models: [{ id: 'tiny', nSlots: 2, replyTextTokenizesDifferently: true }], cacheRamMiB: 8192 },
      env: { SAVE_POLICY: 'smart', IDLE_SAVE_SECONDS: '1' },
    });

    it('shows the model on its backend, with why in the title', async () => {
      const { stack, browser } = held;
      await chat(stack, opening(9301), { maxTokens: 16 });
      await logLineAfter(stack.logs, 0, 'saved after answer');
      // Each pushes out the one two before it: the first rescue replays an answer with its text, which comes back short.
      for (let i = 1; i <= 3; i++) await chat(stack, opening(9301 + i), { maxTokens: 16 });
      await stack.logs.waitFor((l) => /did not bring back most of its tokens/.test(String(l.msg)), 5000, 'the verdict');
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US' });
      const { page, problems } = await openDashboard(context, `${stack.url}/proxycache/`);
      const badge = page.locator('[data-backend="0"] .replays');
      await badge.waitFor({ timeout: WAIT_MS });
      assert.equal(await badge.innerText(), 'rescues replay prompts alone: tiny');
      assert.match(
        (await badge.getAttribute('title')) ?? '',
        /^Replayed with its text, an answer of tiny did not come back/,
      );
      await page.screenshot({ path: artifactPath('dashboard-replays.png'), fullPage: true });
      assert.deepEqual(problems, [], 'no errors in the page');
      await context.close();
    });
  },
);
