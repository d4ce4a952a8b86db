import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { requestHeadersForUpstream, responseHeadersForClient } from '../../src/http/upstream-headers.js';

describe('requestHeadersForUpstream', () => {
  it('drops the fixed hop-by-hop headers, accept-encoding and expect', () => {
    const out = requestHeadersForUpstream({
      host: 'proxy:8081',
      connection: 'keep-alive',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      'content-length': '12',
      te: 'trailers',
      upgrade: 'h2c',
      'proxy-authorization': 'Basic eA==',
      'accept-encoding': 'gzip',
      expect: '100-continue',
      'content-type': 'application/json',
      authorization: 'Bearer k',
      'x-multi': ['a', 'b'],
      'x-undefined': undefined,
    });
    assert.deepEqual(out, { 'content-type': 'application/json', authorization: 'Bearer k', 'x-multi': 'a, b' });
  });

  it('drops every header that Connection names, in any case and spacing, over repeated Connection headers', () => {
    const out = requestHeadersForUpstream({
      connection: ['keep-alive, X-Secret-Hop ,x-other', 'X-Third'],
      'x-secret-hop': '1',
      'x-other': '2',
      'x-third': '3',
      'x-kept': '4',
    });
    assert.deepEqual(out, { 'x-kept': '4' });
  });
});

describe('responseHeadersForClient', () => {
  it("drops the hop-by-hop headers and those the answer's Connection names, keeps multi-value headers", () => {
    const out = responseHeadersForClient({
      connection: 'close, x-backend-hop',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      'x-backend-hop': 'internal',
      'content-type': 'application/json',
      'set-cookie': ['a=1', 'b=2'],
    });
    assert.deepEqual(out, { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'] });
  });
});
