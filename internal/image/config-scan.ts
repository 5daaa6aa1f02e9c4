// Reads an image config without holding it: the JSON is scanned in chunks and only the parts Berth
// uses are kept (KEPT_KEYS: platform fields, `config` with Env/Cmd/Labels/..., `rootfs`), at most
// `budget` bytes of them; everything else (`history`, unknown keys) is skipped byte by byte and
// never becomes a JS value. So a config of tens of MB costs a chunk of memory while it is read and
// nothing after, and one whose kept parts pass the budget is refused (RESOURCE_EXHAUSTED) instead
// of being parsed. The scan checks the JSON's structure (strings, nesting, commas, colons); scalar
// tokens outside the kept parts are only delimited, not parsed.
import { closeSync, openSync, readSync } from 'node:fs';
import { BerthError, Status, failedPrecondition } from '../errors';
import type { ImageConfig } from './types';

/** Top-level keys of an image config that Berth keeps (and shows in verbose ImageStatus). */
export const KEPT_KEYS = new Set([
  'architecture',
  'os',
  'os.version',
  'os.features',
  'variant',
  'created',
  'author',
  'config',
  'rootfs',
]);

/** Default bound on the kept parts: far above any real image's, below what would bloat berthd. */
export const DEFAULT_KEPT_BUDGET = 1024 * 1024;
const CHUNK = 256 * 1024;
const MAX_KEY = 64 * 1024;
const MAX_DEPTH = 512;

const Q = 0x22; // "
const BS = 0x5c; // \
const isWs = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

class Syntax extends Error {}

class Scanner {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private eof = false;
  private capture: Buffer[] | undefined;
  private capStart = 0;
  private captured = 0;
  private capKey = '';

  constructor(
    private readonly read: () => Buffer | null,
    private readonly budget: number,
    private readonly overBudget: (key: string) => Error,
  ) {}

  private fill(): boolean {
    if (this.eof) return false;
    if (this.capture) this.keep(this.buf.subarray(this.capStart));
    for (;;) {
      const b = this.read();
      if (b === null) {
        this.eof = true;
        this.buf = Buffer.alloc(0);
        this.pos = 0;
        this.capStart = 0;
        return false;
      }
      if (b.length === 0) continue;
      this.buf = b;
      this.pos = 0;
      this.capStart = 0;
      return true;
    }
  }

  private keep(part: Buffer): void {
    this.captured += part.length;
    if (this.captured > this.budget) throw this.overBudget(this.capKey);
    if (part.length) this.capture!.push(Buffer.from(part));
  }

  peek(): number {
    if (this.pos >= this.buf.length && !this.fill()) return -1;
    return this.buf[this.pos]!;
  }

  next(): number {
    if (this.pos >= this.buf.length && !this.fill()) throw new Syntax('unexpected end of JSON');
    return this.buf[this.pos++]!;
  }

  ws(): number {
    for (;;) {
      const c = this.peek();
      if (c === -1 || !isWs(c)) return c;
      this.pos++;
    }
  }

  expect(ch: number): void {
    const c = this.ws();
    if (c !== ch) throw new Syntax(`expected '${String.fromCharCode(ch)}'`);
    this.pos++;
  }

  beginCapture(key: string): void {
    // `captured` is not reset: the budget bounds all kept parts together (duplicate keys included)
    this.capture = [];
    this.capStart = this.pos;
    this.capKey = key;
  }

  endCapture(): Buffer {
    this.keep(this.buf.subarray(this.capStart, this.pos));
    const out = Buffer.concat(this.capture!);
    this.capture = undefined;
    return out;
  }

  /** A string token (the opening quote is next), as raw bytes quote to quote; at most `max` bytes. */
  rawString(max: number): Buffer {
    const parts: number[] = [];
    if (this.next() !== Q) throw new Syntax('expected a string');
    parts.push(Q);
    for (;;) {
      const c = this.next();
      parts.push(c);
      if (c === BS) parts.push(this.next());
      else if (c === Q) break;
      if (parts.length > max) throw new Syntax('object key too long');
    }
    return Buffer.from(parts);
  }

  skipString(): void {
    if (this.next() !== Q) throw new Syntax('expected a string');
    for (;;) {
      // fast path: jump to the next quote or backslash within the current chunk
      if (this.pos < this.buf.length) {
        const q = this.buf.indexOf(Q, this.pos);
        const end = q === -1 ? this.buf.length : q;
        // a backslash before the quote (searched only up to it) escapes something
        const buf = this.buf;
        let b = this.pos;
        while (b < end && buf[b] !== BS) b++;
        if (b < end) {
          this.pos = b + 1;
          this.next(); // the escaped character
          continue;
        }
        if (q !== -1) {
          this.pos = q + 1;
          return;
        }
        this.pos = this.buf.length;
      }
      if (!this.fill()) throw new Syntax('unterminated string');
    }
  }

