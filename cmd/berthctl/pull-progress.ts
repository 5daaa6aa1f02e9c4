// berthctl pull's progress: while PullImage runs, the daemon's `Status` (verbose) lists running
// pulls under `pulls` (layers and bytes downloaded of those planned); this polls it and shows a bar
// on a terminal, or otherwise a plain line every 2 s once a pull has run that long (quick pulls
// print nothing).
import { call, type CriClients } from '../../api/client';
import { formatReference, parseReference } from '../../internal/image/reference';
import { humanSize } from './format';
import type { Out } from './common';

import type { PullSnapshot } from '../../internal/image/progress';

export type { PullSnapshot };

/** The reference as the daemon names its pull (docker.io/library/busybox:latest). */
export function normalizedRef(image: string): string {
  try {
    return formatReference(parseReference(image));
  } catch {
    return image;
  }
}

function rate(s: PullSnapshot): string {
  const secs = s.elapsedMs / 1000;
  return secs > 0 ? `${humanSize(Math.round(s.bytes / secs))}/s` : '-';
}

/** "layers 1/3  1.20MB/5.00MB  400kB/s" */
export function summary(s: PullSnapshot): string {
  const layers = s.layers ? `layers ${s.layersDone}/${s.layers}` : 'resolving';
  const total = s.totalBytes ? `/${humanSize(s.totalBytes)}` : '';
  return `${layers}  ${humanSize(s.bytes)}${total}  ${rate(s)}`;
}

/** A one-line bar for a terminal, `width` columns at most: "[=====>    ]  42%  layers ...". */
export function bar(s: PullSnapshot, width: number): string {
  const frac = s.totalBytes > 0 ? Math.min(1, s.bytes / s.totalBytes) : 0;
  const pct = `${Math.floor(frac * 100)}%`.padStart(4);
  const tail = `${pct}  ${summary(s)}`;
  const cells = Math.max(10, Math.min(40, width - tail.length - 4));
  const filled = Math.floor(frac * cells);
  const head = filled < cells && filled > 0 ? '>' : '';
  const inner = '='.repeat(Math.max(0, filled - head.length)) + head;
  return `[${inner.padEnd(cells)}] ${tail}`.slice(0, Math.max(20, width - 1));
}

export interface ProgressView {
  /** true: redraw one line with \r; false: a plain line every `plainEveryMs` once the layers are known */
  tty: boolean;
  width: number;
  plainEveryMs: number;
}

/**
 * Polls the daemon while `pulling` is pending and draws its progress on `err`. Polling failures
 * (an older daemon, a slow answer) only mean no progress is shown.
 */
export async function watchPull(
  c: CriClients,
  image: string,
  pulling: Promise<unknown>,
  err: Out,
  view: ProgressView,
  pollMs = 250,
): Promise<void> {
  const want = normalizedRef(image);
  let done = false;
  void pulling.then(
    () => (done = true),
    () => (done = true),
  );
  let drawn = false;
  // plain lines start after plainEveryMs, so a quick pull prints none
  let lastPlain = Date.now();
  let lastLine = '';
  while (!done) {
    await Promise.race([pulling.catch(() => undefined), new Promise((r) => setTimeout(r, pollMs))]);
    if (done) break;
    let snap: PullSnapshot | undefined;
    try {
      const st = await call(c.runtime, 'Status', { verbose: true }, 2000);
      const pulls = JSON.parse(st.info.pulls ?? '[]') as PullSnapshot[];
      snap = pulls.find((p) => p.ref === want);
    } catch {
      snap = undefined;
    }
    if (!snap || done) continue;
    if (view.tty) {
      err.write(`\r${bar(snap, view.width)}\x1b[K`);
      drawn = true;
    } else {
      const line = `${want}: ${summary(snap)}`;
      // only once the layers are known: a pull failing at its manifest prints just its error
      if (snap.layers > 0 && Date.now() - lastPlain >= view.plainEveryMs && line !== lastLine) {
        err.write(line + '\n');
        lastPlain = Date.now();
        lastLine = line;
      }
    }
  }
  if (drawn) err.write('\r\x1b[K');
}
