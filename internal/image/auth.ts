// Registry authentication, the pure parts: WWW-Authenticate challenges, credential selection and
// token answers.
import { createHash } from 'node:crypto';
import type { RegistryAuth } from '../config/config';
import { invalidArgument } from '../errors';
import type { RegistryCredentials } from './types';

export interface Challenge {
  /** lowercase scheme: 'basic' or 'bearer' (others are kept but unused) */
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a WWW-Authenticate header (RFC 7235): one or more challenges, each a scheme followed by
 * comma-separated `key=value` or `key="quoted value"` parameters.
 */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skipWs = (): void => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z/]/.test(header[i] as string)) i++;
    return header.slice(start, i);
  };
  let cur: Challenge | undefined;
  while (i < n) {
    skipWs();
    if (header[i] === ',') {
      i++;
      continue;
    }
    const save = i;
    const tok = readToken();
    if (!tok) {
      i++; // junk character: skip it
      continue;
    }
    skipWs();
    if (header[i] === '=' && cur) {
      i++;
      skipWs();
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++; // closing quote
      } else {
        // Lenient: unquoted values run to the next comma or space (some servers send bare URLs).
        const start = i;
        while (i < n && header[i] !== ',' && header[i] !== ' ' && header[i] !== '\t') i++;
        value = header.slice(start, i);
      }
      cur.params[tok.toLowerCase()] = value;
    } else if (header[i] === '=' && !cur) {
      i = save + tok.length + 1; // parameter without a scheme: ignore
    } else {
      cur = { scheme: tok.toLowerCase(), params: {} };
      out.push(cur);
    }
  }
  return out;
}

/** Credentials resolved to one usable form. */
export type ResolvedCredentials =
  | { kind: 'none' }
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'identityToken'; token: string; username?: string }
  | { kind: 'registryToken'; token: string };

/** Turns request credentials (CRI AuthConfig) or a config `registry.auths` entry into one usable form. */
export function resolveCredentials(c: RegistryCredentials | RegistryAuth | undefined): ResolvedCredentials {
  if (!c) return { kind: 'none' };
  const registryToken = 'registryToken' in c ? c.registryToken : undefined;
  if (registryToken) return { kind: 'registryToken', token: registryToken };
  const identityToken =
    'identityToken' in c ? c.identityToken : 'identity_token' in c ? c.identity_token : undefined;
  let username = c.username;
  let password = c.password;
  if (!username && c.auth) {
    const decoded = Buffer.from(c.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw invalidArgument('auth: the base64 "auth" field must decode to user:password');
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  if (identityToken)
    return { kind: 'identityToken', token: identityToken, ...(username ? { username } : {}) };
  if (username) return { kind: 'basic', username, password: password ?? '' };
  return { kind: 'none' };
}

/** A short, non-secret fingerprint of credentials, to key caches and shared pulls. */
export function credentialKey(c: ResolvedCredentials): string {
  switch (c.kind) {
    case 'none':
      return 'anon';
    case 'basic':
      return `basic:${c.username}:${hashShort(c.password)}`;
    case 'identityToken':
      return `id:${hashShort(c.token)}`;
    case 'registryToken':
      return `rt:${hashShort(c.token)}`;
  }
}

function hashShort(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 16);
}

export interface TokenAnswer {
  token: string;
  /** ms since the epoch */
  expiresAt: number;
}

/** Reads a token server's JSON answer (`token` or `access_token`, `expires_in` seconds, default 60). */
export function parseTokenAnswer(body: unknown, now = Date.now()): TokenAnswer | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const b = body as Record<string, unknown>;
  const token =
    typeof b.token === 'string' && b.token
      ? b.token
      : typeof b.access_token === 'string'
        ? b.access_token
        : '';
  if (!token) return undefined;
  const expiresIn = typeof b.expires_in === 'number' && b.expires_in > 0 ? b.expires_in : 60;
  let issued = now;
  if (typeof b.issued_at === 'string') {
    const t = Date.parse(b.issued_at);
    // Trust the server's clock only if it is close to ours.
    if (Number.isFinite(t) && Math.abs(t - now) < 60_000) issued = t;
  }
  // Refresh a little early so a token never expires mid-request.
  return { token, expiresAt: issued + Math.max(1, expiresIn - 10) * 1000 };
}
