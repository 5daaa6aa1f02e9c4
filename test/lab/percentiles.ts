// Percentiles and medians of benchmark samples (ms, bytes, ...), one copy for every benchmark.
// Two percentile definitions are in use and both are kept, so figures stay comparable with earlier
// runs of each benchmark: `pct` takes the sample at index floor(p/100 * n), `pctNearestRank` the
// smallest sample with at least p% of them at or below it (index ceil(p/100 * n) - 1).

function sorted(xs: number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}

/** The sample at index floor(p/100 * n) of the sorted samples (the last for p = 100); NaN for none. */
export function pct(xs: number[], p: number): number {
  const s = sorted(xs);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

/** The nearest-rank percentile: the sample at index ceil(p/100 * n) - 1; NaN for none. */
export function pctNearestRank(xs: number[], p: number): number {
  const s = sorted(xs);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}

/** The median (the mean of the middle two for an even count); NaN for none. */
export function median(xs: number[]): number {
  const s = sorted(xs);
  const m = Math.floor(s.length / 2);
  if (s.length === 0) return NaN;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}
