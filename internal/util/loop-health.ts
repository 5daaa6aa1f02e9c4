// Event-loop health: how late berthd's one thread runs what is due (delay) and how much of the
// time it is busy (utilisation). Two `monitorEventLoopDelay` histograms sample the delay with a
// 10 ms timer: one is read and reset at the end of every window (10 s), the other runs since start.
// `performance.eventLoopUtilization()` gives the busy share of each window and since start. A
// window whose p99 delay passes the threshold (config `event_loop_warn_ms`) logs a warning.
//
// Delays are reported in ms *beyond* the sampling interval: the histogram records the time between
// two 10 ms timer ticks, so an idle loop reads about 10 ms; we subtract the resolution, and an idle
// loop reads about 0. The CRI `Status` verbose info carries report() as `info.eventLoop`:
//   {"window_s":10,"delay_ms":{"p50":n,"p90":n,"p99":n,"max":n},"utilization":n,
//    "total":{"delay_ms":{"p50":n,"p90":n,"p99":n,"max":n},"utilization":n}}
// Top level: the last completed window (before the first one closes: the figures so far); `total`:
// since start.
import {
  monitorEventLoopDelay,
  performance,
  type EventLoopUtilization,
  type IntervalHistogram,
} from 'node:perf_hooks';
import type { Logger } from '../log';

export const RESOLUTION_MS = 10;
export const WINDOW_MS = 10_000;

export interface DelaySummary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface LoopFigures {
  delay_ms: DelaySummary;
  utilization: number;
}

export interface LoopHealthReport extends LoopFigures {
  window_s: number;
  total: LoopFigures;
}

/** What summarizeDelay reads of a histogram (values in ns). */
export interface DelayHistogram {
  readonly count: number;
  readonly max: number;
  percentile(p: number): number;
}

const round = (x: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** A histogram of timer intervals (ns) as delays in ms beyond the sampling interval (2 decimals). */
export function summarizeDelay(h: DelayHistogram, resolutionMs = RESOLUTION_MS): DelaySummary {
  if (h.count === 0) return { p50: 0, p90: 0, p99: 0, max: 0 };
  const ms = (ns: number): number => round(Math.max(0, ns / 1e6 - resolutionMs), 2);
  return { p50: ms(h.percentile(50)), p90: ms(h.percentile(90)), p99: ms(h.percentile(99)), max: ms(h.max) };
}

/** Utilisation 0..1 (4 decimals) of an eventLoopUtilization() difference. */
export function utilizationOf(elu: EventLoopUtilization): number {
  return Number.isFinite(elu.utilization) ? round(Math.min(1, Math.max(0, elu.utilization)), 4) : 0;
}

/** The report in the exact shape Status verbose publishes (key order included). */
export function makeReport(windowMs: number, window: LoopFigures, total: LoopFigures): LoopHealthReport {
  return {
    window_s: round(windowMs / 1000, 3),
    delay_ms: { ...window.delay_ms },
    utilization: window.utilization,
    total: { delay_ms: { ...total.delay_ms }, utilization: total.utilization },
  };
}

/** The warning a closed window deserves, if any. */
export function windowWarning(
  w: LoopFigures,
  warnMs: number,
): { message: string; fields: Record<string, number> } | undefined {
  if (!(w.delay_ms.p99 > warnMs)) return undefined;
  return {
    message: 'event loop delay is high',
    fields: {
      p99_ms: w.delay_ms.p99,
      max_ms: w.delay_ms.max,
      p50_ms: w.delay_ms.p50,
      utilization: w.utilization,
      threshold_ms: warnMs,
    },
  };
}

export interface LoopHealthOptions {
  log: Logger;
  /** warn when a window's p99 delay passes this (ms) */
  warnMs: number;
  /** default 10 s */
  windowMs?: number;
}

export class LoopHealth {
  private readonly windowMs: number;
  private window: IntervalHistogram | undefined;
  private total: IntervalHistogram | undefined;
  private timer: NodeJS.Timeout | undefined;
  private startElu: EventLoopUtilization | undefined;
  private windowElu: EventLoopUtilization | undefined;
  private last: LoopFigures | undefined;

  constructor(private readonly opts: LoopHealthOptions) {
    this.windowMs = opts.windowMs ?? WINDOW_MS;
  }

  start(): void {
    if (this.timer) return;
    this.window = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.total = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.window.enable();
    this.total.enable();
    this.startElu = performance.eventLoopUtilization();
    this.windowElu = this.startElu;
    this.timer = setInterval(() => this.closeWindow(), this.windowMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.window?.disable();
    this.total?.disable();
  }

  /** Ends the current window: keeps its figures, resets its histogram, warns when it was slow. */
  closeWindow(): void {
    if (!this.window || !this.windowElu) return;
    const now = performance.eventLoopUtilization();
    const figures: LoopFigures = {
      delay_ms: summarizeDelay(this.window),
      utilization: utilizationOf(performance.eventLoopUtilization(now, this.windowElu)),
    };
    this.window.reset();
    this.windowElu = now;
    this.last = figures;
    const w = windowWarning(figures, this.opts.warnMs);
    if (w) this.opts.log.warn(w.message, { ...w.fields, window_s: this.windowMs / 1000 });
  }

  /** The last completed window (or the current one before any closed) and the totals since start. */
  report(): LoopHealthReport {
    const zero: LoopFigures = { delay_ms: { p50: 0, p90: 0, p99: 0, max: 0 }, utilization: 0 };
    if (!this.window || !this.total || !this.startElu || !this.windowElu)
      return makeReport(this.windowMs, zero, zero);
    const now = performance.eventLoopUtilization();
    const current = (): LoopFigures => ({
      delay_ms: summarizeDelay(this.window!),
      utilization: utilizationOf(performance.eventLoopUtilization(now, this.windowElu)),
    });
    return makeReport(this.windowMs, this.last ?? current(), {
      delay_ms: summarizeDelay(this.total),
      utilization: utilizationOf(performance.eventLoopUtilization(now, this.startElu)),
    });
  }
}
