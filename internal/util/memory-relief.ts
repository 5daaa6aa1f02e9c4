// Gives memory back after a burst of work. Measured (test/bench/memory.ts): after 50 pods, a large
// pull and a large image config, berthd's RSS stayed ~1.4-1.9x its idle size for good: V8 keeps
// the pages of a grown heap committed after ordinary collections, and glibc keeps freed malloc
// memory (zlib, nghttp2, libuv buffers) in its arenas. A memory-reducing full collection (V8's
// "last resort" flavour, which also releases pooled pages) followed by malloc_trim(0) returns both.
// The collection runs as a task of its own (gc's `execution: 'async'`), not inside the timer's
// call: after a pull through the unpack worker, the collection called synchronously from the timer
// left the pool's dead 1 MiB chunk buffers allocated (14.8-16.9 MB of ArrayBuffer memory in
// process.memoryUsage(), through two reliefs and on for good), while the same collection run as a
// task freed them; with the sync call, backing stores it did free were only released by V8's
// sweeper after malloc_trim had run. Measured with test/bench/memory.ts: settled/idle 1.23-1.41x
// before, see the README's memory section for after.
//
// A timer (unref'd) looks at RSS every `intervalMs`; once a burst is over (RSS steady) and RSS is
// `growthKb` or more above where the last relief left it, it runs one (see ReliefPolicy). At rest
// that is one /proc read per interval; a relief is one full collection (tens of ms, all of it a
// pause of the event loop). So it waits for a quiet interval: while the loop was busier than
// `maxBusy` (event-loop utilisation of LoopHealth's last 10 s window) the sample is skipped, since
// a pause in a burst (a pull, pods made 10 at a time: 0.3 and more) is an RPC's tail latency.
// kubelet's steady load on 30 pods keeps the loop 0.07-0.09 busy: with a 0.05 gate no relief ran
// under it and RSS ended at 116-122 MB (load bench); with 0.15 reliefs of 4-12 ms ran and RSS
// ended at 102-104 MB, with no tail of the bench's RPCs or event-loop p99 out of its usual spread.
import * as fs from 'node:fs';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import type { Logger } from '../log';

/** V8's gc(): with `execution: 'async'` it returns a promise, settled once the collection ran. */
type GcFn = (opts?: { type?: string; execution?: string; flavor?: string }) => void | Promise<void>;

export interface ReliefOptions {
  intervalMs?: number;
  /** RSS growth since the last relief that triggers the next one */
  growthKb?: number;
  /**
   * RSS change between two quiet samples under which the burst counts as over (default 4 MiB: an
   * idle daemon's RSS still creeps up ~1 MiB per 10 s while V8 touches the rest of its young
   * generation; with 1 MiB, a daemon that had removed 50 pods waited ~70 s for its relief)
   */
  restKb?: number;
  /** the relief itself; defaults to a last-resort V8 collection plus malloc_trim(0) */
  relieve?: () => void | Promise<void>;
  /** RSS in kB; defaults to this process's VmRSS */
  rssKb?: () => number;
  /** skip intervals whose event-loop utilisation (0..1) was above this; default 0.15 */
  maxBusy?: number;
  /** the loop's recent utilisation (0..1): the daemon's LoopHealth window (utilisation over 10 s) */
  busy: () => number;
}

export function processRssKb(): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : 0;
}

let gcFn: GcFn | undefined;

/** V8's gc() without --expose-gc on the command line (the flag set at run time, as Node documents). */
export function exposedGc(): GcFn {
  if (!gcFn) {
    v8.setFlagsFromString('--expose-gc');
    gcFn = vm.runInNewContext('gc') as GcFn;
  }
  return gcFn;
}

/**
 * A memory-reducing full collection run as a task of its own, then glibc's malloc_trim (when the
 * addon is there) once it is over: by then the dead ArrayBuffers' memory is back with malloc.
 */
export async function defaultRelieve(trim?: () => boolean): Promise<void> {
  await exposedGc()({ type: 'major', execution: 'async', flavor: 'last-resort' });
  trim?.();
}

/**
 * Decides when to relieve: pure state, driven by RSS samples. A relief is due when RSS is
 * `growthKb` above the floor (the RSS after the last relief, or at start) and has stopped moving
 * (within `restKb` of the previous sample: the burst is over; relieving in the middle of one
 * would be undone at once). A relief that cannot get back near the floor (memory still held just
 * after a burst) is retried after 1, 2 and 4 further samples; after that its result becomes the
 * new floor, so memory that is really in use does not cause a collection every interval.
 */
export class ReliefPolicy {
  private floor: number | undefined;
  private last: number | undefined;
  private attempts = 0;
  private wait = 0;

  constructor(
    private readonly growthKb: number,
    private readonly restKb = 1024,
    private readonly retries = 3,
  ) {}

  /** Takes `rss` as the floor: the RSS of the daemon as it starts serving. */
  seed(rss: number): void {
    this.floor = rss;
    this.last = rss;
    this.attempts = 0;
    this.wait = 0;
  }

  due(rss: number): boolean {
    const prev = this.last;
    this.last = rss;
    if (this.floor === undefined || rss < this.floor) {
      this.floor = rss;
      this.attempts = 0;
      this.wait = 0;
      return false;
    }
    if (this.wait > 0) {
      this.wait--;
      return false;
    }
    const atRest = this.attempts > 0 || (prev !== undefined && Math.abs(rss - prev) <= this.restKb);
    return atRest && rss - this.floor >= this.growthKb;
  }

  /** Records the RSS right after a relief. */
  relieved(rss: number): void {
    this.last = rss;
    if (this.floor === undefined || rss - this.floor < this.growthKb) {
      this.attempts = 0;
      return;
    }
    this.attempts++;
    if (this.attempts > this.retries) {
      this.floor = rss;
      this.attempts = 0;
      return;
    }
    this.wait = 2 ** (this.attempts - 1);
  }
}

export interface MemoryRelief {
  stop(): void;
}

export function startMemoryRelief(log: Logger, opts: ReliefOptions): MemoryRelief {
  const intervalMs = opts.intervalMs ?? 10_000;
  const rssKb = opts.rssKb ?? processRssKb;
  const relieve = opts.relieve ?? defaultRelieve;
  const policy = new ReliefPolicy(opts.growthKb ?? 8 * 1024, opts.restKb ?? 4 * 1024);
  const maxBusy = opts.maxBusy ?? 0.15;
  // the floor is the RSS of the daemon as it starts serving: taken from the first quiet sample
  // instead, a daemon busy from its start (50 pods made and removed) took its post-burst RSS for
  // the floor and never relieved it (118 MB, against 70 MB at start)
  policy.seed(rssKb());
  let running = false;
  const tick = async (): Promise<void> => {
    if (running) return;
    running = true;
    try {
      if (opts.busy() > maxBusy) return;
      const before = rssKb();
      if (!policy.due(before)) return;
      const t0 = process.hrtime.bigint();
      await relieve();
      const after = rssKb();
      policy.relieved(after);
      log.debug('memory relief', {
        rssBeforeKb: before,
        rssAfterKb: after,
        ms: Number(process.hrtime.bigint() - t0) / 1e6,
      });
    } catch (err) {
      log.warn('memory relief failed', { error: err instanceof Error ? err.message : String(err) });
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void tick(), intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
