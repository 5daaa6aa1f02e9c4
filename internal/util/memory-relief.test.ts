import { silentLogger } from '../log';
import { exposedGc, ReliefPolicy, startMemoryRelief } from './memory-relief';

test('ReliefPolicy: due once grown above the floor and at rest', () => {
  const p = new ReliefPolicy(100, 10);
  expect(p.due(1000)).toBe(false); // first sample: the floor
  expect(p.due(1099)).toBe(false);
  expect(p.due(1150)).toBe(false); // grown but still moving
  expect(p.due(1300)).toBe(false);
  expect(p.due(1305)).toBe(true); // at rest
  p.relieved(1020); // back near the floor: the floor stays
  expect(p.due(1025)).toBe(false);
  expect(p.due(1120)).toBe(false);
  expect(p.due(1121)).toBe(true);
  p.relieved(1010);
  expect(p.due(900)).toBe(false); // lower: new floor
  expect(p.due(1000)).toBe(false);
  expect(p.due(1001)).toBe(true);
});

test('ReliefPolicy: a relief that cannot get back is retried after 1, 2, 4 samples, then moves the floor', () => {
  const p = new ReliefPolicy(100, 10, 3);
  p.due(1000);
  p.due(1500);
  expect(p.due(1500)).toBe(true);
  const pattern: boolean[] = [];
  p.relieved(1400);
  for (let i = 0; i < 12; i++) {
    const d = p.due(1400);
    pattern.push(d);
    if (d) p.relieved(1400);
  }
  // retries after skipping 1, 2 and 4 samples; then 1400 is the floor: no more
  expect(pattern).toEqual([false, true, false, false, true, false, false, false, false, true, false, false]);
  expect(p.due(1450)).toBe(false);
  expect(p.due(1500)).toBe(false);
  expect(p.due(1501)).toBe(true); // 100 above the new floor, at rest
});

test('startMemoryRelief relieves on growth only', async () => {
  let rss = 1000;
  let calls = 0;
  const r = startMemoryRelief(silentLogger(), {
    intervalMs: 5,
    growthKb: 100,
    busy: () => 0,
    rssKb: () => rss,
    relieve: () => {
      calls++;
      rss -= 150;
    },
  });
  await new Promise((res) => setTimeout(res, 40));
  expect(calls).toBe(0);
  rss = 1200; // then steady: one relief
  await new Promise((res) => setTimeout(res, 60));
  r.stop();
  expect(calls).toBe(1);
});

test('startMemoryRelief waits for a quiet loop: no relief while the loop is busy', async () => {
  let rss = 1000;
  let calls = 0;
  let load = 0;
  const r = startMemoryRelief(silentLogger(), {
    intervalMs: 5,
    growthKb: 100,
    busy: () => load,
    rssKb: () => rss,
    relieve: () => {
      calls++;
      rss -= 150;
    },
  });
  await new Promise((res) => setTimeout(res, 30)); // the floor: 1000
  load = 0.5; // a burst, then steady while the loop stays busy: no relief
  rss = 1200;
  await new Promise((res) => setTimeout(res, 60));
  expect(calls).toBe(0);
  load = 0.01; // quiet again: the relief runs
  await new Promise((res) => setTimeout(res, 60));
  r.stop();
  expect(calls).toBe(1);
});

test('exposedGc gives a working gc() with the last-resort flavour', () => {
  expect(() => exposedGc()({ type: 'major', execution: 'sync', flavor: 'last-resort' })).not.toThrow();
});

test('startMemoryRelief takes its floor at start, so a daemon busy from the start is relieved once quiet', async () => {
  let rss = 1000;
  let calls = 0;
  let load = 0.5; // busy from the first sample on
  const r = startMemoryRelief(silentLogger(), {
    intervalMs: 5,
    growthKb: 100,
    busy: () => load,
    rssKb: () => rss,
    relieve: () => {
      calls++;
      rss = 1010;
    },
  });
  rss = 1300; // grown during the burst
  await new Promise((res) => setTimeout(res, 40));
  expect(calls).toBe(0);
  load = 0; // quiet: 300 above the start's 1000, at rest after two samples
  await new Promise((res) => setTimeout(res, 60));
  r.stop();
  expect(calls).toBe(1);
  expect(rss).toBe(1010);
});
