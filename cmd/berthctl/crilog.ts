// Reading CRI container logs: `<RFC3339Nano> <stdout|stderr> <F|P> <text>` lines, where P marks
// a partial line continued by the next line of the same stream until an F line ends it. The
// reader decodes a file from the start (with tail and since filters) and can then follow it,
// across rotation (rename + ReopenContainerLog) and truncation.
import * as fs from 'node:fs';
import * as path from 'node:path';

export type Stream = 'stdout' | 'stderr';

export interface LogLine {
  time: string;
  stream: Stream;
  partial: boolean;
  text: string;
}

/** One message as the program wrote it: partial lines joined, without the newline. */
export interface LogRecord {
  time: string;
  stream: Stream;
  text: string;
  /** false for the unterminated tail of a stream (P lines with no F yet). */
  complete: boolean;
}

const LINE = /^(\S+) (stdout|stderr) ([FP])(?: (.*))?$/s;

/** Parses one log line (without its '\n'); undefined when it is not in the CRI format. */
export function parseLogLine(line: string): LogLine | undefined {
  const m = LINE.exec(line);
  if (!m) return undefined;
  // conmon and kubelet put exactly one tag ('F' or 'P'); other tags may follow after ':'.
  return { time: m[1], stream: m[2] as Stream, partial: m[3] === 'P', text: m[4] ?? '' };
}

/** Joins P lines per stream into records. */
export class LogDecoder {
  private pending: Partial<Record<Stream, { time: string; text: string }>> = {};

  line(raw: string): LogRecord | undefined {
    const l = parseLogLine(raw);
    // A line not in the CRI format (a file written by something else): show it as it is.
    if (!l) return { time: '', stream: 'stdout', text: raw, complete: true };
    const p = this.pending[l.stream];
    if (l.partial) {
      if (p) p.text += l.text;
      else this.pending[l.stream] = { time: l.time, text: l.text };
      return undefined;
    }
    delete this.pending[l.stream];
    return p
      ? { time: p.time, stream: l.stream, text: p.text + l.text, complete: true }
      : { time: l.time, stream: l.stream, text: l.text, complete: true };
  }

  /** The unterminated partial messages, oldest first; clears them. */
  flush(): LogRecord[] {
    const recs = Object.entries(this.pending).map(([stream, p]) => ({
      time: p.time,
      stream: stream as Stream,
      text: p.text,
      complete: false,
    }));
    this.pending = {};
    return recs.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  }
}

/** Splits bytes into '\n'-terminated lines, holding an unterminated rest until more arrives. */
export class LineSplitter {
  private rest: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): string[] {
    const buf = this.rest.length ? Buffer.concat([this.rest, chunk]) : chunk;
    const lines: string[] = [];
    let start = 0;
    for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, start)) {
      lines.push(buf.toString('utf8', start, i));
      start = i + 1;
    }
    this.rest = Buffer.from(buf.subarray(start));
    return lines;
  }

  /** Drops a held partial line (the file it came from was truncated). */
  reset(): void {
    this.rest = Buffer.alloc(0);
  }
}

/** Go-style durations (`90s`, `5m`, `1h30m`, `250ms`) in milliseconds; undefined if not one. */
export function parseDuration(s: string): number | undefined {
  const units: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    µs: 1e-3,
    ms: 1,
    s: 1000,
    m: 60000,
    h: 3600000,
  };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let end = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * units[m[2]];
    end = re.lastIndex;
  }
  return s.length > 0 && end === s.length ? total : undefined;
}

/** `--since`: an RFC 3339 time or a duration back from now, as epoch milliseconds. */
export function parseSince(s: string, now = Date.now()): number {
  const d = parseDuration(s);
  if (d !== undefined) return now - d;
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw new Error(`--since wants an RFC 3339 time or a duration like 5m, got ${s}`);
  return t;
}

export interface ReadOptions {
  /** Keep only the last N messages; negative means all. */
  tail: number;
  /** Skip messages older than this (epoch ms). */
  sinceMs?: number;
}

const CHUNK = 256 * 1024;

/**
 * An open log file, read from the start and then on demand as it grows. Records go to `sink`.
 */
