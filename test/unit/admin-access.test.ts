/** The access rule of /proxycache/ for clients that tests over loopback cannot be: remote addresses. */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyRequest } from 'fastify';
import { accessCheck, isLoopbackAddress } from '../../src/http/access.js';
import { ProxyError } from '../../src/errors.js';

function request(
  remoteAddress: string,
  headers: Record<string, string> = {},
  query: Record<string, string> = {},
): FastifyRequest {
  return {
    socket: { remoteAddress },
    headers: { host: '127.0.0.1:8081', ...headers },
    query,
  } as unknown as FastifyRequest;
}

function statusOf(check: () => void): number | 'ok' {
  try {
    check();
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof ProxyError);
    return err.status;
  }
}

it('loopback addresses are 127.0.0.0/8, ::1 and their IPv4-mapped form; nothing else', () => {
  for (const a of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopbackAddress(a), true, a);
  for (const a of ['10.0.0.5', '192.168.1.2', '::ffff:10.0.0.5', 'fe80::1', '::', '0.0.0.0', undefined])
    assert.equal(isLoopbackAddress(a), false, String(a));
});

it('without ADMIN_TOKEN a remote client gets 403 even with a loopback Host header', () => {
  const check = accessCheck(null);
  assert.equal(
    statusOf(() => check(request('10.0.0.5'))),
    403,
  );
  assert.equal(
    statusOf(() => check(request('::ffff:192.168.1.20'))),
    403,
  );
  assert.equal(
    statusOf(() => check(request('127.0.0.1'))),
    'ok',
  );
});

it('with ADMIN_TOKEN a remote client gets in with the token only', () => {
  const check = accessCheck('tok');
  assert.equal(
    statusOf(() => check(request('10.0.0.5'))),
    401,
  );
  assert.equal(
    statusOf(() => check(request('10.0.0.5', { authorization: 'Bearer tok' }))),
    'ok',
  );
  assert.equal(
    statusOf(() => check(request('10.0.0.5', { authorization: 'bearer tok' }))),
    'ok',
  );
  assert.equal(
    statusOf(() => check(request('10.0.0.5', { authorization: 'Basic dG9r' }))),
    401,
  );
  assert.equal(
    statusOf(() => check(request('10.0.0.5', {}, { token: 'tok' }))),
    'ok',
  );
  assert.equal(
    statusOf(() => check(request('127.0.0.1'))),
    401,
    'loopback needs it too once it is set',
  );
});
