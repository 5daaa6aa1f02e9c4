// Single-use tokens for streaming URLs: 32 random bytes (base64url), each consumed by its first
// use and dropped when unused for `ttlMs` (kubelet's streaming cache uses one minute). A token
// used twice, expired or never issued is simply not found.
import { randomBytes } from 'node:crypto';

export const DEFAULT_TOKEN_TTL_MS = 60_000;
/** Bound on outstanding tokens, so a caller spinning on Exec cannot exhaust memory. */
const MAX_TOKENS = 10_000;

export class TokenCache<T> {
  private readonly entries = new Map<string, { value: T; expires: number }>();

  constructor(
    private readonly ttlMs = DEFAULT_TOKEN_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Stores value under a fresh token; throws when too many tokens are outstanding. */
  insert(value: T): string {
    this.sweep();
    if (this.entries.size >= MAX_TOKENS) throw new Error('too many outstanding streaming requests');
    const token = randomBytes(32).toString('base64url');
    this.entries.set(token, { value, expires: this.now() + this.ttlMs });
    return token;
  }

  /** The value for token, removing it; undefined when unknown, used or expired. */
  consume(token: string): T | undefined {
    const e = this.entries.get(token);
    if (!e) return undefined;
    this.entries.delete(token);
    return e.expires > this.now() ? e.value : undefined;
  }

  get size(): number {
    return this.entries.size;
  }

  private sweep(): void {
    const t = this.now();
    for (const [k, e] of this.entries) if (e.expires <= t) this.entries.delete(k);
  }
}
