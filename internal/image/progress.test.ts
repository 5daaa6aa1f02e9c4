import { Status } from '../../internal/errors';
import { silentLogger } from '../log';
import { PullProgress, formatBytes } from './progress';
import type { BerthError } from '../errors';

function setup(minRate: number): { p: PullProgress; clock: { t: number }; stalls: BerthError[] } {
  const clock = { t: 0 };
  const stalls: BerthError[] = [];
  const p = new PullProgress({
    ref: 'r',
    timeoutMs: 10_000,
    minBytesPerSecond: minRate,
    log: silentLogger(),
    onStall: (e) => stalls.push(e),
    now: () => clock.t,
  });
  return { p, clock, stalls };
}

function advance(
  p: PullProgress,
  clock: { t: number },
  ms: number,
  bytesPerTick = 0,
  add?: (n: number) => void,
): void {
  for (let i = 0; i < ms / 1000; i++) {
    clock.t += 1000;
    if (bytesPerTick && add) add(bytesPerTick);
    p.tick();
  }
}

describe('PullProgress stall detection', () => {
  it('declares a stall after the window without bytes', () => {
    const { p, clock, stalls } = setup(1);
    const t = p.begin('layer', 100);
    t.add(50);
    advance(p, clock, 9000);
    expect(stalls).toHaveLength(0);
    advance(p, clock, 2000);
    expect(stalls).toHaveLength(1);
    expect(stalls[0]?.code).toBe(Status.DEADLINE_EXCEEDED);
    expect(stalls[0]?.message).toMatch(/no progress for 10s/);
  });
  it('keeps going while bytes move above the floor', () => {
    const { p, clock, stalls } = setup(100);
    const t = p.begin('layer');
    advance(p, clock, 60_000, 200, t.add);
    expect(stalls).toHaveLength(0);
  });
  it('counts a trickle below the floor as a stall', () => {
    const { p, clock, stalls } = setup(100);
    const t = p.begin('layer');
    advance(p, clock, 12_000, 50, t.add);
    expect(stalls).toHaveLength(1);
  });
  it('does not count time when nothing downloads (e.g. while unpacking)', () => {
    const { p, clock, stalls } = setup(1);
    const t = p.begin('layer');
    t.add(10);
    t.done();
    advance(p, clock, 60_000);
    expect(stalls).toHaveLength(0);
    const t2 = p.begin('next');
    void t2;
    advance(p, clock, 9000);
    expect(stalls).toHaveLength(0);
    advance(p, clock, 2000);
    expect(stalls).toHaveLength(1);
  });
  it('detects a stall that starts mid-window within one window', () => {
    const { p, clock, stalls } = setup(1);
    const t = p.begin('layer');
    advance(p, clock, 5000, 1000, t.add);
    advance(p, clock, 10_000);
    expect(stalls).toHaveLength(1);
  });
  it('formats byte counts', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(3 * 1024 * 1024)).toBe('3.0 MiB');
  });
});

describe('snapshot', () => {
  it('counts the planned layers and their bytes, not the manifest or config', () => {
    const { p, clock } = setup(1);
    const m = p.begin('manifest');
    m.add(500);
    m.done();
    expect(p.snapshot()).toEqual({
      ref: 'r',
      layers: 0,
      layersDone: 0,
      totalBytes: 0,
      bytes: 0,
      elapsedMs: 0,
    });
    p.plan(2, 3000);
    const c = p.begin('config abc', 100);
    c.add(100);
    c.done();
    const a = p.begin('layer aaa', 1000);
    const b = p.begin('layer bbb', 2000);
    a.add(1000);
    a.done();
    b.add(700);
    clock.t = 1500;
    expect(p.snapshot()).toEqual({
      ref: 'r',
      layers: 2,
      layersDone: 1,
      totalBytes: 3000,
      bytes: 1700,
      elapsedMs: 1500,
    });
    b.done();
    b.done(); // twice counts once
    expect(p.snapshot().layersDone).toBe(2);
  });
});
