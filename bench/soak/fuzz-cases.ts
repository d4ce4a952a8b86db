/**
 * The fuzzer's requests: malformed bodies, wrong types, huge and deeply nested JSON, odd content types, odd and
 * percent-encoded paths, slot actions (which must never reach the backend) and unknown routes. Each case says which
 * statuses are right, and which fix of the hostile-input issue it guards (`fix`), so a failing case names the
 * behaviour that regressed.
 */

export interface FuzzCase {
  name: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  /** Built lazily: some bodies are megabytes. */
  body?: () => Buffer;
  /** Statuses that are right. */
  expect: number[];
  /**
   * Answered by the proxy itself, never by the backend: the status may not change while the backend restarts.
   * Other cases may also see the 502/503 of a backend that is down.
   */
  local: boolean;
  /** The fix of the hostile-input issue this expectation guards (the proxy behaved otherwise before it). */
  fix?: string;
  /** Sent once per run (expensive bodies, slow clients), not on every round. */
  once?: boolean;
  /** Send only this many bytes of the body, then nothing more (a client that stalls). */
  stallAfterBytes?: number;
  /** Bytes written as they are on a raw connection instead of an HTTP request (`method`, `path` and `body` unused). */
  raw?: () => Buffer;
}

/** The backend is restarting: what a request that reaches it may get meanwhile. */
export const BACKEND_DOWN_STATUSES = [502, 503, 504];

/** File names a bypassing save would create in the cache directory: the soak checks that none appears. */
export const FUZZ_FILE_PREFIX = 'soak-fuzz-';

const JSON_TYPE = { 'content-type': 'application/json' };
const text = (s: string) => () => Buffer.from(s, 'utf8');
const json = (v: unknown) => text(JSON.stringify(v));
const HI = [{ role: 'user', content: 'hi' }];
const saveBody = (name: string) => json({ filename: `${FUZZ_FILE_PREFIX}${name}` });

/** Fixes named in `fix` (the items of the hostile-input issue). */
export const FIXES = {
  clientLimits: 'item 3: header and body deadlines (408) and a body limit (413) (harden-input)',
  trie: 'item 1: the prompt analyser trie is pruned iteratively (lead)',
  guard: 'item 2: the slot-action guard matches the normalised path (harden-input)',
  expect: 'item 4: Expect: 100-continue on passthrough (harden-input)',
  deepJson: 'item 7: 100k-deep JSON gets 400, not 500 (with id_slot in the body the proxy serialises it again)',
  clientErrors: "errors of the HTTP parser (431, 400) in the OpenAI envelope, not fastify's own shape (harden-input)",
} as const;

function chat(name: string, body: () => Buffer, expect: number[], extra: Partial<FuzzCase> = {}): FuzzCase {
  return {
    name,
    method: 'POST',
    path: '/v1/chat/completions',
    headers: JSON_TYPE,
    body,
    expect,
    local: true,
    ...extra,
  };
}

function slotAction(name: string, method: string, path: string, fix?: string): FuzzCase {
  return {
    name,
    method,
    path,
    headers: JSON_TYPE,
    body: saveBody(name),
    expect: [403],
    local: true,
    ...(fix && { fix }),
  };
}

