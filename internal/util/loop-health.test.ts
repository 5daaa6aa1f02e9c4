import { createHistogram } from 'node:perf_hooks';
import type { Logger } from '../log';
import {
  LoopHealth,
  makeReport,
  summarizeDelay,
  utilizationOf,
  windowWarning,
  type LoopFigures,
} from './loop-health';

const ms = (x: number): number => Math.round(x * 1e6);

/** A histogram of timer intervals like monitorEventLoopDelay's (ns, resolution included). */
function intervals(valuesMs: number[]): ReturnType<typeof createHistogram> {
  const h = createHistogram();
  for (const v of valuesMs) h.record(ms(v));
  return h;
}

describe('summarizeDelay', () => {
  test('reports ms beyond the 10 ms sampling interval', () => {
    // 98 ticks on time, one 60 ms late, one 110 ms late
    const h = intervals([...Array<number>(98).fill(10), 70, 120]);
    const s = summarizeDelay(h);
    expect(s.p50).toBeCloseTo(0, 1);
    expect(s.p90).toBeCloseTo(0, 1);
    expect(s.p99).toBeGreaterThan(59);
    expect(s.p99).toBeLessThan(61);
    expect(s.max).toBeGreaterThan(109);
    expect(s.max).toBeLessThan(111);
  });

  test('an empty histogram is all zeros; an early tick is not a negative delay', () => {
    expect(summarizeDelay(createHistogram())).toEqual({ p50: 0, p90: 0, p99: 0, max: 0 });
    expect(summarizeDelay(intervals([9.5, 9.9]))).toEqual({ p50: 0, p90: 0, p99: 0, max: 0 });
  });

  test('rounds to hundredths of a ms', () => {
    const s = summarizeDelay({ count: 1, max: ms(12.3456), percentile: () => ms(11.111) });
    expect(s).toEqual({ p50: 1.11, p90: 1.11, p99: 1.11, max: 2.35 });
  });
});

test('utilizationOf clamps and rounds', () => {
  expect(utilizationOf({ idle: 1, active: 1, utilization: 0.123456 })).toBe(0.1235);
  expect(utilizationOf({ idle: 0, active: 0, utilization: NaN })).toBe(0);
  expect(utilizationOf({ idle: 0, active: 1, utilization: 1.2 })).toBe(1);
});

test('makeReport has exactly the published shape', () => {
  const w: LoopFigures = { delay_ms: { p50: 1, p90: 2, p99: 3, max: 4 }, utilization: 0.5 };
  const t: LoopFigures = { delay_ms: { p50: 5, p90: 6, p99: 7, max: 8 }, utilization: 0.25 };
  const r = makeReport(10_000, w, t);
  expect(JSON.stringify(r)).toBe(
    '{"window_s":10,"delay_ms":{"p50":1,"p90":2,"p99":3,"max":4},"utilization":0.5,' +
      '"total":{"delay_ms":{"p50":5,"p90":6,"p99":7,"max":8},"utilization":0.25}}',
  );
});

test('windowWarning fires only above the threshold', () => {
  const fig = (p99: number): LoopFigures => ({
    delay_ms: { p50: 0, p90: 0, p99, max: p99 },
    utilization: 0.9,
  });
  expect(windowWarning(fig(100), 100)).toBeUndefined();
  expect(windowWarning(fig(99), 100)).toBeUndefined();
  const w = windowWarning(fig(150), 100);
  expect(w?.message).toMatch(/event loop delay/);
  expect(w?.fields).toMatchObject({ p99_ms: 150, threshold_ms: 100, utilization: 0.9 });
});

test('LoopHealth: a blocked loop shows in the window, the totals and a warning', async () => {
  const warnings: { message: string; fields: Record<string, unknown> }[] = [];
  const log = {
    warn: (message: string, fields: Record<string, unknown>) => warnings.push({ message, fields }),
  } as unknown as Logger;
  const lh = new LoopHealth({ log, warnMs: 50, windowMs: 60_000 });
  const before = lh.report();
  expect(before.total.utilization).toBe(0);
  lh.start();
  try {
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    while (Date.now() - t0 < 150); // block the loop for 150 ms
    await new Promise((r) => setTimeout(r, 50));
    // no window closed yet: the figures so far
    const early = lh.report();
    expect(early.window_s).toBe(60);
    expect(early.delay_ms.max).toBeGreaterThan(100);
    lh.closeWindow();
    const r = lh.report();
    expect(r.delay_ms.max).toBeGreaterThan(100);
    expect(r.delay_ms.p99).toBeGreaterThan(50);
    expect(r.utilization).toBeGreaterThan(0.3);
    expect(r.utilization).toBeLessThanOrEqual(1);
    expect(r.total.delay_ms.max).toBeGreaterThan(100);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.message).toMatch(/event loop delay/);
    expect(warnings[0]?.fields).toMatchObject({ threshold_ms: 50, window_s: 60 });
    // a quiet window after a reset
    await new Promise((r) => setTimeout(r, 200));
    lh.closeWindow();
    const quiet = lh.report();
    expect(quiet.delay_ms.max).toBeLessThan(100);
    expect(quiet.total.delay_ms.max).toBeGreaterThan(100); // the totals keep the stall
  } finally {
    lh.stop();
  }
});
