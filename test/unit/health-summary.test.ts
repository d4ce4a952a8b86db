import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { summariseHealth } from '../../src/http/health-route.js';

describe('summariseHealth', () => {
  it('200 while at least one backend is ok, 503 otherwise', () => {
    assert.deepEqual(summariseHealth(['ok']), { status: 'ok', httpStatus: 200 });
    assert.deepEqual(summariseHealth(['ok', 'ok']), { status: 'ok', httpStatus: 200 });
    assert.deepEqual(summariseHealth(['ok', 'loading']), { status: 'degraded', httpStatus: 200 });
    assert.deepEqual(summariseHealth(['unreachable', 'ok']), { status: 'degraded', httpStatus: 200 });
    assert.deepEqual(summariseHealth(['error', 'ok']), { status: 'degraded', httpStatus: 200 });
    assert.deepEqual(summariseHealth(['loading']), { status: 'loading', httpStatus: 503 });
    assert.deepEqual(summariseHealth(['unreachable', 'loading']), { status: 'loading', httpStatus: 503 });
    assert.deepEqual(summariseHealth(['unreachable']), { status: 'unavailable', httpStatus: 503 });
    assert.deepEqual(summariseHealth(['error']), { status: 'unavailable', httpStatus: 503 });
  });
});

describe('summariseHealth with the proxy itself failing', () => {
  it('503 "failing" whatever the backends say', () => {
    assert.deepEqual(summariseHealth(['ok'], true), { status: 'failing', httpStatus: 503 });
    assert.deepEqual(summariseHealth(['loading'], true), { status: 'failing', httpStatus: 503 });
  });
});
