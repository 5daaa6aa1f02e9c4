import { silentLogger } from '../log';
import { defaultRelieve, exposedGc, ReliefPolicy, startMemoryRelief } from './memory-relief';

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

/** A relief over a fake RSS (1000 at start) and loop load, sampled every 5 ms, counting reliefs. */
function fakeRelief(relieve: (rss: number) => number, load = 0) {
  const s = { rss: 1000, load, calls: 0 };
  const r = startMemoryRelief(silentLogger(), {
    intervalMs: 5,
    growthKb: 100,
    busy: () => s.load,
    rssKb: () => s.rss,
    relieve: () => {
      s.calls++;
      s.rss = relieve(s.rss);
    },
  });
  return { s, stop: () => r.stop() };
}

const wait = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

test('startMemoryRelief relieves on growth only', async () => {
  const { s, stop } = fakeRelief((rss) => rss - 150);
  await wait(40);
  expect(s.calls).toBe(0);
  s.rss = 1200; // then steady: one relief
  await wait(60);
  stop();
  expect(s.calls).toBe(1);
});

test('startMemoryRelief waits for a quiet loop: no relief while the loop is busy', async () => {
  const { s, stop } = fakeRelief((rss) => rss - 150);
  await wait(30); // the floor: 1000
  s.load = 0.5; // a burst, then steady while the loop stays busy: no relief
  s.rss = 1200;
  await wait(60);
  expect(s.calls).toBe(0);
  s.load = 0.01; // quiet again: the relief runs
  await wait(60);
  stop();
  expect(s.calls).toBe(1);
});

test("startMemoryRelief runs under kubelet's steady load (loop 7-9 % busy), not in a burst", async () => {
  const { s, stop } = fakeRelief((rss) => rss - 150, 0.09);
  await wait(30);
  s.rss = 1200; // grown while serving the steady load: relieved
  await wait(60);
  expect(s.calls).toBe(1);
  s.load = 0.3; // a burst (a pull, pods started 10 at a time): not while it lasts
  s.rss = 1300;
  await wait(60);
  stop();
  expect(s.calls).toBe(1);
});

test('startMemoryRelief takes its floor at start, so a daemon busy from the start is relieved once quiet', async () => {
  const { s, stop } = fakeRelief(() => 1010, 0.5); // busy from the first sample on
  s.rss = 1300; // grown during the burst
  await wait(40);
  expect(s.calls).toBe(0);
  s.load = 0; // quiet: 300 above the start's 1000, at rest after two samples
  await wait(60);
  stop();
  expect(s.calls).toBe(1);
  expect(s.rss).toBe(1010);
});

test('exposedGc gives a working gc() with the last-resort flavour', () => {
  expect(() => exposedGc()({ type: 'major', execution: 'sync', flavor: 'last-resort' })).not.toThrow();
});

test('startMemoryRelief awaits an async relief and starts no other while it runs', async () => {
  const s = { rss: 1000, calls: 0, overlap: false, running: false };
  const r = startMemoryRelief(silentLogger(), {
    intervalMs: 5,
    growthKb: 100,
    busy: () => 0,
    rssKb: () => s.rss,
    relieve: async () => {
      if (s.running) s.overlap = true;
      s.running = true;
      s.calls++;
      await wait(40); // eight intervals
      s.rss = 1300; // could not get back: retried later, never alongside
      s.running = false;
    },
  });
  await wait(20);
  s.rss = 1300;
  await wait(200);
  r.stop();
  expect(s.calls).toBeGreaterThanOrEqual(2);
  expect(s.overlap).toBe(false);
});

test('defaultRelieve runs the collection as a task of its own and trims once it is over', async () => {
  let trimmed = false;
  const p = defaultRelieve(() => (trimmed = true));
  // the collection is not run inside this call (a collection called from a JS stack left the
  // unpack pool's dead chunk buffers allocated); malloc_trim waits for it
  expect(trimmed).toBe(false);
  await p;
  expect(trimmed).toBe(true);
});