  /** Skips one JSON value, checking its structure. */
  skipValue(): void {
    const stack: number[] = [];
    for (;;) {
      const c = this.ws();
      if (c === -1) throw new Syntax('unexpected end of JSON');
      if (c === 0x7b || c === 0x5b) {
        this.pos++;
        if (stack.length >= MAX_DEPTH) throw new Syntax('nesting too deep');
        stack.push(c);
        const close = c === 0x7b ? 0x7d : 0x5d;
        if (this.ws() === close) {
          this.pos++;
          stack.pop();
        } else {
          if (c === 0x7b) {
            this.skipString();
            this.expect(0x3a);
          }
          continue; // to the first member's value
        }
      } else if (c === Q) {
        this.skipString();
      } else {
        this.skipScalar();
      }
      // after a value: close containers or move to the next member
      for (;;) {
        if (stack.length === 0) return;
        const top = stack[stack.length - 1]!;
        const d = this.ws();
        if (d === 0x2c) {
          this.pos++;
          if (top === 0x7b) {
            this.ws();
            this.skipString();
            this.expect(0x3a);
          }
          break;
        }
        if ((top === 0x7b && d === 0x7d) || (top === 0x5b && d === 0x5d)) {
          this.pos++;
          stack.pop();
          continue;
        }
        throw new Syntax('expected , or a closing bracket');
      }
    }
  }

  private skipScalar(): void {
    let n = 0;
    for (;;) {
      const c = this.peek();
      if (c === -1 || c === 0x2c || c === 0x7d || c === 0x5d || isWs(c)) break;
      if (c === 0x7b || c === 0x5b || c === Q || c === 0x3a) throw new Syntax('unexpected character');
      this.pos++;
      if (++n > 1024) throw new Syntax('scalar too long');
    }
    if (n === 0) throw new Syntax('expected a value');
  }
}

/**
 * Scans an image config from `read` (which returns the next chunk, or null at the end), keeping
 * KEPT_KEYS within `budget` bytes. Throws FAILED_PRECONDITION for invalid JSON or a non-object,
 * RESOURCE_EXHAUSTED (from `overBudget`) when the kept parts pass the budget.
 */
export function scanImageConfig(
  read: () => Buffer | null,
  budget: number,
  overBudget: (key: string) => Error,
): ImageConfig {
  const s = new Scanner(read, budget, overBudget);
  const out: Record<string, unknown> = {};
  try {
    s.expect(0x7b);
    if (s.ws() === 0x7d) s.next();
    else {
      for (;;) {
        s.ws();
        const key = JSON.parse(s.rawString(MAX_KEY).toString('utf8')) as string;
        s.expect(0x3a);
        s.ws();
        if (KEPT_KEYS.has(key)) {
          s.beginCapture(key);
          s.skipValue();
          out[key] = JSON.parse(s.endCapture().toString('utf8')) as unknown;
        } else {
          s.skipValue();
        }
        const c = s.ws();
        s.next();
        if (c === 0x7d) break;
        if (c !== 0x2c) throw new Syntax('expected , or }');
      }
    }
    if (s.ws() !== -1) throw new Syntax('trailing data after the object');
  } catch (err) {
    if (err instanceof Syntax || err instanceof SyntaxError)
      throw failedPrecondition(`image config is not valid JSON (${err.message})`);
    throw err;
  }
  if ('config' in out && (typeof out.config !== 'object' || Array.isArray(out.config)))
    throw failedPrecondition('image config: "config" is not an object');
  return out as ImageConfig;
}

/** Scans an image config file (see scanImageConfig); `what` names it in a budget error. */
export function readImageConfigFile(file: string, budget: number, what: string): ImageConfig {
  const fd = openSync(file, 'r');
  try {
    const chunk = Buffer.allocUnsafe(CHUNK);
    return scanImageConfig(
      () => {
        const n = readSync(fd, chunk, 0, CHUNK, null);
        return n === 0 ? null : chunk.subarray(0, n);
      },
      budget,
      (key) =>
        new BerthError(
          Status.RESOURCE_EXHAUSTED,
          `${what}: its "${key}" part is larger than ${budget} bytes, more than Berth keeps of an image config (a process environment that large could not be exec'd either)`,
        ),
    );
  } finally {
    closeSync(fd);
  }
}
