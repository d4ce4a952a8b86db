/**
 * The dashboard's files at /proxycache/: the page and every module and stylesheet it loads are served (found from
 * the compiled proxy), with a content security policy; nothing else is; and a page that polls the proxy does not
 * make a failing proxy look healthy.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { postJson, startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';

/** Same-directory references of a page or module: src/href attributes and static imports. */
function references(text: string): string[] {
  const found = [...text.matchAll(/(?:src|href)="([^"]+)"|from '\.\/([^']+)'/g)].map((m) => m[1] ?? m[2]!);
  return found.filter((ref) => !ref.startsWith('data:'));
}

describe('dashboard files', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(() => closeStack(stack));

  it('serves the page and, transitively, every file it loads, with its type and a policy that forbids foreign script', async () => {
    const page = await fetch(`${stack.url}/proxycache/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff');

    const seen = new Set<string>();
    const queue = references(await page.text());
    assert.ok(
      queue.includes('dashboard.js') && queue.includes('dashboard.css'),
      `the page loads its module and stylesheet: ${queue.join(', ')}`,
    );
    while (queue.length > 0) {
      const name = queue.shift()!;
      if (seen.has(name)) continue;
      seen.add(name);
      const res = await fetch(`${stack.url}/proxycache/${name}`);
      assert.equal(res.status, 200, `${name} is served`);
      const type = res.headers.get('content-type') ?? '';
      assert.match(type, name.endsWith('.js') ? /^text\/javascript/ : /^text\/css/, `${name} has its type`);
      if (name.endsWith('.js')) queue.push(...references(await res.text()));
      else await res.arrayBuffer();
    }
    assert.ok(seen.size >= 4, `the modules the page imports were followed: ${[...seen].join(', ')}`);
  });

  it('redirects /proxycache to /proxycache/ relatively, keeping the query', async () => {
    const res = await fetch(`${stack.url}/proxycache?token=abc`, { redirect: 'manual' });
    assert.equal(res.status, 308);
    assert.equal(res.headers.get('location'), 'proxycache/?token=abc');
  });

  it('serves no other file from the dashboard directory', async () => {
    const res = await fetch(`${stack.url}/proxycache/dashboard-route.js`);
    assert.notEqual(res.status, 200);
  });
});

describe('/health while a dashboard polls a failing proxy', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(() => closeStack(stack));

  it('stays "failing": loading the dashboard is not a served request', async () => {
    const analyzer = stack.proxy.state.analyzer;
    analyzer.analyze = () => {
      throw new Error('injected analyser fault');
    };
    for (let n = 0; n < 3; n++) {
      const res = await postJson(stack.url, '/v1/chat/completions', {
        model: 'tiny',
        messages: [{ role: 'user', content: `request ${n}` }],
      });
      assert.equal(res.status, 500);
    }
    assert.equal((await fetch(`${stack.url}/health`)).status, 503);
    for (const path of ['/proxycache/', '/proxycache/dashboard.js']) {
      assert.equal((await fetch(`${stack.url}${path}`)).status, 200);
    }
    const health = await fetch(`${stack.url}/health`);
    assert.equal(health.status, 503);
    assert.equal(((await health.json()) as { status: string }).status, 'failing');
  });
});
