/**
 * Security regression: a client cannot reach the slot API or unload models through the passthrough, whatever
 * spelling of the path it uses (percent-encoding, `%2F`, `//`, dot segments, llama-swap's `/upstream/{model}/` with
 * a model name that contains `/`). Each case is sent over a raw connection (no client library normalises the path)
 * to the proxy in front of a recording tap, so the test sees that the backend never receives the request.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { withDeadline } from '../support/deadline.js';
import type { Stack } from '../support/stack.js';
import type { Tap } from '../support/tap.js';
import { closeTappedStack, startTappedStack } from '../support/tapped-stack.js';

/** Send `method path` exactly as written (Node's client does not normalise the path) and read the answer. */
function rawRequest(base: string, method: string, path: string, body?: string): Promise<{ status: number; body: any }> {
  const answer = new Promise<{ status: number; body: any }>((resolve, reject) => {
    const req = http.request(
      base,
      { method, path, agent: false, headers: body ? { 'content-type': 'application/json' } : {} },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
  return withDeadline(answer, 5000, `${method} ${path}`);
}

const SLOT_ATTEMPTS: Array<[string, string]> = [
  ['POST', '/slots/0?action=erase'],
  ['POST', '/%73lots/0?action=restore'],
  ['POST', '/slots%2F0?action=erase'],
  ['POST', '//slots/0?action=save'],
  ['POST', '/x/../slots/0?action=save'],
  ['POST', '/slots/0/?action=save'],
  ['POST', '/slots/0%3Faction=save'],
  ['POST', '/upstream/org/model/slots/0?action=save'],
  ['POST', '/upstream/org%2Fmodel/slots/0?action=erase'],
  ['POST', '/upstream/org/model//%73lots/0?action=erase'],
  ['GET', '/slots'],
  ['GET', '/upstream/org/model/slots'],
];

const MODEL_ATTEMPTS: Array<[string, string]> = [
  ['GET', '/unload'],
  ['GET', '//%75nload'],
  ['POST', '/api/models/unload'],
  ['POST', '/api/models/unload/org/model'],
  ['POST', '/models/unload'],
  ['POST', '/models/load'],
];

const MODES = [
  { mode: 'llama-server' as const, models: [{ id: 'org/model', nSlots: 2 }] },
  {
    mode: 'llama-swap' as const,
    models: [
      { id: 'org/model', nSlots: 2 },
      { id: 'other', nSlots: 1 },
    ],
  },
  {
    mode: 'router' as const,
    models: [
      { id: 'org/model', nSlots: 2 },
      { id: 'other', nSlots: 1 },
    ],
  },
];

for (const { mode, models } of MODES) {
  describe(`client access to managed routes, ${mode}`, () => {
    let stack: Stack;
    let tap: Tap;
    before(async () => {
      ({ stack, tap } = await startTappedStack({ sim: { mode, models }, env: { BACKEND_TYPE: mode } }));
      // A chat first, so the model is loaded and a slot holds something an erase or unload would destroy.
      await stack.openai.chat.completions.create({
        model: 'org/model',
        messages: [{ role: 'user', content: 'hello there' }],
        max_tokens: 2,
      });
    });
    after(() => closeTappedStack({ stack, tap }));

    for (const [method, path] of [...SLOT_ATTEMPTS, ...MODEL_ATTEMPTS]) {
      const expected = SLOT_ATTEMPTS.some(([m, p]) => m === method && p === path)
        ? 'slots_managed_by_proxy'
        : 'models_managed_by_proxy';
      it(`${method} ${path} → 403 ${expected}, never forwarded`, async () => {
        const seen = tap.requests.length;
        const events = stack.sim.events.length;
        const body = method === 'POST' ? JSON.stringify({ filename: 'client-chosen', model: 'org/model' }) : undefined;
        const res = await rawRequest(stack.url, method, path, body);
        assert.equal(res.status, 403, JSON.stringify(res.body));
        assert.equal(res.body.error.code, expected);
        assert.equal(res.body.error.type, 'permission_error');
        // (The proxy's own background requests, such as its slot-count check after the first chat, may arrive.)
        const forwarded = tap.requests.slice(seen).filter((r) => r.method === method && r.path === path);
        assert.deepEqual(forwarded, [], 'the backend never received it');
        const acted = stack.sim.events
          .slice(events)
          .filter((e) => ['save', 'restore', 'erase', 'unload', 'load'].includes(e.type));
        assert.deepEqual(acted, []);
      });
    }

    it('other paths are still passed through (the tap sees them)', async () => {
      const seen = tap.requests.length;
      const path =
        mode === 'llama-swap' ? '/upstream/org/model/props' : mode === 'router' ? '/props?model=org%2Fmodel' : '/props';
      const res = await rawRequest(stack.url, 'GET', path);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(tap.requests.slice(seen).filter((r) => r.path === path).length, 1);
    });
  });
}
