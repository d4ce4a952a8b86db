/**
 * Who may use the status and admin API under `/proxycache/` (prompt keys and cache contents are sensitive, and the
 * admin routes delete files). With ADMIN_TOKEN: whoever presents it, as `Authorization: Bearer <token>` or as
 * `?token=<token>` (for the dashboard page and EventSource, which cannot set headers); 401 otherwise. Without it:
 * only clients on loopback, and only requests addressed to a loopback host name by the client itself, so that a web
 * page in the operator's browser cannot reach the API from another origin or by DNS rebinding; 403 otherwise.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ProxyError } from '../errors.js';

/** Throws the ProxyError that answers the request, or returns when it may proceed. */
export type AccessCheck = (request: FastifyRequest) => void;

export function accessCheck(adminToken: string | null): AccessCheck {
  if (adminToken !== null) {
    const expected = digest(adminToken);
    return (request) => {
      const presented = presentedToken(request);
      if (presented === undefined) {
        throw new ProxyError(401, 'missing_token', 'this API needs ADMIN_TOKEN: send "Authorization: Bearer <token>"');
      }
      // Digests have one length, so the comparison neither fails on length nor leaks it through its timing.
      if (!timingSafeEqual(digest(presented), expected))
        throw new ProxyError(401, 'invalid_token', 'wrong admin token');
    };
  }
  return (request) => {
    if (
      !isLoopbackAddress(request.socket.remoteAddress) ||
      !isLoopbackHost(request.headers.host) ||
      crossOrigin(request)
    ) {
      throw new ProxyError(
        403,
        'loopback_only',
        'without ADMIN_TOKEN this API answers only to clients on this machine (set ADMIN_TOKEN to reach it from elsewhere)',
      );
    }
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function presentedToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header === 'string') {
    const m = /^Bearer\s+(.+)$/i.exec(header.trim());
    return m ? m[1]! : header;
  }
  const query = request.query as Record<string, unknown> | undefined;
  return typeof query?.token === 'string' ? query.token : undefined;
}

/** 127.0.0.0/8, ::1, and IPv4 loopback mapped into IPv6. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return v4.startsWith('127.') || address === '::1';
}

/** The Host header names this machine's loopback: localhost, 127.x.x.x or [::1], with any port. */
function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return name === 'localhost' || name.endsWith('.localhost') || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

/** A browser sent the request from a page of another origin (its Origin names another host than the request's). */
function crossOrigin(request: FastifyRequest): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== request.headers.host;
  } catch {
    return true;
  }
}
