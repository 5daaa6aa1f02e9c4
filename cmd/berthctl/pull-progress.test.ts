import { bar, normalizedRef, summary, type PullSnapshot } from './pull-progress';

const snap = (over: Partial<PullSnapshot> = {}): PullSnapshot => ({
  ref: 'docker.io/library/busybox:latest',
  layers: 3,
  layersDone: 1,
  totalBytes: 5_000_000,
  bytes: 1_200_000,
  elapsedMs: 3000,
  ...over,
});

describe('pull progress', () => {
  it('names the pull as the daemon does', () => {
    expect(normalizedRef('busybox')).toBe('docker.io/library/busybox:latest');
    expect(normalizedRef('127.0.0.1:5000/a/b:v1')).toBe('127.0.0.1:5000/a/b:v1');
    expect(normalizedRef('NOT A REF')).toBe('NOT A REF');
  });
  it('summarises layers, bytes and rate', () => {
    expect(summary(snap())).toBe('layers 1/3  1.20MB/5.00MB  400kB/s');
    expect(summary(snap({ layers: 0, totalBytes: 0, bytes: 0, elapsedMs: 0 }))).toBe('resolving  0B  -');
  });
  it('draws a bar that fits the width', () => {
    const b = bar(snap(), 80);
    expect(b).toMatch(/^\[=+> *\] {2}24% {2}layers 1\/3/);
    expect(b.length).toBeLessThan(80);
    expect(bar(snap({ bytes: 5_000_000, layersDone: 3 }), 80)).toMatch(/^\[=+\] 100%/);
    expect(bar(snap({ bytes: 0 }), 80)).toMatch(/^\[ +\] {3}0%/);
    expect(bar(snap(), 30).length).toBeLessThanOrEqual(29);
  });
});
