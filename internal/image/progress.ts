// Pull progress: counts bytes per transfer, logs them with their rate every few seconds, and
// declares the pull stalled when, while something is downloading, fewer than
// max(1, minBytesPerSecond × window) bytes arrived over the last `window` (containerd's
// image_pull_progress_timeout, with a floor so that a trickle counts as no progress).
import { deadlineExceeded, type BerthError } from '../errors';
import type { Logger } from '../log';

export interface ProgressOptions {
  ref: string;
  timeoutMs: number;
  minBytesPerSecond: number;
  log: Logger;
  /** called once when the pull is stalled */
  onStall: (err: BerthError) => void;
  logEveryMs?: number;
  now?: () => number;
}

/** One pull as `Status` (verbose) shows it under `pulls`, for `berthctl pull`'s progress bar. */
export interface PullSnapshot {
  ref: string;
  /** layers to download, once the manifest is known (0 before) */
  layers: number;
  layersDone: number;
  /** bytes of those layers, and how many of them arrived */
  totalBytes: number;
  bytes: number;
  elapsedMs: number;
}

export interface Transfer {
  add(n: number): void;
  done(): void;
}

interface TransferState {
  id: string;
  total?: number;
  bytes: number;
  started: number;
  lastLogBytes: number;
  lastLogAt: number;
}

export class PullProgress {
  private readonly active = new Map<number, TransferState>();
  private nextId = 0;
  private totalBytes = 0;
  /** (time, totalBytes) samples taken while something was active, oldest first */
  private samples: { t: number; bytes: number }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stalled = false;
  private lastLog: number;
  private readonly now: () => number;
  private readonly startedAt: number;
  private planned = { layers: 0, bytes: 0 };
  private layersDone = 0;
  private layerBytes = 0;

  constructor(private readonly opts: ProgressOptions) {
    this.now = opts.now ?? Date.now;
    this.lastLog = this.now();
    this.startedAt = this.now();
  }

  /** The layers this pull will download (transfers named "layer ..."), once the manifest says. */
  plan(layers: number, bytes: number): void {
    this.planned = { layers, bytes };
  }

  snapshot(): PullSnapshot {
    return {
      ref: this.opts.ref,
      layers: this.planned.layers,
      layersDone: this.layersDone,
      totalBytes: this.planned.bytes,
      bytes: this.layerBytes,
      elapsedMs: this.now() - this.startedAt,
    };
  }

  start(): void {
    const every = Math.max(50, Math.min(1000, Math.floor(this.opts.timeoutMs / 4)));
    this.timer = setInterval(() => this.tick(), every);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** Starts counting a download (a blob, a manifest). */
  begin(id: string, total?: number): Transfer {
    const key = this.nextId++;
    const t = this.now();
    if (this.active.size === 0) this.samples = [{ t, bytes: this.totalBytes }];
    const st: TransferState = { id, total, bytes: 0, started: t, lastLogBytes: 0, lastLogAt: t };
    this.active.set(key, st);
    let finished = false;
    const isLayer = id.startsWith('layer ');
    return {
      add: (n: number) => {
        st.bytes += n;
        this.totalBytes += n;
        if (isLayer) this.layerBytes += n;
      },
      done: () => {
        if (finished) return;
        finished = true;
        if (isLayer) this.layersDone++;
        this.active.delete(key);
        if (this.active.size === 0) this.samples = [];
        if (st.total !== undefined && st.total > 64 * 1024) {
          const secs = Math.max(0.001, (this.now() - st.started) / 1000);
          this.opts.log.info('layer downloaded', {
            ref: this.opts.ref,
            layer: st.id,
            bytes: st.bytes,
            seconds: Number(secs.toFixed(2)),
            rate: `${formatBytes(st.bytes / secs)}/s`,
          });
        }
      },
    };
  }

  /** One check: log if due, and detect a stall. Exposed for tests. */
  tick(): void {
    const now = this.now();
    if (this.active.size === 0 || this.stalled) return;
    this.samples.push({ t: now, bytes: this.totalBytes });
    const cutoff = now - this.opts.timeoutMs;
    // Keep the newest sample at or before the cutoff and everything after it.
    let i = 0;
    while (i + 1 < this.samples.length && (this.samples[i + 1] as { t: number }).t <= cutoff) i++;
    if (i > 0) this.samples = this.samples.slice(i);
    const base = this.samples[0];
    if (base && base.t <= cutoff) {
      const windowSecs = (now - base.t) / 1000;
      const moved = this.totalBytes - base.bytes;
      const need = Math.max(1, this.opts.minBytesPerSecond * windowSecs);
      if (moved < need) {
        this.stalled = true;
        this.stop();
        const secs = Math.round(this.opts.timeoutMs / 1000);
        this.opts.onStall(
          deadlineExceeded(
            `pulling ${this.opts.ref}: no progress for ${secs}s (${moved} bytes in the last ${Math.round(windowSecs)}s, ` +
              `below the floor of ${this.opts.minBytesPerSecond} B/s); cancelled (config image.pull_progress_timeout_seconds)`,
          ),
        );
        return;
      }
    }
    if (now - this.lastLog >= (this.opts.logEveryMs ?? 5000)) {
      this.lastLog = now;
      for (const st of this.active.values()) {
        const secs = Math.max(0.001, (now - st.lastLogAt) / 1000);
        this.opts.log.info('pulling', {
          ref: this.opts.ref,
          layer: st.id,
          bytes: st.bytes,
          ...(st.total !== undefined ? { total: st.total } : {}),
          rate: `${formatBytes((st.bytes - st.lastLogBytes) / secs)}/s`,
        });
        st.lastLogBytes = st.bytes;
        st.lastLogAt = now;
      }
    }
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}
