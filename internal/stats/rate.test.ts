import { CpuRateTracker } from './rate';

const S = 1_000_000_000n;

test('first sample is 0 without a baseline; then the rate over the interval', () => {
  const r = new CpuRateTracker();
  expect(r.rate('a', { t: 10n * S, usageNs: 5n * S })).toBe(0n);
  // one core busy for 2 s
  expect(r.rate('a', { t: 12n * S, usageNs: 7n * S })).toBe(S);
});

test('a baseline (usage 0 at start) gives the average since start on the first call', () => {
  const r = new CpuRateTracker();
  expect(r.rate('a', { t: 4n * S, usageNs: 2n * S }, { t: 0n, usageNs: 0n })).toBe(S / 2n);
});

test('calls milliseconds apart are measured against the sample at least a window old', () => {
  const r = new CpuRateTracker();
  r.rate('a', { t: 0n, usageNs: 0n });
  expect(r.rate('a', { t: 10n * S, usageNs: 10n * S })).toBe(S);
  // 1 ms later, a busy spike of 1 ms would read as a full core over 1 ms; against t=0 it is smooth
  expect(r.rate('a', { t: 10n * S + 1_000_000n, usageNs: 10n * S + 1_000_000n })).toBe(S);
  // 2 s later: measured against t=10 s (the newest sample at least 1 s old)
  expect(r.rate('a', { t: 12n * S, usageNs: 11n * S })).toBe(S / 2n);
});

test('a counter that goes back restarts the series; retain drops gone keys', () => {
  const r = new CpuRateTracker();
  r.rate('a', { t: 0n, usageNs: 5n * S });
  expect(r.rate('a', { t: 2n * S, usageNs: S })).toBe(0n);
  expect(r.rate('a', { t: 4n * S, usageNs: 3n * S })).toBe(S);
  r.rate('b', { t: 0n, usageNs: 0n });
  r.retain(new Set(['a']));
  expect(r.size).toBe(1);
});