export const FUZZ_CASES: readonly FuzzCase[] = [
  chat('json-truncated', text('{"model":"tiny","messages":['), [400]),
  chat('json-garbage', text('not json at all'), [400]),
  chat('json-empty-body', text(''), [400]),
  chat('body-array', json([]), [400]),
  chat('body-null', text('null'), [400]),
  chat('body-string', json('hello'), [400]),
  chat('messages-string', json({ messages: 'hi' }), [400]),
  chat('messages-empty', json({ messages: [] }), [400]),
  chat('messages-numbers', json({ messages: [1, 2] }), [400]),
  chat('stream-string', json({ messages: HI, stream: 'yes' }), [400]),
  chat('model-number', json({ model: 42, messages: HI }), [400]),
  // Shapes the proxy passes on: the backend judges them (400), or serves them.
  chat(
    'content-object',
    json({ model: 'tiny', messages: [{ role: 'user', content: { a: 1 } }], max_tokens: 2 }),
    [400],
    { local: false },
  ),
  chat('max-tokens-string', json({ model: 'tiny', messages: HI, max_tokens: 'many' }), [200, 400], { local: false }),
  // With `id_slot` set by the client, the proxy serialises the body again instead of splicing into its bytes.
  chat(
    'deep-nesting',
    () =>
      Buffer.from(
        `{"id_slot":0,"messages":[{"role":"user","content":"hi"}],"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
      ),
    [200, 400],
    { local: false, fix: FIXES.deepJson, once: true },
  ),
  chat(
    'huge-message-count',
    json({
      model: 'tiny',
      max_tokens: 2,
      messages: Array.from({ length: 20_001 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `m${i}` })),
    }),
    [200, 400],
    { local: false, fix: FIXES.trie, once: true },
  ),
  chat(
    'huge-content',
    json({ model: 'tiny', max_tokens: 2, messages: [{ role: 'user', content: 'word '.repeat(400_000) }] }),
    [200, 400],
    { local: false, once: true },
  ),
  // Content types: text/plain is what some clients send for JSON; form and multipart bodies are not JSON at all.
  chat('type-text-plain', json({ model: 'tiny', messages: HI, max_tokens: 2 }), [200, 400, 415], {
    headers: { 'content-type': 'text/plain' },
    local: false,
  }),
  chat('type-form', text('messages=hi'), [400, 415], {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  }),
  chat('type-multipart', text('--x\r\n\r\nhi\r\n--x--\r\n'), [400, 415], {
    headers: { 'content-type': 'multipart/form-data; boundary=x' },
  }),
  chat('type-missing', text('{"messages":[]}'), [400, 415], { headers: {} }),
  // Slot actions, however the path is spelled, are the proxy's alone.
  slotAction('slot-save', 'POST', '/slots/0?action=save'),
  slotAction('slot-erase', 'POST', '/slots/1?action=erase'),
  slotAction('slot-encoded-s', 'POST', '/%73lots/0?action=save', FIXES.guard),
  slotAction('slot-encoded-slash', 'POST', '/slots%2F0?action=save', FIXES.guard),
  slotAction('slot-double-slash', 'POST', '//slots/0?action=save', FIXES.guard),
  slotAction('slot-dot-segment', 'POST', '/v1/../slots/0?action=save', FIXES.guard),
  slotAction('slot-upstream-org-model', 'POST', '/upstream/org/model/slots/0?action=save', FIXES.guard),
  slotAction('slot-upstream-encoded', 'POST', '/upstream/tiny/%73lots/0?action=save', FIXES.guard),
  // Unknown routes and methods go to the backend, which knows none of them.
  { name: 'unknown-get', method: 'GET', path: '/no/such/route', expect: [404], local: false },
  {
    name: 'unknown-post',
    method: 'POST',
    path: '/v1/nothing',
    headers: JSON_TYPE,
    body: json({}),
    expect: [404],
    local: false,
  },
  { name: 'chat-get', method: 'GET', path: '/v1/chat/completions', expect: [404, 405], local: false },
  {
    name: 'chat-encoded-slash',
    method: 'POST',
    path: '/v1/chat%2Fcompletions',
    headers: JSON_TYPE,
    body: json({ messages: HI }),
    expect: [400, 404],
    local: false,
  },
  {
    name: 'long-path',
    method: 'GET',
    path: `/${'a'.repeat(20_000)}`,
    expect: [404, 414, 431],
    local: false,
    fix: FIXES.clientErrors,
  },
  // Bodies near and over the limit (MAX_BODY_MB=32 in the soak): the first is parsed on the proxy's event loop
  // (its lag shows in the report) and passed on; the bulk sits in a field the backend ignores.
  chat(
    'body-30mb',
    json({ model: 'tiny', max_tokens: 2, messages: HI, padding: 'x'.repeat(30 * 1024 * 1024) }),
    [200, 400],
    { local: false, once: true },
  ),
  // Announces 40 MB and sends the first 64 kB: the proxy must refuse it from its Content-Length, before buffering it
  // (a client still writing when the proxy closes would see a reset instead of the 413).
  chat('body-over-limit', () => Buffer.alloc(40 * 1024 * 1024, 0x20), [413], {
    stallAfterBytes: 64 * 1024,
    fix: FIXES.clientLimits,
    once: true,
  }),
  // Clients that stall: the soak gives them CLIENT_HEADERS_TIMEOUT=2 and CLIENT_BODY_TIMEOUT=2.
  chat('stalled-body', json({ model: 'tiny', messages: HI }), [408], {
    stallAfterBytes: 10,
    fix: FIXES.clientLimits,
    once: true,
  }),
  {
    name: 'stalled-headers',
    method: '',
    path: '',
    raw: text('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n'),
    expect: [408],
    local: true,
    fix: FIXES.clientLimits,
    once: true,
  },
  {
    name: 'malformed-http',
    method: '',
    path: '',
    raw: text('HELLO WORLD\r\n\r\n'),
    expect: [400],
    local: true,
    fix: FIXES.clientErrors,
  },
  {
    name: 'expect-continue',
    method: 'POST',
    path: '/tokenize',
    headers: { ...JSON_TYPE, expect: '100-continue' },
    body: json({ content: 'hello world' }),
    expect: [200],
    local: false,
    fix: FIXES.expect,
  },
];