export class LogReader {
  private fd: number | undefined;
  private ino = 0;
  private dev = 0;
  private offset = 0;
  private readonly splitter = new LineSplitter();
  private readonly decoder = new LogDecoder();
  private readonly buf = Buffer.allocUnsafe(CHUNK);

  constructor(
    readonly file: string,
    private readonly sink: (r: LogRecord) => void,
  ) {}

  private open(): boolean {
    try {
      this.fd = fs.openSync(this.file, 'r');
      const st = fs.fstatSync(this.fd);
      [this.ino, this.dev, this.offset] = [st.ino, st.dev, 0];
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }

  /** Reads what is there now. Returns false if the file does not exist (yet). */
  async readInitial(opts: ReadOptions): Promise<boolean> {
    if (!this.open()) return false;
    const kept: LogRecord[] = [];
    const since = opts.sinceMs;
    this.readToEnd((r) => {
      if (since !== undefined && r.time && Date.parse(r.time) < since) return;
      if (opts.tail < 0) return this.sink(r);
      kept.push(r);
      if (opts.tail >= 0 && kept.length > opts.tail) kept.shift();
    });
    for (const r of kept) this.sink(r);
    return true;
  }

  /** Emits the unterminated partial messages (at the end of a non-follow read). */
  flushPartial(): void {
    for (const r of this.decoder.flush()) this.sink(r);
  }

  private readToEnd(emit: (r: LogRecord) => void): void {
    if (this.fd === undefined) return;
    for (;;) {
      const n = fs.readSync(this.fd, this.buf, 0, CHUNK, this.offset);
      if (n <= 0) return;
      this.offset += n;
      for (const line of this.splitter.push(this.buf.subarray(0, n))) {
        const r = this.decoder.line(line);
        if (r) emit(r);
      }
    }
  }

  /**
   * Reads what was appended since the last call; then, if the path now names another file
   * (rotated and reopened) switches to it, and if the file shrank (truncated) starts over.
   */
  async poll(): Promise<void> {
    if (this.fd === undefined) {
      if (!this.open()) return;
    }
    this.readToEnd(this.sink);
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(this.file);
    } catch {
      return; // renamed away and not recreated yet: keep the old file, it may still grow
    }
    if (st.ino !== this.ino || st.dev !== this.dev) {
      this.readToEnd(this.sink);
      this.closeFd();
      this.splitter.reset();
      if (this.open()) this.readToEnd(this.sink);
    } else if (st.size < this.offset) {
      this.offset = 0;
      this.splitter.reset();
      this.readToEnd(this.sink);
    }
  }

  private closeFd(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  close(): void {
    this.closeFd();
  }
}

export interface FollowOptions {
  signal: AbortSignal;
  /** Resolves false once the container has stopped; asked every `statusMs`. */
  isRunning: () => Promise<boolean>;
  pollMs?: number;
  statusMs?: number;
}

/**
 * Follows the log until the container stops (then reads what is left) or the signal aborts.
 * fs.watch on the directory wakes it promptly; the poll timer covers filesystems without inotify.
 */
export async function follow(reader: LogReader, opts: FollowOptions): Promise<void> {
  const pollMs = opts.pollMs ?? 250;
  const statusMs = opts.statusMs ?? 1000;
  let wake: (() => void) | undefined;
  const kick = (): void => wake?.();
  let watcher: fs.FSWatcher | undefined;
  try {
    watcher = fs.watch(path.dirname(reader.file), { persistent: false }, kick);
    watcher.on('error', () => watcher?.close());
  } catch {
    watcher = undefined; // no inotify here: the timer alone
  }
  opts.signal.addEventListener('abort', kick);
  let nextStatus = Date.now() + statusMs;
  try {
    while (!opts.signal.aborted) {
      await reader.poll();
      if (Date.now() >= nextStatus) {
        if (!(await opts.isRunning())) {
          await reader.poll();
          return;
        }
        nextStatus = Date.now() + statusMs;
      }
      if (opts.signal.aborted) return;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(pollMs, Math.max(0, nextStatus - Date.now())));
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    opts.signal.removeEventListener('abort', kick);
    watcher?.close();
  }
}
